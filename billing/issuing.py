"""Approving, issuing and discarding invoices: maker-checker approval, the gapless number, the frozen parties.

Life cycle (``billing.models``): draft → approved → issued; a draft or an approved invoice may be discarded,
an approved one sent back to draft. Only these services change an invoice's status.

**Approval (maker-checker).** Finance approves a draft alone when its gross total is within their
``UserProfile.approval_limit_amount``; executives and admins are not bound by a limit (they are the "above
the limit" tier of ROLES.md). Above the limit the first approval is recorded (``approved_by``/``_at``) and
the invoice stays a draft until a second person approves it (an executive, an admin, or another finance
person whose limit covers it): ``second_approved_by``/``_at`` and the status approved. Nobody approves a
draft they created above their own limit, and nobody gives both approvals. Limits and totals are compared
without conversion: the limit is read in the invoice's currency, as every approval limit here is.

**Issue.** One transaction: lock the projects the invoice bills, then the invoice (the fixed lock order),
check it can be issued (billing address, PO number where the project or customer requires one, a bank
account), refigure the tax with the issue date as tax point (the total must still be the approved one),
freeze the seller and buyer as JSON, then take the next number of the series (legal entity, kind, year)
from the row-locked counter. From the moment the number is taken the counter row stays locked until commit,
so the rest is kept short: the tax evidence is stored and locked, the source items are marked billed
(through the projects app's services), and the invoice is saved issued. Anything failing rolls the whole
transaction back and the number with it: the series stays gapless. No number is ever taken for a draft.

The number counter is taken before the first history record of the transaction on purpose: every history
record appends to the audit chain under one global row lock (``backbone.history``), so taking the counter
after it would let two issuing transactions wait on each other (one holding the counter, the other the
audit head). Counter first, audit chain after, in every issue.

**Immutability.** Every service here refuses an issued invoice; on PostgreSQL the triggers of
``billing/migrations/0003_issued_invoices_immutable.py`` (items: statement-level since ``0009``) refuse any
UPDATE or DELETE of an issued invoice and of its lines and items, except releasing an item (``live`` true →
false) for a credit note.

Like the projects services, the blocks are plain ``transaction.atomic`` (not durable), so that the API can
store its ``Idempotency-Key`` record in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q, prefetch_related_objects
from django.utils import timezone

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.history import stamp
from backbone.links import object_url
from backbone.models import UserProfile
from backbone.money import format_money
from backbone.roles import Role, has_role, is_read_only, require_writer
from backbone.services import notify
from customers.models import Address, BankAccount, Customer, LegalEntity, LegalEntityRegistration
from projects.milestones import milestones_mark_billed
from projects.models import Expense, Milestone, Project, TimeEntry
from projects.timesheets import time_entries_mark_billed
from tax.services import tax_calculation_lock, tax_calculation_record

from . import numbering
from .credit_notes import credit_note_on_issue
from .lock_objects import invoice_for_update, invoice_projects_for_update
from .models import Invoice, InvoiceItem, InvoiceLine
from .pricing import invoice_refigure, tax_point_of
from .tasks import invoice_pdf_enqueue

INVOICE_URL = "billing.invoice"  # the page registers it; until then notifications carry no link

_ISSUE_FIELDS = [
    "status",
    "number",
    "fiscal_year",
    "sequence",
    "issue_date",
    "due_date",
    "seller",
    "buyer",
    "tax_calculation",
    "creditor_reference",
    "issued_by",
    "issued_at",
    "updated_at",
]


# --- guards -------------------------------------------------------------------------------------------


def _is_admin(user) -> bool:
    return bool(getattr(user, "is_superuser", False)) or has_role(user, Role.ADMIN)


def _unlimited(user) -> bool:
    """Executives and admins approve above the limits (ROLES.md); their own drafts aside."""
    return _is_admin(user) or has_role(user, Role.EXECUTIVE)


def approval_limit(user) -> Decimal:
    """The user's own approval limit (0 without a profile), in whatever currency the invoice is in."""
    try:
        return user.profile.approval_limit_amount
    except UserProfile.DoesNotExist:
        return Decimal("0")


