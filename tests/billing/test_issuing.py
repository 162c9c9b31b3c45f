"""Approving (maker-checker with approval limits), issuing (gapless number, frozen parties, stored tax
evidence, billed sources), sending back and discarding invoices; and on PostgreSQL the triggers that keep an
issued invoice, its lines and its items as they were issued."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.models import Notification, NumberSequence, UserProfile
from billing import issuing, numbering
from billing.issuing import invoice_approve, invoice_discard, invoice_issue, invoice_return_to_draft
from billing.models import Invoice, InvoiceItem, InvoiceLine
from billing.pricing import invoice_refigure
from customers.models import Address, BankAccount, LegalEntity, LegalEntityRegistration, TaxRegistration
from projects import milestones as ms
from projects.models import EntryStatus, Milestone, TimeEntry
from tax.models import TaxCalculation
from tax.services import evidence_digest

TODAY = timezone.localdate


def set_limit(user, amount: str):
    """Give ``user`` an approval limit (a fresh profile read: no stale cache on the object)."""
    UserProfile.objects.update_or_create(user=user, defaults={"approval_limit_amount": Decimal(amount)})
    user._state.fields_cache.pop("profile", None)
    return user


@pytest.fixture
def finance_people(people, django_user_model):
    """``finance`` may approve 10,000 alone; ``finance_high`` 100,000; ``finance_low`` 1,000."""
    made = {"finance": set_limit(people["finance"], "10000")}
    for username, limit in (("finance_high", "100000"), ("finance_low", "1000")):
        user = django_user_model.objects.create_user(username=username, password="pw")
        user.groups.add(Group.objects.get(name="finance"))
        UserProfile.objects.create(user=user, approval_limit_amount=Decimal(limit))
        made[username] = django_user_model.objects.get(pk=user.pk)
    return made


@pytest.fixture
def draft(make_draft, team, approved_time, finance_people):
    """The T&M project's five approved days (6,000.00 net) as a draft made by ``finance``."""
    return make_draft(team)


@pytest.fixture
def approved(draft, people):
    """The draft approved by an executive alone (executives are not bound by a limit)."""
    return invoice_approve(actor=people["executive"], invoice=draft)


def manual_invoice(*, legal_entity, customer, people, kind="invoice", amount="100.00", status="approved"):
    """A minimal invoice with one manual line (no source items), refigured; approved unless told otherwise."""
    invoice = Invoice.objects.create(
        kind=kind,
        legal_entity=legal_entity,
        customer=customer,
        currency="EUR",
        created_by=people["finance"],
        payment_terms_days=14,
    )
    InvoiceLine.objects.create(
        invoice=invoice,
        position=1,
        kind="manual",
        description="Workshop",
        quantity=Decimal("1"),
        unit="C62",
        unit_price=Decimal(amount),
        net_amount=Decimal(amount),
    )
    invoice_refigure(invoice)
    Invoice.objects.filter(pk=invoice.pk).update(status=status, approved_by=people["executive"])
    return Invoice.objects.get(pk=invoice.pk)


def last_value(key_suffix: str = "invoice") -> int | None:
    row = NumberSequence.objects.filter(key__endswith=f":{key_suffix}").first()
    return row.last_value if row else None


# --- approval ---------------------------------------------------------------------------------------------


def test_finance_approves_a_draft_within_its_limit_alone(draft, finance_people):
    assert Decimal("0") < draft.gross_total <= Decimal("10000")
    invoice = invoice_approve(actor=finance_people["finance"], invoice=draft)
    assert invoice.status == Invoice.Status.APPROVED
    assert invoice.approved_by == finance_people["finance"] and invoice.approved_at is not None
    assert invoice.second_approved_by is None
    record = invoice.history.first()
    assert record.history_user == finance_people["finance"] and record.history_change_reason.startswith("Approved")
    assert invoice.number == "" and NumberSequence.objects.filter(key__startswith="invoice:").count() == 0


