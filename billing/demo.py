"""Demo data of the billing app: real invoice runs over the demo projects' time, expenses, milestones and
retainer months (the projects seeder leaves them approved; this one bills them).

For each legal entity that delivers a demo project, the demo finance user runs the month before last
(``invoice_run_start``, then ``invoice_run_execute`` at once: the demo does not wait for a queue) and every
draft the run made is approved and issued. Finance approves alone within her approval limit; a draft above
it that she made herself (the run's drafts are hers) is approved by the demo executive, as the maker-checker
rule of ``billing.issuing`` wants; finance then issues, so the month's items are billed with real, gapless
invoice numbers.

The issued invoices go out by email with their PDFs (the messages wait in the Outbox for the worker), and
the client of the first one disputes its hours from the portal. Then the client queries an invoiced day:
1.5 h of one of the consultant's billed days on the time-and-materials project were logged twice. He
credits them with a negative adjustment (the billed original never changes), submits it and the project
manager approves it: it flows into the next invoice. Finance then locks the month, when nothing in it is
open (draft, submitted or rejected).

Last, finance runs last month: its drafts (the adjustment among them) wait for her review; the smallest one
within her limit is approved but not issued. What a run cannot bill stays with it as run exceptions, with
the reason (the research project's customer requires a purchase order and the project has none).

Idempotent and deterministic: runs are found again by legal entity and period; only a run this seeder has
just made is reviewed; the adjustment is made when the project has none, the month locked when not yet
locked. Nothing is created twice, and every row is written by a service.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Count
from django.utils import timezone

from backbone.models import OutboundMessage
from backbone.services import external_id_lookup
from customers.models import Deal, LegalEntity
from projects.models import EntryStatus, Expense, LockedPeriod, Project, TimeEntry
from projects.timesheets import period_lock, time_entries_approve, time_entry_adjust, timesheet_submit

from .delivery import invoice_send
from .disputes import dispute_raise
from .issuing import approval_limit, invoice_approve, invoice_issue
from .models import Dispute, Invoice, InvoiceRun, RunException
from .services import invoice_run_execute, invoice_run_start
from .tasks import invoice_pdf_render_within

DEMO_SYSTEM = "demo"
# The demo deals of the projects seeder (their external IDs); each was won into one project.
DEMO_DEALS = ("PRJ-DEMO-TM", "PRJ-DEMO-FIXED", "PRJ-DEMO-RETAINER", "PRJ-DEMO-EXPENSES")
ADJUSTMENT_HOURS = Decimal("-1.5")


def _month_start(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _month_end(month: dt.date) -> dt.date:
    return _month_start(month, 1) - dt.timedelta(days=1)


def _user(username: str):
    return get_user_model().objects.filter(username=username).first()


def _demo_projects() -> dict[str, Project]:
    projects = {}
    for key in DEMO_DEALS:
        deal = external_id_lookup(model=Deal, system=DEMO_SYSTEM, external_id=key)
        project = Project.objects.filter(deal=deal).select_related("legal_entity").first() if deal else None
        if project is not None:
            projects[key] = project
    return projects


# --- runs, approval and issue ----------------------------------------------------------------------------


def _run(entity: LegalEntity, month: dt.date, *, finance) -> tuple[InvoiceRun, bool]:
    """The run of ``entity`` for ``month``, started and executed now if there is none."""
    last = _month_end(month)
    run = InvoiceRun.objects.filter(legal_entity=entity, period_start=month, period_end=last).order_by("pk").first()
    if run is not None:
        return run, False
    run = invoice_run_start(actor=finance, legal_entity=entity, period_start=month, period_end=last)
    run = invoice_run_execute(run.pk)  # at once: the queued task finds it completed and does nothing
    if run.status != InvoiceRun.Status.COMPLETED:
        raise RuntimeError(f"The demo invoice run {run.number} of {entity} {run.status}: {run.error}")
    return run, True


def _approve(invoice: Invoice, *, finance, executive) -> Invoice:
    """Finance approves within her limit. Above it she may not approve a draft she made (the run's drafts are
    hers): the executive approves it; a first approval by someone else is completed by the executive too."""
    within = abs(invoice.gross_total) <= approval_limit(finance)
    if invoice.approved_by_id is None and (within or invoice.created_by_id != finance.pk):
        invoice = invoice_approve(actor=finance, invoice=invoice)
    if invoice.status == Invoice.Status.DRAFT:
        invoice = invoice_approve(actor=executive, invoice=invoice)
    return invoice


def _approve_and_issue(run: InvoiceRun, *, finance, executive) -> None:
    for invoice in run.invoices.filter(status__in=[Invoice.Status.DRAFT, Invoice.Status.APPROVED]).order_by("pk"):
        if invoice.status == Invoice.Status.DRAFT:
            invoice = _approve(invoice, finance=finance, executive=executive)
        invoice_issue(actor=finance, invoice=invoice)


def _review(runs: list[InvoiceRun], *, finance) -> None:
    """Finance has begun the review of last month's drafts: the smallest one within her limit is approved
    (not issued yet); the rest wait for her."""
    limit = approval_limit(finance)
    drafts = Invoice.objects.filter(run__in=runs, status=Invoice.Status.DRAFT, approved_by__isnull=True)
    within = [invoice for invoice in drafts.order_by("pk") if 0 < invoice.gross_total <= limit]
    if within:
        invoice_approve(actor=finance, invoice=min(within, key=lambda i: (i.gross_total, i.pk)))


# --- delivery and the client's dispute ------------------------------------------------------------------------


def _deliver(runs: list[InvoiceRun], *, finance) -> int:
    """The issued invoices go out by email with their PDF (rendered here rather than waiting for the worker);
    the messages wait in the Outbox for the worker, which hands them to the mail backend (the console in the
    demo). An invoice already sent is left alone. Returns how many were queued."""
    sent = 0
    issued = Invoice.objects.filter(run__in=runs, status=Invoice.Status.ISSUED, kind=Invoice.Kind.INVOICE)
    already = set(
        OutboundMessage.objects.filter(about_id__in=issued.values("public_id")).values_list("about_id", flat=True)
    )
    for invoice in issued.select_related("customer").order_by("pk"):
        if invoice.public_id in already:
            continue
        invoice_pdf_render_within(invoice.pk)
        contacts = invoice.customer.contacts.filter(is_active=True).order_by("-receives_invoices", "pk")
        first = contacts.first()
        to = None if contacts.filter(receives_invoices=True).exists() else ([first.email] if first else None)
        if to is None and first is None:
            continue  # nobody to send it to: finance sees it unsent on the invoice
        invoice_send(actor=finance, invoice=invoice, to=to)
        sent += 1
    return sent


def _dispute(runs: list[InvoiceRun]) -> int:
    """The client of the first invoice sent questions the hours billed from the portal (once)."""
    invoice = (
        Invoice.objects.filter(run__in=runs, status=Invoice.Status.ISSUED, kind=Invoice.Kind.INVOICE)
        .select_related("customer")
        .order_by("pk")
        .first()
    )
    if invoice is None or Dispute.objects.filter(invoice=invoice).exists():
        return 0
    contact = invoice.customer.contacts.filter(is_active=True).order_by("-receives_invoices", "pk").first()
    dispute_raise(
        invoice=invoice,
        reason=Dispute.Reason.AMOUNT,
        message="The hours for the 2nd week look high to us: we agreed on a half day for the review meeting. "
        "Could you check them before we pay?",
        contact_name=contact.full_name if contact else "Accounts payable",
        contact_email=contact.email if contact else "ap@example.com",
    )
    return 1


# --- the client's query: an adjustment of billed time --------------------------------------------------------


def _adjust_billed(project: Project | None, *, month: dt.date, consultant, pm) -> int:
    """The client queried an invoiced day: 1.5 h of it were logged twice. The consultant credits them with a
    negative adjustment (the billed original never changes), submits it and the project manager approves
    it; it flows into the next invoice."""
    if project is None or TimeEntry.objects.filter(project=project, adjusts__isnull=False).exists():
        return 0
    original = (
        TimeEntry.objects.filter(
            project=project,
            person=consultant,
            status=EntryStatus.BILLED,
            adjusts__isnull=True,
            hours__gte=4,
            date__range=(month, _month_end(month)),
        )
        .order_by("-date", "-pk")
        .first()
    )
    if original is None:
        return 0
    day = f"{original.date.day} {original.date:%B %Y}"
    adjustment = time_entry_adjust(
        actor=consultant,
        original=original,
        hours=ADJUSTMENT_HOURS,
        description=f"Correction of {day} (invoice {original.invoice_ref}): 1.5 h of this day were logged twice; "
        "credited.",
    )
    timesheet_submit(actor=consultant, week_start=original.date - dt.timedelta(days=original.date.weekday()))
    time_entries_approve(actor=pm, entries=[adjustment])
    return 1


def _lock_if_done(*, month: dt.date, finance) -> int:
    """Finance closes the month once nothing in it is open (draft, submitted or rejected)."""
    if LockedPeriod.objects.filter(month=month).exists():
        return 0
    in_month = [model.objects.filter(date__range=(month, _month_end(month))) for model in (TimeEntry, Expense)]
    if not any(rows.exists() for rows in in_month):
        return 0
    if any(rows.exclude(status__in=(EntryStatus.APPROVED, EntryStatus.BILLED)).exists() for rows in in_month):
        return 0
    period_lock(actor=finance, month=month)
    return 1


# --- the seeder ----------------------------------------------------------------------------------------------


def _summary(runs: list[InvoiceRun], *, new: int, adjusted: int, locked: int, sent: int, disputed: int) -> str:
    invoices = Counter(
        dict(
            Invoice.objects.filter(run__in=runs)
            .order_by()
            .values_list("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
    )
    reasons = Counter(
        dict(
            RunException.objects.filter(run__in=runs)
            .order_by()
            .values_list("reason")
            .annotate(n=Count("pk"))
            .values_list("reason", "n")
        )
    )
    statuses = [Invoice.Status.ISSUED, Invoice.Status.APPROVED, Invoice.Status.DRAFT, Invoice.Status.DISCARDED]
    return (
        f"{len(runs)} invoice runs ({new} new), {sum(invoices.values())} invoices drafted: "
        + ", ".join(f"{invoices[s]} {s}" for s in statuses if invoices[s] or s != Invoice.Status.DISCARDED)
        + f"; {sum(reasons.values())} run exceptions"
        + (f" ({', '.join(f'{n} {reason}' for reason, n in sorted(reasons.items()))})" if reasons else "")
        + f"; {sent} sent by email, {disputed} disputed from the portal"
        + f"; {adjusted} new adjustment of billed time, {locked} month locked"
    )


def seed_billing(*, password: str = "", **_) -> str:
    finance, executive, consultant, pm = (_user(name) for name in ("finance", "executive", "consultant", "pm"))
    if not (finance and executive and consultant and pm):
        raise RuntimeError("Run the users seeder first: the demo invoices are run by the demo finance user.")
    projects = _demo_projects()
    entities = sorted({p.legal_entity for p in projects.values()}, key=lambda e: e.pk)
    today = timezone.localdate()
    billed, last = _month_start(today, -2), _month_start(today, -1)
    runs, new = [], 0
    for entity in entities:
        run, created = _run(entity, billed, finance=finance)
        _approve_and_issue(run, finance=finance, executive=executive)
        runs.append(run)
        new += created
    sent = _deliver(runs, finance=finance)
    disputed = _dispute(runs)
    adjusted = _adjust_billed(projects.get("PRJ-DEMO-TM"), month=billed, consultant=consultant, pm=pm)
    locked = _lock_if_done(month=billed, finance=finance)
    fresh = []
    for entity in entities:
        run, created = _run(entity, last, finance=finance)
        runs.append(run)
        if created:
            fresh.append(run)
    if fresh:
        _review(fresh, finance=finance)
    new += len(fresh)
    return _summary(runs, new=new, adjusted=adjusted, locked=locked, sent=sent, disputed=disputed)