def _name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else "someone"


def _money(invoice: Invoice, amount: Decimal) -> str:
    return format_money(amount, invoice.currency)


def _approval_refusal(user, invoice: Invoice, amount: Decimal, *, second: bool) -> str | None:
    """Why ``user`` may not approve ``amount`` (absolute gross) now; None: they may (alone, or as second)."""
    limit, total = approval_limit(user), _money(invoice, amount)
    if invoice.created_by_id == user.pk and amount > limit:
        return (
            f"You created this draft; its total of {total} is above your own approval limit of "
            f"{_money(invoice, limit)}, so someone else must approve it."
        )
    if not second:
        return None
    if invoice.approved_by_id == user.pk:
        return (
            f"You gave this draft its first approval; the total of {total} needs a second person "
            "(nobody gives both approvals)."
        )
    if not _unlimited(user) and amount > limit:
        return (
            f"This draft totals {total}, above your approval limit of {_money(invoice, limit)} too; an "
            "executive, an admin or a finance colleague whose limit covers it gives the second approval."
        )
    return None


def _status_refusal(invoice: Invoice, verb: str) -> str:
    if invoice.status == Invoice.Status.ISSUED:
        return f"{invoice.number} is issued: it never changes (correct it with a credit note)."
    if invoice.status == Invoice.Status.DISCARDED:
        return f"{invoice} was discarded; it cannot be {verb}."
    return f"{invoice} is {invoice.get_status_display().lower()}; it cannot be {verb}."


# --- approval -----------------------------------------------------------------------------------------


def _gross_at_first_approval(invoice: Invoice) -> Decimal | None:
    """The gross total the first approver saw (from the history record of that approval)."""
    return (
        invoice.history.filter(approved_by_id=invoice.approved_by_id, approved_at=invoice.approved_at)
        .order_by("history_date", "history_id")
        .values_list("gross_total", flat=True)
        .first()
    )


def _second_approvers(invoice: Invoice, amount: Decimal) -> list:
    """Who can give the second approval: executives, and finance whose limit covers it (admins only when
    nobody else can), never the first approver."""
    User = get_user_model()
    candidates = (
        User.objects.filter(is_active=True, groups__name__in=[Role.EXECUTIVE, Role.FINANCE])
        .exclude(pk=invoice.approved_by_id)
        .select_related("profile")
        .distinct()
        .order_by("pk")
    )
    chosen = [
        user
        for user in candidates
        if user.has_perm("billing.approve_invoice")
        and not is_read_only(user)
        and _approval_refusal(user, invoice, amount, second=True) is None
    ]
    if not chosen:
        admins = (
            User.objects.filter(Q(is_superuser=True) | Q(groups__name=Role.ADMIN), is_active=True)
            .exclude(pk__in=[invoice.approved_by_id, invoice.created_by_id or 0])
            .distinct()
            .order_by("pk")
        )
        chosen = list(admins)
    return chosen


