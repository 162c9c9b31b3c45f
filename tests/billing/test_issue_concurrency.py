"""Issuing from many connections at once takes gapless, distinct numbers (PostgreSQL only): eight threads
issue 400 approved invoices of one legal entity; the counter row lock hands out 1…400 with no gap and no
duplicate, and every issue stores its own locked tax evidence and creditor reference. Also prints the rate
(issues per second) for the README; the rate is not asserted. And the queue's issue task
(``billing.tasks_issue``): issued once however often it runs, two copies at once included."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection

from backbone.errors import NotPermitted, TransitionNotAllowed
from backbone.models import NumberSequence
from billing import numbering
from billing.issuing import invoice_approve, invoice_issue
from billing.models import Invoice, InvoiceLine
from billing.pricing import invoice_refigure
from billing.tasks_issue import invoice_issue_task
from tax.models import TaxCalculation
from tax.services import tax_rates_load
from tests.customers.factories import BankAccountFactory, CustomerFactory, LegalEntityFactory

THREADS = 8
PER_THREAD = 50


def _approved_invoices(*, legal_entity, customer, approver, count: int) -> list[int]:
    """``count`` approved invoices with one manual line each, built in bulk: one is refigured through the
    tax engine and the rest copy its figures, so issuing (which refigures again) finds the approved total."""

    def invoice() -> Invoice:
        return Invoice(
            legal_entity=legal_entity,
            customer=customer,
            currency="EUR",
            payment_terms_days=30,
            created_by=approver,
        )

    def line(of: Invoice) -> InvoiceLine:
        return InvoiceLine(
            invoice=of,
            position=1,
            kind="manual",
            description="Advisory day",
            quantity=Decimal("1"),
            unit="C62",
            unit_price=Decimal("1200.0000"),
            net_amount=Decimal("1200.00"),
        )

    template = invoice()
    template.save()
    line(template).save()
    invoice_refigure(template)
    template.refresh_from_db()
    figured = template.lines.get()
    copies = [invoice() for _ in range(count - 1)]
    for copy in copies:
        for name in ("net_total", "tax_total", "gross_total", "tax_breakdown", "legal_notes"):
            setattr(copy, name, getattr(template, name))
    Invoice.objects.bulk_create(copies)
    lines = [line(copy) for copy in copies]
    for made in lines:
        made.tax_category, made.tax_rate = figured.tax_category, figured.tax_rate
    InvoiceLine.objects.bulk_create(lines)
    Invoice.objects.filter(legal_entity=legal_entity).update(status=Invoice.Status.APPROVED, approved_by=approver)
    return list(Invoice.objects.filter(legal_entity=legal_entity).order_by("pk").values_list("pk", flat=True))


@pytest.mark.django_db(transaction=True)
def test_eight_threads_issue_400_invoices_with_numbers_1_to_400_and_no_gap(django_user_model, capsys, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    # The tests' queue is synchronous: rendering 400 PDFs inline would measure WeasyPrint, not the counter.
    monkeypatch.setattr("billing.issuing.invoice_pdf_enqueue", lambda invoice: None)
    # Transactional tests start from an empty database: the data migrations' rows are rebuilt here.
    tax_rates_load()
    finance_group, _ = Group.objects.get_or_create(name="finance")
    finance_group.permissions.add(Permission.objects.get(content_type__app_label="billing", codename="issue_invoice"))
    finance = django_user_model.objects.create_user("finance", password="x")
    finance.groups.add(finance_group)
    legal_entity = LegalEntityFactory(legal_name="Concurrency GmbH", invoice_prefix="CC")
    BankAccountFactory(legal_entity=legal_entity, account_holder="Concurrency GmbH")
    customer = CustomerFactory(billing_entity=legal_entity)
    pks = _approved_invoices(legal_entity=legal_entity, customer=customer, approver=finance, count=THREADS * PER_THREAD)
    assert len(pks) == THREADS * PER_THREAD

    start = threading.Barrier(THREADS, timeout=30)
    failures: list[BaseException] = []
    finished: list[float] = []

    def issue(batch: list[int]) -> None:
        try:
            actor = django_user_model.objects.get(pk=finance.pk)  # own connection, own permission cache
            invoices = list(Invoice.objects.filter(pk__in=batch).order_by("pk"))
            start.wait()
            for invoice in invoices:
                invoice_issue(actor=actor, invoice=invoice)
            finished.append(time.perf_counter())
        except BaseException as exc:  # reported below: a thread must not swallow it
            failures.append(exc)
        finally:
            connection.close()

    batches = [pks[index::THREADS] for index in range(THREADS)]  # interleaved: neighbours race each other
    threads = [threading.Thread(target=issue, args=(batch,)) for batch in batches]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    elapsed = (max(finished) if finished else time.perf_counter()) - began

    assert not failures, failures[:3]
    assert not any(thread.is_alive() for thread in threads)
    issued = list(
        Invoice.objects.filter(legal_entity=legal_entity).values_list(
            "status", "sequence", "number", "creditor_reference", "fiscal_year"
        )
    )
    total = THREADS * PER_THREAD
    assert {row[0] for row in issued} == {Invoice.Status.ISSUED}
    assert sorted(row[1] for row in issued) == list(range(1, total + 1))  # distinct, 1…400, no gap
    year = issued[0][4]
    assert {row[2] for row in issued} == {f"CC-{year}-{n:06d}" for n in range(1, total + 1)}
    references = {row[3] for row in issued}
    assert len(references) == total and all(numbering.creditor_reference_valid(ref) for ref in references)
    assert NumberSequence.objects.get(key=f"invoice:{legal_entity.pk}:invoice", year=year).last_value == total
    assert TaxCalculation.objects.filter(purpose="invoice", locked_at__isnull=False).count() == total

    with capsys.disabled():
        print(
            f"\n[billing] {total} invoices issued by {THREADS} threads in {elapsed:.2f} s: "
            f"{total / elapsed:.0f} issues per second"
        )


# --- the queue's issue task -----------------------------------------------------------------------------------


@pytest.fixture
def approved_draft(make_draft, team, approved_time, people, bank_account):
    return invoice_approve(actor=people["executive"], invoice=make_draft(team))


def test_the_issue_task_issues_once_and_a_repeat_returns_the_same_number(approved_draft, people):
    number = invoice_issue_task(approved_draft.pk, people["finance"].pk)
    invoice = Invoice.objects.get(pk=approved_draft.pk)
    assert (invoice.status, invoice.number, invoice.issued_by) == (Invoice.Status.ISSUED, number, people["finance"])
    assert invoice_issue_task(approved_draft.pk, people["finance"].pk) == number  # retried: nothing happens
    assert NumberSequence.objects.get(key__startswith="invoice:").last_value == 1
    assert invoice_issue_task(0, people["finance"].pk) == "missing"


def test_the_issue_task_fails_with_the_reason_and_issues_nothing(make_draft, team, approved_time, people):
    draft = make_draft(team)
    with pytest.raises(TransitionNotAllowed, match="not approved yet"):
        invoice_issue_task(draft.pk, people["finance"].pk)
    with pytest.raises(NotPermitted, match="Only finance issues"):
        invoice_issue_task(draft.pk, people["consultant"].pk)
    assert Invoice.objects.get(pk=draft.pk).status == Invoice.Status.DRAFT
    assert not NumberSequence.objects.filter(key__startswith="invoice:").exists()


@pytest.mark.django_db(transaction=True)
def test_two_copies_of_the_issue_task_at_once_issue_one_number(django_user_model, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    monkeypatch.setattr("billing.issuing.invoice_pdf_enqueue", lambda invoice: None)
    tax_rates_load()
    finance_group, _ = Group.objects.get_or_create(name="finance")
    finance_group.permissions.add(Permission.objects.get(content_type__app_label="billing", codename="issue_invoice"))
    finance = django_user_model.objects.create_user("finance", password="x")
    finance.groups.add(finance_group)
    legal_entity = LegalEntityFactory(legal_name="Duplicate GmbH", invoice_prefix="DU")
    BankAccountFactory(legal_entity=legal_entity, account_holder="Duplicate GmbH")
    customer = CustomerFactory(billing_entity=legal_entity)
    (pk,) = _approved_invoices(legal_entity=legal_entity, customer=customer, approver=finance, count=1)
    start = threading.Barrier(2, timeout=30)
    numbers, failures = [], []

    def task() -> None:
        try:
            start.wait()
            numbers.append(invoice_issue_task(pk, finance.pk))
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=task) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    year = Invoice.objects.get(pk=pk).fiscal_year
    assert numbers == [f"DU-{year}-000001"] * 2
    assert NumberSequence.objects.get(key=f"invoice:{legal_entity.pk}:invoice", year=year).last_value == 1
