"""Invoice runs: approved unbilled items in, draft invoices out by the customer's consolidation, each item on
exactly one live invoice item, what cannot be billed recorded with its reason, and a failed or killed run
retried without billing anything twice."""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.history import audit_chain_verify
from backbone.models import AuditEntry
from billing import services
from billing.issuing import invoice_approve, invoice_issue
from billing.models import Invoice, InvoiceItem, InvoiceLine, InvoiceRun, RunException
from customers.models import Address, Customer, PipelineStage
from projects import milestones as ms
from projects import selectors as project_selectors
from projects import timesheets as ts
from projects.models import BillingRule, Milestone, Project, TimeEntry
from projects.services import deal_win
from tax.services import tax_rates_load
from tests.customers.factories import CustomerFactory, LegalEntityFactory
from tests.projects.factories import DealFactory, tm_quote

from .conftest import MON

PERIOD = {"period_start": dt.date(2026, 3, 1), "period_end": dt.date(2026, 3, 31)}


def start(people, legal_entity, **period):
    return services.invoice_run_start(actor=people["finance"], legal_entity=legal_entity, **{**PERIOD, **period})


def run_once(people, legal_entity, **period) -> InvoiceRun:
    run = start(people, legal_entity, **period)
    return services.invoice_run_execute(run.pk)


def approve_more(people, project, *days, category="Senior consultant", hours="8", person="sales"):
    entries = TimeEntry.objects.bulk_create(
        [
            TimeEntry(
                person=people[person],
                project=project,
                date=day,
                hours=Decimal(hours),
                labour_category=category,
                description=f"Work on {day.isoformat()}",
                status="submitted",
            )
            for day in days
        ]
    )
    ts.time_entries_approve(actor=people["pm"], entries=entries)
    return entries


def test_a_run_drafts_one_invoice_with_the_week_rolled_up_into_one_line(people, legal_entity, approved_time, team):
    run = run_once(people, legal_entity)
    assert (run.status, run.projects_total, run.projects_done, run.invoices_created, run.items_billed) == (
        "completed",
        1,
        1,
        1,
        5,
    )
    (invoice,) = run.invoices.all()
    assert (invoice.status, invoice.project, invoice.customer, invoice.number) == ("draft", team, team.customer, "")
    assert invoice.po_number == team.po_number and invoice.currency == "EUR"
    (line,) = invoice.lines.all()
    assert (line.kind, line.quantity, line.unit, line.unit_price, line.net_amount) == (
        "time",
        Decimal("40.0000"),
        "HUR",
        Decimal("150.0000"),
        Decimal("6000.00"),
    )
    assert (line.service_start, line.service_end) == (MON, MON + dt.timedelta(days=4))
    assert invoice.net_total == Decimal("6000.00") and invoice.gross_total == invoice.net_total + invoice.tax_total
    assert sorted(i.time_entry_id for i in line.items.all()) == sorted(e.pk for e in approved_time)
    assert not run.exceptions.exists()
    # Drafted is not billed: the entries stay approved until the invoice is issued.
    assert set(TimeEntry.objects.values_list("status", flat=True)) == {"approved"}


def test_a_second_run_bills_nothing_already_on_a_draft_and_picks_up_only_new_work(
    people, legal_entity, approved_time, team
):
    run_once(people, legal_entity)
    again = run_once(people, legal_entity)
    assert (again.invoices_created, again.items_billed) == (0, 0)
    approve_more(people, team, MON + dt.timedelta(days=7))
    third = run_once(people, legal_entity)
    assert (third.invoices_created, third.items_billed) == (1, 1)
    for entry in TimeEntry.objects.all():
        assert InvoiceItem.objects.filter(time_entry=entry, live=True).count() == 1


def test_the_rate_in_force_on_each_date_splits_the_lines(people, legal_entity, team, amend):
    amend(
        team,
        [{"op": "rate.set", "labour_category": "Senior consultant", "rate": "165", "effective_from": "2026-03-11"}],
        effective_from=dt.date(2026, 3, 11),
    )
    approve_more(people, team, MON, MON + dt.timedelta(days=1), MON + dt.timedelta(days=2))
    run = run_once(people, legal_entity)
    lines = list(run.invoices.get().lines.order_by("position"))
    assert [(line.quantity, line.unit_price, line.net_amount) for line in lines] == [
        (Decimal("16.0000"), Decimal("150.0000"), Decimal("2400.00")),
        (Decimal("8.0000"), Decimal("165.0000"), Decimal("1320.00")),
    ]


