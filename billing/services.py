"""Invoice runs: started by finance (page, API or schedule), executed in the queue, retried after any
failure or a killed worker; each billable item ends on exactly one live invoice item.

A run walks the legal entity's projects in batches of ``RUN_BATCH``, each batch in its own transaction, so
the progress bar moves and a crash loses at most the batch in hand. For each project it takes the approved
unbilled items up to the period's end (time from ``projects.selectors.unbilled_time``, summed and copied in
the database; expenses and milestones from ``unbilled_items``; all priced with the contract version in force
on each item's date) and the retainer months due, leaves out what is already on a live invoice item (a draft
of an earlier run, or of this run before a retry), records what it cannot bill as ``RunException`` rows
with their reason, and adds the rest to the draft invoice of the customer's consolidation (one per project,
per customer or per purchase order), rolled up into lines. A retry walks every project again: finished
projects have nothing left, and the partial unique constraints on ``InvoiceItem`` make a second billing of
the same item impossible even when two workers race.
"""

from __future__ import annotations

import datetime as dt
import logging
import operator
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from decimal import ROUND_HALF_UP, Decimal
from functools import reduce
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from backbone.errors import Conflict, DomainError, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.history import audit_entries_append_bulk, stamp
from backbone.roles import Role, has_role, is_read_only
from backbone.services import sequence_next
from customers.models import Address, Customer, LegalEntity
from projects import selectors as project_selectors
from projects.errors import ContractNotInForce, RateMissing
from projects.models import BillingRule, EntryStatus, Expense, Milestone, Project, TimeEntry
from tax.rates import RateBook
from tax.selectors import rate_book

from .models import Invoice, InvoiceItem, InvoiceLine, InvoiceRun, RunException
from .pricing import invoice_figures

log = logging.getLogger(__name__)