def test_above_the_limit_the_first_approval_is_recorded_and_the_draft_waits(draft, finance_people, people):
    invoice = invoice_approve(actor=finance_people["finance_low"], invoice=draft)
    assert invoice.status == Invoice.Status.DRAFT
    assert invoice.approved_by == finance_people["finance_low"] and invoice.approved_at is not None
    assert "above the approval limit of €1,000.00" in invoice.history.first().history_change_reason
    told = set(Notification.objects.filter(title__contains="second approval").values_list("user__username", flat=True))
    assert told == {"executive", "finance", "finance_high"}  # finance's 10,000 covers it; never the first approver


def test_an_executive_gives_the_second_approval(draft, finance_people, people):
    invoice_approve(actor=finance_people["finance_low"], invoice=draft)
    invoice = invoice_approve(actor=people["executive"], invoice=draft)
    assert invoice.status == Invoice.Status.APPROVED
    assert (invoice.approved_by, invoice.second_approved_by) == (finance_people["finance_low"], people["executive"])
    assert invoice.second_approved_at is not None


def test_an_admin_or_finance_whose_limit_covers_it_gives_the_second_approval(
    draft, finance_people, people, make_draft, team
):
    invoice_approve(actor=finance_people["finance_low"], invoice=draft)
    invoice = invoice_approve(actor=finance_people["finance_high"], invoice=draft)
    assert invoice.status == Invoice.Status.APPROVED and invoice.second_approved_by == finance_people["finance_high"]

    invoice_discard(actor=people["finance"], invoice=invoice, reason="Try the admin")
    again = make_draft(team)
    invoice_approve(actor=finance_people["finance_low"], invoice=again)
    assert invoice_approve(actor=people["admin"], invoice=again).second_approved_by == people["admin"]


def test_a_second_approver_below_the_amount_is_refused_naming_limit_and_amount(draft, finance_people):
    set_limit(finance_people["finance_high"], "2000")
    invoice_approve(actor=finance_people["finance_low"], invoice=draft)
    amount = f"€{draft.gross_total:,.2f}"
    with pytest.raises(NotPermitted, match=re.escape(f"totals {amount}, above your approval limit of €2,000.00 too")):
        invoice_approve(actor=finance_people["finance_high"], invoice=draft)
    assert Invoice.objects.get(pk=draft.pk).second_approved_by is None


def test_the_same_person_cannot_give_both_approvals(draft, finance_people):
    invoice_approve(actor=finance_people["finance_low"], invoice=draft)
    with pytest.raises(NotPermitted, match="nobody gives both approvals"):
        invoice_approve(actor=finance_people["finance_low"], invoice=draft)


def test_nobody_approves_their_own_draft_above_their_own_limit(draft, finance_people, people):
    set_limit(finance_people["finance"], "500")  # ``finance`` made the draft
    amount = f"€{draft.gross_total:,.2f}"
    with pytest.raises(NotPermitted, match=rf"You created this draft; its total of {amount} is above your own .*€500"):
        invoice_approve(actor=finance_people["finance"], invoice=draft)
    # not as the second approver either
    invoice_approve(actor=finance_people["finance_low"], invoice=draft)
    with pytest.raises(NotPermitted, match="You created this draft"):
        invoice_approve(actor=finance_people["finance"], invoice=draft)
    # an admin who made a draft is held to their own (zero) limit as well
    Invoice.objects.filter(pk=draft.pk).update(created_by=people["admin"], approved_by=None, approved_at=None)
    with pytest.raises(NotPermitted, match="You created this draft"):
        invoice_approve(actor=people["admin"], invoice=draft)


def test_a_changed_total_after_the_first_approval_needs_both_approvals_again(draft, finance_people, people):
    invoice_approve(actor=finance_people["finance_low"], invoice=draft)
    InvoiceLine.objects.filter(invoice=draft, position=1).update(net_amount=Decimal("2000.00"))
    with pytest.raises(Conflict, match="after finance_low's first approval"):
        invoice_approve(actor=people["executive"], invoice=draft)


@pytest.mark.parametrize("name", ["auditor", "consultant", "pm", "sales"])
def test_roles_without_the_approval_permission_are_refused(draft, people, name):
    with pytest.raises(NotPermitted):
        invoice_approve(actor=people[name], invoice=draft)
    assert Invoice.objects.get(pk=draft.pk).approved_by is None


def test_an_auditor_is_told_they_change_nothing(draft, people):
    with pytest.raises(NotPermitted, match="Auditors can view everything but change nothing"):
        invoice_approve(actor=people["auditor"], invoice=draft)