def test_an_item_without_a_rate_is_an_exception_and_the_rest_is_billed(people, legal_entity, team, approved_time):
    (odd,) = TimeEntry.objects.bulk_create(
        [
            TimeEntry(
                person=people["sales"],
                project=team,
                date=MON,
                hours=Decimal("1"),
                labour_category="Architect",
                description="Architecture review",
                status="submitted",
            )
        ]
    )
    ts.time_entries_approve(actor=people["pm"], entries=[odd])
    run = run_once(people, legal_entity)
    assert run.items_billed == 5
    (exception,) = run.exceptions.all()
    assert (exception.reason, exception.item_public_id, exception.item_kind) == ("rate_missing", odd.public_id, "time")
    assert "Architect" in exception.message


@pytest.mark.parametrize(
    ("breakage", "reason", "words"),
    [
        ("po", RunException.Reason.PO_MISSING, "purchase order number"),
        ("address", RunException.Reason.BILLING_ADDRESS_MISSING, "no billing address"),
        ("country", RunException.Reason.TAX_CONTEXT_INCOMPLETE, "country"),
        ("customer", RunException.Reason.CUSTOMER_NOT_BILLABLE, "on hold"),
    ],
)
def test_a_project_that_cannot_be_billed_lists_every_item_with_the_reason(
    people, legal_entity, approved_time, team, breakage, reason, words
):
    if breakage == "po":
        Project.objects.filter(pk=team.pk).update(po_number="", po_required=True)
    elif breakage == "address":
        Address.objects.filter(customer=team.customer).delete()
    elif breakage == "country":
        Address.objects.filter(customer=team.customer).update(country="")
    else:
        Customer.objects.filter(pk=team.customer_id).update(status=Customer.Status.ON_HOLD)
    run = run_once(people, legal_entity)
    assert run.status == "completed" and run.invoices_created == 0 and not Invoice.objects.exists()
    exceptions = list(run.exceptions.all())
    assert len(exceptions) == 5 and {e.reason for e in exceptions} == {reason}
    assert {e.item_public_id for e in exceptions} == {e.public_id for e in approved_time}
    assert words in exceptions[0].message.lower()
    assert sum(e.amount for e in exceptions) == Decimal("6000.00")


def test_per_customer_consolidation_puts_two_projects_on_one_invoice(
    people, legal_entity, team, approved_time, retainer_deal, win
):
    Customer.objects.filter(pk=team.customer_id).update(consolidation=Customer.Consolidation.PER_CUSTOMER)
    support = win(retainer_deal)
    run = run_once(people, legal_entity)
    (invoice,) = run.invoices.all()
    assert invoice.project is None and invoice.consolidation_key == "customer"
    kinds = list(invoice.lines.order_by("position").values_list("kind", "project_id"))
    assert ("time", team.pk) in kinds and ("retainer", support.pk) in kinds


@pytest.mark.parametrize("batch", [1, 25])
def test_per_customer_consolidation_gives_the_same_draft_whether_its_projects_share_a_batch_or_not(
    people, legal_entity, team, approved_time, retainer_deal, win, monkeypatch, batch
):
    """With one project a batch, the second project's lines join the draft the first batch made: numbered
    after its lines, and the draft refigured over all of them."""
    monkeypatch.setattr(services, "RUN_BATCH", batch)
    Customer.objects.filter(pk=team.customer_id).update(consolidation=Customer.Consolidation.PER_CUSTOMER)
    win(retainer_deal)
    run = run_once(people, legal_entity)
    (invoice,) = run.invoices.all()
    lines = list(invoice.lines.order_by("position"))
    assert [line.position for line in lines] == [1, 2] and {line.kind for line in lines} == {"time", "retainer"}
    assert invoice.net_total == sum(line.net_amount for line in lines) and invoice.tax_total > 0
    assert all(line.tax_category == "S" and line.tax_rate for line in lines)
    assert invoice.history.count() == 1 and invoice.history.get().history_change_reason == f"Drafted by {run.number}"
    assert invoice.history.get().history_user == people["finance"]
    assert AuditEntry.objects.filter(model_label="billing.invoice", object_pk=str(invoice.pk), action="+").exists()
    assert audit_chain_verify()[0]
    assert InvoiceItem.objects.filter(invoice=invoice, live=True).count() == 6