# A running run whose row has not moved for this long is taken to be dead (a killed worker): it may be
# retried, and a second worker may claim it.
RUN_LEASE = dt.timedelta(minutes=5)
# A running run writes its progress about PROGRESS_STEPS times (not once a project: a commit each), and at
# least every PROGRESS_INTERVAL seconds, well within the lease.
PROGRESS_STEPS = 50
PROGRESS_INTERVAL = 30.0
# Projects billed in one transaction, with one statement of each kind for all of them: a project then costs
# its pricing and tax figures, not a dozen round trips. The batch's projects stay locked while it is billed
# (approving their time waits for it: a fraction of a second).
RUN_BATCH = 25
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
    stamp(run, actor=actor, reason="Invoice run started").save()
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
    stamp(run, actor=actor, reason="Invoice run retried").save(update_fields=["status", "error", "updated_at"])
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
        stamp(run, actor=None, reason=f"Attempt {run.attempts}").save()
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
    """The task body: bill every project of the run, a batch of projects a transaction. Safe to call again at
    any point (after a crash, a kill, or while another worker holds the run: then it does nothing)."""
    run = _claim(run_id)
    if run is None:
        return InvoiceRun.objects.filter(pk=run_id).first()
    done, reported = 0, time.monotonic()
    step = max(1, run.projects_total // PROGRESS_STEPS)
    try:
        # Every VAT rate, read once for the whole attempt instead of once a draft. A rate loaded while the run
        # goes on does not reach its drafts: approving and issuing refigure them with the rates of their day.
        rates = rate_book()
        projects = list(_projects_to_bill(run))
        for first in range(0, len(projects), RUN_BATCH):
            batch = projects[first : first + RUN_BATCH]
            _bill_safely(run, batch, rates)
            done += len(batch)
            # The bar moves about PROGRESS_STEPS times, and the lease holds.
            if done // step > (done - len(batch)) // step or time.monotonic() - reported > PROGRESS_INTERVAL:
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
        stamp(run, actor=None, reason="Invoice run completed").save()
    return run


def _bill_safely(run: InvoiceRun, projects: list[Project], rates: RateBook) -> None:
    """Bill a batch of projects in one transaction. When the database refuses it (another worker billed some
    of the same items a moment ago, or time changed between the sums and the copy), bill them one project
    at a time instead, each looked at twice: the second look sees the other worker's items live."""
    if len(projects) > 1:
        try:
            with transaction.atomic():
                _bill_projects(run, projects, rates)
            return
        except IntegrityError:
            log.info("%s: a batch of %d projects was refused; billing them one by one", run.number, len(projects))
    for project in projects:
        for attempt in (1, 2):
            try:
                with transaction.atomic():
                    _bill_projects(run, [project], rates)
                break
            except IntegrityError:
                if attempt == 2:
                    raise


# --- a batch of projects ------------------------------------------------------------------------------------
#
# Time is the bulk of a run (thousands of entries a project), so it never travels through Python one entry at
# a time: the database sums the unbilled hours per project, labour category and day, Python prices each of
# those groups with the contract in force that day (``projects.selectors.rate_resolver``) and rolls them up
# into lines, and one INSERT … SELECT copies the entries into invoice items, each with its line, rate and
# amount (hours x rate rounded half up to the cent, as ``unbilled_items`` prices them). Expenses, milestones
# and retainer months are few and go through the ORM. The projects' rows are locked first, so their entries
# cannot change between the sum and the copy (approving takes the same lock).
#
# RUN_BATCH projects share one transaction, and each statement serves the whole batch: one sum, one INSERT of
# the new drafts (written once, with their totals: the tax engine figures them before they are saved), one of
# their history records and one of their audit entries, one of the lines, one copy of the time. What a
# project costs is then its pricing and tax figures in Python, not a round of a dozen statements; a crash
# loses the batch in hand, which a retry bills again.


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


@dataclass
class _Plan:
    """What one project of a batch bills: its priced time groups (and every group, priced or not: a day
    without a rate ends a range of the copy), its other items, and once decided its draft and lines."""

    project: Project
    entries: QuerySet[TimeEntry]  # the project's unbilled time
    every_group: list[_TimeGroup]
    groups: list[_TimeGroup]
    items: list[_Item]
    invoice: Invoice | None = None
    specs: list[_Line] = dataclass_field(default_factory=list)


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


def _unbilled_time(run: InvoiceRun, projects: list[Project]) -> QuerySet[TimeEntry]:
    """The projects' unbilled time up to the period's end that is not on a live invoice item yet (a draft of
    an earlier run, or of this run before a retry)."""
    # NOT IN (the projects' live items), not NOT EXISTS: PostgreSQL hashes the projects' few live items once
    # whatever its statistics say, where an anti-join planned on an empty table's statistics rescans every
    # item billed so far for each entry (quadratic in the first big run). The items without an entry count
    # as 0 (no entry's id) rather than being filtered out with ``time_entry_id IS NOT NULL``: that filter
    # lets the planner use the partial unique index ``time_billed_once`` too, and on such statistics it ANDs
    # that index (every live time item billed so far) with the projects', so each batch cost more than the
    # one before. NOT IN must not meet a NULL, hence the 0.
    live = InvoiceItem.objects.filter(project__in=[project.pk for project in projects], live=True).values(
        entry=Coalesce("time_entry_id", Value(0), output_field=BigIntegerField())
    )
    entries = reduce(
        operator.or_,
        (project_selectors.unbilled_time(project=project, up_to=run.period_end) for project in projects),
    )
    return entries.exclude(pk__in=live).order_by()


def _time_groups(entries: QuerySet[TimeEntry], projects: list[Project]) -> dict[int, list[_TimeGroup]]:
    """The entries summed per (project, kind, labour category, day) in one query, each group priced with the
    rate in force that day (None where there is none; one query of each project's contract versions)."""
    rows = (
        entries.values(
            "project_id",
            "labour_category",
            "date",
            adjustment=ExpressionWrapper(Q(adjusts__isnull=False), output_field=BooleanField()),
        )
        .annotate(hours=Sum("hours"), entries=Count("pk"), first_pk=Min("pk"))
        .order_by()
    )
    by_project: dict[int, list[_TimeGroup]] = defaultdict(list)
    for row in rows:
        by_project[row["project_id"]].append(
            _TimeGroup(
                kind="adjustment" if row["adjustment"] else "time",
                labour_category=row["labour_category"],
                date=row["date"],
                hours=row["hours"],
                entries=row["entries"],
                first_pk=row["first_pk"],
            )
        )
    for project in projects:
        groups = by_project.get(project.pk)
        if not groups:
            continue
        rate = project_selectors.rate_resolver(project)
        for group in groups:
            group.rate = rate(group.labour_category, group.date)
        groups.sort(key=lambda g: (g.date, g.first_pk))
    return by_project


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
) -> list[RunException]:
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
    return exceptions


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


