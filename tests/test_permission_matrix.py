"""The permission matrix of ../shared/ROLES.md, checked against every URL the project serves.

The URL names come from the URLconf itself (``get_resolver()``), so a new page or endpoint without a row in
``EXPECTED`` fails ``test_every_url_has_an_expected_outcome`` by name. Each (URL, role) pair is its own test
case: GET as a signed-out visitor and as one person per role.

How a refusal looks (ROLES.md): a page answers a signed-out visitor with a redirect to the sign-in page and
a signed-in person without the capability with 403; the API answers 401 signed out (token authentication is
listed first) and 403 signed in; an object outside the person's scope answers 404. POST-only URLs answer GET
with 405 once the permission check has passed.

Where the code contradicts ROLES.md, ``EXPECTED`` keeps what ROLES.md requires and ``CONTRADICTIONS`` marks
the case as a strict xfail with the reason: it turns into a failure (XPASS) as soon as the code is fixed, and
the entry must then be removed.

The admin site (``admin:``) is left out of the matrix and checked by the tests at the end of the module.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.views import redirect_to_login
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from backbone.models import AuditEntry, OutboundMessage
from backbone.roles import Role
from billing.models import Dispute, Invoice, InvoiceLine
from billing.portal import PortalSigner
from billing.services import invoice_run_start
from customers import forms as f
from customers.models import (
    Address,
    BankAccount,
    Contact,
    Customer,
    ExemptionCertificate,
    LegalEntity,
    Product,
    TaxRegistration,
)
from customers.services import (
    customer_create,
    deal_create,
    exemption_certificate_create,
    quote_attachment_add,
    quote_create,
    quote_send,
)
from customers.tasks import quote_pdf_render
from projects.members import project_member_add
from projects.milestones import milestone_accept
from projects.models import Milestone
from projects.services import change_order_create, deal_win
from projects.timesheets import expense_create, time_entry_create
from tax.context import TaxContext
from tax.models import TaxCalculation, TaxRate
from tax.services import tax_calculation_record, tax_rates_load
from tests.customers.factories import BankAccountFactory, LegalEntityFactory, ProductFactory
from tests.projects.factories import DealFactory, tm_quote

ANON = "anon"
ROLES = (ANON, *Role.values)  # anon, sales, project_manager, consultant, finance, executive, auditor, admin

# Outcomes other than a plain status code.
LOGIN = "login"  # 302 to the sign-in page with ?next=<the requested path>
HOME = "home"  # 302 to the home page (a signed-in person opening the sign-in page)

# fmt: off
_MATRIX = {
    #                                        anon   sales  pm     cons   fin    exec   aud    admin
    "home":                                 (LOGIN, 200,   200,   200,   200,   200,   200,   200),
    "login":                                (200,   HOME,  HOME,  HOME,  HOME,  HOME,  HOME,  HOME),
    "logout":                               (405,   405,   405,   405,   405,   405,   405,   405),
    "history":                              (LOGIN, 403,   403,   403,   200,   200,   200,   200),
    "history-verify":                       (LOGIN, 403,   403,   403,   405,   405,   405,   405),
    "history-entry":                        (LOGIN, 403,   403,   403,   200,   200,   200,   200),
    "customers:customer-list":              (LOGIN, 200,   200,   403,   200,   200,   200,   200),
    "customers:customer-create":            (LOGIN, 200,   403,   403,   403,   403,   403,   200),
    "customers:customer-detail":            (LOGIN, 200,   200,   403,   200,   200,   200,   200),
    "customers:customer-edit":              (LOGIN, 200,   403,   403,   200,   403,   403,   200),
    "customers:customer-status":            (LOGIN, 405,   403,   403,   405,   403,   403,   405),
    "customers:customer-external-id":       (LOGIN, 405,   403,   403,   405,   403,   403,   405),
    "customers:contact-create":             (LOGIN, 200,   403,   403,   200,   403,   403,   200),
    "customers:contact-edit":               (LOGIN, 200,   403,   403,   200,   403,   403,   200),
    "customers:contact-delete":             (LOGIN, 405,   403,   403,   405,   403,   403,   405),
    "customers:product-list":               (LOGIN, 200,   200,   403,   200,   200,   200,   200),
    "customers:product-create":             (LOGIN, 403,   403,   403,   200,   403,   403,   200),
    "customers:product-detail":             (LOGIN, 200,   200,   403,   200,   200,   200,   200),
    "customers:product-edit":               (LOGIN, 403,   403,   403,   200,   403,   403,   200),
    "customers:legal-entity-list":          (LOGIN, 200,   200,   403,   200,   200,   200,   200),
    "customers:legal-entity-create":        (LOGIN, 403,   403,   403,   200,   403,   403,   200),
    "customers:legal-entity-detail":        (LOGIN, 200,   200,   403,   200,   200,   200,   200),
    "customers:legal-entity-edit":          (LOGIN, 403,   403,   403,   200,   403,   403,   200),
    "api:customer-list":                    (401,   200,   200,   403,   200,   200,   200,   200),
    "api:customer-detail":                  (401,   200,   200,   403,   200,   200,   200,   200),
    "api:customer-set-status":              (401,   405,   405,   403,   405,   405,   405,   405),
    "api:customer-upsert-by-external-id":   (401,   405,   405,   403,   405,   405,   405,   405),
    "api:contact-list":                     (401,   200,   200,   403,   200,   200,   200,   200),
    "api:contact-detail":                   (401,   200,   200,   403,   200,   200,   200,   200),
    "api:product-list":                     (401,   200,   200,   403,   200,   200,   200,   200),
    "api:product-detail":                   (401,   200,   200,   403,   200,   200,   200,   200),
    "api:legal-entity-list":                (401,   200,   200,   403,   200,   200,   200,   200),
    "api:legal-entity-detail":              (401,   200,   200,   403,   200,   200,   200,   200),
    "customers:exemption-certificate-create":   (LOGIN, 403,   403,   403,   200,   403,   403,   200),
    "customers:exemption-certificate-edit":     (LOGIN, 403,   403,   403,   200,   403,   403,   200),
    "customers:exemption-certificate-delete":   (LOGIN, 403,   403,   403,   405,   403,   403,   405),
    "customers:exemption-certificate-document": (LOGIN, 200,   200,   403,   200,   200,   200,   200),
    "customers:deal-list":                  (LOGIN, 200,   200,   403,   200,   200,   200,   200),
    "customers:pipeline":                   (LOGIN, 200,   200,   403,   200,   200,   200,   200),
    "customers:deal-create":                (LOGIN, 200,   403,   403,   403,   403,   403,   200),
    "customers:deal-detail":                (LOGIN, 200,   404,   403,   200,   200,   200,   200),
    "customers:deal-edit":                  (LOGIN, 200,   403,   403,   403,   403,   403,   200),
    "customers:deal-stage":                 (LOGIN, 405,   403,   403,   403,   403,   403,   405),
    "customers:quote-create":               (LOGIN, 200,   403,   403,   403,   403,   403,   200),
    "customers:quote-tax-preview":          (LOGIN, 405,   403,   403,   403,   403,   403,   405),
    "customers:quote-detail":               (LOGIN, 200,   404,   403,   200,   200,   200,   200),
    "customers:quote-edit":                 (LOGIN, 200,   403,   403,   403,   403,   403,   200),
    "customers:quote-send":                 (LOGIN, 405,   403,   403,   403,   403,   403,   405),
    "customers:quote-accept":               (LOGIN, 405,   403,   403,   403,   403,   403,   405),
    "customers:quote-new-version":          (LOGIN, 405,   403,   403,   403,   403,   403,   405),
    "customers:quote-pdf":                  (LOGIN, 200,   404,   403,   200,   200,   200,   200),
    "customers:quote-attachment-add":       (LOGIN, 405,   403,   403,   403,   403,   403,   405),
    "customers:quote-attachment-download":  (LOGIN, 200,   404,   403,   200,   200,   200,   200),
    "customers:quote-attachment-delete":    (LOGIN, 405,   403,   403,   403,   403,   403,   405),
    "api:deal-list":                        (401,   200,   200,   403,   200,   200,   200,   200),
    "api:deal-detail":                      (401,   200,   404,   403,   200,   200,   200,   200),
    "api:deal-stage":                       (401,   405,   405,   403,   405,   405,   405,   405),
    "api:quote-list":                       (401,   200,   200,   403,   200,   200,   200,   200),
    "api:quote-detail":                     (401,   200,   404,   403,   200,   200,   200,   200),
    "api:quote-send":                       (401,   405,   405,   403,   405,   405,   405,   405),
    "api:quote-accept":                     (401,   405,   405,   403,   405,   405,   405,   405),
    "api:quote-new-version":                (401,   405,   405,   403,   405,   405,   405,   405),
    "api:quote-attachments":                (401,   200,   404,   403,   200,   200,   200,   200),
    "projects:project-list":                (LOGIN, 200,   200,   200,   200,   200,   200,   200),
    "projects:project-create":              (LOGIN, 403,   200,   403,   403,   403,   403,   200),
    "projects:project-detail":              (LOGIN, 200,   200,   404,   200,   200,   200,   200),
    "projects:project-status":              (LOGIN, 403,   405,   403,   403,   403,   403,   405),
    "projects:version-detail":              (LOGIN, 200,   200,   403,   200,   200,   200,   200),
    "projects:change-order-create":         (LOGIN, 200,   200,   403,   403,   403,   403,   200),
    "projects:change-order-detail":         (LOGIN, 200,   200,   403,   200,   200,   200,   200),
    "projects:change-order-edit":           (LOGIN, 200,   200,   403,   403,   403,   403,   200),
    "projects:change-order-submit":         (LOGIN, 405,   405,   403,   403,   403,   403,   405),
    "projects:change-order-approve":        (LOGIN, 403,   405,   403,   405,   405,   403,   405),
    "projects:change-order-reject":         (LOGIN, 403,   405,   403,   405,   405,   403,   405),
    "projects:deal-win":                    (LOGIN, 200,   403,   403,   403,   403,   403,   200),
    "projects:milestone-accept":            (LOGIN, 200,   200,   404,   200,   200,   200,   200),
    "projects:time-import":                 (LOGIN, 200,   200,   200,   403,   403,   403,   200),
    "billing:invoice-list":                 (LOGIN, 403,   200,   403,   200,   200,   200,   200),
    "billing:invoice-detail":               (LOGIN, 403,   200,   403,   200,   200,   200,   200),
    "billing:invoice-approve":              (LOGIN, 403,   403,   403,   405,   405,   403,   405),
    "billing:invoice-return-to-draft":      (LOGIN, 403,   403,   403,   405,   405,   403,   405),
    "billing:invoice-issue":                (LOGIN, 403,   403,   403,   405,   403,   403,   405),
    "billing:invoice-discard":              (LOGIN, 403,   403,   403,   405,   403,   403,   405),
    "billing:invoice-pdf":                  (LOGIN, 403,   404,   403,   404,   404,   404,   404),
    "billing:credit-note-create":           (LOGIN, 403,   403,   403,   409,   403,   403,   409),
    # Draft editing and review (billing/urls_drafts.py). A line's row answers a plain GET with a redirect to
    # the invoice page (htmx asks for the fragment). Admins hold every permission (see the module docstring).
    "billing:invoice-draft-header":         (LOGIN, 403,   403,   403,   405,   403,   403,   405),
    "billing:invoice-draft-line-add":       (LOGIN, 403,   403,   403,   405,   403,   403,   405),
    "billing:invoice-draft-discount-add":   (LOGIN, 403,   403,   403,   405,   403,   403,   405),
    "billing:invoice-draft-line":           (LOGIN, 403,   302,   403,   302,   302,   302,   302),
    "billing:invoice-draft-line-edit":      (LOGIN, 403,   403,   403,   302,   403,   403,   302),
    "billing:invoice-draft-line-delete":    (LOGIN, 403,   403,   403,   405,   403,   403,   405),
    "billing:invoice-comment-add":          (LOGIN, 403,   405,   403,   405,   403,   403,   405),
    # Delivery (billing/urls_delivery.py) and the Outbox (backbone).
    "billing:invoice-send":                 (LOGIN, 403,   403,   403,   405,   403,   403,   405),
    "billing:message-resend":               (LOGIN, 403,   403,   403,   405,   403,   403,   405),
    "outbox":                               (LOGIN, 403,   403,   403,   200,   200,   200,   200),
    "outbox-detail":                        (LOGIN, 403,   403,   403,   200,   200,   200,   200),
    "outbox-resend":                        (LOGIN, 403,   403,   403,   405,   403,   403,   405),
    "api:invoice-pdf":                      (401,   403,   404,   403,   404,   404,   404,   404),
    "api:invoice-credit-notes":             (401,   403,   200,   403,   200,   200,   200,   200),
    "api:invoice-send":                     (401,   403,   405,   403,   405,   405,   405,   405),
    "api:invoice-messages":                 (401,   403,   403,   403,   200,   200,   200,   200),
    "api:outbox-list":                      (401,   403,   403,   403,   200,   200,   200,   200),
    "api:outbox-detail":                    (401,   403,   403,   403,   200,   200,   200,   200),
    # The client portal (no login: the signed token is the key; the world's invoice is a draft, so it has no
    # portal page) and finance's dispute forms.
    "billing:portal":                       (404,   404,   404,   404,   404,   404,   404,   404),
    "billing:portal-pdf":                   (404,   404,   404,   404,   404,   404,   404,   404),
    "billing:portal-dispute":               (405,   405,   405,   405,   405,   405,   405,   405),
    "billing:dispute-record":               (LOGIN, 403,   403,   403,   405,   403,   403,   405),
    "billing:dispute-resolve":              (LOGIN, 403,   403,   403,   405,   403,   403,   405),
    "api:invoice-disputes":                 (401,   403,   200,   403,   200,   200,   200,   200),
    "api:invoice-dispute-resolve":          (401,   403,   405,   403,   405,   405,   405,   405),
    "billing:run-list":                     (LOGIN, 403,   403,   403,   200,   200,   200,   200),
    "billing:run-start":                    (LOGIN, 403,   403,   403,   405,   403,   403,   405),
    "billing:run-detail":                   (LOGIN, 403,   403,   403,   200,   200,   200,   200),
    "billing:run-progress":                 (LOGIN, 403,   403,   403,   200,   200,   200,   200),
    "billing:run-retry":                    (LOGIN, 403,   403,   403,   405,   403,   403,   405),
    "api:invoice-run-list":                 (401,   403,   403,   403,   200,   200,   200,   200),
    "api:invoice-run-detail":               (401,   403,   403,   403,   200,   200,   200,   200),
    "api:invoice-run-retry":                (401,   403,   403,   403,   405,   405,   405,   405),
    "api:invoice-run-exceptions":           (401,   403,   403,   403,   200,   200,   200,   200),
    "api:invoice-list":                     (401,   403,   200,   403,   200,   200,   200,   200),
    "api:invoice-detail":                   (401,   403,   200,   403,   200,   200,   200,   200),
    "api:invoice-lines":                    (401,   403,   200,   403,   200,   200,   200,   200),
    "api:invoice-approve":                  (401,   403,   405,   403,   405,   405,   405,   405),
    "api:invoice-edit":                     (401,   403,   405,   403,   405,   405,   405,   405),
    "api:invoice-add-line":                 (401,   403,   405,   403,   405,   405,   405,   405),
    "api:invoice-update-line":              (401,   403,   405,   403,   405,   405,   405,   405),
    "api:invoice-comments":                 (401,   403,   200,   403,   200,   200,   200,   200),
    "api:invoice-return-to-draft":          (401,   403,   405,   403,   405,   405,   405,   405),
    "api:invoice-issue":                    (401,   403,   405,   403,   405,   405,   405,   405),
    "api:invoice-discard":                  (401,   403,   405,   403,   405,   405,   405,   405),
    "projects:timesheet":                   (LOGIN, 200,   200,   200,   403,   403,   403,   200),
    "projects:timesheet-cell":              (LOGIN, 405,   405,   405,   403,   403,   403,   405),
    "projects:timesheet-row":               (LOGIN, 405,   405,   405,   403,   403,   403,   405),
    "projects:timesheet-row-add":           (LOGIN, 405,   405,   405,   403,   403,   403,   405),
    "projects:timesheet-row-remove":        (LOGIN, 405,   405,   405,   403,   403,   403,   405),
    "projects:timesheet-copy":              (LOGIN, 405,   405,   405,   403,   403,   403,   405),
    "projects:timesheet-submit":            (LOGIN, 405,   405,   405,   403,   403,   403,   405),
    "projects:approval-queue":              (LOGIN, 403,   200,   403,   403,   403,   200,   200),
    "projects:approval-decide":             (LOGIN, 403,   405,   403,   403,   403,   403,   405),
    "projects:expense-list":                (LOGIN, 200,   200,   200,   200,   200,   200,   200),
    "projects:expense-create":              (LOGIN, 200,   200,   200,   403,   403,   403,   200),
    "projects:expense-edit":                (LOGIN, 404,   200,   404,   403,   403,   403,   404),
    "projects:expense-delete":              (LOGIN, 404,   200,   404,   403,   403,   403,   404),
    "projects:expense-receipt":             (LOGIN, 404,   200,   404,   200,   200,   200,   200),
    "projects:expense-submit-week":         (LOGIN, 405,   405,   405,   403,   403,   403,   405),
    "projects:period-list":                 (LOGIN, 200,   200,   200,   200,   200,   200,   200),
    "projects:period-lock":                 (LOGIN, 403,   403,   403,   200,   403,   403,   200),
    "projects:project-team":                (LOGIN, 200,   200,   404,   200,   200,   200,   200),
    "projects:project-team-add":            (LOGIN, 403,   405,   403,   403,   403,   403,   405),
    "projects:project-team-member":         (LOGIN, 403,   405,   403,   403,   403,   403,   405),
    "projects:project-team-remove":         (LOGIN, 403,   200,   403,   403,   403,   403,   200),
    "api:time-entry-import":                (401,   405,   405,   405,   403,   403,   403,   405),
    "api:time-entry-list":                  (401,   200,   200,   200,   200,   200,   200,   200),
    "api:time-entry-detail":                (401,   404,   200,   404,   200,   200,   200,   200),
    "api:time-entry-adjust":                (401,   405,   405,   405,   405,   405,   405,   405),
    "api:expense-list":                     (401,   200,   200,   200,   200,   200,   200,   200),
    "api:expense-detail":                   (401,   404,   200,   404,   200,   200,   200,   200),
    "api:expense-receipt":                  (401,   404,   200,   404,   200,   200,   200,   200),
    "api:timesheet-submit":                 (401,   405,   405,   405,   403,   403,   403,   405),
    "api:approval-list":                    (401,   403,   200,   403,   403,   403,   200,   200),
    "api:approval-approve":                 (401,   403,   405,   403,   403,   403,   403,   405),
    "api:approval-reject":                  (401,   403,   405,   403,   403,   403,   403,   405),
    "api:locked-period-list":               (401,   200,   200,   200,   200,   200,   200,   200),
    "api:project-member-list":              (401,   200,   200,   404,   200,   200,   200,   200),
    "api:project-member-detail":            (401,   200,   200,   404,   200,   200,   200,   200),
    "projects:milestone-withdraw":          (LOGIN, 403,   405,   403,   403,   403,   403,   405),
    "projects:milestone-document":          (LOGIN, 200,   200,   404,   200,   200,   200,   200),
    "notifications":                        (LOGIN, 200,   200,   200,   200,   200,   200,   200),
    "notification-read":                    (LOGIN, 405,   405,   405,   405,   405,   403,   405),
    "api:project-list":                     (401,   200,   200,   200,   200,   200,   200,   200),
    "api:project-detail":                   (401,   200,   200,   404,   200,   200,   200,   200),
    "api:project-set-status":               (401,   405,   405,   405,   405,   405,   405,   405),
    "api:project-budget":                   (401,   200,   200,   403,   200,   200,   200,   200),
    "api:project-alerts":                   (401,   403,   200,   403,   200,   200,   200,   200),
    "api:project-rate-card-list":           (401,   200,   200,   404,   200,   200,   200,   200),
    "api:project-budget-line-list":         (401,   200,   200,   403,   200,   200,   200,   200),
    "api:project-milestone-list":           (401,   200,   200,   404,   200,   200,   200,   200),
    "api:project-milestone-detail":         (401,   200,   200,   404,   200,   200,   200,   200),
    "api:project-milestone-accept":         (401,   405,   405,   405,   405,   405,   405,   405),
    "api:project-milestone-withdraw":       (401,   405,   405,   405,   405,   405,   405,   405),
    "api:project-billing-rule-list":        (401,   200,   200,   403,   200,   200,   200,   200),
    "api:project-contract-version-list":    (401,   200,   200,   403,   200,   200,   200,   200),
    "api:project-contract-version-detail":  (401,   200,   200,   403,   200,   200,   200,   200),
    "api:project-contract-version-diff":    (401,   200,   200,   403,   200,   200,   200,   200),
    "api:change-order-list":                (401,   200,   200,   403,   200,   200,   200,   200),
    "api:change-order-detail":              (401,   200,   200,   403,   200,   200,   200,   200),
    "api:change-order-submit":              (401,   405,   405,   403,   405,   405,   405,   405),
    "api:change-order-approve":             (401,   405,   405,   403,   405,   405,   405,   405),
    "api:change-order-reject":              (401,   405,   405,   403,   405,   405,   405,   405),
    "api:deal-win":                         (401,   405,   403,   403,   403,   403,   403,   405),
    "tax:rate-table":                       (LOGIN, 403,   403,   403,   200,   200,   200,   200),
    "tax:jurisdiction-detail":              (LOGIN, 403,   403,   403,   200,   200,   200,   200),
    "tax:rate-create":                      (LOGIN, 403,   403,   403,   200,   403,   403,   200),
    "tax:preview":                          (LOGIN, 200,   200,   403,   200,   200,   403,   200),
    "tax:calculation-list":                 (LOGIN, 403,   403,   403,   200,   200,   200,   200),
    "tax:calculation-detail":               (LOGIN, 403,   403,   403,   200,   200,   200,   200),
    "api:tax-jurisdiction-list":            (401,   403,   403,   403,   200,   200,   200,   200),
    "api:tax-jurisdiction-detail":          (401,   403,   403,   403,   200,   200,   200,   200),
    "api:tax-rate-list":                    (401,   403,   403,   403,   200,   200,   200,   200),
    "api:tax-rate-detail":                  (401,   403,   403,   403,   200,   200,   200,   200),
    "api:tax-calculation-list":             (401,   403,   403,   403,   200,   200,   200,   200),
    "api:tax-calculation-detail":           (401,   403,   403,   403,   200,   200,   200,   200),
    "api:tax-preview":                      (401,   405,   405,   403,   405,   405,   403,   405),
    "api-schema":                           (401,   200,   200,   200,   200,   200,   200,   200),
    "api-docs":                             (401,   200,   200,   200,   200,   200,   200,   200),
}
# fmt: on

EXPECTED: dict[str, dict[str, int | str]] = {name: dict(zip(ROLES, row, strict=True)) for name, row in _MATRIX.items()}

# (URL name, role) → why the code does not do what ROLES.md requires. Strict xfail: fix the code, drop the line.
CONTRADICTIONS: dict[tuple[str, str], str] = {}

# URL name → the keyword arguments of its pattern, filled from the ``world`` fixture's objects.
KWARGS = {
    "history-entry": lambda w: {"pk": w["audit_entry"].pk},
    "customers:customer-detail": lambda w: {"public_id": w["customer"].public_id},
    "customers:customer-edit": lambda w: {"public_id": w["customer"].public_id},
    "customers:customer-status": lambda w: {"public_id": w["customer"].public_id},
    "customers:customer-external-id": lambda w: {"public_id": w["customer"].public_id},
    "customers:contact-create": lambda w: {"public_id": w["customer"].public_id},
    "customers:contact-edit": lambda w: {"public_id": w["contact"].public_id},
    "customers:contact-delete": lambda w: {"public_id": w["contact"].public_id},
    "customers:product-detail": lambda w: {"public_id": w["product"].public_id},
    "customers:product-edit": lambda w: {"public_id": w["product"].public_id},
    "customers:legal-entity-detail": lambda w: {"public_id": w["legal_entity"].public_id},
    "customers:legal-entity-edit": lambda w: {"public_id": w["legal_entity"].public_id},
    "api:customer-detail": lambda w: {"id": w["customer"].public_id},
    "api:customer-set-status": lambda w: {"id": w["customer"].public_id},
    "api:customer-upsert-by-external-id": lambda w: {"system": "hubspot", "external_id": "HS-1001"},
    "api:contact-detail": lambda w: {"id": w["contact"].public_id},
    "api:product-detail": lambda w: {"id": w["product"].public_id},
    "api:legal-entity-detail": lambda w: {"id": w["legal_entity"].public_id},
    "customers:exemption-certificate-create": lambda w: {"public_id": w["customer"].public_id},
    "customers:exemption-certificate-edit": lambda w: {"public_id": w["exemption_certificate"].public_id},
    "customers:exemption-certificate-delete": lambda w: {"public_id": w["exemption_certificate"].public_id},
    "customers:exemption-certificate-document": lambda w: {"public_id": w["exemption_certificate"].public_id},
    "customers:deal-detail": lambda w: {"public_id": w["deal"].public_id},
    "customers:deal-edit": lambda w: {"public_id": w["deal"].public_id},
    "customers:deal-stage": lambda w: {"public_id": w["deal"].public_id},
    "customers:quote-create": lambda w: {"public_id": w["deal"].public_id},
    "customers:quote-tax-preview": lambda w: {"public_id": w["deal"].public_id},
    "customers:quote-detail": lambda w: {"public_id": w["draft_quote"].public_id},
    "customers:quote-edit": lambda w: {"public_id": w["draft_quote"].public_id},
    "customers:quote-send": lambda w: {"public_id": w["draft_quote"].public_id},
    "customers:quote-accept": lambda w: {"public_id": w["draft_quote"].public_id},
    "customers:quote-new-version": lambda w: {"public_id": w["draft_quote"].public_id},
    "customers:quote-pdf": lambda w: {"public_id": w["sent_quote"].public_id},
    "customers:quote-attachment-add": lambda w: {"public_id": w["draft_quote"].public_id},
    "customers:quote-attachment-download": lambda w: {"public_id": w["attachment"].public_id},
    "customers:quote-attachment-delete": lambda w: {"public_id": w["attachment"].public_id},
    "api:deal-detail": lambda w: {"id": w["deal"].public_id},
    "api:deal-stage": lambda w: {"id": w["deal"].public_id},
    "api:quote-detail": lambda w: {"id": w["draft_quote"].public_id},
    "api:quote-send": lambda w: {"id": w["draft_quote"].public_id},
    "api:quote-accept": lambda w: {"id": w["draft_quote"].public_id},
    "api:quote-new-version": lambda w: {"id": w["draft_quote"].public_id},
    "api:quote-attachments": lambda w: {"id": w["draft_quote"].public_id},
    "projects:project-detail": lambda w: {"public_id": w["project"].public_id},
    "projects:project-status": lambda w: {"public_id": w["project"].public_id},
    "projects:change-order-create": lambda w: {"public_id": w["project"].public_id},
    "projects:version-detail": lambda w: {"public_id": w["project"].public_id, "number": 1},
    "projects:change-order-detail": lambda w: {"public_id": w["change_order"].public_id},
    "projects:change-order-edit": lambda w: {"public_id": w["change_order"].public_id},
    "projects:change-order-submit": lambda w: {"public_id": w["change_order"].public_id},
    "projects:change-order-approve": lambda w: {"public_id": w["change_order"].public_id},
    "projects:change-order-reject": lambda w: {"public_id": w["change_order"].public_id},
    "projects:deal-win": lambda w: {"public_id": w["open_deal"].public_id},
    "api:project-detail": lambda w: {"id": w["project"].public_id},
    "api:project-set-status": lambda w: {"id": w["project"].public_id},
    "api:project-budget": lambda w: {"id": w["project"].public_id},
    "api:project-alerts": lambda w: {"id": w["project"].public_id},
    "api:project-rate-card-list": lambda w: {"project_id": w["project"].public_id},
    "api:project-budget-line-list": lambda w: {"project_id": w["project"].public_id},
    "api:project-milestone-list": lambda w: {"project_id": w["project"].public_id},
    "api:project-milestone-detail": lambda w: {"project_id": w["project"].public_id, "id": w["milestone"].public_id},
    "api:project-milestone-accept": lambda w: {"project_id": w["project"].public_id, "id": w["milestone"].public_id},
    "api:project-milestone-withdraw": lambda w: {
        "project_id": w["project"].public_id,
        "id": w["milestone"].public_id,
    },
    "billing:invoice-detail": lambda w: {"public_id": w["invoice"].public_id},
    "billing:invoice-approve": lambda w: {"public_id": w["invoice"].public_id},
    "billing:invoice-return-to-draft": lambda w: {"public_id": w["invoice"].public_id},
    "billing:invoice-issue": lambda w: {"public_id": w["invoice"].public_id},
    "billing:invoice-discard": lambda w: {"public_id": w["invoice"].public_id},
    "billing:invoice-pdf": lambda w: {"public_id": w["invoice"].public_id},
    "billing:credit-note-create": lambda w: {"public_id": w["invoice"].public_id},  # a draft: 409 for finance
    "billing:invoice-draft-header": lambda w: {"public_id": w["invoice"].public_id},
    "billing:invoice-draft-line-add": lambda w: {"public_id": w["invoice"].public_id},
    "billing:invoice-draft-discount-add": lambda w: {"public_id": w["invoice"].public_id},
    "billing:invoice-draft-line": lambda w: {
        "public_id": w["invoice"].public_id,
        "line_id": w["invoice_line"].public_id,
    },
    "billing:invoice-draft-line-edit": lambda w: {
        "public_id": w["invoice"].public_id,
        "line_id": w["invoice_line"].public_id,
    },
    "billing:invoice-draft-line-delete": lambda w: {
        "public_id": w["invoice"].public_id,
        "line_id": w["invoice_line"].public_id,
    },
    "billing:invoice-comment-add": lambda w: {"public_id": w["invoice"].public_id},
    "billing:invoice-send": lambda w: {"public_id": w["invoice"].public_id},
    "billing:portal": lambda w: {"token": w["portal_token"]},
    "billing:portal-pdf": lambda w: {"token": w["portal_token"]},
    "billing:portal-dispute": lambda w: {"token": w["portal_token"]},
    "billing:dispute-record": lambda w: {"public_id": w["invoice"].public_id},
    "billing:dispute-resolve": lambda w: {"public_id": w["dispute"].public_id},
    "api:invoice-disputes": lambda w: {"id": w["invoice"].public_id},
    "api:invoice-dispute-resolve": lambda w: {"id": w["invoice"].public_id, "dispute_id": w["dispute"].public_id},
    "billing:message-resend": lambda w: {"public_id": w["invoice"].public_id, "message_id": w["message"].public_id},
    "outbox-detail": lambda w: {"public_id": w["message"].public_id},
    "outbox-resend": lambda w: {"public_id": w["message"].public_id},
    "api:invoice-send": lambda w: {"id": w["invoice"].public_id},
    "api:invoice-pdf": lambda w: {"id": w["invoice"].public_id},  # a draft: no PDF
    "api:invoice-credit-notes": lambda w: {"id": w["invoice"].public_id},
    "api:invoice-messages": lambda w: {"id": w["invoice"].public_id},
    "api:outbox-detail": lambda w: {"id": w["message"].public_id},
    "billing:run-detail": lambda w: {"public_id": w["invoice_run"].public_id},
    "billing:run-progress": lambda w: {"public_id": w["invoice_run"].public_id},
    "billing:run-retry": lambda w: {"public_id": w["invoice_run"].public_id},
    "api:invoice-run-detail": lambda w: {"id": w["invoice_run"].public_id},
    "api:invoice-run-retry": lambda w: {"id": w["invoice_run"].public_id},
    "api:invoice-run-exceptions": lambda w: {"id": w["invoice_run"].public_id},
    "api:invoice-detail": lambda w: {"id": w["invoice"].public_id},
    "api:invoice-lines": lambda w: {"id": w["invoice"].public_id},
    "api:invoice-approve": lambda w: {"id": w["invoice"].public_id},
    "api:invoice-edit": lambda w: {"id": w["invoice"].public_id},
    "api:invoice-add-line": lambda w: {"id": w["invoice"].public_id},
    "api:invoice-update-line": lambda w: {"id": w["invoice"].public_id, "line_id": w["invoice_line"].public_id},
    "api:invoice-comments": lambda w: {"id": w["invoice"].public_id},
    "api:invoice-return-to-draft": lambda w: {"id": w["invoice"].public_id},
    "api:invoice-issue": lambda w: {"id": w["invoice"].public_id},
    "api:invoice-discard": lambda w: {"id": w["invoice"].public_id},
    "api:time-entry-detail": lambda w: {"id": w["time_entry"].public_id},
    "api:time-entry-adjust": lambda w: {"id": w["time_entry"].public_id},
    "api:expense-detail": lambda w: {"id": w["expense"].public_id},
    "api:expense-receipt": lambda w: {"id": w["expense"].public_id},
    "api:project-member-list": lambda w: {"project_id": w["project"].public_id},
    "api:project-member-detail": lambda w: {"project_id": w["project"].public_id, "id": w["member"].public_id},
    "projects:expense-edit": lambda w: {"public_id": w["expense"].public_id},
    "projects:expense-delete": lambda w: {"public_id": w["expense"].public_id},
    "projects:expense-receipt": lambda w: {"public_id": w["expense"].public_id},
    "projects:project-team": lambda w: {"public_id": w["project"].public_id},
    "projects:project-team-add": lambda w: {"public_id": w["project"].public_id},
    "projects:project-team-member": lambda w: {"public_id": w["member"].public_id},
    "projects:project-team-remove": lambda w: {"public_id": w["member"].public_id},
    "projects:milestone-accept": lambda w: {
        "public_id": w["project"].public_id,
        "milestone_id": w["milestone"].public_id,
    },
    "projects:milestone-withdraw": lambda w: {
        "public_id": w["project"].public_id,
        "milestone_id": w["milestone"].public_id,
    },
    "projects:milestone-document": lambda w: {
        "public_id": w["project"].public_id,
        "milestone_id": w["milestone"].public_id,
    },
    "api:project-billing-rule-list": lambda w: {"project_id": w["project"].public_id},
    "api:project-contract-version-list": lambda w: {"project_id": w["project"].public_id},
    "api:project-contract-version-detail": lambda w: {
        "project_id": w["project"].public_id,
        "id": w["contract_version"].public_id,
    },
    "api:project-contract-version-diff": lambda w: {
        "project_id": w["project"].public_id,
        "id": w["contract_version"].public_id,
    },
    "api:change-order-detail": lambda w: {"id": w["change_order"].public_id},
    "api:change-order-submit": lambda w: {"id": w["change_order"].public_id},
    "api:change-order-approve": lambda w: {"id": w["change_order"].public_id},
    "api:change-order-reject": lambda w: {"id": w["change_order"].public_id},
    "api:deal-win": lambda w: {"id": w["open_deal"].public_id},
    "tax:jurisdiction-detail": lambda w: {"country": "DE"},
    "tax:calculation-detail": lambda w: {"public_id": w["tax_calculation"].public_id},
    "api:tax-jurisdiction-detail": lambda w: {"country": "DE"},
    "api:tax-rate-detail": lambda w: {"id": w["tax_rate"].public_id},
    "api:tax-calculation-detail": lambda w: {"id": w["tax_calculation"].public_id},
}


def url_names_in_urlconf() -> set[str]:
    """Every named pattern of the URLconf, qualified with its namespaces; the admin site and DRF's
    format-suffix duplicates (``….json``) left out."""
    names: set[str] = set()

    def walk(resolver: URLResolver, namespaces: tuple[str, ...]) -> None:
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                inner = (*namespaces, pattern.namespace) if pattern.namespace else namespaces
                if inner[:1] != ("admin",):
                    walk(pattern, inner)
            elif isinstance(pattern, URLPattern) and pattern.name:
                if "format" in pattern.pattern.regex.groupindex:
                    continue
                names.add(":".join((*namespaces, pattern.name)))

    walk(get_resolver(), ())
    return names


def test_every_url_has_an_expected_outcome():
    found = url_names_in_urlconf()
    missing = sorted(found - EXPECTED.keys())
    stale = sorted(EXPECTED.keys() - found)
    assert not missing, f"URLs without an expected outcome per role in EXPECTED: {', '.join(missing)}"
    assert not stale, f"EXPECTED lists URLs the URLconf no longer has: {', '.join(stale)}"


def test_every_contradiction_names_a_matrix_cell():
    for name, role in CONTRADICTIONS:
        assert name in EXPECTED and role in ROLES, (name, role)


# --- the people and records every case uses, built once for the module ----------------------------------

BILLING_ADDRESS = {"kind": "billing", "line1": "Torstraße 1", "postal_code": "10119", "city": "Berlin", "country": "DE"}


def _person(username: str, *roles: str, **extra):
    user = get_user_model().objects.create_user(username=username, password="pw-" + username, **extra)
    for role in roles:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """One person per role (as in ``tests/conftest.py``: the admin is superuser and staff, the auditor is
    staff), a second sales rep, a customer of each rep, a contact, a product, a legal entity and an audit
    entry. Built once in a transaction that is rolled back when the module is done; every test runs in a
    savepoint inside it."""
    with django_db_blocker.unblock(), transaction.atomic():
        people = {role: _person(role, role) for role in Role.values if role != Role.ADMIN}
        people[Role.ADMIN] = _person("admin", Role.ADMIN, is_staff=True, is_superuser=True)
        people[Role.AUDITOR].is_staff = True
        people[Role.AUDITOR].save(update_fields=["is_staff"])
        people["sales2"] = _person("sales2", Role.SALES)

        customer = customer_create(
            user=people[Role.SALES],
            data={"legal_name": "Nordlicht Analytics GmbH", "status": Customer.Status.ACTIVE},
            addresses=[dict(BILLING_ADDRESS)],
            contacts=[{"first_name": "Ida", "last_name": "Berg", "email": "ida@nordlicht.example", "role": "billing"}],
            external_ids=[{"system": "hubspot", "external_id": "HS-1001"}],
        )
        other_customer = customer_create(
            user=people["sales2"],
            data={"legal_name": "Fjord Logistics AS", "status": Customer.Status.ACTIVE},
            addresses=[dict(BILLING_ADDRESS, city="Oslo", postal_code="0150", country="NO")],
        )
        legal_entity = LegalEntityFactory()
        BankAccountFactory(legal_entity=legal_entity)
        exemption_certificate = exemption_certificate_create(
            user=people[Role.FINANCE],
            customer=customer,
            data={
                "reference": "IO-2026-1",
                "reason_code": "VATEX-EU-151-1B",
                "valid_from": datetime.date(2026, 1, 1),
                "document": SimpleUploadedFile("certificate.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf"),
            },
        )
        today = timezone.localdate()
        tax_rates_load()  # the shipped rates (the data migration's rows), even after a flushing test
        tax_calculation = tax_calculation_record(
            context=TaxContext.from_dict(
                {
                    "seller": {"country": "DE"},
                    "buyer": {"country": "FR", "registrations": [{"country": "FR", "number": "FR40303265045"}]},
                    "lines": [{"id": "1", "net_amount": "1000.00"}],
                    "tax_point": "2026-03-15",
                    "currency": "EUR",
                }
            ),
            purpose="test",
        )
        won_deal = DealFactory(customer=customer, owner=people[Role.SALES], legal_entity=legal_entity)
        tm_quote(
            won_deal,
            planned_start=today - datetime.timedelta(days=30),
            planned_end=today + datetime.timedelta(days=150),
        )
        project, _ = deal_win(actor=people[Role.SALES], deal=won_deal, project_manager=people[Role.PROJECT_MANAGER])
        change_order = change_order_create(
            actor=people[Role.PROJECT_MANAGER],
            project=project,
            title="More analysis",
            reason="The customer asked for a second workshop.",
            effective_from=today,
            changes=[
                {
                    "op": "rate.set",
                    "labour_category": "Developer",
                    "rate": "120.00",
                    "effective_from": today.isoformat(),
                }
            ],
            customer_accepted_by="Ida Berg",
            customer_accepted_on=today,
        )
        deal = deal_create(
            user=people[Role.SALES], data={"title": "Portal", "customer": customer, "legal_entity": legal_entity}
        )
        draft_quote = quote_create(
            user=people[Role.SALES],
            deal=deal,
            data={},
            lines=[
                {
                    "description": "Consulting",
                    "billing_model": "tm",
                    "labour_category": "Consultant",
                    "quantity": Decimal("10"),
                    "unit_price": Decimal("100"),
                }
            ],
            milestones=[],
        )
        attachment = quote_attachment_add(
            user=people[Role.SALES],
            quote=draft_quote,
            kind="sow",
            upload=SimpleUploadedFile("sow.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf"),
        )
        sent_deal = deal_create(
            user=people[Role.SALES], data={"title": "Sent offer", "customer": customer, "legal_entity": legal_entity}
        )
        sent_quote = quote_create(
            user=people[Role.SALES],
            deal=sent_deal,
            data={},
            lines=[
                {
                    "description": "Consulting",
                    "billing_model": "tm",
                    "labour_category": "Consultant",
                    "quantity": Decimal("10"),
                    "unit_price": Decimal("100"),
                }
            ],
            milestones=[],
        )
        quote_send(user=people[Role.SALES], quote=sent_quote)
        quote_pdf_render(sent_quote.pk)  # the task runs after commit; the world never commits
        milestone = Milestone.objects.create(  # T&M projects carry no quote milestones; one signed-off deliverable
            project=project,
            key="kickoff",
            name="Kick-off report",
            planned_date=today - datetime.timedelta(days=10),
            baseline_date=today - datetime.timedelta(days=10),
            amount=Decimal("1500.00"),
        )
        milestone = milestone_accept(
            actor=people[Role.PROJECT_MANAGER],
            milestone=milestone,
            accepted_by_name="Ida Berg",
            accepted_on=today - datetime.timedelta(days=5),
            document=SimpleUploadedFile("signed.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf"),
        )
        member = project_member_add(actor=people[Role.PROJECT_MANAGER], project=project, user=people[Role.SALES])
        expense = expense_create(
            actor=people[Role.PROJECT_MANAGER],
            project=project,
            date=today,
            category="travel",
            amount="84.50",
            description="Train to the kick-off",
            receipt=SimpleUploadedFile("ticket.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf"),
        )
        time_entry = time_entry_create(
            actor=people[Role.PROJECT_MANAGER],
            project=project,
            date=today,
            hours="1",
            labour_category="Developer",
            description="Kick-off preparation",
        )
        invoice_run = invoice_run_start(  # queued: the world never commits, so the queue never runs it
            actor=people[Role.FINANCE],
            legal_entity=legal_entity,
            period_start=today - datetime.timedelta(days=30),
            period_end=today,
        )
        invoice = Invoice.objects.create(  # an empty draft of the project (set-up: runs make real ones)
            legal_entity=legal_entity,
            customer=customer,
            project=project,
            currency="EUR",
            created_by=people[Role.FINANCE],
        )
        invoice_line = InvoiceLine.objects.create(  # a manual line, for the draft editor's line routes
            invoice=invoice,
            position=1,
            kind=InvoiceLine.Kind.MANUAL,
            description="Workshop",
            quantity=Decimal("1"),
            unit="C62",
            unit_price=Decimal("100"),
            net_amount=Decimal("100.00"),
        )
        message = OutboundMessage.objects.create(  # what sending the invoice leaves in the Outbox
            topic="invoice",
            from_email="billing@example.test",
            to=["ap@example.test"],
            subject="Invoice",
            body="Please find the invoice attached.",
            about_id=invoice.public_id,
        )
        dispute = Dispute.objects.create(invoice=invoice, reason=Dispute.Reason.AMOUNT, message="Too many hours.")
        open_deal = DealFactory(customer=customer, owner=people[Role.SALES], legal_entity=legal_entity)
        tm_quote(open_deal, planned_start=today, planned_end=today + datetime.timedelta(days=90))
        yield {
            "people": people,
            "project": project,
            "contract_version": project.contract_versions.get(number=1),
            "change_order": change_order,
            "milestone": milestone,
            "member": member,
            "expense": expense,
            "time_entry": time_entry,
            "invoice": invoice,
            "invoice_line": invoice_line,
            "message": message,
            "dispute": dispute,
            # A genuine token of a draft: the portal shows issued invoices only.
            "portal_token": PortalSigner().sign(signing.b62_encode(invoice.public_id.int)),
            "invoice_run": invoice_run,
            "open_deal": open_deal,
            "deal": deal,
            "draft_quote": draft_quote,
            "sent_quote": sent_quote,
            "attachment": attachment,
            "customer": customer,
            "other_customer": other_customer,
            "contact": customer.contacts.get(),
            "product": ProductFactory(),
            "legal_entity": legal_entity,
            "audit_entry": AuditEntry.objects.filter(object_public_id=customer.public_id).latest("pk"),
            "tax_rate": TaxRate.objects.get(jurisdiction__country="DE", kind="standard", valid_to__isnull=True),
            "tax_calculation": tax_calculation,
            "exemption_certificate": exemption_certificate,
        }
        transaction.set_rollback(True)


def _client(world, who: str) -> Client:
    client = Client()
    if who != ANON:
        client.force_login(world["people"][who])
    return client


# --- GET: the matrix --------------------------------------------------------------------------------------


def _cases():
    for name, row in EXPECTED.items():
        for role in ROLES:
            marks = ()
            if (name, role) in CONTRADICTIONS:
                marks = pytest.mark.xfail(reason=f"contradicts ROLES.md: {CONTRADICTIONS[name, role]}", strict=True)
            yield pytest.param(name, role, row[role], id=f"{name}@{role}", marks=marks)


@pytest.mark.parametrize(("name", "role", "expected"), list(_cases()))
def test_get(world, db, name, role, expected):
    path = reverse(name, kwargs=KWARGS[name](world) if name in KWARGS else None)
    response = _client(world, role).get(path)
    where = f"GET {path} as {role}"
    if expected == LOGIN:
        assert response.status_code == 302, f"{where}: {response.status_code}, expected a redirect to sign in"
        assert response["Location"] == redirect_to_login(path)["Location"], where
    elif expected == HOME:
        assert response.status_code == 302, f"{where}: {response.status_code}, expected a redirect home"
        assert response["Location"] == reverse("home"), where
    else:
        assert response.status_code == expected, f"{where}: {response.status_code}, expected {expected}"
        if expected == 401:
            assert response.has_header("WWW-Authenticate"), where


# --- POST: the riskiest state-changing pages --------------------------------------------------------------


def _form_data(form: forms.Form) -> dict[str, str]:
    """What a browser would send for the form as rendered (its initial values)."""
    data = {}
    for field in form:
        value = field.value()
        if isinstance(field.field, forms.BooleanField):
            if value:
                data[field.html_name] = "on"
        elif isinstance(field.field, forms.FileField):
            continue
        elif value in (None, "") and type(field.field) is forms.ChoiceField and field.field.choices:
            data[field.html_name] = str(field.field.choices[0][0])  # a select sends its first option
        else:
            data[field.html_name] = "" if value is None else str(value)
    return data


def _formset_data(formset) -> dict[str, str]:
    data = _form_data(formset.management_form)
    for form in formset.forms:
        data.update(_form_data(form))
    return data


def _customer_create_data(world) -> dict[str, str]:
    data = _form_data(f.CustomerForm(user=world["people"][Role.SALES]))
    data.update(legal_name="Posted Customer SARL", status=Customer.Status.PROSPECT)
    for prefix, factory in (
        ("addresses", f.address_formset),
        ("registrations", f.registration_formset),
        ("contacts", f.contact_formset),
    ):
        data.update(_formset_data(factory(extra=1)(prefix=prefix)))
    data.update({"addresses-0-line1": "1 Rue de Rivoli", "addresses-0-city": "Paris", "addresses-0-country": "FR"})
    return data


def _customer_edit_data(customer: Customer) -> dict[str, str]:
    data = _form_data(f.CustomerForm(user=customer.owner, instance=customer))
    data.update(legal_name="Renamed by a POST Ltd", reason="permission matrix")
    for prefix, factory, initial in (
        ("addresses", f.address_formset, f.address_initial),
        ("registrations", f.registration_formset, f.registration_initial),
        ("contacts", f.contact_formset, f.contact_initial),
    ):
        data.update(_formset_data(factory(extra=0)(prefix=prefix, initial=initial(customer))))
    return data


def _product_create_data(world) -> dict[str, str]:
    data = _form_data(f.ProductForm())
    data.update(code="POST-001", name="Posted service", default_price_amount="99.00", revenue_account="8400")
    return data


def _legal_entity_create_data(world) -> dict[str, str]:
    data = _form_data(f.LegalEntityForm())
    data.update(
        legal_name="Posted Studio SARL",
        short_name="Posted Studio",
        line1="1 Rue de Rivoli",
        postal_code="75004",
        city="Paris",
        country="FR",
        invoice_prefix="PST",
    )
    data.update(_formset_data(f.entity_registration_formset(extra=1)(prefix="registrations")))
    data.update(_formset_data(f.bank_account_formset(extra=1)(prefix="bank_accounts")))
    return data


def _tax_rate_create_data(world) -> dict[str, str]:
    return {"country": "DE", "kind": "standard", "rate": "20", "valid_from": "2040-01-01", "note": "permission matrix"}


POSTS = {
    # case id → (URL name, object of the URL or None, payload builder)
    "customer-create": ("customers:customer-create", None, _customer_create_data),
    "customer-edit": ("customers:customer-edit", "customer", lambda w: _customer_edit_data(w["customer"])),
    "other-rep-customer-edit": (
        "customers:customer-edit",
        "other_customer",
        lambda w: _customer_edit_data(w["other_customer"]),
    ),
    "customer-status": ("customers:customer-status", "customer", lambda w: {"status": Customer.Status.ON_HOLD}),
    "product-create": ("customers:product-create", None, _product_create_data),
    "legal-entity-create": ("customers:legal-entity-create", None, _legal_entity_create_data),
    "tax-rate-create": ("tax:rate-create", None, _tax_rate_create_data),
    "exemption-certificate-create": (
        "customers:exemption-certificate-create",
        "customer",
        lambda w: {"reference": "POST-1", "reason_code": "VATEX-EU-151-1B", "valid_from": "2026-01-01"},
    ),
    "exemption-certificate-delete": ("customers:exemption-certificate-delete", "exemption_certificate", lambda w: {}),
}

# (case, who, expected status). The refusals must change nothing; the controls (a person ROLES.md allows)
# prove that the same payload would have changed something, so a refusal is not an accident of bad input.
POST_CASES = [
    ("customer-create", Role.AUDITOR, 403),
    ("customer-create", Role.CONSULTANT, 403),
    ("customer-create", Role.SALES, 302),  # control
    ("customer-edit", Role.AUDITOR, 403),
    ("customer-edit", Role.SALES, 302),  # control: the owner
    ("other-rep-customer-edit", Role.SALES, 404),  # another rep's account is outside sales' edit scope
    ("other-rep-customer-edit", "sales2", 302),  # control: its owner
    ("customer-status", Role.AUDITOR, 403),
    ("customer-status", Role.SALES, 302),  # control
    ("product-create", Role.AUDITOR, 403),
    ("product-create", Role.FINANCE, 302),  # control
    ("legal-entity-create", Role.AUDITOR, 403),
    ("legal-entity-create", Role.FINANCE, 302),  # control
    ("tax-rate-create", Role.AUDITOR, 403),
    ("tax-rate-create", Role.EXECUTIVE, 403),
    ("tax-rate-create", Role.FINANCE, 302),  # control
    ("exemption-certificate-create", Role.AUDITOR, 403),
    ("exemption-certificate-create", Role.SALES, 403),
    ("exemption-certificate-create", Role.FINANCE, 302),  # control
    ("exemption-certificate-delete", Role.AUDITOR, 403),
    ("exemption-certificate-delete", Role.SALES, 403),
    ("exemption-certificate-delete", Role.FINANCE, 302),  # control
]


def _state() -> tuple:
    """Everything the pages above could change, in comparable form."""
    rows = []
    models = (
        Customer,
        Address,
        TaxRegistration,
        Contact,
        Product,
        LegalEntity,
        BankAccount,
        ExemptionCertificate,
        TaxRate,
        TaxCalculation,
    )
    for model in models:
        rows.append(tuple(model.objects.order_by("pk").values_list()))
    rows.append(AuditEntry.objects.count())
    return tuple(rows)


@pytest.mark.parametrize(("case", "who", "expected"), [pytest.param(*c, id=f"{c[0]}@{c[1]}") for c in POST_CASES])
def test_post(world, db, case, who, expected):
    name, target, payload = POSTS[case]
    path = reverse(name, kwargs={"public_id": world[target].public_id} if target else None)
    data = payload(world)
    before = _state()
    response = _client(world, who).post(path, data)
    assert response.status_code == expected, f"POST {path} as {who}: {response.status_code}, expected {expected}"
    if expected == 302:
        assert _state() != before, f"POST {path} as {who} (control) changed nothing"
    else:
        assert _state() == before, f"POST {path} as {who} was refused but changed data"


# --- the admin site ---------------------------------------------------------------------------------------


def test_admin_auditor_sees_the_customer_list(world, db):
    response = _client(world, Role.AUDITOR).get(reverse("admin:customers_customer_changelist"))
    assert response.status_code == 200
    assert world["customer"].number in response.text


def test_admin_auditor_change_page_is_read_only(world, db):
    path = reverse("admin:customers_customer_change", args=[world["customer"].pk])
    response = _client(world, Role.AUDITOR).get(path)
    assert response.status_code == 200
    assert world["customer"].legal_name in response.text
    assert 'name="_save"' not in response.text
    # Control: the same page offers Save to an admin, so the check above is not vacuous.
    assert 'name="_save"' in _client(world, Role.ADMIN).get(path).text


def test_admin_auditor_cannot_post_a_change(world, db):
    customer = world["customer"]
    path = reverse("admin:customers_customer_change", args=[customer.pk])
    data = {
        "legal_name": "Changed through the admin Ltd",
        "display_name": "Changed",
        "kind": customer.kind,
        "status": Customer.Status.ON_HOLD,
        "default_currency": customer.default_currency,
        "payment_terms_days": "7",
        "_save": "Save",
    }
    for prefix in ("addresses", "registrations", "contacts"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    before = _state()
    response = _client(world, Role.AUDITOR).post(path, data)
    assert response.status_code == 403
    assert _state() == before


def test_admin_auditor_cannot_open_the_add_page(world, db):
    assert _client(world, Role.AUDITOR).get(reverse("admin:customers_customer_add")).status_code == 403


@pytest.mark.parametrize(
    "name",
    ["admin:index", "admin:customers_customer_changelist", "admin:customers_customer_add"],
)
def test_admin_turns_away_people_who_are_not_staff(world, db, name):
    path = reverse(name)
    response = _client(world, Role.SALES).get(path)
    assert response.status_code == 302
    assert response["Location"] == redirect_to_login(path, login_url=reverse("admin:login"))["Location"]


def test_world_fixture_sanity(world, db):
    """The records the matrix relies on are what the cases assume (owner, scope, lookup by external ID)."""
    assert world["customer"].owner == world["people"][Role.SALES]
    assert world["other_customer"].owner == world["people"]["sales2"]
    assert world["contact"].customer == world["customer"]