def test_per_project_consolidation_makes_one_invoice_per_project(
    people, legal_entity, team, approved_time, retainer_deal, win
):
    win(retainer_deal)
    run = run_once(people, legal_entity)
    assert run.invoices.count() == 2 and {i.consolidation_key.split(":")[0] for i in run.invoices.all()} == {"project"}


def test_retainer_months_are_billed_once(people, legal_entity, retainer_deal, win):
    support = win(retainer_deal)
    amount = BillingRule.objects.get(project=support, model="retainer").retainer_amount
    run = run_once(people, legal_entity, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 4, 30))
    lines = list(run.invoices.get().lines.order_by("position"))
    assert [(line.kind, line.description, line.net_amount) for line in lines] == [
        ("retainer", "Retainer March 2026", amount),
        ("retainer", "Retainer April 2026", amount),
    ]
    again = run_once(people, legal_entity, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 5, 31))
    assert [line.description for line in again.invoices.get().lines.all()] == ["Retainer May 2026"]


def test_an_accepted_milestone_is_billed_with_its_acceptance_note(people, legal_entity, fixed_project):
    milestone = fixed_project.milestones.order_by("planned_date").first()
    ms.milestone_accept(
        actor=people["pm"],
        milestone=milestone,
        accepted_by_name="Ida Berg",
        accepted_on=dt.date(2026, 4, 30),
        note="Designs approved as presented on 30 April.",
    )
    run = run_once(people, legal_entity, period_start=dt.date(2026, 4, 1), period_end=dt.date(2026, 4, 30))
    (line,) = run.invoices.get().lines.all()
    assert (line.kind, line.description, line.net_amount) == ("milestone", milestone.name, Decimal("12000.00"))
    assert line.note == "Designs approved as presented on 30 April."
    assert line.items.get().milestone == milestone
    assert Milestone.objects.get(pk=milestone.pk).status == "accepted"  # billed only when the invoice is issued


def test_a_failed_run_is_retried_and_bills_every_item_exactly_once(
    people, legal_entity, team, approved_time, retainer_deal, win, monkeypatch
):
    support = win(retainer_deal)
    real = services._plan_project

    def crash_on_the_second_project(run, project, *args):
        if project.pk == support.pk:
            raise RuntimeError("worker killed")
        return real(run, project, *args)

    monkeypatch.setattr(services, "RUN_BATCH", 1)  # one project a transaction: the first one's is committed
    monkeypatch.setattr(services, "_plan_project", crash_on_the_second_project)
    run = run_once(people, legal_entity)
    assert (run.status, run.projects_done) == ("failed", 1) and "worker killed" in run.error
    assert InvoiceItem.objects.filter(live=True).count() == 5  # the first project's drafts are kept
    # Retried, it finishes the rest and bills nothing twice.
    monkeypatch.setattr(services, "_plan_project", real)
    services.invoice_run_retry(actor=people["finance"], run=run)
    run = services.invoice_run_execute(run.pk)
    assert (run.status, run.attempts, run.invoices_created) == ("completed", 2, 2)
    for entry in approved_time:
        assert InvoiceItem.objects.filter(time_entry=entry, live=True).count() == 1
    assert InvoiceItem.objects.filter(project=support, live=True).count() == 1
    with pytest.raises(TransitionNotAllowed, match="only a failed run"):
        services.invoice_run_retry(actor=people["finance"], run=run)


def test_a_killed_worker_leaves_a_running_run_that_is_taken_over_after_the_lease(people, legal_entity, approved_time):
    run = start(people, legal_entity)
    InvoiceRun.objects.filter(pk=run.pk).update(status="running", attempts=1)
    assert services.invoice_run_execute(run.pk).status == "running"  # someone else holds it: do nothing
    assert not Invoice.objects.exists()
    InvoiceRun.objects.filter(pk=run.pk).update(updated_at=run.updated_at - services.RUN_LEASE * 2)
    services.invoice_run_retry(actor=people["finance"], run=run)
    assert services.invoice_run_execute(run.pk).status == "completed"
    assert InvoiceItem.objects.filter(live=True).count() == 5