@transaction.atomic
def invoice_approve(*, actor, invoice: Invoice) -> Invoice:
    """Approve a draft, alone within the actor's approval limit, or as the first or second of two above it.

    The totals are refigured first (tax point today), so the amount approved is the amount of the lines.
    Refuses drafts without lines or with a zero total (and negative invoices: that is a credit note).
    Returns the invoice: approved, or still a draft waiting for its second approval.
    """
    require_writer(actor)
    if not actor.has_perm("billing.approve_invoice"):
        raise NotPermitted(
            "Your role cannot approve invoices: finance approves within its approval limit, executives above it."
        )
    invoice = invoice_for_update(pk=invoice.pk)
    if invoice.status != Invoice.Status.DRAFT:
        raise TransitionNotAllowed(
            _status_refusal(invoice, "approved")
            if invoice.status in (Invoice.Status.ISSUED, Invoice.Status.DISCARDED)
            else f"{invoice} is already approved.",
            field="status",
        )
    lines = list(InvoiceLine.objects.filter(invoice=invoice).order_by("position", "id"))
    if not lines:
        raise ValidationFailed("This draft has no lines: there is nothing to approve.", field="lines")
    invoice_refigure(invoice, lines)
    gross = invoice.gross_total
    if gross == 0:
        raise ValidationFailed("This draft totals zero: there is nothing to approve.", field="gross_total")
    if gross < 0 and invoice.kind == Invoice.Kind.INVOICE:
        raise ValidationFailed(
            f"This draft totals {_money(invoice, gross)}; an invoice cannot be negative (that is a credit note).",
            field="gross_total",
        )
    amount = abs(gross)
    now = timezone.now()
    second = invoice.approved_by_id is not None
    refusal = _approval_refusal(actor, invoice, amount, second=second)
    if refusal:
        raise NotPermitted(refusal)

    if second:
        first_gross = _gross_at_first_approval(invoice)
        if first_gross is not None and first_gross != gross:
            raise Conflict(
                f"The total changed from {_money(invoice, first_gross)} to {_money(invoice, gross)} after "
                f"{_name(invoice.approved_by)}'s first approval; send it back to draft and approve it again.",
                field="gross_total",
            )
        invoice.second_approved_by, invoice.second_approved_at = actor, now
        invoice.status = Invoice.Status.APPROVED
        reason = f"Second approval of {_money(invoice, amount)}"
        fields = ["second_approved_by", "second_approved_at", "status", "updated_at"]
    else:
        invoice.approved_by, invoice.approved_at = actor, now
        fields = ["approved_by", "approved_at", "status", "updated_at"]
        if _unlimited(actor) or amount <= approval_limit(actor):
            invoice.status = Invoice.Status.APPROVED
            reason = f"Approved: {_money(invoice, amount)}"
        else:
            reason = (
                f"First approval: {_money(invoice, amount)} is above the approval limit of "
                f"{_money(invoice, approval_limit(actor))}"
            )
    stamp(invoice, actor=actor, reason=reason).save(update_fields=fields)
    if invoice.status == Invoice.Status.DRAFT:
        notify(
            users=_second_approvers(invoice, amount),
            title=f"An invoice to {invoice.customer.display_name} waits for a second approval",
            body=f"{_name(actor)} approved {_money(invoice, amount)}, above their approval limit of "
            f"{_money(invoice, approval_limit(actor))}.",
            url=object_url(INVOICE_URL, invoice.public_id) or "",
        )
    return invoice


@transaction.atomic
def invoice_return_to_draft(*, actor, invoice: Invoice, reason: str) -> Invoice:
    """Approved → draft, with the reason; both approvals are cleared (a pending first approval too), so the
    corrected draft is approved again from the start."""
    require_writer(actor)
    if not (actor.has_perm("billing.approve_invoice") or actor.has_perm("billing.change_invoice")):
        raise NotPermitted("Your role cannot send invoices back to draft.")
    invoice = invoice_for_update(pk=invoice.pk)
    pending_first = invoice.status == Invoice.Status.DRAFT and invoice.approved_by_id is not None
    if invoice.status != Invoice.Status.APPROVED and not pending_first:
        raise TransitionNotAllowed(
            f"{invoice} is a draft without approvals already."
            if invoice.status == Invoice.Status.DRAFT
            else _status_refusal(invoice, "sent back to draft"),
            field="status",
        )
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Say why the invoice goes back to draft.", field="reason")
    invoice.status = Invoice.Status.DRAFT
    invoice.approved_by = invoice.approved_at = invoice.second_approved_by = invoice.second_approved_at = None
    stamp(invoice, actor=actor, reason=f"Returned to draft: {reason}").save(
        update_fields=["status", "approved_by", "approved_at", "second_approved_by", "second_approved_at", "updated_at"]
    )
    return invoice