def test_a_draft_without_lines_or_with_a_zero_total_is_refused(legal_entity, customer, people, finance_people):
    empty = Invoice.objects.create(legal_entity=legal_entity, customer=customer, currency="EUR")
    with pytest.raises(ValidationFailed, match="no lines"):
        invoice_approve(actor=people["executive"], invoice=empty)
    zero = manual_invoice(legal_entity=legal_entity, customer=customer, people=people, amount="0", status="draft")
    Invoice.objects.filter(pk=zero.pk).update(approved_by=None)
    with pytest.raises(ValidationFailed, match="totals zero"):
        invoice_approve(actor=people["executive"], invoice=zero)


def test_only_drafts_are_approved(approved, people):
    with pytest.raises(TransitionNotAllowed, match="already approved"):
        invoice_approve(actor=people["admin"], invoice=approved)


# --- back to draft, discard -----------------------------------------------------------------------------------


def test_return_to_draft_clears_both_approvals_and_needs_a_reason(draft, finance_people, people):
    invoice_approve(actor=finance_people["finance_low"], invoice=draft)
    invoice_approve(actor=people["executive"], invoice=draft)
    with pytest.raises(ValidationFailed, match="Say why"):
        invoice_return_to_draft(actor=people["finance"], invoice=draft, reason="  ")
    invoice = invoice_return_to_draft(actor=people["finance"], invoice=draft, reason="PO number changed")
    assert invoice.status == Invoice.Status.DRAFT
    assert (invoice.approved_by, invoice.approved_at, invoice.second_approved_by, invoice.second_approved_at) == (
        None,
        None,
        None,
        None,
    )
    assert invoice.history.first().history_change_reason == "Returned to draft: PO number changed"
    with pytest.raises(TransitionNotAllowed, match="without approvals already"):
        invoice_return_to_draft(actor=people["finance"], invoice=draft, reason="Again")


def test_a_pending_first_approval_can_be_withdrawn(draft, finance_people, people):
    invoice_approve(actor=finance_people["finance_low"], invoice=draft)
    invoice = invoice_return_to_draft(actor=people["finance"], invoice=draft, reason="Lines to fix")
    assert invoice.approved_by is None and invoice.status == Invoice.Status.DRAFT


@pytest.mark.parametrize("name", ["auditor", "consultant", "pm", "sales"])
def test_return_to_draft_refuses_other_roles(approved, people, name):
    with pytest.raises(NotPermitted):
        invoice_return_to_draft(actor=people[name], invoice=approved, reason="No")


def test_discard_frees_the_items_for_the_next_draft(draft, people, make_draft, team, approved_time):
    with pytest.raises(ValidationFailed, match="Say why"):
        invoice_discard(actor=people["finance"], invoice=draft, reason="")
    invoice = invoice_discard(actor=people["finance"], invoice=draft, reason="Wrong period")
    assert invoice.status == Invoice.Status.DISCARDED and invoice.discarded_reason == "Wrong period"
    assert not InvoiceItem.objects.filter(invoice=draft, live=True).exists()
    again = make_draft(team)  # the same five entries are billable again
    assert again.items.filter(live=True).count() == len(approved_time) == 5
    with pytest.raises(TransitionNotAllowed, match="discarded"):
        invoice_discard(actor=people["finance"], invoice=draft, reason="Twice")
    with pytest.raises(TransitionNotAllowed, match="discarded"):
        invoice_approve(actor=people["executive"], invoice=draft)


def test_an_approved_invoice_can_be_discarded(approved, people):
    assert invoice_discard(actor=people["admin"], invoice=approved, reason="Duplicate").status == "discarded"


@pytest.mark.parametrize("name", ["auditor", "consultant", "pm", "executive"])
def test_discard_refuses_roles_that_do_not_edit_drafts(draft, people, name):
    with pytest.raises(NotPermitted):
        invoice_discard(actor=people[name], invoice=draft, reason="No")


# --- issue ---------------------------------------------------------------------------------------------------


