"""Disputes (``billing.disputes``): raised from the portal or recorded by finance on issued invoices only; one
open dispute per invoice (a second raise adds to it, also under concurrency); finance is notified; every field
validated with nothing half-saved; resolved or rejected by finance with a resolution, once; the selectors
collections will use; and the invoice list's "open dispute" flag in the same single query."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.http import Http404
from django.urls import reverse

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.models import Notification
from billing import disputes as d
from billing import selectors as s
from billing.credit_notes import credit_note_create
from billing.issuing import invoice_approve, invoice_issue
from billing.models import CreditReason, Dispute, Invoice
from tests.customers.factories import CustomerFactory, LegalEntityFactory

pytestmark = pytest.mark.django_db

CLIENT = {"contact_name": "Ida Berg", "contact_email": "ida.berg@client.example"}


def approve_and_issue(invoice: Invoice, people) -> Invoice:
    invoice_approve(actor=people["executive"], invoice=invoice)
    return invoice_issue(actor=people["finance"], invoice=Invoice.objects.get(pk=invoice.pk))


@pytest.fixture
def issued(make_draft, team, approved_time, people, bank_account) -> Invoice:
    """Five days of 8 h at 150: 6,000.00 net, 7,140.00 gross (German VAT)."""
    return approve_and_issue(make_draft(team), people)


def disputes_told():
    """The notifications about disputes (the fixtures' own, about projects, aside)."""
    return Notification.objects.filter(title__contains="dispute")


def raise_(invoice, **changes) -> Dispute:
    arguments = {"reason": "rate", "message": "Day 3 was billed at the senior rate.", **CLIENT, **changes}
    return d.dispute_raise(invoice=invoice, **arguments)


# --- raising ----------------------------------------------------------------------------------------------


def test_a_portal_dispute_opens_one_and_tells_finance(issued, people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        dispute = raise_(issued)
    dispute.refresh_from_db()
    assert (dispute.invoice_id, dispute.status, dispute.source, dispute.reason) == (issued.pk, "open", "portal", "rate")
    assert (dispute.contact_name, dispute.contact_email) == ("Ida Berg", "ida.berg@client.example")
    assert dispute.message == "Day 3 was billed at the senior rate."
    record = dispute.history.get()
    assert record.history_change_reason == "Dispute raised by Ida Berg (client portal): Wrong rate or price"
    assert record.history_user is None  # the client has no account

    notice = disputes_told().get(user=people["finance"])
    assert notice.title == f"{issued.number} is disputed: Wrong rate or price"
    assert notice.body == "Ida Berg <ida.berg@client.example> (client portal): Day 3 was billed at the senior rate."
    assert notice.url == reverse("billing:invoice-detail", kwargs={"public_id": issued.public_id}) + "#disputes"
    assert not disputes_told().exclude(user=people["finance"]).exists()  # finance only


def test_a_second_raise_while_one_is_open_adds_to_it_and_tells_finance_again(issued, people):
    first = raise_(issued)
    assert first.added_to is False
    second = raise_(issued, reason="tax", message="And the VAT should be reverse charged.")
    assert second.pk == first.pk and second.added_to is True
    assert Dispute.objects.filter(invoice=issued).count() == 1
    second.refresh_from_db()
    assert second.reason == "rate"  # the first reason stays; the added one is in the message
    assert second.message.startswith("Day 3 was billed at the senior rate.\n\n— ")
    assert second.message.endswith("Ida Berg (client portal), Wrong tax:\nAnd the VAT should be reverse charged.")
    assert second.history.first().history_change_reason == "Added to by Ida Berg (client portal): Wrong tax"
    titles = list(disputes_told().filter(user=people["finance"]).order_by("id").values_list("title", flat=True))
    assert titles == [
        f"{issued.number} is disputed: Wrong rate or price",
        f"More on the dispute of {issued.number}: Wrong tax",
    ]


def test_a_client_adding_to_a_dispute_finance_recorded_leaves_their_contact(issued, people):
    recorded = d.dispute_record(actor=people["finance"], invoice=issued, reason="rate", message="Phoned about day 3.")
    assert (recorded.contact_name, recorded.contact_email) == ("", "")
    added = raise_(issued, message="As discussed on the phone.")
    added.refresh_from_db()
    assert added.pk == recorded.pk and added.source == "finance"
    assert (added.contact_name, added.contact_email) == ("Ida Berg", "ida.berg@client.example")


def test_after_it_is_closed_the_next_raise_opens_a_new_dispute(issued, people):
    first = raise_(issued)
    d.dispute_resolve(actor=people["finance"], dispute=first, outcome="rejected", resolution="The rate is agreed.")
    second = raise_(issued, reason="amount", message="Still wrong.")
    assert second.pk != first.pk and second.added_to is False and second.status == "open"
    assert d.open_dispute(issued) == second


def test_a_thread_that_grows_too_long_is_refused_without_change(issued):
    dispute = raise_(issued, message="x" * d.MESSAGE_MAX)
    for _ in range(2):
        raise_(issued, message="y" * d.MESSAGE_MAX)
    before = Dispute.objects.get(pk=dispute.pk).message
    with pytest.raises(ValidationFailed) as refused:
        raise_(issued, message="z" * d.MESSAGE_MAX)
    assert "too long already" in refused.value.message and "message" in refused.value.errors
    assert Dispute.objects.get(pk=dispute.pk).message == before


def test_only_issued_invoices_can_be_disputed(make_draft, team, approved_time, people, bank_account):
    draft = make_draft(team)
    with pytest.raises(TransitionNotAllowed) as refused:
        raise_(draft)
    assert "only issued invoices can be disputed" in refused.value.message and refused.value.status_code == 409
    invoice_approve(actor=people["executive"], invoice=draft)
    with pytest.raises(TransitionNotAllowed):
        raise_(Invoice.objects.get(pk=draft.pk))
    assert not Dispute.objects.exists() and not disputes_told().exists()


def test_a_credit_note_cannot_be_disputed(issued, people):
    note = credit_note_create(actor=people["finance"], invoice=issued, full=True, reason=CreditReason.GOODWILL)
    note = approve_and_issue(note, people)
    with pytest.raises(TransitionNotAllowed) as refused:
        raise_(note)
    assert "credit note; it asks for no payment" in refused.value.message


def test_an_invoice_credited_in_full_cannot_be_disputed_but_a_partly_credited_one_can(issued, people):
    line = issued.lines.order_by("position").first()
    partial = credit_note_create(
        actor=people["finance"], invoice=issued, lines=[{"line": line, "amount": Decimal("200")}], reason="goodwill"
    )
    approve_and_issue(partial, people)
    assert raise_(issued).status == "open"
    Dispute.objects.all().delete()
    rest = credit_note_create(actor=people["finance"], invoice=issued, full=True, reason=CreditReason.PRICING_ERROR)
    approve_and_issue(rest, people)
    with pytest.raises(Conflict) as refused:
        raise_(issued)
    assert "credited in full" in refused.value.message
    assert not Dispute.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"reason": ""}, "reason", "Choose what is wrong"),
        ({"reason": "angry"}, "reason", "'angry' is no reason"),
        ({"message": "   "}, "message", "Say what is wrong"),
        ({"message": "x" * (d.MESSAGE_MAX + 1)}, "message", "At most 5,000 characters"),
        ({"contact_name": ""}, "contact_name", "Give your name"),
        ({"contact_name": "N" * 151}, "contact_name", "At most 150 characters"),
        ({"contact_email": ""}, "contact_email", "Give your email address"),
        ({"contact_email": "ida at client"}, "contact_email", "is not an email address"),
        ({"source": "fax"}, "source", "'fax' is no source"),
    ],
)
def test_raise_names_the_field_at_fault_and_saves_nothing(issued, changes, field, says):
    with pytest.raises(ValidationFailed) as refused:
        raise_(issued, **changes)
    assert field in refused.value.errors and says in refused.value.errors[field][0]
    assert refused.value.message.startswith("The dispute was not recorded:")
    assert not Dispute.objects.exists() and not disputes_told().exists()