@transaction.atomic
def invoice_discard(*, actor, invoice: Invoice, reason: str) -> Invoice:
    """A draft or approved invoice is discarded with the reason: its items stop being live, so their source
    items (time, expenses, milestones, retainer months) are free for the next run. Issued invoices never are."""
    require_writer(actor)
    if not actor.has_perm("billing.change_invoice"):
        raise NotPermitted("Only finance discards draft invoices.")
    invoice = invoice_for_update(pk=invoice.pk)
    if invoice.status not in (Invoice.Status.DRAFT, Invoice.Status.APPROVED):
        raise TransitionNotAllowed(_status_refusal(invoice, "discarded"), field="status")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Say why the invoice is discarded.", field="reason")
    released = InvoiceItem.objects.filter(invoice=invoice, live=True).update(live=False)
    invoice.status, invoice.discarded_reason = Invoice.Status.DISCARDED, reason
    stamp(invoice, actor=actor, reason=f"Discarded, {released} items released: {reason}").save(
        update_fields=["status", "discarded_reason", "updated_at"]
    )
    return invoice


# --- issue --------------------------------------------------------------------------------------------


def _bank_account_for(legal_entity: LegalEntity, currency: str) -> BankAccount | None:
    """The account printed on the invoice: the default one in the invoice's currency, else any in that
    currency, else the legal entity's default, else its first."""
    accounts = list(BankAccount.objects.filter(legal_entity=legal_entity).order_by("pk"))
    ranked = sorted(accounts, key=lambda a: (a.currency != currency, not a.is_default, a.pk))
    return ranked[0] if ranked else None


def _po_required_by(projects: list[Project], customer: Customer) -> str | None:
    """Who requires a purchase order number on this invoice ("PRJ-000001", or the customer), if anyone."""
    numbers = sorted(project.number for project in projects if project.po_required)
    if numbers:
        return ", ".join(numbers)
    if customer.purchase_order_required:
        return str(customer)
    return None


def _issue_checks(invoice: Invoice, lines: list[InvoiceLine], projects: list[Project]) -> tuple[Address, BankAccount]:
    """Everything an issued invoice must carry; every problem at once, by field. (The customer's addresses
    and registrations are prefetched here once; the tax context and the buyer snapshot reuse them.)"""
    errors: dict[str, list[str]] = {}
    customer, legal_entity = invoice.customer, invoice.legal_entity
    prefetch_related_objects([customer], "addresses", "registrations")
    if not lines:
        errors["lines"] = ["It has no lines."]
    billing = next((a for a in customer.addresses.all() if a.kind == Address.Kind.BILLING), None)
    if billing is None:
        errors["billing_address"] = [f"{customer} has no billing address; add one to the customer."]
    required_by = _po_required_by(projects, customer)
    if required_by and not invoice.po_number.strip():
        errors["po_number"] = [
            f"{required_by} requires a purchase order number on its invoices; send the invoice back to draft "
            "and enter it."
        ]
    bank_account = _bank_account_for(legal_entity, invoice.currency)
    if bank_account is None:
        errors["bank_account"] = [f"{legal_entity} has no bank account to print; add one to the legal entity."]
    if errors:
        first = next(iter(errors.values()))[0]
        raise ValidationFailed(f"{invoice} cannot be issued: {first}", errors=errors)
    return billing, bank_account


def _address(address) -> dict[str, str]:
    return {
        "line1": address.line1,
        "line2": address.line2,
        "postal_code": address.postal_code,
        "city": address.city,
        "region": address.region,
        "country": str(address.country.code or ""),
        "country_name": str(address.country.name or ""),
    }