def test_issue_numbers_dates_freezes_and_bills(approved, people, bank_account, approved_time, legal_entity):
    year = TODAY().year
    invoice = invoice_issue(actor=people["finance"], invoice=approved)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.ISSUED
    assert invoice.number == f"DE-{year}-000001" and (invoice.fiscal_year, invoice.sequence) == (year, 1)
    assert invoice.issue_date == TODAY()
    assert (
        invoice.due_date
        == TODAY() + dt.timedelta(days=21)
        == invoice.issue_date + dt.timedelta(days=invoice.payment_terms_days)
    )
    assert (invoice.issued_by, invoice.approved_by) == (people["finance"], people["executive"])
    assert invoice.issued_at is not None
    record = invoice.history.first()
    assert record.history_user == people["finance"] and record.history_change_reason == f"Issued as {invoice.number}"
    # the structured creditor reference: RF, valid check digits, from the prefix, kind, year and sequence
    assert invoice.creditor_reference == numbering.creditor_reference(f"DE1{year % 100:02d}00000001")
    assert numbering.creditor_reference_valid(invoice.creditor_reference)
    # the sources: billed on the number, through the projects app
    entries = TimeEntry.objects.filter(pk__in=[e.pk for e in approved_time])
    assert {(e.status, e.invoice_ref) for e in entries} == {(EntryStatus.BILLED, invoice.number)}
    assert {e.billed_at is not None for e in entries} == {True}
    assert {h.history_user for h in TimeEntry.history.filter(invoice_ref=invoice.number)} == {people["finance"]}
    # the seller, frozen, with the bank account
    assert invoice.seller["legal_name"] == "Throughline Studio GmbH"
    assert invoice.seller["address"]["country"] == "DE" and invoice.seller["address_lines"][0] == "Torstraße 1"
    assert invoice.seller["bank_account"] == {
        "bank_name": bank_account.bank_name,
        "account_holder": "Throughline Studio GmbH",
        "iban": bank_account.iban,
        "bic": bank_account.bic,
        "currency": "EUR",
    }
    assert invoice.seller["brand_colour"] == legal_entity.brand_colour
    assert invoice.buyer["number"] == invoice.customer.number
    assert invoice.buyer["address"]["country"] == "IE"


def test_the_next_invoice_takes_the_next_number(approved, people, bank_account, legal_entity, customer, finance_people):
    first = invoice_issue(actor=people["finance"], invoice=approved)
    second = invoice_issue(
        actor=people["admin"], invoice=manual_invoice(legal_entity=legal_entity, customer=customer, people=people)
    )
    assert (first.sequence, second.sequence) == (1, 2)
    assert second.number.endswith("-000002") and second.creditor_reference != first.creditor_reference
    assert last_value() == 2


def test_the_tax_evidence_is_stored_with_the_number_and_locked(approved, people, bank_account):
    invoice = invoice_issue(actor=people["finance"], invoice=approved)
    evidence = TaxCalculation.objects.get(pk=invoice.tax_calculation_id)
    assert (evidence.purpose, evidence.document_type, evidence.document_ref) == ("invoice", "invoice", invoice.number)
    assert evidence.locked_at is not None and evidence.tax_point == invoice.issue_date
    assert evidence.net_amount == invoice.net_total and evidence.tax_amount == invoice.tax_total
    assert evidence.sha256 == evidence_digest(context=evidence.context, result=evidence.result)
    assert evidence.created_by == people["finance"]