def test_the_database_refuses_a_second_live_item_of_the_same_entry(people, legal_entity, approved_time):
    run_once(people, legal_entity)
    item = InvoiceItem.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceItem.objects.create(
            line=item.line,
            invoice=item.invoice,
            kind="time",
            project=item.project,
            time_entry=item.time_entry,
            date=item.date,
            description="again",
            quantity=1,
            unit_price=1,
            amount=1,
        )
    InvoiceItem.objects.filter(pk=item.pk).update(live=False)  # a discarded draft or a released credit
    InvoiceItem.objects.create(
        line=item.line,
        invoice=item.invoice,
        kind="time",
        project=item.project,
        time_entry=item.time_entry,
        date=item.date,
        description="billed again after release",
        quantity=1,
        unit_price=1,
        amount=1,
    )


def test_billing_a_project_costs_the_same_queries_whatever_the_number_of_entries(people, legal_entity, team):
    approve_more(people, team, MON)
    small = start(people, legal_entity)
    with CaptureQueriesContext(connection) as few:
        services.invoice_run_execute(small.pk)
    approve_more(people, team, *[MON + dt.timedelta(days=d) for d in range(1, 22)], hours="2")
    big = start(people, legal_entity)
    with CaptureQueriesContext(connection) as many:
        services.invoice_run_execute(big.pk)
    assert InvoiceItem.objects.filter(invoice__run=big).count() == 21
    assert len(many) == len(few), (len(few), len(many))


def test_starting_checks_who_and_the_period(people, legal_entity, approved_time, django_capture_on_commit_callbacks):
    for who in ("pm", "sales", "consultant", "executive", "auditor"):
        with pytest.raises(NotPermitted):
            services.invoice_run_start(actor=people[who], legal_entity=legal_entity, **PERIOD)
    with pytest.raises(ValidationFailed) as exc:
        start(people, legal_entity, period_end=dt.date(2099, 1, 1))
    assert "future" in exc.value.errors["period_end"][0]
    with pytest.raises(ValidationFailed) as exc:
        start(people, legal_entity, period_start=dt.date(2026, 4, 1))
    assert "ends before it starts" in exc.value.errors["period_end"][0]
    with django_capture_on_commit_callbacks(execute=True):
        run = start(people, legal_entity)  # the queue runs synchronously in the tests
    assert run.number.startswith("RUN-")
    assert InvoiceRun.objects.get(pk=run.pk).status == "completed" and InvoiceLine.objects.count() == 1
    InvoiceRun.objects.filter(pk=run.pk).update(status="running")
    with pytest.raises(Conflict, match="still running"):
        start(people, legal_entity)