def seller_snapshot(legal_entity: LegalEntity, bank_account: BankAccount) -> dict[str, Any]:
    """The seller as printed on the issued invoice, frozen: later edits of the legal entity leave it alone."""
    registrations = sorted(legal_entity.registrations.all(), key=lambda r: (r.kind, str(r.country), r.pk))
    tax_numbers = [r.number for r in registrations if r.kind == LegalEntityRegistration.Kind.TAX_NUMBER]
    return {
        "legal_name": legal_entity.legal_name,
        "short_name": legal_entity.short_name,
        "address": _address(legal_entity),
        "address_lines": legal_entity.address_lines(),
        "registrations": [
            {"kind": r.kind, "country": str(r.country.code or ""), "number": r.number, "oss": r.is_oss_registered}
            for r in registrations
        ],
        "tax_number": tax_numbers[0] if tax_numbers else "",
        "company_register": legal_entity.company_register,
        "bank_account": {
            "bank_name": bank_account.bank_name,
            "account_holder": bank_account.account_holder,
            "iban": bank_account.iban,
            "bic": bank_account.bic,
            "currency": bank_account.currency,
        },
        "email": legal_entity.email,
        "website": legal_entity.website,
        "brand_colour": legal_entity.brand_colour,
        "logo": legal_entity.logo.name or "",
    }


def buyer_snapshot(customer: Customer, billing: Address) -> dict[str, Any]:
    """The buyer as printed on the issued invoice, frozen: a renamed or moved customer leaves it alone."""
    registrations = sorted(customer.registrations.all(), key=lambda r: (str(r.country), r.pk))
    return {
        "legal_name": customer.legal_name,
        "display_name": customer.display_name,
        "number": customer.number,
        "kind": customer.kind,
        "address": _address(billing),
        "address_lines": billing.address_lines(),
        "address_label": billing.label,
        "registrations": [
            {
                "kind": r.kind,
                "country": str(r.country.code or ""),
                "number": r.number,
                "validated_at": r.validated_at.isoformat() if r.validated_at else None,
            }
            for r in registrations
        ],
        "einvoice_endpoint": customer.einvoice_endpoint,
    }


def _sources(invoice: Invoice) -> tuple[list, list[Milestone]]:
    """The source rows of the invoice's live items: time entries and expenses, milestones (key columns only).
    Retainer months have no source row: the live item is the record that the month was billed."""
    rows = list(
        InvoiceItem.objects.filter(invoice=invoice, live=True)
        .order_by()
        .values_list("time_entry_id", "expense_id", "milestone_id")
    )
    time_ids = sorted({t for t, _, _ in rows if t})
    expense_ids = sorted({e for _, e, _ in rows if e})
    milestone_ids = sorted({m for _, _, m in rows if m})
    entries = []
    for model, ids in ((TimeEntry, time_ids), (Expense, expense_ids)):
        if ids:
            entries += list(model.objects.filter(pk__in=ids).order_by("pk").only("pk", "project_id"))
    milestones = (
        list(Milestone.objects.filter(pk__in=milestone_ids).order_by("pk").only("pk", "project_id"))
        if milestone_ids
        else []
    )
    return entries, milestones


def _mark_sources_billed(entries: list, milestones: list[Milestone], *, number: str, actor) -> None:
    """Time, adjustments and expenses, then milestones, become billed on ``number`` through the projects
    app's own services (billing never writes projects' rows; they lock and re-read the rows themselves)."""
    if entries:
        time_entries_mark_billed(entries=entries, invoice_ref=number, actor=actor)
    if milestones:
        milestones_mark_billed(milestones=milestones, invoice_ref=number, actor=actor)


def _issue_status_refusal(invoice: Invoice) -> str:
    if invoice.status == Invoice.Status.DRAFT and invoice.approved_by_id is not None:
        return f"{invoice} waits for its second approval; it is issued once approved."
    if invoice.status == Invoice.Status.DRAFT:
        return f"{invoice} is not approved yet; an invoice is issued only after approval."
    if invoice.status == Invoice.Status.ISSUED:
        return f"{invoice.number} is already issued."
    return _status_refusal(invoice, "issued")