def test_the_snapshot_survives_a_renamed_and_moved_customer(draft, people, bank_account, customer, legal_entity):
    LegalEntityRegistration.objects.create(legal_entity=legal_entity, country="DE", number="DE136695976")
    LegalEntityRegistration.objects.create(
        legal_entity=legal_entity, kind="tax_number", country="DE", number="37/123/45678"
    )
    TaxRegistration.objects.create(customer=customer, country="DE", number="DE811569869")
    invoice_approve(actor=people["executive"], invoice=draft)
    invoice = invoice_issue(actor=people["finance"], invoice=draft)
    assert invoice.seller["registrations"][0] | {"oss": None} == {
        "kind": "tax_number",
        "country": "DE",
        "number": "37/123/45678",
        "oss": None,
    }
    assert [r["number"] for r in invoice.seller["registrations"]] == ["37/123/45678", "DE136695976"]
    assert invoice.seller["tax_number"] == "37/123/45678"
    assert [r["number"] for r in invoice.buyer["registrations"]] == ["DE811569869"]
    assert invoice.buyer["legal_name"] == customer.legal_name and invoice.buyer["display_name"] == customer.display_name
    frozen_buyer, frozen_seller = dict(invoice.buyer), dict(invoice.seller)

    customer.legal_name, customer.display_name = "Renamed Holdings plc", "Renamed"
    customer.save()
    Address.objects.filter(customer=customer, kind="billing").update(line1="9 Other Street", city="Cork")
    TaxRegistration.objects.filter(customer=customer).update(number="IE3628739UH")
    BankAccount.objects.filter(pk=bank_account.pk).update(iban="DE02120300000000202051")
    LegalEntity.objects.filter(pk=legal_entity.pk).update(legal_name="Renamed Studio GmbH")
    invoice.refresh_from_db()
    assert invoice.buyer == frozen_buyer and invoice.seller == frozen_seller
    assert invoice.buyer["legal_name"] != "Renamed Holdings plc"
    assert invoice.buyer["address"]["line1"] == "1 Grand Canal Square"
    assert invoice.buyer["registrations"][0]["number"] == "DE811569869"
    assert invoice.seller["bank_account"]["iban"] == bank_account.iban
    assert invoice.seller["legal_name"] == "Throughline Studio GmbH"


def test_a_reverse_charge_invoice_is_approved_and_issued(draft, people, bank_account, customer):
    TaxRegistration.objects.create(customer=customer, country="IE", number="IE6433435F")
    invoice_refigure(draft)  # the draft follows the customer's record (the run or the editor refigures it)
    invoice_approve(actor=people["executive"], invoice=draft)
    invoice = invoice_issue(actor=people["finance"], invoice=draft)
    assert invoice.tax_total == 0 and invoice.legal_notes


def test_a_milestone_is_billed_on_the_invoice(fixed_project, make_draft, people, bank_account):
    milestone = fixed_project.milestones.order_by("planned_date").first()
    ms.milestone_accept(
        actor=fixed_project.project_manager,
        milestone=milestone,
        accepted_by_name="Ida Berg",
        accepted_on=dt.date(2026, 5, 4),
    )
    draft = make_draft(fixed_project)
    invoice_approve(actor=people["executive"], invoice=draft)
    invoice = invoice_issue(actor=people["finance"], invoice=draft)
    milestone.refresh_from_db()
    assert (milestone.status, milestone.invoice_ref) == (Milestone.Status.BILLED, invoice.number)


def test_without_yearly_restart_the_series_never_restarts(approved, people, bank_account, legal_entity):
    legal_entity.invoice_numbers_restart_yearly = False
    legal_entity.invoice_number_padding = 4
    legal_entity.save()
    invoice = invoice_issue(actor=people["finance"], invoice=approved)
    assert (invoice.number, invoice.fiscal_year) == ("DE-0001", 0)
    assert invoice.creditor_reference == numbering.creditor_reference("DE10000000001")


def test_credit_notes_have_their_own_series(people, bank_account, legal_entity, customer, finance_people):
    invoice_issue(
        actor=people["finance"], invoice=manual_invoice(legal_entity=legal_entity, customer=customer, people=people)
    )
    note = manual_invoice(legal_entity=legal_entity, customer=customer, people=people, kind="credit_note")
    note = invoice_issue(actor=people["finance"], invoice=note)
    assert note.number == f"DE-CN-{TODAY().year}-000001" and note.sequence == 1
    assert TaxCalculation.objects.get(pk=note.tax_calculation_id).document_type == "credit_note"
    assert numbering.creditor_reference_valid(note.creditor_reference)


def test_no_number_at_draft_or_approval(draft, people):
    invoice_approve(actor=people["executive"], invoice=draft)
    draft.refresh_from_db()
    assert (draft.number, draft.sequence, draft.fiscal_year, draft.issue_date) == ("", None, None, None)
    assert not NumberSequence.objects.filter(key__startswith="invoice:").exists()


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        ("draft", "not approved yet"),
        ("pending", "waits for its second approval"),
        ("discarded", "was discarded"),
    ],
)
def test_issue_refuses_what_is_not_approved(draft, people, finance_people, bank_account, prepare, message):
    if prepare == "pending":
        invoice_approve(actor=finance_people["finance_low"], invoice=draft)
    if prepare == "discarded":
        invoice_discard(actor=people["finance"], invoice=draft, reason="Gone")
    with pytest.raises(TransitionNotAllowed, match=message):
        invoice_issue(actor=people["finance"], invoice=draft)
    assert last_value() is None