def test_a_raise_naming_finance_as_source_needs_finance(issued):
    with pytest.raises(NotPermitted):
        raise_(issued, source="finance")


# --- finance records one ----------------------------------------------------------------------------------


def test_finance_records_a_phoned_in_dispute_and_the_rest_of_finance_is_told(issued, people, django_user_model):
    colleague = django_user_model.objects.create_user(username="finance2", password="pw")
    colleague.groups.add(Group.objects.get(name="finance"))
    dispute = d.dispute_record(
        actor=people["finance"], invoice=issued, reason="work_not_done", message="Phoned: milestone 2 not accepted."
    )
    assert (dispute.source, dispute.contact_name, dispute.contact_email) == ("finance", "", "")
    record = dispute.history.get()
    assert record.history_user == people["finance"]
    assert record.history_change_reason.startswith("Dispute raised by finance (recorded by finance)")
    assert list(disputes_told().values_list("user__username", flat=True)) == ["finance2"]


@pytest.mark.parametrize("name", ["pm", "executive", "auditor", "sales", "consultant"])
def test_only_finance_records_disputes(issued, people, name):
    with pytest.raises(NotPermitted):
        d.dispute_record(actor=people[name], invoice=issued, reason="other", message="Heard so.")
    assert not Dispute.objects.exists()


# --- resolving --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["resolved", "rejected"])
def test_finance_closes_a_dispute_with_the_resolution(issued, people, outcome):
    dispute = raise_(issued)
    closed = d.dispute_resolve(
        actor=people["finance"], dispute=dispute, outcome=outcome, resolution="  Credit note CN-1 issued.  "
    )
    closed.refresh_from_db()
    assert (closed.status, closed.resolution, closed.resolved_by) == (
        outcome,
        "Credit note CN-1 issued.",
        people["finance"],
    )
    assert closed.resolved_at is not None
    record = closed.history.first()
    assert record.history_user == people["finance"]
    assert record.history_change_reason == f"Dispute {outcome}: Credit note CN-1 issued."
    assert d.open_dispute(issued) is None and not d.invoice_has_open_dispute(issued)