@transaction.atomic
def invoice_issue(*, actor, invoice: Invoice) -> Invoice:
    """Issue an approved invoice: the next gapless number of its series, issue and due dates, the tax
    refigured on the issue date with its evidence stored and locked, seller and buyer frozen, an ISO 11649
    creditor reference, the source items marked billed. All or nothing (see the module's docstring)."""
    require_writer(actor)
    if not actor.has_perm("billing.issue_invoice"):
        raise NotPermitted("Only finance issues invoices.")
    projects = invoice_projects_for_update(invoice_pk=invoice.pk)
    invoice = invoice_for_update(pk=invoice.pk)
    if invoice.status != Invoice.Status.APPROVED:
        raise TransitionNotAllowed(_issue_status_refusal(invoice), field="status")
    legal_entity, customer = invoice.legal_entity, invoice.customer
    lines = list(InvoiceLine.objects.filter(invoice=invoice).order_by("position", "id"))
    billing, bank_account = _issue_checks(invoice, lines, projects)

    issue_date = timezone.localdate()
    approved_gross = invoice.gross_total
    # A credit note reverses the VAT of the supply it corrects: priced with the credited invoice's tax point.
    tax_point = tax_point_of(invoice) if invoice.kind == Invoice.Kind.CREDIT_NOTE else issue_date
    context, result = invoice_refigure(invoice, lines, tax_point=tax_point)
    if invoice.gross_total != approved_gross:
        raise Conflict(
            f"On the issue date the total is {_money(invoice, invoice.gross_total)}, not the "
            f"{_money(invoice, approved_gross)} approved (the tax changed); send it back to draft and approve it "
            "again.",
            field="gross_total",
        )
    if invoice.gross_total == 0:
        raise ValidationFailed(f"{invoice} totals zero: there is nothing to issue.", field="gross_total")
    seller = seller_snapshot(legal_entity, bank_account)
    buyer = buyer_snapshot(customer, billing)
    entries, milestones = _sources(invoice)

    # The counter row stays locked from here until commit: nothing slow below this line.
    year = numbering.fiscal_year(restart_yearly=legal_entity.invoice_numbers_restart_yearly, issue_year=issue_date.year)
    prefix = numbering.series_prefix(invoice_prefix=legal_entity.invoice_prefix, kind=invoice.kind)
    padding = legal_entity.invoice_number_padding
    sequence = numbering.sequence_take(
        legal_entity_pk=legal_entity.pk, kind=invoice.kind, year=year, prefix=prefix, padding=padding
    )
    # Printed from the legal entity's settings of today (the counter row keeps those of its first use).
    number = numbering.invoice_number(prefix=prefix, year=year, value=sequence, padding=padding)
    try:
        reference = numbering.creditor_reference(
            numbering.invoice_reference_payload(
                invoice_prefix=legal_entity.invoice_prefix, kind=invoice.kind, year=year, sequence=sequence
            )
        )
    except ValueError as exc:
        raise Conflict(f"No creditor reference can be made for {number}: {exc}") from exc

    calculation = tax_calculation_record(
        context=context,
        result=result,
        actor=actor,
        purpose="invoice",
        document_type=invoice.kind,
        document_ref=number,
    )
    calculation = tax_calculation_lock(calculation=calculation, document_type=invoice.kind, document_ref=number)
    _mark_sources_billed(entries, milestones, number=number, actor=actor)

    invoice.number, invoice.fiscal_year, invoice.sequence = number, year, sequence
    invoice.issue_date = issue_date
    invoice.due_date = issue_date + dt.timedelta(days=invoice.payment_terms_days)
    invoice.seller, invoice.buyer = seller, buyer
    invoice.tax_calculation = calculation
    invoice.creditor_reference = reference
    invoice.status = Invoice.Status.ISSUED
    invoice.issued_by, invoice.issued_at = actor, timezone.now()
    if invoice.kind == Invoice.Kind.CREDIT_NOTE:
        credit_note_on_issue(invoice, actor=actor)  # the original's parties; checks; releases credited items
    try:
        # No savepoint: on a refused constraint the exception leaves this atomic block, which rolls back
        # the whole issue (the number included).
        stamp(invoice, actor=actor, reason=f"Issued as {number}").save(update_fields=_ISSUE_FIELDS)
    except IntegrityError as exc:
        raise Conflict(f"{number} or its creditor reference {reference} is already used; nothing was issued.") from exc
    invoice_pdf_enqueue(invoice)  # rendered once, in the queue, after this transaction commits
    return invoice