def _drafts_for(run: InvoiceRun, plans: list[_Plan]) -> None:
    """Give each plan the run's draft of its customer's consolidation: the one drafted before (by an earlier
    batch, or by this run before a retry; locked), else a new one, not saved yet, that the plans of the same
    consolidation share. One query."""
    customers = {plan.project.customer_id for plan in plans}
    found: dict[tuple, Invoice] = {}
    drafts = Invoice.objects.select_for_update().filter(
        run=run, legal_entity=run.legal_entity, customer_id__in=customers, status=Invoice.Status.DRAFT
    )
    for invoice in drafts.order_by("-created_at", "-id"):  # the newest, as ``.first()`` took it
        found.setdefault((invoice.customer_id, invoice.currency, invoice.consolidation_key), invoice)
    for plan in plans:
        project, customer = plan.project, plan.project.customer
        key = _consolidation_key(customer, project)
        invoice = found.get((customer.pk, project.currency, key))
        if invoice is None:
            invoice = found[(customer.pk, project.currency, key)] = Invoice(
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
        elif invoice.pk is not None:
            # The same rows, with their prefetched registrations and addresses: the tax context asks no more.
            invoice.legal_entity, invoice.customer = run.legal_entity, customer
        plan.invoice = invoice


def _figure(
    run: InvoiceRun, plans: list[_Plan], rates: RateBook, exceptions: list[RunException]
) -> tuple[list[_Plan], list[InvoiceLine]]:
    """Roll each plan up into lines after those its draft has already (one query for the lines of the drafts
    made before), and run the tax engine over every draft's lines, setting the lines' categories and rates
    and the draft's totals before anything is saved. The plans whose draft the engine cannot figure (the
    customer's country or registration is missing…) become exceptions, each item saying why; returns the
    rest, to be written, and the refigured lines the drafts had before."""
    earlier: dict[int, list[InvoiceLine]] = defaultdict(list)
    saved = {plan.invoice.pk for plan in plans if plan.invoice.pk is not None}
    if saved:
        for line in InvoiceLine.objects.filter(invoice_id__in=saved).order_by("invoice", "position", "id"):
            earlier[line.invoice_id].append(line)
    lines: dict[int, list[InvoiceLine]] = {}  # id() of a draft → every line it will have
    members: dict[int, list[_Plan]] = defaultdict(list)
    for plan in plans:
        invoice = plan.invoice
        if id(invoice) not in lines:
            lines[id(invoice)] = list(earlier.get(invoice.pk, []))
        start = max((line.position for line in lines[id(invoice)]), default=0)
        plan.specs = _lines(invoice, plan.project, plan.groups, plan.items, start)
        lines[id(invoice)] += [spec.line for spec in plan.specs]
        members[id(invoice)].append(plan)
    billed: list[_Plan] = []
    refigured: list[InvoiceLine] = []
    for key, invoice_plans in members.items():
        invoice = invoice_plans[0].invoice
        try:
            invoice_figures(invoice, lines[key], rates=rates)
        except ValidationFailed as exc:
            for plan in invoice_plans:
                exceptions += _exceptions(
                    run,
                    plan.project,
                    plan.entries,
                    plan.groups,
                    plan.items,
                    RunException.Reason.TAX_CONTEXT_INCOMPLETE,
                    _message(exc),
                )
            continue
        billed += invoice_plans
        refigured += earlier.get(invoice.pk, [])
    return billed, refigured


_NEW_UUID = {
    # A random version 4 UUID for each row copied: built into PostgreSQL 13+; on SQLite 32 hex digits, as
    # Django stores UUIDs there, with the version 4 and variant bits.
    "postgresql": "gen_random_uuid()",
    "sqlite": "lower(hex(randomblob(6)) || '4' || substr(hex(randomblob(2)), 2) || "
    "substr('89ab', 1 + (random() & 3), 1) || substr(hex(randomblob(2)), 2) || hex(randomblob(6)))",
}


def _copy_time(plans: list[_Plan], entries: QuerySet[TimeEntry]) -> int:
    """Copy the entries of the plans' time lines into invoice items with one INSERT … SELECT; returns the rows
    written. An entry finds its line by project, kind, labour category and a range of days (the consecutive
    days of the category priced at the line's rate: a day without a rate ends a range), joined from a small
    table of those ranges, and is priced with the line's rate; entries of days without a rate, and of the
    projects not billed, match no range and stay behind."""
    ranges: list[tuple] = []
    for plan in plans:
        line_of = {group.key: spec for spec in plan.specs for group in spec.groups}
        days: dict[tuple[str, str], list[_TimeGroup]] = defaultdict(list)
        for group in plan.every_group:
            days[(group.kind, group.labour_category)].append(group)
        for (kind, category), members in days.items():
            spans: list[list] = []  # [first day, last day, line]
            for group in sorted(members, key=lambda g: g.date):
                spec = line_of.get(group.key)
                if spans and spans[-1][2] is spec:
                    spans[-1][1] = group.date
                else:
                    spans.append([group.date, group.date, spec])
            for first, last, spec in spans:
                if spec is not None:
                    line = spec.line
                    adjustment = kind == "adjustment"
                    ranges.append(
                        (plan.project.pk, adjustment, category, first, last, line.pk, line.invoice_id, line.unit_price)
                    )
    if not ranges:
        return 0
    connection = connections[router.db_for_write(InvoiceItem)]
    postgres = connection.vendor == "postgresql"
    # PostgreSQL types the columns of the ranges (a date compared with a date, not with text); SQLite compares
    # the values as Django stores them, and its CAST would turn a date into a number.
    types = ("bigint", "boolean", "varchar", "date", "date", "bigint", "bigint", "numeric")
    row = "(" + ", ".join(f"CAST(%s AS {name})" if postgres else "%s" for name in types) + ")"
    params: list[Any] = []
    for values in ranges:
        params += [connection.ops.adapt_datefield_value(v) if isinstance(v, dt.date) else v for v in values]
    now = timezone.now()
    given = {
        "public_id": (_NEW_UUID[connection.vendor], []),
        "line_id": ("r.line_id", []),
        "invoice_id": ("r.invoice_id", []),
        "kind": (
            "CASE WHEN t.entry_adjusts_id IS NULL THEN %s ELSE %s END",
            [InvoiceItem.Kind.TIME, InvoiceItem.Kind.ADJUSTMENT],
        ),
        "project_id": ("t.entry_project_id", []),
        "time_entry_id": ("t.entry_id", []),
        "date": ("t.entry_date", []),
        "description": ("t.entry_description", []),
        "quantity": ("t.entry_hours", []),
        "unit_price": ("r.rate", []),
        "amount": ("ROUND(t.entry_hours * r.rate, 2)", []),  # half away from zero, as ROUND_HALF_UP
    }
    columns, select = [], []
    for field in InvoiceItem._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.column in given:
            expression, values = given.pop(field.column)
        elif field.name in ("created_at", "updated_at"):
            expression, values = "%s", [field.get_db_prep_save(now, connection)]
        else:  # what bulk_create would send for a column the copy does not set
            expression, values = "%s", [field.get_db_prep_save(field.get_default(), connection)]
        select.append(expression)
        params += values
    if given:
        raise ValueError(f"InvoiceItem has no column {', '.join(given)}.")
    names = ("id", "project_id", "labour_category", "date", "hours", "description", "adjusts_id")
    source = entries.values(**{f"entry_{name}": F(name) for name in names})  # named alike on every database
    source_sql, source_params = source.query.get_compiler(connection=connection).as_sql()
    params += list(source_params)
    table = connection.ops.quote_name(InvoiceItem._meta.db_table)
    # Only quoted names and placeholders are spliced in: every value travels as a parameter.
    # The ranges in a WITH inside the INSERT (not before it: Python's sqlite3 counts no rows for a statement
    # that does not start with INSERT).
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
        "WITH r (project_id, adjustment, labour_category, first_day, last_day, line_id, invoice_id, rate) AS "
        f"(VALUES {', '.join([row] * len(ranges))}) "
        f"SELECT {', '.join(select)} FROM ({source_sql}) t JOIN r ON r.project_id = t.entry_project_id "
        "AND r.labour_category = t.entry_labour_category AND r.adjustment = (t.entry_adjusts_id IS NOT NULL) "
        "AND t.entry_date BETWEEN r.first_day AND r.last_day"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _plan_project(
    run: InvoiceRun, project: Project, every_group: list[_TimeGroup], entries, exceptions: list[RunException]
) -> _Plan | None:
    """What of the project can be billed, or None; what cannot is added to ``exceptions`` with its reason."""
    unpriced = [group for group in every_group if group.rate is None]
    if unpriced:
        exceptions += _unpriced_time(run, project, entries, unpriced)
    groups = [group for group in every_group if group.rate is not None]
    items = _other_items(run, project)
    if not groups and not items:
        return None
    refusal = _refusal(project, project.customer)
    if refusal is not None:
        exceptions += _exceptions(run, project, entries, groups, items, *refusal)
        return None
    return _Plan(project=project, entries=entries, every_group=every_group, groups=groups, items=items)


def _bill_projects(run: InvoiceRun, projects: list[Project], rates: RateBook) -> None:
    """Bill the projects in the caller's transaction: drafts, lines and items of what can be billed, an
    exception for each item that cannot. Raises IntegrityError when the time changed under it (the caller
    looks again)."""
    # Approving locks the project too: its time cannot change between the sums below and the copy.
    list(
        Project.objects.select_for_update()
        .filter(pk__in=[project.pk for project in projects])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    entries = _unbilled_time(run, projects)
    groups = _time_groups(entries, projects)
    exceptions: list[RunException] = []
    plans = []
    for project in projects:
        plan = _plan_project(
            run, project, groups.get(project.pk, []), entries.filter(project_id=project.pk), exceptions
        )
        if plan is not None:
            plans.append(plan)
    refigured: list[InvoiceLine] = []
    if plans:
        _drafts_for(run, plans)
        plans, refigured = _figure(run, plans, rates, exceptions)
    invoices = list({id(plan.invoice): plan.invoice for plan in plans}.values())
    earlier = [invoice for invoice in invoices if invoice.pk is not None]
    new = [invoice for invoice in invoices if invoice.pk is None]
    if new:  # written once, with their totals; their history records and audit entries in one INSERT each
        Invoice.objects.bulk_create(new)
        history = Invoice.history.bulk_history_create(
            new, default_user=run.started_by, default_change_reason=f"Drafted by {run.number}"
        )
        audit_entries_append_bulk(history_instances=history, changed=[])
    if refigured:  # the lines the drafts of an earlier batch or attempt had: their tax as figured now
        InvoiceLine.objects.bulk_update(refigured, ["tax_category", "tax_rate"])
    for invoice in earlier:
        Invoice.objects.filter(pk=invoice.pk).update(
            net_total=invoice.net_total,
            tax_total=invoice.tax_total,
            gross_total=invoice.gross_total,
            tax_breakdown=invoice.tax_breakdown,
            legal_notes=invoice.legal_notes,
        )
    InvoiceLine.objects.bulk_create([spec.line for plan in plans for spec in plan.specs])
    copied = _copy_time(plans, entries)
    if copied != sum(group.entries for plan in plans for group in plan.groups):
        raise IntegrityError("The time of a project changed while it was being billed.")
    InvoiceItem.objects.bulk_create(
        [
            InvoiceItem(
                line=spec.line,
                invoice=plan.invoice,
                kind=spec.item.kind,
                project=plan.project,
                expense=spec.item.entry if spec.item.kind == "expense" else None,
                milestone=spec.item.entry if spec.item.kind == "milestone" else None,
                retainer_month=spec.item.month,
                date=spec.item.date,
                description=spec.item.description,
                quantity=spec.item.quantity,
                unit_price=spec.item.unit_price,
                amount=spec.item.amount,
            )
            for plan in plans
            for spec in plan.specs
            if spec.item is not None
        ]
    )
    RunException.objects.bulk_create(exceptions)


def _message(exc: DomainError) -> str:
    details = "; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in (exc.errors or {}).items())
    return f"{exc.message} {details}".strip()[:1000]
