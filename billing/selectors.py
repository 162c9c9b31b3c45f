"""Read queries of invoices and invoice runs, shared by the pages and (later) the API.

Who sees what (ROLES.md, with ``billing/migrations/0002_role_permissions.py`` for the model permissions):
finance, executives, auditors and admins see every invoice and every run; a project manager sees the
invoices of the projects they manage (for an invoice of a whole customer, without a project, those that
bill at least one item of such a project) and no runs; sales reps and consultants see none. Missing and
forbidden both answer 404 through the ``access_*`` selectors.

Which buttons a person is offered (``invoice_actions``, ``run_can_retry``) is decided here from the
permissions and the status; the services decide finally when a button is pressed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from backbone.roles import Role, has_role, is_read_only

from .models import Dispute, Invoice, InvoiceItem, InvoiceLine, InvoiceRun, RunException

# Roles that see every invoice (ROLES.md "invoice runs, drafts" and "invoices": finance, executive, auditor;
# admins see everything).
_SEE_ALL_INVOICES = (Role.ADMIN, Role.FINANCE, Role.EXECUTIVE, Role.AUDITOR)

# A queued or running run whose row has not moved for this long is offered a retry: the same lease as
# ``billing.services.RUN_LEASE`` (a worker touches ``updated_at`` at least every ``PROGRESS_INTERVAL``
# seconds), which decides finally.
RUN_STUCK_AFTER = dt.timedelta(minutes=5)

ACTIVE_RUN_STATUSES = (InvoiceRun.Status.QUEUED, InvoiceRun.Status.RUNNING)


def _signed_in(user) -> bool:
    return bool(getattr(user, "is_authenticated", False))


# --- invoices -----------------------------------------------------------------------------------------------


def invoices_visible_to(user) -> QuerySet[Invoice]:
    """The invoices ``user`` may see; one query whatever the number of rows."""
    if not _signed_in(user) or not user.has_perm("billing.view_invoice"):
        return Invoice.objects.none()
    if user.is_superuser or has_role(user, *_SEE_ALL_INVOICES):
        return Invoice.objects.all()
    if has_role(user, Role.PROJECT_MANAGER):
        managed_items = InvoiceItem.objects.filter(project__project_manager=user).values("invoice_id")
        return Invoice.objects.filter(Q(project__project_manager=user) | Q(project__isnull=True, pk__in=managed_items))
    return Invoice.objects.none()


def invoice_list(*, user) -> QuerySet[Invoice]:
    """The invoice list's base query: what one row shows, in one query whatever the number of rows
    (``has_open_dispute``, for the "Open dispute" badge, is a subquery of the same query)."""
    open_dispute = Dispute.objects.filter(invoice=OuterRef("pk"), status=Dispute.Status.OPEN)
    return (
        invoices_visible_to(user)
        .select_related("customer", "legal_entity", "project", "run")
        .annotate(has_open_dispute=Exists(open_dispute))
    )


def access_invoice(*, user, public_id) -> Invoice:
    """The invoice with ``public_id`` if ``user`` may see it; else 404."""
    try:
        return (
            invoices_visible_to(user)
            .select_related(
                "customer",
                "legal_entity",
                "project",
                "run",
                "credited_invoice",
                "tax_calculation",
                "created_by",
                "approved_by",
                "second_approved_by",
                "issued_by",
            )
            .get(public_id=public_id)
        )
    except (Invoice.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such invoice.") from exc


def invoice_lines(invoice: Invoice) -> list[InvoiceLine]:
    """The printed lines in order, each with its items (the detail appendix): two queries."""
    items = InvoiceItem.objects.order_by("date", "id")
    return list(
        invoice.lines.select_related("project")
        .prefetch_related(Prefetch("items", queryset=items))
        .order_by("position", "id")
    )


def invoice_actions(*, user, invoice: Invoice) -> set[str]:
    """The transitions ``user`` may try on ``invoice``: ``approve``, ``return_to_draft``, ``issue``,
    ``discard``. Read from the model permissions and the status; auditors get none. The services decide
    finally (approval limits, the second approver, a missing PO…) and say why when they refuse."""
    if not _signed_in(user) or is_read_only(user):
        return set()
    actions: set[str] = set()
    status = invoice.status
    may_approve = user.has_perm("billing.approve_invoice")
    may_change = user.has_perm("billing.change_invoice")
    pending_first = status == Invoice.Status.DRAFT and invoice.approved_by_id is not None
    if status == Invoice.Status.DRAFT and may_approve and invoice.approved_by_id != user.pk:
        # Above the first approver's limit a second person approves; nobody gives both approvals.
        actions.add("approve")
    if status == Invoice.Status.APPROVED and user.has_perm("billing.issue_invoice"):
        actions.add("issue")
    if (status == Invoice.Status.APPROVED or pending_first) and (may_approve or may_change):
        actions.add("return_to_draft")
    if status in (Invoice.Status.DRAFT, Invoice.Status.APPROVED) and may_change:
        actions.add("discard")
    return actions


@dataclass
class Party:
    """A seller or buyer as printed: name, address lines, identifiers (label, value)."""

    name: str
    lines: list[str] = field(default_factory=list)
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    source: str = "master data"  # or "snapshot": frozen at issue


def _country_name(value: Any) -> str:
    from django_countries import countries

    code = str(getattr(value, "code", value) or "")
    if not code:
        return ""
    return str(countries.name(code)) or code


def party_from_snapshot(snapshot: dict[str, Any]) -> Party:
    """The party frozen on an issued invoice. Reads ``legal_name`` (or ``name``), ``address_lines`` (or the
    address fields ``line1``, ``line2``, ``postal_code``, ``city``, ``region``, ``country``), the VAT IDs
    (``vat_ids``, ``registrations`` [{"number"}] or ``vat_id``), ``tax_number``, ``company_register``,
    ``number`` (the customer number), ``email`` and ``bank_account`` (``iban``, ``bic``) — the shape of
    ``billing.issuing.seller_snapshot``/``buyer_snapshot``; whatever is missing is left out."""
    snapshot = snapshot or {}
    lines = [str(line) for line in snapshot.get("address_lines") or [] if line]
    if not lines:
        address = snapshot.get("address") if isinstance(snapshot.get("address"), dict) else snapshot
        city_line = " ".join(str(address.get(k) or "") for k in ("postal_code", "city")).strip()
        country = _country_name(address.get("country_name") or address.get("country"))
        parts = (address.get("line1"), address.get("line2"), city_line, address.get("region"), country)
        lines = [str(part) for part in parts if part]
    identifiers: list[tuple[str, str]] = []
    vat_ids = list(snapshot.get("vat_ids") or [])
    for registration in snapshot.get("registrations") or []:
        number = registration.get("number") if isinstance(registration, dict) else registration
        if number and (not isinstance(registration, dict) or registration.get("kind", "vat") == "vat"):
            vat_ids.append(number)
    if snapshot.get("vat_id"):
        vat_ids.append(snapshot["vat_id"])
    for number in dict.fromkeys(str(n) for n in vat_ids):
        identifiers.append(("VAT ID", number))
    for key, label in (
        ("tax_number", "Tax number"),
        ("company_register", "Register"),
        ("number", "Customer number"),
        ("email", "Email"),
    ):
        if snapshot.get(key):
            identifiers.append((label, str(snapshot[key])))
    bank = snapshot.get("bank_account") if isinstance(snapshot.get("bank_account"), dict) else {}
    if bank.get("iban"):
        iban = str(bank["iban"]).replace(" ", "")
        identifiers.append(("IBAN", " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))))
    if bank.get("bic"):
        identifiers.append(("BIC", str(bank["bic"])))
    name = str(snapshot.get("legal_name") or snapshot.get("name") or "")
    return Party(name=name, lines=lines, identifiers=identifiers, source="snapshot")


def _seller_from_master(invoice: Invoice) -> Party:
    entity = invoice.legal_entity
    identifiers = [
        ("VAT ID" if registration.kind == "vat" else "Tax number", registration.number)
        for registration in sorted(entity.registrations.all(), key=lambda r: (r.kind, str(r.country), r.pk))
    ]
    if entity.company_register:
        identifiers.append(("Register", entity.company_register))
    if entity.email:
        identifiers.append(("Email", entity.email))
    return Party(name=entity.legal_name, lines=entity.address_lines(), identifiers=identifiers)


def _buyer_from_master(invoice: Invoice) -> Party:
    customer = invoice.customer
    billing = next((a for a in customer.addresses.all() if a.kind == "billing"), None)
    identifiers = [
        ("VAT ID", registration.number)
        for registration in sorted(customer.registrations.all(), key=lambda r: (str(r.country), r.pk))
    ]
    identifiers.append(("Customer number", customer.number))
    return Party(name=customer.legal_name, lines=billing.address_lines() if billing else [], identifiers=identifiers)


def invoice_parties(invoice: Invoice) -> tuple[Party, Party]:
    """Seller and buyer as the invoice shows them: frozen at issue, the master data before (a draft follows
    the customer's record until it is issued)."""
    if invoice.status == Invoice.Status.ISSUED and (invoice.seller or invoice.buyer):
        return party_from_snapshot(invoice.seller), party_from_snapshot(invoice.buyer)
    return _seller_from_master(invoice), _buyer_from_master(invoice)


# --- invoice runs ---------------------------------------------------------------------------------------------


def runs_visible_to(user) -> QuerySet[InvoiceRun]:
    """Every run for those who hold ``billing.view_invoicerun`` (finance, executives, auditors, admins)."""
    if not _signed_in(user) or not user.has_perm("billing.view_invoicerun"):
        return InvoiceRun.objects.none()
    return InvoiceRun.objects.all()


def run_list(*, user) -> QuerySet[InvoiceRun]:
    """Runs newest first with their legal entity, starter and number of exceptions: one query."""
    return (
        runs_visible_to(user)
        .select_related("legal_entity", "started_by")
        .annotate(exception_count=Count("exceptions"))
        .order_by("-created_at", "-id")
    )


def access_run(*, user, public_id) -> InvoiceRun:
    """The run with ``public_id`` if ``user`` may see runs; else 404."""
    try:
        return runs_visible_to(user).select_related("legal_entity", "started_by").get(public_id=public_id)
    except (InvoiceRun.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such invoice run.") from exc


def run_exceptions(run: InvoiceRun) -> QuerySet[RunException]:
    """What the run could not bill, by reason, then project and date: finance's work queue."""
    return (
        RunException.objects.filter(run=run)
        .select_related("project", "customer", "project__customer")
        .order_by("reason", "project__number", "item_date", "id")
    )


def run_invoices(*, user, run: InvoiceRun) -> QuerySet[Invoice]:
    """The invoices the run created that ``user`` may see."""
    return invoice_list(user=user).filter(run=run).order_by("customer__display_name", "id")


def run_made_so_far(run: InvoiceRun) -> dict[str, int]:
    """The draft invoices and live items a working run has made until now (its own counters are written
    when it completes)."""
    return {
        "invoices": run.invoices.exclude(status=Invoice.Status.DISCARDED).count(),
        "items": InvoiceItem.objects.filter(invoice__run=run, live=True).count(),
    }


def run_is_active(run: InvoiceRun) -> bool:
    return run.status in ACTIVE_RUN_STATUSES


def run_is_stuck(run: InvoiceRun, *, now: dt.datetime | None = None) -> bool:
    """Queued or running, and unchanged for ``RUN_STUCK_AFTER``: the worker probably died."""
    if not run_is_active(run):
        return False
    return run.updated_at < (now or timezone.now()) - RUN_STUCK_AFTER


def run_can_start(*, user) -> bool:
    return _signed_in(user) and not is_read_only(user) and user.has_perm("billing.start_invoicerun")


def run_can_retry(*, user, run: InvoiceRun, now: dt.datetime | None = None) -> bool:
    """Offer "Retry" on a failed or stuck run to those who may start runs."""
    if not run_can_start(user=user):
        return False
    return run.status == InvoiceRun.Status.FAILED or run_is_stuck(run, now=now)