def test_an_issued_invoice_is_refused_by_every_service(approved, people, bank_account):
    invoice = invoice_issue(actor=people["finance"], invoice=approved)
    with pytest.raises(TransitionNotAllowed, match="already issued"):
        invoice_issue(actor=people["finance"], invoice=invoice)
    for call in (
        lambda: invoice_approve(actor=people["executive"], invoice=invoice),
        lambda: invoice_return_to_draft(actor=people["finance"], invoice=invoice, reason="Oops"),
        lambda: invoice_discard(actor=people["finance"], invoice=invoice, reason="Oops"),
    ):
        with pytest.raises(TransitionNotAllowed, match="is issued: it never changes"):
            call()
    assert last_value() == 1


@pytest.mark.parametrize("name", ["auditor", "consultant", "pm", "sales", "executive"])
def test_issue_refuses_roles_without_the_issue_permission(approved, people, bank_account, name):
    with pytest.raises(NotPermitted):
        invoice_issue(actor=people[name], invoice=approved)
    assert Invoice.objects.get(pk=approved.pk).status == Invoice.Status.APPROVED


def test_issue_refuses_a_missing_billing_address(approved, people, bank_account, customer):
    Address.objects.filter(customer=customer).delete()
    with pytest.raises(ValidationFailed, match="has no billing address") as refused:
        invoice_issue(actor=people["finance"], invoice=approved)
    assert set(refused.value.errors) == {"billing_address"}
    assert last_value() is None and Invoice.objects.get(pk=approved.pk).status == Invoice.Status.APPROVED


def test_issue_refuses_a_missing_po_number_the_project_requires(approved, people, bank_account, team):
    assert team.po_required
    Invoice.objects.filter(pk=approved.pk).update(po_number="")
    with pytest.raises(ValidationFailed, match=f"{team.number} requires a purchase order number") as refused:
        invoice_issue(actor=people["finance"], invoice=approved)
    assert set(refused.value.errors) == {"po_number"}


def test_issue_refuses_a_missing_po_number_the_customer_requires(
    people, bank_account, legal_entity, customer, finance_people
):
    customer.purchase_order_required = True
    customer.save()
    invoice = manual_invoice(legal_entity=legal_entity, customer=customer, people=people)
    with pytest.raises(ValidationFailed, match="requires a purchase order number"):
        invoice_issue(actor=people["finance"], invoice=invoice)
    Invoice.objects.filter(pk=invoice.pk).update(po_number="PO-1")
    assert invoice_issue(actor=people["finance"], invoice=invoice).po_number == "PO-1"


def test_issue_refuses_a_legal_entity_without_a_bank_account(approved, people, customer):
    Address.objects.filter(customer=customer).delete()
    with pytest.raises(ValidationFailed) as refused:
        invoice_issue(actor=people["finance"], invoice=approved)
    assert set(refused.value.errors) == {"billing_address", "bank_account"}  # every problem at once
    assert "has no bank account" in refused.value.errors["bank_account"][0]


def test_issue_prints_the_account_in_the_invoice_currency(approved, people, legal_entity):
    BankAccount.objects.create(
        legal_entity=legal_entity,
        bank_name="Other",
        account_holder="X",
        iban="GB33BUKB20201555555555",
        bic="BUKBGB22",
        currency="GBP",
        is_default=True,
    )
    eur = BankAccount.objects.create(
        legal_entity=legal_entity,
        bank_name="Euro",
        account_holder="X",
        iban="DE89370400440532013000",
        bic="COBADEFFXXX",
        currency="EUR",
    )
    invoice = invoice_issue(actor=people["finance"], invoice=approved)
    assert invoice.seller["bank_account"]["iban"] == eur.iban


def test_a_total_changed_since_approval_is_refused_at_issue(approved, people, bank_account):
    Invoice.objects.filter(pk=approved.pk).update(gross_total=approved.gross_total - 1)  # what the approver saw
    with pytest.raises(Conflict, match=r"not the .* approved"):
        invoice_issue(actor=people["finance"], invoice=approved)
    assert last_value() is None


