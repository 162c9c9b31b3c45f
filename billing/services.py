"""Invoice runs: started by finance (page, API or schedule), executed in the queue, retried after any
failure or a killed worker; each billable item ends on exactly one live invoice item.

A run walks the legal entity's projects one at a time, each in its own transaction, so the progress bar
moves and a crash loses at most the project in hand. For each project it takes the approved unbilled items
up to the period's end (``projects.selectors.unbilled_items``, priced with the contract version in force on
each item's date) and the retainer months due, leaves out what is already on a live invoice item (a draft
of an earlier run, or of this run before a retry), records what it cannot bill as ``RunException`` rows
with their reason, and adds the rest to the draft invoice of the customer's consolidation (one per project,
per customer or per purchase order), rolled up into lines. A retry walks every project again: finished
projects have nothing left, and the partial unique constraints on ``InvoiceItem`` make a second billing of
the same item impossible even when two workers race.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from backbone.errors import Conflict, DomainError, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.history import set_actor, set_reason
from backbone.roles import Role, has_role, is_read_only
from backbone.services import sequence_next
from customers.models import Address, Customer, LegalEntity
from projects import selectors as project_selectors
from projects.errors import ContractNotInForce
from projects.models import BillingRule, EntryStatus, Expense, Milestone, Project, TimeEntry

from .models import Invoice, InvoiceItem, InvoiceLine, InvoiceRun, RunException
from .pricing import invoice_refigure

log = logging.getLogger(__name__)

# A running run whose row has not moved for this long is taken to be dead (a killed worker): it may be
# retried, and a second worker may claim it.
RUN_LEASE = dt.timedelta(minutes=5)
CENT = Decimal("0.01")
EXPENSE_NAMES = dict(Expense.Category.choices)


# --- guards -------------------------------------------------------------------------------------------


def _require_runner(actor) -> None:
    if not getattr(actor, "is_authenticated", False):
        raise NotPermitted("Sign in to start invoice runs.")
    if is_read_only(actor):
        raise NotPermitted("Auditors can view everything but change nothing.")
    if not actor.has_perm("billing.start_invoicerun") or not (
        actor.is_superuser or has_role(actor, Role.FINANCE, Role.ADMIN)
    ):
        raise NotPermitted("Only finance starts invoice runs.")


def _stamp(instance, *, actor, reason: str):
    set_actor(instance, actor)
    set_reason(instance, reason)
    return instance


def _is_stale(run: InvoiceRun, now: dt.datetime) -> bool:
    return run.updated_at < now - RUN_LEASE


# --- starting and retrying ------------------------------------------------------------------------------


def _enqueue(run: InvoiceRun) -> None:
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task("billing.tasks.invoice_run_task", run.pk, task_name=f"{run.number}"))


@transaction.atomic
def invoice_run_start(
    *, actor, legal_entity: LegalEntity, period_start: dt.date, period_end: dt.date, trigger: str = "page"
) -> InvoiceRun:
    """Queue a run of ``legal_entity`` for the period; the queue executes it (``invoice_run_task``)."""
    _require_runner(actor)
    errors: dict[str, list[str]] = {}
    if not isinstance(period_start, dt.date):
        errors["period_start"] = ["Enter the first day of the billing period."]
    if not isinstance(period_end, dt.date):
        errors["period_end"] = ["Enter the last day of the billing period."]
    elif period_end > timezone.localdate():
        errors["period_end"] = ["The period cannot end in the future: only work done can be billed."]
    elif isinstance(period_start, dt.date) and period_start > period_end:
        errors["period_end"] = [f"The period ends before it starts ({period_start.isoformat()})."]
    legal_entity = LegalEntity.objects.select_for_update().filter(pk=getattr(legal_entity, "pk", None)).first()
    if legal_entity is None:
        errors["legal_entity"] = ["Choose the legal entity that bills."]
    elif not legal_entity.is_active:
        errors["legal_entity"] = [f"{legal_entity} is not active; it bills nothing."]
    if errors:
        messages = next(iter(errors.values()))
        raise ValidationFailed(f"The run was not started: {messages[0]}", errors=errors)
    busy = InvoiceRun.objects.filter(
        legal_entity=legal_entity, status__in=[InvoiceRun.Status.QUEUED, InvoiceRun.Status.RUNNING]
    ).first()
    if busy is not None and not _is_stale(busy, timezone.now()):
        raise Conflict(f"{busy.number} of {legal_entity} is still {busy.get_status_display().lower()}; wait for it.")
    run = InvoiceRun(
        number=sequence_next(key="invoice_run", prefix="RUN"),
        legal_entity=legal_entity,
        period_start=period_start,
        period_end=period_end,
        started_by=actor,
        trigger=trigger if trigger in ("page", "api", "schedule") else "page",
    )
    _stamp(run, actor=actor, reason="Invoice run started").save()
    _enqueue(run)
    return run


@transaction.atomic
def invoice_run_retry(*, actor, run: InvoiceRun) -> InvoiceRun:
    """Queue a failed run again, or one whose worker died (no progress for ``RUN_LEASE``). Nothing is billed
    twice: what the first attempt billed stays on its drafts and is left out."""
    _require_runner(actor)
    run = InvoiceRun.objects.select_for_update().get(pk=run.pk)
    now = timezone.now()
    stuck = run.status in (InvoiceRun.Status.RUNNING, InvoiceRun.Status.QUEUED) and _is_stale(run, now)
    if run.status != InvoiceRun.Status.FAILED and not stuck:
        raise TransitionNotAllowed(
            f"{run.number} is {run.get_status_display().lower()}; only a failed run, or one with no progress for "
            f"{int(RUN_LEASE.total_seconds() // 60)} minutes, is retried.",
            field="status",
        )
    run.status = InvoiceRun.Status.QUEUED
    run.error = ""
    _stamp(run, actor=actor, reason="Invoice run retried").save(update_fields=["status", "error", "updated_at"])
    _enqueue(run)
    return run


# --- executing -------------------------------------------------------------------------------------------


def _claim(run_id: int) -> InvoiceRun | None:
    """Take the run for this worker, or None when it is finished or another live worker has it."""
    with transaction.atomic():
        run = InvoiceRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status == InvoiceRun.Status.COMPLETED:
            return None
        now = timezone.now()
        if run.status == InvoiceRun.Status.RUNNING and not _is_stale(run, now):
            return None
        run.status = InvoiceRun.Status.RUNNING
        run.attempts += 1
        run.started_at = run.started_at or now
        run.error = ""
        run.projects_total = _projects_of(run).count()
        run.projects_done = 0
        run.exceptions.all().delete()  # recomputed by this attempt from the current state
        _stamp(run, actor=None, reason=f"Attempt {run.attempts}").save()
        return run


def _projects_of(run: InvoiceRun):
    """The legal entity's projects with something that may be billable: approved time or expenses, an
    accepted milestone, or a retainer (one query; the run then looks at each)."""
    approved = EntryStatus.APPROVED
    return (
        Project.objects.filter(legal_entity=run.legal_entity)
        .filter(
            Exists(TimeEntry.objects.filter(project=OuterRef("pk"), status=approved, billable=True))
            | Exists(Expense.objects.filter(project=OuterRef("pk"), status=approved, billable=True))
            | Exists(Milestone.objects.filter(project=OuterRef("pk"), status=Milestone.Status.ACCEPTED))
            | Exists(BillingRule.objects.filter(project=OuterRef("pk"), model="retainer"))
        )
        .order_by("pk")
    )


def invoice_run_execute(run_id: int) -> InvoiceRun | None:
    """The task body: bill every project of the run, each in its own transaction. Safe to call again at any
    point (after a crash, a kill, or while another worker holds the run: then it does nothing)."""
    run = _claim(run_id)
    if run is None:
        return InvoiceRun.objects.filter(pk=run_id).first()
    try:
        for project in _projects_of(run).select_related("customer"):
            _bill_project_safely(run, project)
            InvoiceRun.objects.filter(pk=run.pk).update(projects_done=F("projects_done") + 1, updated_at=timezone.now())
    except Exception as exc:  # the run is marked failed with the reason; finance retries it from the page
        log.exception("Invoice run %s failed", run.number)
        InvoiceRun.objects.filter(pk=run.pk).update(
            status=InvoiceRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], updated_at=timezone.now()
        )
        return InvoiceRun.objects.get(pk=run.pk)
    with transaction.atomic():
        run = InvoiceRun.objects.select_for_update().get(pk=run.pk)
        run.status = InvoiceRun.Status.COMPLETED
        run.finished_at = timezone.now()
        run.invoices_created = run.invoices.exclude(status=Invoice.Status.DISCARDED).count()
        run.items_billed = InvoiceItem.objects.filter(invoice__run=run, live=True).count()
        _stamp(run, actor=None, reason="Invoice run completed").save()
    return run


def _bill_project_safely(run: InvoiceRun, project: Project) -> None:
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                _bill_project(run, project)
            return
        except IntegrityError:
            # Another worker billed some of the same items a moment ago: look again (they are live now).
            if attempt == 2:
                raise


# --- one project ----------------------------------------------------------------------------------------


@dataclass
class _Item:
    """What gets billed: an unbilled item from projects, or a retainer month."""

    kind: str
    date: dt.date
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    entry: Any = None
    month: dt.date | None = None
    labour_category: str = ""
    phase: str = ""
    note: str = ""
    expense_category: str = ""


def _live_sources(project: Project) -> tuple[set[int], set[int], set[int], set[dt.date]]:
    rows = InvoiceItem.objects.filter(project=project, live=True).values_list(
        "time_entry_id", "expense_id", "milestone_id", "retainer_month"
    )
    time_ids, expense_ids, milestone_ids, months = set(), set(), set(), set()
    for time_id, expense_id, milestone_id, month in rows:
        if time_id:
            time_ids.add(time_id)
        if expense_id:
            expense_ids.add(expense_id)
        if milestone_id:
            milestone_ids.add(milestone_id)
        if month:
            months.add(month)
    return time_ids, expense_ids, milestone_ids, months


def _months(first: dt.date, last: dt.date) -> Iterable[dt.date]:
    month = first.replace(day=1)
    while month <= last:
        yield month
        month = (month + dt.timedelta(days=32)).replace(day=1)


def _items_of(run: InvoiceRun, project: Project, problems: list) -> list[_Item]:
    time_ids, expense_ids, milestone_ids, months = _live_sources(project)
    taken = {"time": time_ids, "adjustment": time_ids, "expense": expense_ids, "milestone": milestone_ids}
    items = []
    for found in project_selectors.unbilled_items(project=project, up_to=run.period_end, problems=problems):
        if found.entry.pk in taken[found.kind]:
            continue
        items.append(
            _Item(
                kind=found.kind,
                entry=found.entry,
                date=found.date,
                description=found.description,
                labour_category=found.labour_category,
                phase=found.phase,
                note=found.note,
                quantity=found.quantity,
                unit_price=found.unit_price,
                amount=found.amount,
                expense_category=getattr(found.entry, "category", ""),
            )
        )
    problems[:] = [(entry, exc) for entry, exc in problems if entry.pk not in time_ids]
    rule = BillingRule.objects.filter(project=project, model="retainer").first()
    if rule is not None and rule.retainer_amount:
        first = max(run.period_start, project.planned_start).replace(day=1)
        last = min(run.period_end, project.planned_end)
        for month in _months(first, last):
            if month in months:
                continue
            items.append(
                _Item(
                    kind="retainer",
                    month=month,
                    date=month,
                    description=f"Retainer {month.strftime('%B %Y')}",
                    quantity=Decimal(1),
                    unit_price=rule.retainer_amount,
                    amount=rule.retainer_amount,
                )
            )
    return items


def _exceptions(run: InvoiceRun, project: Project, items: list[_Item], reason: str, message: str) -> None:
    RunException.objects.bulk_create(
        [
            RunException(
                run=run,
                project=project,
                customer=project.customer,
                reason=reason,
                message=message,
                item_kind=item.kind,
                item_public_id=getattr(item.entry, "public_id", None),
                item_date=item.date,
                amount=item.amount,
            )
            for item in items
        ]
    )


def _refusal(project: Project, customer: Customer) -> tuple[str, str] | None:
    """Why nothing of the project can be billed now (a project-wide reason), or None."""
    if customer.status not in (Customer.Status.ACTIVE,):
        return RunException.Reason.CUSTOMER_NOT_BILLABLE, f"{customer} is {customer.get_status_display().lower()}."
    if (project.po_required or customer.purchase_order_required) and not project.po_number.strip():
        return (
            RunException.Reason.PO_MISSING,
            f"{project.number} needs a purchase order number on its invoices and has none; enter it on the project.",
        )
    if not Address.objects.filter(customer=customer, kind=Address.Kind.BILLING).exists():
        return RunException.Reason.BILLING_ADDRESS_MISSING, f"{customer} has no billing address."
    return None


def _consolidation_key(customer: Customer, project: Project) -> str:
    if customer.consolidation == Customer.Consolidation.PER_CUSTOMER:
        return "customer"
    if customer.consolidation == Customer.Consolidation.PER_PURCHASE_ORDER:
        return f"po:{project.po_number.strip() or '-'}"
    return f"project:{project.pk}"


def _draft_for(run: InvoiceRun, project: Project, customer: Customer) -> Invoice:
    key = _consolidation_key(customer, project)
    invoice = (
        Invoice.objects.select_for_update()
        .filter(
            run=run,
            legal_entity=run.legal_entity,
            customer=customer,
            currency=project.currency,
            consolidation_key=key,
            status=Invoice.Status.DRAFT,
        )
        .first()
    )
    if invoice is not None:
        return invoice
    invoice = Invoice(
        legal_entity=run.legal_entity,
        customer=customer,
        project=project if key.startswith("project:") else None,
        run=run,
        consolidation_key=key,
        currency=project.currency,
        language=customer.invoice_language,
        po_number=project.po_number.strip(),
        payment_terms_days=customer.payment_terms_days or project.payment_terms_days,
        period_start=run.period_start,
        period_end=run.period_end,
        created_by=run.started_by,
    )
    _stamp(invoice, actor=run.started_by, reason=f"Drafted by {run.number}").save()
    return invoice


def _hours(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _lines(invoice: Invoice, project: Project, items: list[_Item], start: int) -> list[tuple[InvoiceLine, list]]:
    """Roll the items up into printed lines: hours per (labour category, rate), adjustments likewise,
    one line per expense, milestone and retainer month."""
    groups: dict[tuple, list[_Item]] = defaultdict(list)
    for item in sorted(items, key=lambda i: (i.date, i.kind)):
        if item.kind in ("time", "adjustment"):
            groups[(item.kind, item.labour_category, item.unit_price)].append(item)
        else:
            groups[(item.kind, id(item))].append(item)
    order = {"time": 0, "adjustment": 1, "milestone": 2, "retainer": 3, "expense": 4}
    made = []
    position = start
    for key, members in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[1][0].date)):
        kind, first = key[0], members[0]
        position += 1
        quantity = sum((m.quantity for m in members), Decimal(0))
        dates = [m.date for m in members]
        if kind in ("time", "adjustment"):
            label = "Adjustment, " if kind == "adjustment" else ""
            description = f"{label}{first.labour_category} ({project.name})"
            unit, unit_price = "HUR", first.unit_price
            net = (quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)
        elif kind == "expense":
            description = f"{EXPENSE_NAMES.get(first.expense_category, 'Expense')}: {first.description}"
            unit, unit_price, net = "C62", first.unit_price, first.amount
        else:
            description, unit, unit_price, net = first.description, "C62", first.unit_price, first.amount
        line = InvoiceLine(
            invoice=invoice,
            position=position,
            kind=kind,
            project=project,
            description=description,
            phase=first.phase or "",
            labour_category=first.labour_category or "",
            note=first.note or "",
            quantity=quantity,
            unit=unit,
            unit_price=unit_price,
            net_amount=net,
            service_start=min(dates),
            service_end=max(dates),
        )
        made.append((line, members))
    return made


def _bill_project(run: InvoiceRun, project: Project) -> None:
    customer = project.customer
    problems: list = []
    items = _items_of(run, project, problems)
    for entry, exc in problems:
        reason = (
            RunException.Reason.CONTRACT_NOT_IN_FORCE
            if isinstance(exc, ContractNotInForce)
            else RunException.Reason.RATE_MISSING
        )
        RunException.objects.create(
            run=run,
            project=project,
            customer=customer,
            reason=reason,
            message=exc.message,
            item_kind="adjustment" if entry.adjusts_id else "time",
            item_public_id=entry.public_id,
            item_date=entry.date,
        )
    if not items:
        return
    refusal = _refusal(project, customer)
    if refusal is not None:
        _exceptions(run, project, items, *refusal)
        return
    try:
        with transaction.atomic():
            invoice = _draft_for(run, project, customer)
            start = max(invoice.lines.values_list("position", flat=True), default=0)
            made = _lines(invoice, project, items, start)
            InvoiceLine.objects.bulk_create([line for line, _ in made])
            InvoiceItem.objects.bulk_create(
                [
                    InvoiceItem(
                        line=line,
                        invoice=invoice,
                        kind=item.kind,
                        project=project,
                        time_entry=item.entry if item.kind in ("time", "adjustment") else None,
                        expense=item.entry if item.kind == "expense" else None,
                        milestone=item.entry if item.kind == "milestone" else None,
                        retainer_month=item.month,
                        date=item.date,
                        description=item.description,
                        quantity=item.quantity,
                        unit_price=item.unit_price,
                        amount=item.amount,
                    )
                    for line, members in made
                    for item in members
                ]
            )
            invoice_refigure(invoice)
    except ValidationFailed as exc:
        # The tax engine cannot decide (the customer's country or registration is missing…): nothing of the
        # project is drafted, and each item says why.
        _exceptions(run, project, items, RunException.Reason.TAX_CONTEXT_INCOMPLETE, _message(exc))


def _message(exc: DomainError) -> str:
    details = "; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in (exc.errors or {}).items())
    return f"{exc.message} {details}".strip()[:1000]