def test_every_time_item_is_priced_as_unbilled_items_prices_it_across_rate_changes_and_adjustments(
    people, legal_entity, team, amend
):
    """The run copies time in the database: each item must still carry the selector's kind, hours, rate and
    amount (hours x rate, half up: 0.25 h at 150.10 is 37.53), and sit on the line of its category and rate,
    also when a rate comes back after a change (150, then 150.10, then 150 again)."""
    rate = "Senior consultant"
    amend(
        team,
        [{"op": "rate.set", "labour_category": rate, "rate": "150.10", "effective_from": "2026-03-11"}],
        effective_from=dt.date(2026, 3, 11),
    )
    amend(
        team,
        [{"op": "rate.set", "labour_category": rate, "rate": "150", "effective_from": "2026-03-13"}],
        effective_from=dt.date(2026, 3, 13),
    )
    day = [MON + dt.timedelta(days=n) for n in range(8)]
    approve_more(people, team, day[0], day[1], day[4])
    approve_more(people, team, day[2], day[3], hours="0.25")
    approve_more(people, team, day[0], category="Developer", hours="1.75", person="consultant")
    (billed,) = approve_more(people, team, day[7])
    ts.time_entries_mark_billed(entries=[billed], invoice_ref="DE-1")
    adjustment = ts.time_entry_adjust(actor=people["sales"], original=billed, hours="-1.5", description="Shorter")
    ts.timesheet_submit(actor=people["sales"], week_start=day[7])
    ts.time_entries_approve(actor=people["pm"], entries=[adjustment])
    priced = project_selectors.unbilled_items(project=team, up_to=PERIOD["period_end"])
    assert len(priced) == 7

    run = run_once(people, legal_entity)

    items = list(InvoiceItem.objects.filter(invoice__run=run).select_related("line"))
    assert {i.time_entry_id: (i.kind, i.quantity, i.unit_price, i.amount, i.date, i.description) for i in items} == {
        p.entry.pk: (p.kind, p.quantity, p.unit_price, p.amount, p.date, p.description) for p in priced
    }
    assert {i.amount for i in items if i.unit_price == Decimal("150.10")} == {Decimal("37.53")}
    developer = project_selectors.rate_on(project=team, labour_category="Developer", day=day[0])
    lines = list(run.invoices.get().lines.order_by("position"))
    assert [(line.kind, line.labour_category, line.quantity, line.unit_price) for line in lines] == [
        ("time", rate, Decimal("24"), Decimal("150")),
        ("time", "Developer", Decimal("1.75"), developer),
        ("time", rate, Decimal("0.5"), Decimal("150.10")),
        ("adjustment", rate, Decimal("-1.5"), Decimal("150")),
    ]
    assert [line.net_amount for line in lines] == [
        Decimal("3600.00"),
        (Decimal("1.75") * developer).quantize(Decimal("0.01")),
        Decimal("75.05"),
        Decimal("-225.00"),
    ]
    assert (lines[0].service_start, lines[0].service_end) == (day[0], day[4])
    for line in lines:
        mine = [i for i in items if i.line_id == line.pk]
        assert sum(i.quantity for i in mine) == line.quantity and {i.unit_price for i in mine} == {line.unit_price}
    assert len({i.public_id for i in items}) == len(items) and {i.public_id.version for i in items} == {4}
    assert all(i.live and i.created_at and i.person_name == "" for i in items)


# --- the items' guard runs once a statement (PostgreSQL, billing/migrations/0009) ------------------------------

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the triggers exist on PostgreSQL only")


@pytest.fixture
def issued_and_draft(people, bank_account, make_draft, team, approved_time):
    """An issued invoice of the five approved days, and a draft of one more day on the same project."""
    invoice = invoice_approve(actor=people["executive"], invoice=make_draft(team))
    issued = invoice_issue(actor=people["finance"], invoice=invoice)
    approve_more(people, team, MON + dt.timedelta(days=7))
    return issued, make_draft(team)


def _retainer_item(invoice: Invoice, month: int) -> InvoiceItem:
    return InvoiceItem(
        line=invoice.lines.first(),
        invoice=invoice,
        kind="retainer",
        project=invoice.project,
        retainer_month=dt.date(2026, month, 1),
        date=dt.date(2026, month, 1),
        description="Retainer",
        quantity=1,
        unit_price=1,
        amount=1,
    )