def test_an_admin_resolves_too(issued, people):
    assert d.dispute_resolve(actor=people["admin"], dispute=raise_(issued), outcome="resolved", resolution="Done.")


@pytest.mark.parametrize(
    ("outcome", "resolution", "field"),
    [
        ("resolved", "", "resolution"),
        ("resolved", "x" * (d.RESOLUTION_MAX + 1), "resolution"),
        ("open", "Nothing.", "outcome"),
        ("", "Nothing.", "outcome"),
    ],
)
def test_a_resolution_and_an_outcome_are_required(issued, people, outcome, resolution, field):
    dispute = raise_(issued)
    with pytest.raises(ValidationFailed) as refused:
        d.dispute_resolve(actor=people["finance"], dispute=dispute, outcome=outcome, resolution=resolution)
    assert field in refused.value.errors
    assert Dispute.objects.get(pk=dispute.pk).status == "open"


def test_a_closed_dispute_is_not_closed_again(issued, people):
    dispute = raise_(issued)
    d.dispute_resolve(actor=people["finance"], dispute=dispute, outcome="resolved", resolution="Credited.")
    with pytest.raises(TransitionNotAllowed) as refused:
        d.dispute_resolve(actor=people["admin"], dispute=dispute, outcome="rejected", resolution="No.")
    assert refused.value.message == "This dispute was resolved already by finance; it cannot be closed again."
    assert Dispute.objects.get(pk=dispute.pk).resolution == "Credited."


@pytest.mark.parametrize("name", ["pm", "executive", "auditor", "sales", "consultant"])
def test_only_finance_and_admins_resolve(issued, people, name):
    dispute = raise_(issued)
    with pytest.raises(NotPermitted):
        d.dispute_resolve(actor=people[name], dispute=dispute, outcome="resolved", resolution="Fine.")
    assert Dispute.objects.get(pk=dispute.pk).status == "open"


# --- reads ------------------------------------------------------------------------------------------------


def test_the_selectors_collections_will_use(issued, people):
    assert d.open_dispute(issued) is None and not d.invoice_has_open_dispute(issued)
    old = raise_(issued)
    d.dispute_resolve(actor=people["finance"], dispute=old, outcome="rejected", resolution="Stands.")
    current = raise_(issued, reason="po", message="Our PO is 4711.")
    assert d.open_dispute(issued) == current and d.invoice_has_open_dispute(issued)
    assert list(d.disputes_of(issued)) == [current, old]  # open first
    flagged = Invoice.objects.annotate(disputed=d.open_dispute_exists()).filter(disputed=True)
    assert list(flagged) == [issued]


def test_access_dispute_follows_the_invoice_scope(issued, people):
    dispute = raise_(issued)
    for name in ("pm", "finance", "executive", "auditor", "admin"):
        assert d.access_dispute(user=people[name], public_id=dispute.public_id) == dispute
    for name in ("pm2", "sales", "consultant"):
        with pytest.raises(Http404):
            d.access_dispute(user=people[name], public_id=dispute.public_id)
    with pytest.raises(Http404):
        d.access_dispute(user=people["finance"], public_id="not-a-uuid")


def test_the_invoice_list_flags_open_disputes_in_one_query(issued, people, django_assert_num_queries):
    draft = Invoice.objects.create(
        legal_entity=issued.legal_entity, customer=issued.customer, currency="EUR", created_by=people["finance"]
    )
    raise_(issued)
    with django_assert_num_queries(1):
        rows = {invoice.pk: invoice.has_open_dispute for invoice in s.invoice_list(user=people["finance"])}
    assert rows == {issued.pk: True, draft.pk: False}
    d.dispute_resolve(actor=people["finance"], dispute=d.open_dispute(issued), outcome="resolved", resolution="Ok.")
    with django_assert_num_queries(1):
        rows = {invoice.pk: invoice.has_open_dispute for invoice in s.invoice_list(user=people["finance"])}
    assert rows == {issued.pk: False, draft.pk: False}


# --- concurrency ------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_raises_at_the_same_moment_open_one_dispute():
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    entity = LegalEntityFactory()
    invoice = Invoice.objects.create(
        legal_entity=entity,
        customer=CustomerFactory(billing_entity=entity),
        currency="EUR",
        status=Invoice.Status.ISSUED,
        number="T-2026-000001",
        issue_date=dt.date(2026, 3, 31),
        due_date=dt.date(2026, 4, 30),
        net_total=Decimal("100.00"),
        gross_total=Decimal("119.00"),
    )
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def client(index: int) -> None:
        try:
            start.wait()
            raise_(invoice, message=f"Message {index}")
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    dispute = Dispute.objects.get(invoice=invoice)
    assert dispute.status == "open"
    assert sorted(f"Message {i}" in dispute.message for i in range(4)) == [True] * 4
