"""Invoice runs: started by finance (page, API or schedule), executed in the queue, retried after any
failure or a killed worker; each billable item ends on exactly one live invoice item.

A run walks the legal entity's projects one at a time, each in its own transaction, so the progress bar
moves and a crash loses at most the project in hand. For each project it takes the approved unbilled items
up to the period's end (time from ``projects.selectors.unbilled_time``, summed and copied in the database;
expenses and milestones from ``unbilled_items``; all priced with the contract version in force on each
item's date) and the retainer months due, leaves out what is already on a live invoice item (a draft
of an earlier run, or of this run before a retry), records what it cannot bill as ``RunException`` rows
with their reason, and adds the rest to the draft invoice of the customer's consolidation (one per project,
per customer or per purchase order), rolled up into lines. A retry walks every project again: finished
projects have nothing left, and the partial unique constraints on ``InvoiceItem`` make a second billing of
the same item impossible even when two workers race.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    UUIDField,
    Value,
    When,
)
from django.db.models.functions import Round
from django.utils import timezone

from backbone.errors import Conflict, DomainError, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.history import set_actor, set_reason
from backbone.roles import Role, has_role, is_read_only
from backbone.services import sequence_next
from customers.models import Address, Customer, LegalEntity
from projects import selectors as project_selectors
from projects.errors import ContractNotInForce, RateMissing
from projects.models import BillingRule, EntryStatus, Expense, Milestone, Project, TimeEntry

from .models import Invoice, InvoiceItem, InvoiceLine, InvoiceRun, RunException
from .pricing import invoice_refigure

log = logging.getLogger(__name__)

# A running run whose row has not moved for this long is taken to be dead (a killed worker): it may be
# retried, and a second worker may claim it.
RUN_LEASE = dt.timedelta(minutes=5)
# A running run writes its progress about PROGRESS_STEPS times (not once a project: a commit each), and at
# least every PROGRESS_INTERVAL seconds, well within the lease.
PROGRESS_STEPS = 50
PROGRESS_INTERVAL = 30.0
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


def _projects_to_bill(run: InvoiceRun):
    """The projects, with what billing reads about each one's customer and retainer fetched for all of them at
    once (five queries) and whether each has expenses or milestones to look at, so that a project costs the
    same few queries however many projects and entries there are."""
    approved = EntryStatus.APPROVED
    return (
        _projects_of(run)
        .select_related("customer")
        .annotate(
            has_expenses=Exists(Expense.objects.filter(project=OuterRef("pk"), status=approved, billable=True)),
            has_milestones=Exists(Milestone.objects.filter(project=OuterRef("pk"), status=Milestone.Status.ACCEPTED)),
        )
        .prefetch_related(
            "customer__addresses",
            "customer__registrations",
            "customer__exemption_certificates",
            Prefetch("billing_rules", queryset=BillingRule.objects.filter(model="retainer"), to_attr="retainer_rules"),
        )
    )


def invoice_run_execute(run_id: int) -> InvoiceRun | None:
    """The task body: bill every project of the run, each in its own transaction. Safe to call again at any
    point (after a crash, a kill, or while another worker holds the run: then it does nothing)."""
    run = _claim(run_id)
    if run is None:
        return InvoiceRun.objects.filter(pk=run_id).first()
    done, reported = 0, time.monotonic()
    step = max(1, run.projects_total // PROGRESS_STEPS)
    try:
        for project in _projects_to_bill(run):
            _bill_project_safely(run, project)
            done += 1
            if done % step == 0 or time.monotonic() - reported > PROGRESS_INTERVAL:  # the bar moves, the lease holds
                InvoiceRun.objects.filter(pk=run.pk).update(projects_done=done, updated_at=timezone.now())
                reported = time.monotonic()
    except Exception as exc:  # the run is marked failed with the reason; finance retries it from the page
        log.exception("Invoice run %s failed", run.number)
        InvoiceRun.objects.filter(pk=run.pk).update(
            status=InvoiceRun.Status.FAILED,
            projects_done=done,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            updated_at=timezone.now(),
        )
        return InvoiceRun.objects.get(pk=run.pk)
    with transaction.atomic():
        run = InvoiceRun.objects.select_for_update().get(pk=run.pk)
        run.status = InvoiceRun.Status.COMPLETED
        run.projects_done = done
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
#
# Time is the bulk of a run (thousands of entries a project), so it never travels through Python one entry at
# a time: the database sums the unbilled hours per labour category and day, Python prices each of those
# groups with the contract in force that day (``projects.selectors.rate_resolver``) and rolls them up into
# lines, and one INSERT … SELECT copies the entries into invoice items, each with its line, rate and amount
# (hours x rate rounded half up to the cent, as ``unbilled_items`` prices them). Expenses, milestones and
# retainer months are few and go through the ORM. The project row is locked first, so the entries cannot
# change between the sum and the copy (approving takes the same lock).


@dataclass
class _Item:
    """An expense, an accepted milestone (from ``unbilled_items``) or a retainer month to bill."""

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


@dataclass
class _TimeGroup:
    """The unbilled hours of one labour category on one day, time or adjustment, priced once."""

    kind: str  # "time" or "adjustment"
    labour_category: str
    date: dt.date
    hours: Decimal
    entries: int
    first_pk: int  # the lowest entry id: orders lines that start on the same day as the entries came
    rate: Decimal | None = None

    @property
    def key(self) -> tuple[str, str, dt.date]:
        return self.kind, self.labour_category, self.date


@dataclass
class _Line:
    """A printed line before it is saved: the time groups or the one item it rolls up."""

    line: InvoiceLine
    groups: list[_TimeGroup]
    item: _Item | None = None


_LINE_ORDER = {"time": 0, "adjustment": 1, "milestone": 2, "retainer": 3, "expense": 4}


def _live_sources(project: Project) -> tuple[set[int], set[int], set[dt.date]]:
    """Expenses, milestones and retainer months of the project already on a live invoice item (time is left
    out in the database, ``_unbilled_time``)."""
    rows = (
        InvoiceItem.objects.filter(project=project, live=True, time_entry__isnull=True)
        .order_by()  # the default ordering joins the lines and invoices for nothing
        .values_list("expense_id", "milestone_id", "retainer_month")
    )
    expense_ids, milestone_ids, months = set(), set(), set()
    for expense_id, milestone_id, month in rows:
        if expense_id:
            expense_ids.add(expense_id)
        if milestone_id:
            milestone_ids.add(milestone_id)
        if month:
            months.add(month)
    return expense_ids, milestone_ids, months


def _months(first: dt.date, last: dt.date) -> Iterable[dt.date]:
    month = first.replace(day=1)
    while month <= last:
        yield month
        month = (month + dt.timedelta(days=32)).replace(day=1)


def _unbilled_time(run: InvoiceRun, project: Project) -> QuerySet[TimeEntry]:
    """The project's unbilled time up to the period's end that is not on a live invoice item yet (a draft of
    an earlier run, or of this run before a retry)."""
    # NOT IN (the project's live items), not NOT EXISTS: PostgreSQL hashes the project's few live items once
    # whatever its statistics say, where an anti-join planned on an empty table's statistics rescans every
    # item billed so far for each entry (quadratic in the first big run).
    live = InvoiceItem.objects.filter(project=project, live=True, time_entry__isnull=False).values("time_entry_id")
    return project_selectors.unbilled_time(project=project, up_to=run.period_end).exclude(pk__in=live).order_by()


def _time_groups(entries: QuerySet[TimeEntry], project: Project) -> list[_TimeGroup]:
    """The entries summed per (kind, labour category, day) in one query, each group priced with the rate in
    force that day (None where there is none)."""
    rows = (
        entries.values(
            "labour_category",
            "date",
            adjustment=ExpressionWrapper(Q(adjusts__isnull=False), output_field=BooleanField()),
        )
        .annotate(hours=Sum("hours"), entries=Count("pk"), first_pk=Min("pk"))
        .order_by()
    )
    rate = project_selectors.rate_resolver(project)
    groups = []
    for row in rows:
        group = _TimeGroup(
            kind="adjustment" if row["adjustment"] else "time",
            labour_category=row["labour_category"],
            date=row["date"],
            hours=row["hours"],
            entries=row["entries"],
            first_pk=row["first_pk"],
        )
        group.rate = rate(group.labour_category, group.date)
        groups.append(group)
    groups.sort(key=lambda g: (g.date, g.first_pk))
    return groups


def _group_filter(groups: Iterable[_TimeGroup]) -> Q:
    """The entries of these groups."""
    found = Q(pk__in=[])
    for group in groups:
        found |= Q(labour_category=group.labour_category, date=group.date, adjusts__isnull=group.kind == "time")
    return found


def _unpriced_time(run: InvoiceRun, project: Project, entries, groups: list[_TimeGroup]) -> list[RunException]:
    """An exception per entry of the groups without a rate, with ``rate_on``'s reason (asked once a group).
    A group ``rate_on`` does price after all gets that rate and is billed."""
    missing, reasons = [], {}
    for group in groups:
        try:
            group.rate = project_selectors.rate_on(
                project=project, labour_category=group.labour_category, day=group.date
            )
        except ContractNotInForce as exc:
            reasons[group.key] = (RunException.Reason.CONTRACT_NOT_IN_FORCE, exc.message)
            missing.append(group)
        except RateMissing as exc:
            reasons[group.key] = (RunException.Reason.RATE_MISSING, exc.message)
            missing.append(group)
    if not missing:
        return []
    rows = entries.filter(_group_filter(missing)).order_by("date", "pk")
    exceptions = []
    for public_id, day, category, adjusts_id in rows.values_list("public_id", "date", "labour_category", "adjusts_id"):
        kind = "adjustment" if adjusts_id else "time"
        reason, message = reasons[(kind, category, day)]
        exceptions.append(
            RunException(
                run=run,
                project=project,
                customer=project.customer,
                reason=reason,
                message=message,
                item_kind=kind,
                item_public_id=public_id,
                item_date=day,
            )
        )
    return exceptions


def _other_items(run: InvoiceRun, project: Project) -> list[_Item]:
    """The project's unbilled expenses and accepted milestones, and the retainer months due, less what is on
    a live invoice item already. No query for what ``_projects_to_bill`` found the project has none of."""
    rules = getattr(project, "retainer_rules", None)
    if rules is None:
        rules = list(BillingRule.objects.filter(project=project, model="retainer"))
    rule = rules[0] if rules and rules[0].retainer_amount else None
    kinds = frozenset(
        kind
        for kind, present in (("expense", "has_expenses"), ("milestone", "has_milestones"))
        if getattr(project, present, True)
    )
    found = project_selectors.unbilled_items(project=project, up_to=run.period_end, kinds=kinds) if kinds else []
    if not found and rule is None:
        return []
    expense_ids, milestone_ids, months = _live_sources(project)
    taken = {"expense": expense_ids, "milestone": milestone_ids}
    items = [
        _Item(
            kind=item.kind,
            entry=item.entry,
            date=item.date,
            description=item.description,
            labour_category=item.labour_category,
            phase=item.phase,
            note=item.note,
            quantity=item.quantity,
            unit_price=item.unit_price,
            amount=item.amount,
            expense_category=getattr(item.entry, "category", ""),
        )
        for item in found
        if item.entry.pk not in taken[item.kind]
    ]
    if rule is not None:
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


def _exceptions(
    run: InvoiceRun, project: Project, entries, groups: list[_TimeGroup], items: list[_Item], reason: str, message: str
) -> None:
    """Every item of the project as an exception with one project-wide reason: each time entry (one query
    for them), expense, milestone and retainer month."""
    exceptions = []
    rates = {group.key: group.rate for group in groups}
    if groups:
        fields = ("public_id", "date", "labour_category", "adjusts_id", "hours")
        for public_id, day, category, adjusts_id, hours in entries.order_by("date", "pk").values_list(*fields):
            kind = "adjustment" if adjusts_id else "time"
            rate = rates.get((kind, category, day))
            if rate is None:  # an exception already: no rate that day
                continue
            exceptions.append(
                RunException(
                    run=run,
                    project=project,
                    customer=project.customer,
                    reason=reason,
                    message=message,
                    item_kind=kind,
                    item_public_id=public_id,
                    item_date=day,
                    amount=(hours * rate).quantize(CENT, rounding=ROUND_HALF_UP),
                )
            )
    exceptions += [
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
    RunException.objects.bulk_create(exceptions)


def _refusal(project: Project, customer: Customer) -> tuple[str, str] | None:
    """Why nothing of the project can be billed now (a project-wide reason), or None."""
    if customer.status not in (Customer.Status.ACTIVE,):
        return RunException.Reason.CUSTOMER_NOT_BILLABLE, f"{customer} is {customer.get_status_display().lower()}."
    if (project.po_required or customer.purchase_order_required) and not project.po_number.strip():
        return (
            RunException.Reason.PO_MISSING,
            f"{project.number} needs a purchase order number on its invoices and has none; enter it on the project.",
        )
    if not any(address.kind == Address.Kind.BILLING for address in customer.addresses.all()):  # prefetched
        return RunException.Reason.BILLING_ADDRESS_MISSING, f"{customer} has no billing address."
    return None


def _consolidation_key(customer: Customer, project: Project) -> str:
    if customer.consolidation == Customer.Consolidation.PER_CUSTOMER:
        return "customer"
    if customer.consolidation == Customer.Consolidation.PER_PURCHASE_ORDER:
        return f"po:{project.po_number.strip() or '-'}"
    return f"project:{project.pk}"


def _draft_for(run: InvoiceRun, project: Project, customer: Customer) -> tuple[Invoice, bool]:
    """The run's draft for the customer's consolidation, and whether it was made just now."""
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
        # The same rows, with their prefetched registrations and addresses: the tax context asks no more.
        invoice.legal_entity, invoice.customer = run.legal_entity, customer
        return invoice, False
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
    return invoice, True


def _hours(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _lines(invoice: Invoice, project: Project, groups: list[_TimeGroup], items: list[_Item], start: int) -> list[_Line]:
    """Roll the priced time groups up into lines of hours per (labour category, rate), adjustments likewise,
    and give each expense, milestone and retainer month its own line. Lines are ordered by kind, then by
    their first day (ties: the line whose first entry came first)."""
    time_lines: dict[tuple, list[_TimeGroup]] = defaultdict(list)
    for group in groups:  # by day and first entry
        time_lines[(group.kind, group.labour_category, group.rate)].append(group)
    specs = []
    for (kind, category, rate), members in time_lines.items():
        quantity = sum((g.hours for g in members), Decimal(0))
        label = "Adjustment, " if kind == "adjustment" else ""
        line = InvoiceLine(
            invoice=invoice,
            kind=kind,
            project=project,
            description=f"{label}{category} ({project.name})",
            labour_category=category,
            quantity=quantity,
            unit="HUR",
            unit_price=rate,
            net_amount=(quantity * rate).quantize(CENT, rounding=ROUND_HALF_UP),
            service_start=members[0].date,
            service_end=max(g.date for g in members),
        )
        specs.append(((_LINE_ORDER[kind], members[0].date, members[0].first_pk), _Line(line=line, groups=members)))
    for index, item in enumerate(sorted(items, key=lambda i: (i.date, i.kind))):
        if item.kind == "expense":
            description = f"{EXPENSE_NAMES.get(item.expense_category, 'Expense')}: {item.description}"
        else:
            description = item.description
        line = InvoiceLine(
            invoice=invoice,
            kind=item.kind,
            project=project,
            description=description,
            phase=item.phase or "",
            labour_category=item.labour_category or "",
            note=item.note or "",
            quantity=item.quantity,
            unit="C62",
            unit_price=item.unit_price,
            net_amount=item.amount,
            service_start=item.date,
            service_end=item.date,
        )
        specs.append(((_LINE_ORDER[item.kind], item.date, index), _Line(line=line, groups=[], item=item)))
    specs.sort(key=lambda spec: spec[0])
    for position, (_, spec) in enumerate(specs, start=start + 1):
        spec.line.position = position
    return [spec for _, spec in specs]


class _NewUUID(Func):
    """A random version 4 UUID made by the database for each row it copies (built into PostgreSQL 13+)."""

    template = "gen_random_uuid()"
    output_field = UUIDField()

    def as_sqlite(self, compiler, connection, **extra_context):
        # 32 hex digits, as Django stores UUIDs on SQLite, with the version 4 and variant bits.
        return (
            "lower(hex(randomblob(6)) || '4' || substr(hex(randomblob(2)), 2) || "
            "substr('89ab', 1 + (random() & 3), 1) || substr(hex(randomblob(2)), 2) || hex(randomblob(6)))",
            [],
        )


def _copy_time(invoice: Invoice, project: Project, entries, groups: list[_TimeGroup], specs: list[_Line]) -> int:
    """Copy the entries of the time lines into invoice items with one INSERT … SELECT; returns the rows
    written. An entry finds its line by kind, labour category and a range of days (the consecutive days of
    the category priced at the line's rate: a day without a rate ends a range) and is priced with the
    line's rate; entries of days without a rate match no range and stay behind."""
    line_of = {group.key: spec for spec in specs for group in spec.groups}
    days: dict[tuple[str, str], list[_TimeGroup]] = defaultdict(list)
    for group in groups:
        days[(group.kind, group.labour_category)].append(group)
    lines, rates = [], []
    for (kind, category), members in days.items():
        ranges: list[list] = []  # [first day, last day, line]
        for group in sorted(members, key=lambda g: g.date):
            spec = line_of.get(group.key)
            if ranges and ranges[-1][2] is spec:
                ranges[-1][1] = group.date
            else:
                ranges.append([group.date, group.date, spec])
        for first, last, spec in ranges:
            if spec is None:
                continue
            match = Q(labour_category=category, adjusts__isnull=kind == "time", date__range=(first, last))
            lines.append(When(match, then=Value(spec.line.pk)))
            rates.append(When(match, then=Value(spec.line.unit_price)))
    if not lines:
        return 0
    line = Case(*lines, output_field=BigIntegerField())
    rate = Case(*rates, output_field=InvoiceItem._meta.get_field("unit_price"))
    now = timezone.now()
    given = {
        "public_id": _NewUUID(),
        "created_at": Value(now),
        "updated_at": Value(now),
        "line": line,
        "invoice": Value(invoice.pk),
        "kind": Case(When(adjusts__isnull=True, then=Value("time")), default=Value("adjustment")),
        "project": Value(project.pk),
        "time_entry": F("pk"),
        "date": F("date"),
        "description": F("description"),
        "quantity": F("hours"),
        "unit_price": rate,
        "amount": Round(F("hours") * rate, 2, output_field=InvoiceItem._meta.get_field("amount")),
    }
    columns, select = [], {}
    for field in InvoiceItem._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(field.column)
        if field.name in given:
            select[f"item_{field.attname}"] = given.pop(field.name)
        else:  # what bulk_create would send for a column the copy does not set
            select[f"item_{field.attname}"] = Value(field.get_default(), output_field=field)
    if given:
        raise ValueError(f"InvoiceItem has no field {', '.join(given)}.")
    if any(group.rate is None for group in groups):  # their entries stay behind
        entries = entries.alias(item_line=line).filter(item_line__isnull=False)
    connection = connections[router.db_for_write(InvoiceItem)]
    rows = entries.annotate(**select).values_list(*select)
    sql, params = rows.query.get_compiler(connection=connection).as_sql()
    table = connection.ops.quote_name(InvoiceItem._meta.db_table)
    quoted = ", ".join(connection.ops.quote_name(column) for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({quoted}) {sql}", params)
        return cursor.rowcount


def _bill_project(run: InvoiceRun, project: Project) -> None:
    customer = project.customer
    # Approving locks the project too: its time cannot change between the sums below and the copy.
    list(Project.objects.select_for_update().filter(pk=project.pk).values_list("pk", flat=True))
    entries = _unbilled_time(run, project)
    every_group = _time_groups(entries, project)
    unpriced = [group for group in every_group if group.rate is None]
    if unpriced:
        RunException.objects.bulk_create(_unpriced_time(run, project, entries, unpriced))
    groups = [group for group in every_group if group.rate is not None]
    items = _other_items(run, project)
    if not groups and not items:
        return
    refusal = _refusal(project, customer)
    if refusal is not None:
        _exceptions(run, project, entries, groups, items, *refusal)
        return
    try:
        with transaction.atomic():
            invoice, new = _draft_for(run, project, customer)
            start = 0 if new else max(invoice.lines.values_list("position", flat=True), default=0)
            specs = _lines(invoice, project, groups, items, start)
            InvoiceLine.objects.bulk_create([spec.line for spec in specs])
            copied = _copy_time(invoice, project, entries, every_group, specs)
            if copied != sum(group.entries for group in groups):
                raise IntegrityError(f"{project.number}: the time changed while it was being billed.")
            InvoiceItem.objects.bulk_create(
                [
                    InvoiceItem(
                        line=spec.line,
                        invoice=invoice,
                        kind=spec.item.kind,
                        project=project,
                        expense=spec.item.entry if spec.item.kind == "expense" else None,
                        milestone=spec.item.entry if spec.item.kind == "milestone" else None,
                        retainer_month=spec.item.month,
                        date=spec.item.date,
                        description=spec.item.description,
                        quantity=spec.item.quantity,
                        unit_price=spec.item.unit_price,
                        amount=spec.item.amount,
                    )
                    for spec in specs
                    if spec.item is not None
                ]
            )
            # A new draft has only these lines: no need to read them back.
            invoice_refigure(invoice, [spec.line for spec in specs] if new else None)
    except ValidationFailed as exc:
        # The tax engine cannot decide (the customer's country or registration is missing…): nothing of the
        # project is drafted, and each item says why.
        _exceptions(run, project, entries, groups, items, RunException.Reason.TAX_CONTEXT_INCOMPLETE, _message(exc))


def _message(exc: DomainError) -> str:
    details = "; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in (exc.errors or {}).items())
    return f"{exc.message} {details}".strip()[:1000]
