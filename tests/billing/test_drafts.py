"""Editing and reviewing drafts (``billing.drafts``) against the real tax engine, on the T&M project's draft
from ``make_draft``: five approved 8-hour days at 150/h, one line per entry (6,000.00 net, 19 % VAT)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.models import Notification, UserProfile
from billing import drafts
from billing.issuing import invoice_approve, invoice_discard, invoice_issue, invoice_return_to_draft
from billing.models import Invoice, InvoiceComment, InvoiceItem, InvoiceLine
from billing.pricing import invoice_refigure
from projects import timesheets as ts
from projects.models import TimeEntry
from tests.customers.factories import ProductFactory

pytestmark = pytest.mark.django_db


def set_limit(user, amount: str):
    UserProfile.objects.update_or_create(user=user, defaults={"approval_limit_amount": Decimal(amount)})
    user._state.fields_cache.pop("profile", None)
    return user


@pytest.fixture
def draft(team, approved_time, make_draft):
    return make_draft(team)


@pytest.fixture
def finance(people):
    return people["finance"]


def lines_of(invoice) -> list[InvoiceLine]:
    return list(InvoiceLine.objects.filter(invoice=invoice).order_by("position"))


def fresh(invoice) -> Invoice:
    return Invoice.objects.get(pk=invoice.pk)


def reason(invoice) -> str:
    return fresh(invoice).history.first().history_change_reason


def add_developer_day(team, people, day=dt.date(2026, 3, 16)) -> TimeEntry:
    """One approved day of the consultant (Developer, its own rate) on the T&M project."""
    entry = TimeEntry.objects.create(
        person=people["consultant"],
        project=team,
        date=day,
        hours=Decimal("4"),
        labour_category="Developer",
        description="API review",
        status="submitted",
    )
    ts.time_entries_approve(actor=people["pm"], entries=[entry])
    return entry


# --- header ---------------------------------------------------------------------------------------------------


def test_the_header_is_edited_with_a_history_reason(draft, finance):
    invoice = drafts.invoice_update_header(
        actor=finance, invoice=draft, po_number=" PO-9000 ", notes="Thank you.", payment_terms_days=14
    )
    invoice = fresh(invoice)
    assert (invoice.po_number, invoice.notes, invoice.payment_terms_days) == ("PO-9000", "Thank you.", 14)
    assert reason(invoice) == "Draft edited: PO number, notes, payment terms"
    assert invoice.history.first().history_user == finance


def test_a_header_edit_that_changes_nothing_writes_nothing(draft, finance):
    before = draft.history.count()
    drafts.invoice_update_header(actor=finance, invoice=draft, po_number=draft.po_number, detail_appendix=False)
    assert draft.history.count() == before


@pytest.mark.parametrize(
    ("given", "field", "words"),
    [
        ({"po_number": "P" * 61}, "po_number", "at most 60 characters"),
        ({"payment_terms_days": 400}, "payment_terms_days", "0 to 365 days"),
        ({"payment_terms_days": "soon"}, "payment_terms_days", "whole number of days"),
        ({"grouping": "by_week"}, "grouping", "is not a grouping"),
        ({"notes": "x" * 4001}, "notes", "at most 4000 characters"),
    ],
)
def test_header_errors_name_the_field_and_change_nothing(draft, finance, given, field, words):
    with pytest.raises(ValidationFailed) as refused:
        drafts.invoice_update_header(actor=finance, invoice=draft, **{"notes": "kept?", **given})
    assert words in refused.value.errors[field][0]
    assert fresh(draft).notes == ""


def test_the_detail_appendix_is_switched_on(draft, finance):
    drafts.invoice_update_header(actor=finance, invoice=draft, detail_appendix=True)
    assert fresh(draft).detail_appendix is True


# --- guards ---------------------------------------------------------------------------------------------------


def test_an_approved_invoice_is_refused_with_return_it_to_draft(draft, finance, people):
    invoice_approve(actor=people["executive"], invoice=draft)
    with pytest.raises(TransitionNotAllowed) as refused:
        drafts.invoice_update_header(actor=finance, invoice=draft, notes="late change")
    assert "return it to draft" in refused.value.message and refused.value.errors == {"status": [refused.value.message]}
    line = lines_of(draft)[0]
    with pytest.raises(TransitionNotAllowed):
        drafts.line_update(actor=finance, line=line, description="New")
    with pytest.raises(TransitionNotAllowed):
        drafts.line_add_discount(actor=finance, invoice=draft, percent="5")
    assert fresh(draft).notes == "" and lines_of(draft)[0].description == line.description


def test_an_issued_invoice_is_refused(draft, finance, people, bank_account):
    issued = invoice_issue(actor=finance, invoice=invoice_approve(actor=people["executive"], invoice=draft))
    with pytest.raises(TransitionNotAllowed) as refused:
        drafts.line_add_manual(actor=finance, invoice=issued, description="Extra", unit_price="10")
    assert refused.value.message == f"{issued.number} is issued: it never changes (correct it with a credit note)."
    with pytest.raises(TransitionNotAllowed):
        drafts.line_delete(actor=finance, line=lines_of(issued)[0])
    assert InvoiceLine.objects.filter(invoice=issued).count() == 5


def test_a_discarded_draft_is_refused(draft, finance):
    invoice_discard(actor=finance, invoice=draft, reason="Wrong period")
    with pytest.raises(TransitionNotAllowed) as refused:
        drafts.lines_regroup(actor=finance, invoice=draft, grouping="rolled_up")
    assert "discarded" in refused.value.message


@pytest.mark.parametrize("name", ["pm", "executive", "sales", "consultant"])
def test_roles_that_do_not_edit_drafts_are_refused(draft, people, name):
    with pytest.raises(NotPermitted):
        drafts.invoice_update_header(actor=people[name], invoice=draft, notes="mine")
    with pytest.raises(NotPermitted):
        drafts.line_update(actor=people[name], line=lines_of(draft)[0], description="mine")


def test_an_auditor_is_told_they_change_nothing(draft, people):
    for call in (
        lambda: drafts.invoice_update_header(actor=people["auditor"], invoice=draft, notes="x"),
        lambda: drafts.line_add_discount(actor=people["auditor"], invoice=draft, amount="10"),
        lambda: drafts.invoice_comment_add(actor=people["auditor"], invoice=draft, body="x"),
    ):
        with pytest.raises(NotPermitted) as refused:
            call()
        assert "change nothing" in refused.value.message
    assert fresh(draft).history.count() == draft.history.count()


def test_editing_a_draft_with_a_pending_first_approval_clears_it(draft, finance, people, django_user_model):
    set_limit(finance, "10000")
    low = django_user_model.objects.create_user(username="finance_low", password="pw")
    low.groups.add(Group.objects.get(name="finance"))
    low = set_limit(django_user_model.objects.get(pk=low.pk), "1000")
    invoice_approve(actor=low, invoice=draft)
    pending = fresh(draft)
    assert pending.status == Invoice.Status.DRAFT and pending.approved_by == low
    drafts.line_update(actor=finance, line=lines_of(draft)[0], description="Data platform build, kick-off")
    cleared = fresh(draft)
    assert cleared.approved_by is None and cleared.approved_at is None and cleared.second_approved_by is None
    assert reason(cleared) == "Line 1 edited: description; approval cleared by edit"
    # approved again from the start: finance's own limit covers it now
    assert invoice_approve(actor=finance, invoice=cleared).status == Invoice.Status.APPROVED


def test_a_returned_draft_is_editable_again(draft, finance, people):
    invoice_approve(actor=people["executive"], invoice=draft)
    invoice_return_to_draft(actor=finance, invoice=draft, reason="PO arrived")
    drafts.invoice_update_header(actor=finance, invoice=draft, po_number="PO-1")
    assert fresh(draft).po_number == "PO-1"


# --- lines ----------------------------------------------------------------------------------------------------


def test_a_line_gets_a_client_facing_description_and_phase(draft, finance):
    line = lines_of(draft)[1]
    updated = drafts.line_update(actor=finance, line=line, description="  Discovery workshop ", phase="Discovery")
    line.refresh_from_db()
    assert (line.description, line.phase) == ("Discovery workshop", "Discovery")
    assert updated.invoice.gross_total == draft.gross_total
    assert line.history.first().history_change_reason == "Line edited: description, phase"


def test_an_empty_description_is_refused(draft, finance):
    with pytest.raises(ValidationFailed) as refused:
        drafts.line_update(actor=finance, line=lines_of(draft)[0], description="   ")
    assert "client-facing description" in refused.value.errors["description"][0]


@pytest.mark.parametrize("field", ["quantity", "unit_price", "product_tax_category"])
def test_quantities_and_prices_of_lines_of_work_are_not_edited(draft, finance, field):
    line = lines_of(draft)[0]
    with pytest.raises(ValidationFailed) as refused:
        drafts.line_update(
            actor=finance, line=line, **{field: "1"} if field != "product_tax_category" else {field: "Z"}
        )
    message = refused.value.errors[field][0]
    assert "bills 1 item of work" in message and "discarding the draft and re-running" in message
    line.refresh_from_db()
    assert line.quantity == Decimal("8") and line.unit_price == Decimal("150")


def test_a_manual_line_from_the_catalog_takes_its_defaults(draft, finance):
    product = ProductFactory(code="WS-1", name="Workshop day", unit="DAY", default_price_amount=Decimal("900"))
    line = drafts.line_add_manual(actor=finance, invoice=draft, product=product, quantity="2")
    assert (line.kind, line.description, line.unit, line.unit_price, line.net_amount) == (
        "manual",
        "Workshop day",
        "DAY",
        Decimal("900"),
        Decimal("1800.00"),
    )
    assert line.position == 6 and line.invoice.net_total == Decimal("7800.00")
    assert line.history.first().history_change_reason == "Manual line added (WS-1)"
    assert reason(draft) == "Line added: Workshop day (WS-1), €1,800.00"


def test_the_tax_preview_follows_a_manual_line_of_another_tax_category(draft, finance):
    assert draft.tax_total == Decimal("1140.00")  # 19 % of 6,000
    product = ProductFactory(code="BOOK-1", name="Handbook", unit="H87", default_tax_category="AA")
    drafts.line_add_manual(actor=finance, invoice=draft, product=product, quantity="3", unit_price="33.33")
    invoice = fresh(draft)
    assert invoice.net_total == Decimal("6099.99")
    assert invoice.tax_total == Decimal("1147.00")  # + 7 % of 99.99 = 7.00
    rows = {row["category"]: row for row in invoice.tax_breakdown}
    assert rows["AA"]["rate"] == "7" and rows["AA"]["taxable_amount"] == "99.99"
    assert lines_of(invoice)[-1].tax_category == "AA"


def test_a_manual_line_needs_a_description_and_a_price(draft, finance):
    with pytest.raises(ValidationFailed) as refused:
        drafts.line_add_manual(actor=finance, invoice=draft, quantity="-1", unit="XX", product_tax_category="AE")
    errors = refused.value.errors
    assert set(errors) == {"description", "quantity", "unit", "unit_price", "product_tax_category"}
    assert "a reduction is a discount" in errors["quantity"][0]
    assert "decided by the tax engine" in errors["product_tax_category"][0]
    assert InvoiceLine.objects.filter(invoice=draft).count() == 5


def test_a_product_in_another_currency_needs_a_price_in_the_invoices(draft, finance):
    product = ProductFactory(code="US-1", currency="USD")
    with pytest.raises(ValidationFailed) as refused:
        drafts.line_add_manual(actor=finance, invoice=draft, product=product)
    assert refused.value.errors["unit_price"] == ["US-1 is priced in USD; enter the unit price in EUR."]
    line = drafts.line_add_manual(actor=finance, invoice=draft, product=product, unit_price="99.5")
    assert line.net_amount == Decimal("99.50")


def test_a_manual_line_goes_before_the_discounts(draft, finance):
    drafts.line_add_discount(actor=finance, invoice=draft, amount="100")
    drafts.line_add_manual(actor=finance, invoice=draft, description="Travel day", unit_price="500")
    kinds = [line.kind for line in lines_of(draft)]
    assert kinds[-2:] == ["manual", "discount"] and [line.position for line in lines_of(draft)] == list(range(1, 8))


def test_a_manual_lines_quantity_and_price_are_edited(draft, finance):
    line = drafts.line_add_manual(actor=finance, invoice=draft, description="Licences", unit_price="10")
    drafts.line_update(actor=finance, line=line, quantity="3", unit_price="12.345")
    line.refresh_from_db()
    assert line.net_amount == Decimal("37.04")  # 37.035 half up
    assert fresh(draft).net_total == Decimal("6037.04")


# --- discounts ------------------------------------------------------------------------------------------------


def test_a_percent_discount_is_negative_and_rounded_to_the_cent(draft, finance):
    (line,) = drafts.line_add_discount(actor=finance, invoice=draft, percent="12.5")
    assert (line.kind, line.quantity, line.unit, line.net_amount) == (
        "discount",
        Decimal("12.5"),
        "P1",
        Decimal("-750.00"),
    )
    assert line.description == "Discount 12.5 %" and line.note == "12.5 % of €6,000.00 (standard-rated lines)"
    invoice = fresh(draft)
    assert (invoice.net_total, invoice.tax_total) == (Decimal("5250.00"), Decimal("997.50"))


def test_a_percent_discount_on_several_categories_rounds_each_half_up(draft, finance):
    drafts.line_add_manual(
        actor=finance, invoice=draft, description="Printed report", unit_price="123.45", product_tax_category="Z"
    )
    lines = drafts.line_add_discount(actor=finance, invoice=draft, percent="10", description="Loyalty")
    assert [(line.product_tax_category, line.net_amount, line.description) for line in lines] == [
        ("S", Decimal("-600.00"), "Loyalty (standard-rated lines)"),
        ("Z", Decimal("-12.35"), "Loyalty (zero-rated lines)"),  # 12.345 → 12.35
    ]
    invoice = fresh(draft)
    assert invoice.net_total == Decimal("5511.10") and invoice.tax_total == Decimal("1026.00")


def test_a_percent_discount_follows_later_changes_of_its_lines(draft, finance):
    (discount,) = drafts.line_add_discount(actor=finance, invoice=draft, percent="10")
    manual = drafts.line_add_manual(actor=finance, invoice=draft, description="Extra", unit_price="1000")
    discount.refresh_from_db()
    assert discount.net_amount == Decimal("-700.00") and "€7,000.00" in discount.note
    drafts.line_delete(actor=finance, line=manual)
    discount.refresh_from_db()
    assert discount.net_amount == Decimal("-600.00")


def test_an_amount_discount(draft, finance):
    (line,) = drafts.line_add_discount(actor=finance, invoice=draft, amount="250.50", description="Goodwill")
    assert (line.quantity, line.unit, line.unit_price, line.net_amount) == (
        Decimal("1"),
        "C62",
        Decimal("-250.50"),
        Decimal("-250.50"),
    )
    assert fresh(draft).net_total == Decimal("5749.50")
    assert reason(draft) == "Discount added: €250.50 (€250.50)"


@pytest.mark.parametrize(
    ("given", "field", "words"),
    [
        ({}, "amount", "as a percentage or as an amount"),
        ({"percent": "5", "amount": "5"}, "percent", "not both"),
        ({"percent": "0"}, "percent", "more than 0 and at most 100"),
        ({"percent": "100.001"}, "percent", "at most 2 decimals"),
        ({"amount": "-5"}, "amount", "more than zero"),
        ({"amount": "1.005"}, "amount", "at most 2 decimals"),
        ({"amount": "6000.01"}, "amount", "more than those lines' net of €6,000.00"),
        ({"amount": "5", "product_tax_category": "Z"}, "product_tax_category", "No zero-rated lines"),
    ],
)
def test_discount_errors_name_the_field(draft, finance, given, field, words):
    with pytest.raises(ValidationFailed) as refused:
        drafts.line_add_discount(actor=finance, invoice=draft, **given)
    assert words in refused.value.errors[field][0]
    assert not InvoiceLine.objects.filter(invoice=draft, kind="discount").exists()
    assert fresh(draft).net_total == Decimal("6000.00")


def test_an_amount_discount_on_several_categories_names_its_category(draft, finance):
    drafts.line_add_manual(actor=finance, invoice=draft, description="Book", unit_price="50", product_tax_category="AA")
    with pytest.raises(ValidationFailed) as refused:
        drafts.line_add_discount(actor=finance, invoice=draft, amount="10")
    assert "several VAT categories (AA, S)" in refused.value.errors["product_tax_category"][0]
    (line,) = drafts.line_add_discount(actor=finance, invoice=draft, amount="10", product_tax_category="AA")
    assert line.tax_category == "AA" and line.tax_rate == Decimal("7.000")


# --- deleting -------------------------------------------------------------------------------------------------


def test_manual_lines_and_discounts_are_deleted_and_the_rest_renumbered(draft, finance):
    manual = drafts.line_add_manual(actor=finance, invoice=draft, description="Extra", unit_price="10")
    drafts.line_add_discount(actor=finance, invoice=draft, amount="5")
    drafts.line_delete(actor=finance, line=manual)
    assert [(line.position, line.kind) for line in lines_of(draft)][-2:] == [(5, "time"), (6, "discount")]
    assert not InvoiceLine.objects.filter(pk=manual.pk).exists()
    assert reason(draft) == "Line 6 deleted: Extra"
    assert fresh(draft).net_total == Decimal("5995.00")


def test_lines_of_work_are_not_deleted(draft, finance):
    with pytest.raises(Conflict) as refused:
        drafts.line_delete(actor=finance, line=lines_of(draft)[0])
    assert "remove work by discarding the draft and re-running" in refused.value.message.lower()
    assert InvoiceLine.objects.filter(invoice=draft).count() == 5


def test_a_deletion_that_leaves_a_discount_larger_than_its_lines_is_refused(draft, finance):
    manual = drafts.line_add_manual(
        actor=finance, invoice=draft, description="Book", unit_price="50", product_tax_category="Z"
    )
    drafts.line_add_discount(actor=finance, invoice=draft, amount="40", product_tax_category="Z")
    with pytest.raises(ValidationFailed) as refused:
        drafts.line_delete(actor=finance, line=manual)
    assert "zero-rated lines (€40.00)" in refused.value.errors["line"][0]
    assert InvoiceLine.objects.filter(pk=manual.pk).exists()


def test_a_credit_notes_lines_are_not_added_to(draft, finance):
    Invoice.objects.filter(pk=draft.pk).update(kind="credit_note")
    with pytest.raises(TransitionNotAllowed) as refused:
        drafts.line_add_manual(actor=finance, invoice=draft, description="Extra", unit_price="1")
    assert "credit note" in refused.value.message


# --- grouping -------------------------------------------------------------------------------------------------


def assert_every_item_on_one_line(invoice):
    items = list(InvoiceItem.objects.filter(invoice=invoice))
    line_ids = set(InvoiceLine.objects.filter(invoice=invoice).values_list("pk", flat=True))
    assert items and all(item.line_id in line_ids for item in items)
    for line in InvoiceLine.objects.filter(invoice=invoice).prefetch_related("items"):
        if line.kind in ("time", "adjustment"):
            assert line.quantity == sum(item.quantity for item in line.items.all())
            assert line.net_amount == sum(item.amount for item in line.items.all())


def test_rolling_up_and_back_keeps_every_item_on_exactly_one_line(draft, finance, team, people, make_draft):
    drafts.line_add_manual(actor=finance, invoice=draft, description="Travel", unit_price="300")
    item_total = sum(InvoiceItem.objects.filter(invoice=draft).values_list("amount", flat=True))

    drafts.lines_regroup(actor=finance, invoice=draft, grouping="rolled_up")
    lines = lines_of(draft)
    assert [(line.kind, line.quantity, line.net_amount) for line in lines] == [
        ("time", Decimal("40"), Decimal("6000.00")),
        ("manual", Decimal("1"), Decimal("300.00")),
    ]
    assert lines[0].description == f"Senior consultant ({team.name})" and lines[0].unit == "HUR"
    assert (lines[0].service_start, lines[0].service_end) == (dt.date(2026, 3, 9), dt.date(2026, 3, 13))
    assert InvoiceItem.objects.filter(line=lines[0]).count() == 5
    assert_every_item_on_one_line(draft)
    assert fresh(draft).net_total == item_total + Decimal("300") and reason(draft).startswith("Regrouped: rolled up")

    drafts.lines_regroup(actor=finance, invoice=draft, grouping="detailed")
    lines = lines_of(draft)
    assert [line.kind for line in lines] == ["time"] * 5 + ["manual"]
    assert [line.description for line in lines[:5]] == [f"Data platform build, day {n}" for n in range(1, 6)]
    assert all(InvoiceItem.objects.filter(line=line).count() == 1 for line in lines[:5])
    assert all(line.unit == "HUR" for line in lines[:5])
    assert_every_item_on_one_line(draft)
    invoice = fresh(draft)
    assert invoice.grouping == "detailed" and invoice.net_total == item_total + Decimal("300")
    assert InvoiceItem.objects.filter(invoice=draft).count() == 5


def test_regrouping_keeps_custom_descriptions_of_lines_that_bill_the_same_items(draft, finance, team, people):
    entry = add_developer_day(team, people)
    rate = Decimal("150")  # any price: the item is copied as it is
    developer_line = InvoiceLine.objects.create(
        invoice=draft,
        position=6,
        kind="time",
        project=team,
        description="Developer",
        labour_category="Developer",
        quantity=entry.hours,
        unit="HUR",
        unit_price=rate,
        net_amount=entry.hours * rate,
    )
    InvoiceItem.objects.create(
        line=developer_line,
        invoice=draft,
        kind="time",
        project=team,
        time_entry=entry,
        date=entry.date,
        description=entry.description,
        quantity=entry.hours,
        unit_price=rate,
        amount=entry.hours * rate,
    )
    invoice_refigure(draft)
    drafts.line_update(actor=finance, line=developer_line, description="API review (fixed scope)", phase="Build")
    drafts.lines_regroup(actor=finance, invoice=draft, grouping="rolled_up")
    lines = lines_of(draft)
    assert len(lines) == 2
    kept = InvoiceLine.objects.get(pk=developer_line.pk)  # the same line: it bills the same single entry
    assert (kept.description, kept.phase, kept.position) == ("API review (fixed scope)", "Build", 2)
    drafts.lines_regroup(actor=finance, invoice=draft, grouping="detailed")
    kept.refresh_from_db()
    assert kept.description == "API review (fixed scope)" and len(lines_of(draft)) == 6


def test_a_new_grouping_in_the_header_regroups(draft, finance):
    drafts.invoice_update_header(actor=finance, invoice=draft, grouping="detailed")
    assert len(lines_of(draft)) == 5  # one line per entry already: the same lines
    drafts.invoice_update_header(actor=finance, invoice=draft, grouping="rolled_up", notes="Grouped")
    invoice = fresh(draft)
    assert invoice.grouping == "rolled_up" and len(lines_of(invoice)) == 1
    assert reason(invoice) == "Draft edited: notes, grouping (rolled up by labour category, phase and rate)"


def test_a_percent_discount_follows_a_regroup(draft, finance, team):
    # 0.33 h at 99.99 rounds per entry (33.00 each) but 0.99 h rolled up is 98.99: the discount follows.
    InvoiceItem.objects.filter(invoice=draft).update(
        quantity=Decimal("0.33"), unit_price=Decimal("99.99"), amount=Decimal("33.00")
    )
    InvoiceLine.objects.filter(invoice=draft).update(
        quantity=Decimal("0.33"), unit_price=Decimal("99.99"), net_amount=Decimal("33.00")
    )
    invoice_refigure(draft)
    (discount,) = drafts.line_add_discount(actor=finance, invoice=draft, percent="10")
    assert discount.net_amount == Decimal("-16.50")  # 10 % of 165.00
    drafts.lines_regroup(actor=finance, invoice=draft, grouping="rolled_up")
    discount.refresh_from_db()
    assert lines_of(draft)[0].net_amount == Decimal("164.98")  # 1.65 h x 99.99 = 164.9835
    assert discount.net_amount == Decimal("-16.50")  # 16.498 → 16.50
    assert fresh(draft).net_total == Decimal("148.48")


# --- comments -------------------------------------------------------------------------------------------------


def test_a_project_manager_comments_on_their_projects_draft_and_finance_is_told(draft, people):
    comment = drafts.invoice_comment_add(actor=people["pm"], invoice=draft, body="  Day 3 was a workshop.  ")
    assert (comment.author, comment.body) == (people["pm"], "Day 3 was a workshop.")
    told = Notification.objects.filter(title__contains="commented on the draft")
    assert set(told.values_list("user__username", flat=True)) == {"finance"}
    assert told.first().url.endswith(f"/invoices/{draft.public_id}/")
    assert comment.history.first().history_change_reason == "Review comment"


def test_finance_comments_without_notifying_itself(draft, people):
    drafts.invoice_comment_add(actor=people["finance"], invoice=draft, body="Checked the rates.")
    assert InvoiceComment.objects.filter(invoice=draft).count() == 1
    assert not Notification.objects.filter(title__contains="commented").exists()


def test_a_project_manager_of_another_project_cannot_comment(draft, people):
    with pytest.raises(NotPermitted) as refused:
        drafts.invoice_comment_add(actor=people["pm2"], invoice=draft, body="Not mine")
    assert "your own projects" in refused.value.message
    assert not InvoiceComment.objects.exists()


@pytest.mark.parametrize("name", ["executive", "sales", "consultant"])
def test_roles_without_the_comment_permission_cannot_comment(draft, people, name):
    with pytest.raises(NotPermitted):
        drafts.invoice_comment_add(actor=people[name], invoice=draft, body="Hello")


def test_comments_close_when_the_draft_is_approved(draft, people):
    invoice_approve(actor=people["executive"], invoice=draft)
    with pytest.raises(TransitionNotAllowed) as refused:
        drafts.invoice_comment_add(actor=people["pm"], invoice=draft, body="Too late?")
    assert "review is closed" in refused.value.message


def test_an_empty_comment_is_refused(draft, people):
    with pytest.raises(ValidationFailed) as refused:
        drafts.invoice_comment_add(actor=people["pm"], invoice=draft, body="  ")
    assert refused.value.errors == {"body": ["Enter the comment."]}


def test_a_comment_does_not_clear_a_pending_first_approval(draft, people):
    Invoice.objects.filter(pk=draft.pk).update(approved_by=people["finance"])
    drafts.invoice_comment_add(actor=people["pm"], invoice=draft, body="Fine by me.")
    assert fresh(draft).approved_by == people["finance"]