def test_a_failure_after_the_number_gives_it_back(approved, people, bank_account, approved_time, monkeypatch):
    def broken(**kwargs):
        raise TransitionNotAllowed("simulated: the entries are not billable")

    monkeypatch.setattr(issuing, "time_entries_mark_billed", broken)
    with pytest.raises(TransitionNotAllowed, match="simulated"):
        invoice_issue(actor=people["finance"], invoice=approved)
    approved.refresh_from_db()
    assert approved.status == Invoice.Status.APPROVED and approved.number == ""
    assert last_value() in (None, 0)
    assert not TaxCalculation.objects.filter(purpose="invoice").exists()
    monkeypatch.undo()
    assert invoice_issue(actor=people["finance"], invoice=approved).sequence == 1  # no gap


# --- the database refuses too (PostgreSQL) -------------------------------------------------------------------

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the triggers exist on PostgreSQL only")


def _refused(queryset, **values):
    with pytest.raises(IntegrityError, match=r"issued invoice|is issued"), transaction.atomic():
        if values:
            queryset.update(**values)
        else:
            queryset.delete()


@postgres_only
def test_the_database_refuses_changing_or_deleting_an_issued_invoice(approved, people, bank_account):
    rows = Invoice.objects.filter(pk=approved.pk)
    rows.update(notes="Still approved: may change")
    invoice_issue(actor=people["finance"], invoice=approved)
    _refused(rows, notes="Rewritten")
    _refused(rows, gross_total=Decimal("1.00"))
    _refused(rows, status=Invoice.Status.DRAFT)
    _refused(rows)
    assert rows.get().status == Invoice.Status.ISSUED


@postgres_only
def test_the_database_refuses_changing_adding_or_deleting_lines_of_an_issued_invoice(approved, people, bank_account):
    invoice = invoice_issue(actor=people["finance"], invoice=approved)
    lines = InvoiceLine.objects.filter(invoice=invoice)
    _refused(lines, description="Rewritten")
    _refused(lines, net_amount=Decimal("1.00"))
    _refused(lines)
    with pytest.raises(IntegrityError, match="issued invoice"), transaction.atomic():
        InvoiceLine.objects.create(
            invoice=invoice,
            position=99,
            kind="manual",
            description="Sneaked in",
            quantity=1,
            unit_price=1,
            net_amount=1,
        )
    assert lines.count() == 5


@postgres_only
def test_the_database_lets_items_of_an_issued_invoice_only_be_released(approved, people, bank_account):
    invoice = invoice_issue(actor=people["finance"], invoice=approved)
    items = InvoiceItem.objects.filter(invoice=invoice)
    _refused(items, amount=Decimal("1.00"))
    _refused(items, live=False, description="Released and rewritten")
    _refused(items)
    one = items.order_by("pk")[:1].get()
    InvoiceItem.objects.filter(pk=one.pk).update(live=False)  # what a credit note does
    assert not InvoiceItem.objects.get(pk=one.pk).live
    _refused(InvoiceItem.objects.filter(pk=one.pk), live=True)  # released for good
    with pytest.raises(IntegrityError, match="issued invoice"), transaction.atomic():
        InvoiceItem.objects.create(
            line=invoice.lines.first(),
            invoice=invoice,
            kind="retainer",
            project=invoice.project,
            retainer_month=dt.date(2026, 3, 1),
            date=dt.date(2026, 3, 1),
            description="Sneaked in",
            quantity=1,
            unit_price=1,
            amount=1,
        )


@postgres_only
def test_the_database_leaves_drafts_alone(draft):
    InvoiceLine.objects.filter(invoice=draft).update(description="Edited")
    InvoiceItem.objects.filter(invoice=draft).update(live=False)
    InvoiceItem.objects.filter(invoice=draft).update(live=True)
    InvoiceItem.objects.filter(invoice=draft).delete()
    InvoiceLine.objects.filter(invoice=draft).delete()
    Invoice.objects.filter(pk=draft.pk).delete()
    assert not Invoice.objects.filter(pk=draft.pk).exists()