def _sql(statement: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


@postgres_only
def test_a_statement_adding_one_item_to_an_issued_invoice_among_draft_items_is_refused_whole(issued_and_draft):
    issued, draft = issued_and_draft
    before = InvoiceItem.objects.filter(invoice=draft).count()
    with pytest.raises(IntegrityError, match="would belong to an issued invoice: INSERT refused"), transaction.atomic():
        InvoiceItem.objects.bulk_create([_retainer_item(draft, 5), _retainer_item(issued, 6), _retainer_item(draft, 7)])
    assert InvoiceItem.objects.filter(invoice=draft).count() == before
    InvoiceItem.objects.bulk_create([_retainer_item(draft, 5), _retainer_item(draft, 7)])  # drafts: as many as needed
    assert InvoiceItem.objects.filter(invoice=draft).count() == before + 2


@postgres_only
def test_one_statement_may_release_items_of_an_issued_invoice_and_change_draft_items(issued_and_draft):
    issued, draft = issued_and_draft
    _sql(
        "UPDATE billing_invoiceitem SET live = CASE WHEN invoice_id = %s THEN false ELSE live END, "
        "description = CASE WHEN invoice_id = %s THEN description ELSE 'Edited' END, updated_at = now() "
        "WHERE invoice_id IN (%s, %s)",
        [issued.pk, issued.pk, issued.pk, draft.pk],
    )
    assert not InvoiceItem.objects.filter(invoice=issued, live=True).exists()
    assert set(InvoiceItem.objects.filter(invoice=draft).values_list("description", flat=True)) == {"Edited"}


@postgres_only
def test_releasing_one_issued_item_does_not_let_another_change_in_the_same_statement(issued_and_draft):
    issued, _ = issued_and_draft
    first, second = InvoiceItem.objects.filter(invoice=issued).order_by("pk")[:2]
    with pytest.raises(IntegrityError, match="only releasing it is allowed"), transaction.atomic():
        _sql(
            "UPDATE billing_invoiceitem SET live = CASE WHEN id = %s THEN false ELSE live END, "
            "amount = CASE WHEN id = %s THEN 1 ELSE amount END WHERE id IN (%s, %s)",
            [first.pk, second.pk, first.pk, second.pk],
        )
    with pytest.raises(IntegrityError, match="only releasing it is allowed"), transaction.atomic():
        _sql("UPDATE billing_invoiceitem SET id = id + 100000, live = false WHERE id = %s", [first.pk])
    assert InvoiceItem.objects.filter(invoice=issued, live=True).count() == 5
    assert InvoiceItem.objects.get(pk=second.pk).amount == second.amount


@postgres_only
def test_a_draft_item_is_never_moved_onto_an_issued_invoice(issued_and_draft):
    issued, draft = issued_and_draft
    item = InvoiceItem.objects.filter(invoice=draft).get()
    with pytest.raises(IntegrityError, match="would belong to an issued invoice: UPDATE refused"), transaction.atomic():
        InvoiceItem.objects.filter(pk=item.pk).update(invoice=issued, line=issued.lines.first())
    with pytest.raises(IntegrityError, match="DELETE refused"), transaction.atomic():
        InvoiceItem.objects.filter(invoice__in=[issued, draft]).delete()
    assert InvoiceItem.objects.get(pk=item.pk).invoice_id == draft.pk


@pytest.mark.django_db(transaction=True)
def test_an_item_added_while_its_invoice_is_being_issued_waits_for_the_issue_and_is_refused(django_user_model):
    """The guard reads the invoice's status after locking it: a writer racing an issuing transaction waits
    for its commit and then sees the invoice issued (a status read from the snapshot would let it through)."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    tax_rates_load()  # transactional tests start from an empty database
    for code, position, outcome in (("won", 40, "won"), ("lost", 50, "lost")):
        PipelineStage.objects.get_or_create(
            code=code,
            defaults={"name": code.title(), "position": position, "default_probability": 0, "outcome": outcome},
        )
    admin = django_user_model.objects.create_superuser("root", password="x")
    pm = django_user_model.objects.create_user("pm", password="x")
    pm.groups.add(Group.objects.get_or_create(name="project_manager")[0])
    deal = DealFactory(customer=CustomerFactory(owner=admin), legal_entity=LegalEntityFactory())
    tm_quote(deal)
    project, _ = deal_win(actor=admin, deal=deal, project_manager=pm)
    invoice = Invoice.objects.create(
        legal_entity=project.legal_entity, customer=project.customer, project=project, currency=project.currency
    )
    InvoiceLine.objects.create(
        invoice=invoice, position=1, kind="retainer", description="Retainer", quantity=1, unit_price=1, net_amount=1
    )
    locked, failures = threading.Event(), []

    def issue() -> None:
        try:
            with transaction.atomic():
                Invoice.objects.select_for_update().get(pk=invoice.pk)
                Invoice.objects.filter(pk=invoice.pk).update(
                    status="issued", number="T-000001", issue_date=dt.date(2026, 3, 31), due_date=dt.date(2026, 4, 30)
                )
                locked.set()
                time.sleep(0.5)
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            connection.close()

    issuer = threading.Thread(target=issue)
    issuer.start()
    assert locked.wait(10)
    started = time.monotonic()
    with pytest.raises(IntegrityError, match="would belong to an issued invoice"), transaction.atomic():
        _retainer_item(invoice, 5).save()
    waited = time.monotonic() - started
    issuer.join(10)
    assert not failures and waited > 0.2, (failures, waited)
    assert not InvoiceItem.objects.exists()
