"""Credit notes (``billing.credit_notes``): a full credit negates lines, tax and totals to the cent; partial
amounts; never more than a line's net amount over all credit notes that are not discarded; only issued
invoices; a root cause from the list; finance only; their own gapless series on issue; the original's
balance; the hook issuing calls; and the "Credit…" page (form, success, errors on the fields, 409 for what
cannot be credited, the role matrix) with the panel of an invoice's credit notes."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from billing import credit_notes as cn
from billing.credit_notes import credit_note_create, credit_note_on_issue, creditable_lines, invoice_balance
from billing.credit_views import credit_notes_panel_context
from billing.issuing import invoice_approve, invoice_discard, invoice_issue
from billing.models import CreditReason, Invoice, InvoiceItem, InvoiceLine
from billing.pricing import invoice_refigure
from customers.models import TaxRegistration
from projects.models import EntryStatus, TimeEntry
from tax.models import TaxCalculation

pytestmark = pytest.mark.django_db

YEAR = timezone.localdate().year


# --- helpers and fixtures -------------------------------------------------------------------------------------


def approve_and_issue(invoice: Invoice, people) -> Invoice:
    """The normal path: an executive approves (no limit), finance issues."""
    invoice_approve(actor=people["executive"], invoice=invoice)
    return invoice_issue(actor=people["finance"], invoice=invoice)


def create(invoice, people, **kwargs) -> Invoice:
    kwargs.setdefault("reason", CreditReason.PRICING_ERROR)
    return credit_note_create(actor=people["finance"], invoice=invoice, **kwargs)


def lines_of(invoice: Invoice) -> list[InvoiceLine]:
    return list(InvoiceLine.objects.filter(invoice=invoice).order_by("position", "id"))


@pytest.fixture
def issued(make_draft, team, approved_time, people, bank_account) -> Invoice:
    """DE-<year>-000001: five lines of 8 h at 150 (1,200.00 each), 6,000.00 net, 19 % VAT 1,140.00."""
    invoice = approve_and_issue(make_draft(team), people)
    assert (invoice.net_total, invoice.tax_total, invoice.gross_total) == (
        Decimal("6000.00"),
        Decimal("1140.00"),
        Decimal("7140.00"),
    )
    return invoice


@pytest.fixture
def odd_issued(legal_entity, customer, people, bank_account) -> Invoice:
    """An issued invoice whose VAT rounds on every category: standard-rated 33.33, 0.05 and 19.99, reduced-rated
    10.01 and 0.07, exempt 5.00 — the tax of each category is computed on the sum of its lines."""
    invoice = Invoice.objects.create(
        legal_entity=legal_entity,
        customer=customer,
        currency="EUR",
        created_by=people["finance"],
        payment_terms_days=14,
        po_number="PO-77",
    )
    rows = [("33.33", "S"), ("0.05", "S"), ("10.01", "AA"), ("19.99", "S"), ("0.07", "AA"), ("5.00", "E")]
    for position, (amount, category) in enumerate(rows, start=1):
        InvoiceLine.objects.create(
            invoice=invoice,
            position=position,
            kind="manual",
            description=f"Item {position}",
            quantity=Decimal("1"),
            unit="C62",
            unit_price=Decimal(amount),
            net_amount=Decimal(amount),
            product_tax_category=category,
        )
    invoice_refigure(invoice)
    return approve_and_issue(Invoice.objects.get(pk=invoice.pk), people)


# --- full credit: exact negation --------------------------------------------------------------------------------


def test_a_full_credit_negates_every_line_the_tax_and_the_totals_to_the_cent(odd_issued, people):
    original = odd_issued
    assert original.tax_total != 0 and len(original.tax_breakdown) == 3  # S, AA and E: a test that can fail
    note = create(original, people, full=True, reason=CreditReason.PRICING_ERROR, explanation="Wrong prices")

    assert (note.kind, note.status, note.credited_invoice) == (Invoice.Kind.CREDIT_NOTE, "draft", original)
    assert (note.net_total, note.tax_total, note.gross_total) == (
        -original.net_total,
        -original.tax_total,
        -original.gross_total,
    )
    pairs = list(zip(lines_of(note), lines_of(original), strict=True))
    for credit, source in pairs:
        assert credit.credited_line == source
        assert credit.net_amount == -source.net_amount
        assert (credit.quantity, credit.unit, credit.unit_price) == (-source.quantity, source.unit, source.unit_price)
        assert credit.product_tax_category == source.product_tax_category
        assert (credit.tax_category, credit.tax_rate) == (source.tax_category, source.tax_rate)

    def amounts(breakdown, sign=1):  # compared as numbers: the engine may give an exempt category -0.00
        return [
            (
                row["category"],
                Decimal(row["rate"]),
                sign * Decimal(row["taxable_amount"]),
                sign * Decimal(row["tax_amount"]),
            )
            for row in breakdown
        ]

    assert amounts(note.tax_breakdown) == amounts(original.tax_breakdown, sign=-1)

    issued = approve_and_issue(note, people)
    assert issued.tax_total == -original.tax_total and issued.gross_total == -original.gross_total


def test_a_full_credit_copies_the_parties_and_terms_of_the_original(issued, people):
    note = create(issued, people, full=True, reason=CreditReason.GOODWILL, explanation="  Sorry for the delay  ")
    fields = ("legal_entity_id", "customer_id", "project_id", "currency", "language", "po_number")
    assert [getattr(note, f) for f in fields] == [getattr(issued, f) for f in fields]
    assert note.seller == issued.seller and note.buyer == issued.buyer
    assert (note.credit_reason, note.credit_explanation, note.releases_items) == (
        "goodwill",
        "Sorry for the delay",
        False,
    )
    assert note.created_by == people["finance"] and note.number == "" and note.sequence is None
    assert note.tax_total == Decimal("-1140.00") and note.gross_total == Decimal("-7140.00")
    assert [line.note for line in lines_of(note)] == [f"Credits line {n} of {issued.number}" for n in range(1, 6)]
    record = note.history.first()
    assert record.history_user == people["finance"]
    assert record.history_change_reason == f"Credit note for {issued.number} (in full): Goodwill"
    assert not InvoiceItem.objects.filter(invoice=note).exists()  # a credit note bills nothing


# --- partial amounts and the remaining creditable amount ----------------------------------------------------------


def test_chosen_lines_are_credited_whole_or_in_part(issued, people):
    first, second, third = lines_of(issued)[:3]
    note = create(
        issued,
        people,
        lines=[
            {"line": third, "amount": Decimal("100.01")},
            {"line": first, "amount": None},
            {"line": second, "amount": Decimal("300.00")},
        ],
    )
    by_source = {line.credited_line_id: line for line in lines_of(note)}
    assert [line.credited_line_id for line in lines_of(note)] == [first.pk, second.pk, third.pk]  # original order
    whole, part, odd = by_source[first.pk], by_source[second.pk], by_source[third.pk]
    assert (whole.net_amount, whole.quantity, whole.unit_price) == (Decimal("-1200.00"), Decimal("-8"), Decimal("150"))
    assert (part.net_amount, part.quantity, part.unit, part.unit_price) == (
        Decimal("-300.00"),
        Decimal("-2"),
        "HUR",
        Decimal("150"),
    )  # 300.00 of 150/h: two hours
    assert (odd.net_amount, odd.quantity, odd.unit, odd.unit_price) == (
        Decimal("-100.01"),
        Decimal("-1"),
        "C62",
        Decimal("100.01"),
    )
    assert part.note == f"Credits line 2 of {issued.number} in part (€300.00 of €1,200.00)"
    assert note.net_total == Decimal("-1600.01")
    assert note.tax_total == Decimal("-304.00")  # 1,600.01 at 19 % = 304.0019 -> 304.00, negated
    remaining = {c.line.pk: c.remaining_amount for c in creditable_lines(issued)}
    assert (remaining[first.pk], remaining[second.pk], remaining[third.pk]) == (
        Decimal("0.00"),
        Decimal("900.00"),
        Decimal("1099.99"),
    )


def test_over_crediting_a_line_is_refused_naming_the_line(issued, people):
    line = lines_of(issued)[0]
    create(issued, people, lines=[{"line": line, "amount": Decimal("1000.00")}])  # a draft counts already
    with pytest.raises(ValidationFailed) as refused:
        create(issued, people, lines=[{"line": line, "amount": Decimal("300.00")}])
    message = (
        "Line 1 (Data platform build, day 1): €300.00 is more than can be credited; €1,000.00 of its €1,200.00 is "
        "credited already (draft credit notes included), so at most €200.00 can be."
    )
    assert refused.value.errors == {"lines.0.amount": [message]}
    assert message in refused.value.message
    assert Invoice.objects.filter(kind="credit_note").count() == 1

    create(issued, people, lines=[{"line": line, "amount": Decimal("200.00")}])  # exactly what remains
    with pytest.raises(ValidationFailed, match=r"Line 1 \(Data platform build, day 1\) is fully credited already"):
        create(issued, people, lines=[{"line": line, "amount": None}])


def test_a_first_credit_above_the_net_amount_is_refused(issued, people):
    line = lines_of(issued)[1]
    with pytest.raises(ValidationFailed, match=re.escape("its net amount is €1,200.00, so at most €1,200.00 can be")):
        create(issued, people, lines=[{"line": line, "amount": Decimal("1200.01")}])


def test_a_discarded_credit_note_gives_its_amount_back(issued, people):
    line = lines_of(issued)[0]
    draft = create(issued, people, lines=[{"line": line, "amount": None}])
    invoice_discard(actor=people["finance"], invoice=draft, reason="Wrong line")
    note = create(issued, people, lines=[{"line": line, "amount": None}])
    assert note.net_total == Decimal("-1200.00")


def test_a_full_credit_after_a_partial_one_credits_what_remains(issued, people):
    line = lines_of(issued)[0]
    create(issued, people, lines=[{"line": line, "amount": Decimal("200.00")}])
    rest = create(issued, people, full=True)
    assert rest.net_total == Decimal("-5800.00")
    with pytest.raises(ValidationFailed, match=f"Everything on {issued.number} is credited already"):
        create(issued, people, full=True)


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (Decimal("0"), "the amount to credit must be more than zero"),
        (Decimal("-5.00"), "the amount to credit must be more than zero"),
        (Decimal("10.001"), "has more decimals than EUR allows"),
        ("ten", "the amount must be a number like 120.50"),
        (10.5, "the amount must be a number like 120.50"),  # never a float
    ],
)
def test_malformed_amounts_are_refused_on_the_line(issued, people, amount, message):
    with pytest.raises(ValidationFailed) as refused:
        create(issued, people, lines=[{"line": lines_of(issued)[2], "amount": amount}])
    assert message in refused.value.errors["lines.0.amount"][0]
    assert refused.value.errors["lines.0.amount"][0].startswith("Line 3 (Data platform build, day 3)")


def test_what_to_credit_must_be_said_once(issued, people, legal_entity, customer, make_draft):
    line = lines_of(issued)[0]
    with pytest.raises(ValidationFailed, match="either the whole invoice or chosen lines, not both"):
        create(issued, people, full=True, lines=[{"line": line, "amount": None}])
    with pytest.raises(ValidationFailed, match="Choose the lines to credit, or credit the whole invoice"):
        create(issued, people)
    with pytest.raises(ValidationFailed, match=r"Line 1 .* is chosen twice"):
        create(issued, people, lines=[{"line": line, "amount": None}, {"line": line, "amount": Decimal("1")}])
    stranger = InvoiceLine(pk=10**9, description="Elsewhere", position=1)
    with pytest.raises(ValidationFailed, match=f"Choice 1 is not a line of {issued.number}"):
        create(issued, people, lines=[{"line": stranger, "amount": None}])
    assert not Invoice.objects.filter(kind="credit_note").exists()


def test_a_discount_is_reversed_by_a_positive_line_and_a_zero_line_is_not_credited(
    legal_entity, customer, people, bank_account
):
    invoice = Invoice.objects.create(legal_entity=legal_entity, customer=customer, currency="EUR")
    rows = [("manual", "Workshop", "99.99"), ("discount", "Loyalty discount", "-10.00"), ("manual", "Free call", "0")]
    for position, (kind, description, amount) in enumerate(rows, start=1):
        InvoiceLine.objects.create(
            invoice=invoice,
            position=position,
            kind=kind,
            description=description,
            quantity=Decimal("1"),
            unit="C62",
            unit_price=Decimal(amount),
            net_amount=Decimal(amount),
        )
    invoice_refigure(invoice)
    original = approve_and_issue(Invoice.objects.get(pk=invoice.pk), people)
    assert (original.net_total, original.tax_total) == (Decimal("89.99"), Decimal("17.10"))
    workshop, discount, free = lines_of(original)

    with pytest.raises(ValidationFailed, match=r"Line 3 \(Free call\) has a net amount of zero"):
        create(original, people, lines=[{"line": free, "amount": None}])
    with pytest.raises(ValidationFailed, match=r"reduces the invoice by €10.00; it is credited whole or not at all"):
        create(original, people, lines=[{"line": discount, "amount": Decimal("5.00")}])

    note = create(original, people, full=True)
    credit_workshop, credit_discount = lines_of(note)  # the zero line is left out
    assert (credit_workshop.net_amount, credit_workshop.credited_line) == (Decimal("-99.99"), workshop)
    assert (credit_discount.kind, credit_discount.net_amount, credit_discount.credited_line) == (
        "manual",
        Decimal("10.00"),
        discount,
    )
    assert (note.net_total, note.tax_total, note.gross_total) == (
        -original.net_total,
        -original.tax_total,
        -original.gross_total,
    )


# --- what may be credited -------------------------------------------------------------------------------------


def test_only_issued_invoices_are_credited(make_draft, team, approved_time, people, bank_account):
    draft = make_draft(team)
    with pytest.raises(TransitionNotAllowed, match="is a draft; only issued invoices are credited"):
        create(draft, people, full=True)
    invoice_approve(actor=people["executive"], invoice=draft)
    with pytest.raises(TransitionNotAllowed, match="is approved but not issued yet; only issued invoices are credited"):
        create(draft, people, full=True)
    invoice_discard(actor=people["finance"], invoice=draft, reason="Not this one")
    with pytest.raises(TransitionNotAllowed, match="was discarded; there is nothing to credit"):
        create(draft, people, full=True)


def test_a_credit_note_is_not_credited(issued, people):
    note = approve_and_issue(create(issued, people, full=True), people)
    with pytest.raises(
        TransitionNotAllowed, match=f"{note.number} is a credit note itself; only invoices are credited"
    ):
        create(note, people, full=True)


@pytest.mark.parametrize(
    ("reason", "explanation", "field", "message"),
    [
        ("", "", "reason", "Choose the root cause of the credit"),
        ("  ", "", "reason", "Choose the root cause of the credit"),
        ("typo", "", "reason", "'typo' is not a root cause; choose one of missing_time, misapplied_tax"),
        (CreditReason.OTHER, "", "explanation", "Say what the other cause was"),
    ],
)
def test_the_root_cause_is_required_and_one_of_the_list(issued, people, reason, explanation, field, message):
    with pytest.raises(ValidationFailed) as refused:
        create(issued, people, full=True, reason=reason, explanation=explanation)
    assert message in refused.value.errors[field][0]
    assert not Invoice.objects.filter(kind="credit_note").exists()


def test_every_root_cause_of_the_list_is_accepted(issued, people):
    line = lines_of(issued)[0]
    for reason in CreditReason.values:
        note = create(issued, people, lines=[{"line": line, "amount": Decimal("1.00")}], reason=reason, explanation="x")
        assert note.credit_reason == reason


@pytest.mark.parametrize("name", ["pm", "executive", "auditor", "consultant", "sales"])
def test_only_finance_creates_credit_notes(issued, people, name):
    with pytest.raises(NotPermitted):
        credit_note_create(actor=people[name], invoice=issued, full=True, reason=CreditReason.GOODWILL)
    assert not Invoice.objects.filter(kind="credit_note").exists()


def test_auditors_are_told_they_change_nothing_and_anonymous_is_refused(issued, people):
    with pytest.raises(NotPermitted, match="Auditors can view everything but change nothing"):
        credit_note_create(actor=people["auditor"], invoice=issued, full=True, reason="goodwill")
    with pytest.raises(NotPermitted, match="Sign in"):
        credit_note_create(actor=AnonymousUser(), invoice=issued, full=True, reason="goodwill")


def test_release_needs_whole_lines_credited_in_full(issued, people):
    line = lines_of(issued)[0]
    with pytest.raises(ValidationFailed) as refused:
        create(issued, people, lines=[{"line": line, "amount": Decimal("100.00")}], release_items=True)
    assert refused.value.errors == {
        "release_items": [
            "Only lines credited in full release their items for rebilling; Line 1 (Data platform build, day 1) is "
            "credited in part."
        ]
    }


def test_a_credit_note_that_releases_says_so_and_releases_nothing_before_issue(issued, people):
    note = create(issued, people, full=True, release_items=True)
    assert note.releases_items and note.status == Invoice.Status.DRAFT
    assert InvoiceItem.objects.filter(invoice=issued, live=True).count() == 5
    assert set(TimeEntry.objects.values_list("status", flat=True)) == {EntryStatus.BILLED}


def test_a_changed_tax_treatment_is_refused_rather_than_credited_at_another_rate(issued, people, customer):
    TaxRegistration.objects.create(customer=customer, country="IE", number="IE6433435F")  # now reverse charge
    with pytest.raises(Conflict) as refused:
        create(issued, people, lines=[{"line": lines_of(issued)[0], "amount": None}])
    assert "Line 1 (Data platform build, day 1) was taxed S 19 % on the invoice, but the engine now decides AE 0 %" in (
        refused.value.message
    )
    assert not Invoice.objects.filter(kind="credit_note").exists()


# --- issue: own series, the hook --------------------------------------------------------------------------------


def test_credit_notes_take_their_own_series_on_issue(issued, people):
    lines = lines_of(issued)
    first = approve_and_issue(create(issued, people, lines=[{"line": lines[0], "amount": None}]), people)
    assert (first.number, first.fiscal_year, first.sequence) == (f"DE-CN-{YEAR}-000001", YEAR, 1)
    assert issued.number == f"DE-{YEAR}-000001"
    assert TaxCalculation.objects.get(pk=first.tax_calculation_id).document_type == "credit_note"
    second = approve_and_issue(create(issued, people, lines=[{"line": lines[1], "amount": None}]), people)
    assert (second.number, second.sequence) == (f"DE-CN-{YEAR}-000002", 2)
    # the credited work stays billed (no release), and issuing a credit note bills nothing
    assert set(TimeEntry.objects.values_list("status", "invoice_ref")) == {(EntryStatus.BILLED, issued.number)}


def test_the_hook_keeps_the_original_parties_and_checks_the_credit(issued, people, customer):
    note = create(issued, people, full=True)
    note.seller, note.buyer = {"legal_name": "Changed"}, {"legal_name": "Changed"}
    credit_note_on_issue(note, actor=people["finance"])
    assert (note.seller, note.buyer) == (issued.seller, issued.buyer)

    InvoiceLine.objects.filter(invoice=note, position=2).update(tax_rate=Decimal("7"))
    with pytest.raises(Conflict, match=r"Line 2 .* was taxed S 19 % on the invoice, but the engine now decides S 7 %"):
        credit_note_on_issue(note, actor=people["finance"])


def test_the_hook_refuses_a_line_credited_beyond_its_amount(issued, people):
    line = lines_of(issued)[0]
    note = create(issued, people, lines=[{"line": line, "amount": Decimal("600.00")}])
    create(issued, people, lines=[{"line": line, "amount": Decimal("600.00")}])
    InvoiceLine.objects.filter(invoice=note).update(net_amount=Decimal("-600.01"))  # a bug or a shell
    with pytest.raises(Conflict, match=r"Line 1 \(Data platform build, day 1\) of .* would be credited beyond"):
        credit_note_on_issue(note, actor=people["finance"])


def test_the_hook_refuses_lines_of_another_invoice(issued, odd_issued, people):
    note = create(issued, people, lines=[{"line": lines_of(issued)[0], "amount": None}])
    InvoiceLine.objects.filter(invoice=note).update(credited_line=lines_of(odd_issued)[0])
    with pytest.raises(Conflict, match=f"credits lines of another invoice than {issued.number}"):
        credit_note_on_issue(note, actor=people["finance"])


def test_the_hook_leaves_a_hand_made_credit_note_alone(legal_entity, customer, people):
    note = Invoice.objects.create(
        kind="credit_note", legal_entity=legal_entity, customer=customer, currency="EUR", seller={"legal_name": "Now"}
    )
    credit_note_on_issue(note, actor=people["finance"])
    assert note.seller == {"legal_name": "Now"}


def test_the_hook_leaves_invoices_alone(issued, people):
    before = (issued.seller, issued.buyer)
    credit_note_on_issue(issued, actor=people["finance"])
    assert (issued.seller, issued.buyer) == before


# --- balance --------------------------------------------------------------------------------------------------


def test_the_balance_after_one_and_two_credit_notes(issued, people):
    assert invoice_balance(issued) == {
        "currency": "EUR",
        "gross_total": Decimal("7140.00"),
        "credited_amount": Decimal("0"),
        "remaining_amount": Decimal("7140.00"),
        "pending_amount": Decimal("0"),
        "issued_count": 0,
        "pending_count": 0,
    }
    lines = lines_of(issued)
    approve_and_issue(create(issued, people, lines=[{"line": lines[0], "amount": Decimal("300.00")}]), people)
    balance = invoice_balance(issued)
    assert (balance["credited_amount"], balance["remaining_amount"]) == (Decimal("357.00"), Decimal("6783.00"))

    second = create(issued, people, lines=[{"line": lines[1], "amount": None}])  # a draft: pending, not credited
    balance = invoice_balance(issued)
    assert (balance["credited_amount"], balance["pending_amount"], balance["pending_count"]) == (
        Decimal("357.00"),
        Decimal("1428.00"),
        1,
    )
    approve_and_issue(second, people)
    balance = invoice_balance(issued)
    assert (balance["credited_amount"], balance["remaining_amount"], balance["issued_count"]) == (
        Decimal("1785.00"),
        Decimal("5355.00"),
        2,
    )
    assert balance["pending_amount"] == 0


def test_a_fully_credited_invoice_has_nothing_remaining(odd_issued, people):
    approve_and_issue(create(odd_issued, people, full=True), people)
    assert invoice_balance(odd_issued)["remaining_amount"] == 0


# --- pages ----------------------------------------------------------------------------------------------------


def credit_url(invoice) -> str:
    return reverse("billing:credit-note-create", kwargs={"public_id": invoice.public_id})


def detail_url(invoice) -> str:
    return reverse("billing:invoice-detail", kwargs={"public_id": invoice.public_id})


def text_of(response) -> str:
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", response.content.decode(), flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\s+", " ", text)
    return text.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&")


def field_error(response, html_name: str) -> str:
    match = re.search(rf'id="id_{re.escape(html_name)}_error">(.*?)</div>', response.content.decode(), re.S)
    return match.group(1).replace("&#x27;", "'") if match else ""


def test_the_form_lists_the_lines_with_what_remains(client, issued, people):
    line = lines_of(issued)[0]
    create(issued, people, lines=[{"line": line, "amount": Decimal("200.00")}])
    client.force_login(people["finance"])
    response = client.get(credit_url(issued))
    assert response.status_code == 200
    text = text_of(response)
    assert f"Credit {issued.number}" in text and "Data platform build, day 5" in text
    assert "€200.00 €1,000.00" in text  # credited, remaining of line 1 (the draft counts)
    assert "In draft credit notes €238.00" in text
    html = response.content.decode()
    assert f'name="amount_{line.public_id.hex}"' in html and 'name="reason"' in html


def test_posting_a_full_credit_opens_the_new_draft(client, issued, people):
    client.force_login(people["finance"])
    response = client.post(credit_url(issued), {"mode": "full", "reason": "scope_misunderstanding", "explanation": "x"})
    note = Invoice.objects.get(kind="credit_note")
    assert response.status_code == 302 and response["Location"] == detail_url(note)
    assert note.gross_total == Decimal("-7140.00") and note.credit_reason == "scope_misunderstanding"
    page = client.get(response["Location"])
    assert page.status_code == 200 and f"Draft credit note of €7,140.00 for {issued.number} created" in text_of(page)


def test_posting_chosen_lines_with_amounts(client, issued, people):
    first, second = lines_of(issued)[:2]
    client.force_login(people["finance"])
    data = {
        "mode": "lines",
        "reason": "missing_time",
        f"line_{first.public_id.hex}": "on",
        f"amount_{second.public_id.hex}": "150.00",  # an amount alone chooses the line
    }
    response = client.post(credit_url(issued), data)
    assert response.status_code == 302
    note = Invoice.objects.get(kind="credit_note")
    assert sorted(line.net_amount for line in lines_of(note)) == [Decimal("-1200.00"), Decimal("-150.00")]


def test_errors_are_shown_on_their_fields(client, issued, people):
    first = lines_of(issued)[0]
    client.force_login(people["finance"])
    response = client.post(credit_url(issued), {"mode": "lines", "reason": ""})
    assert response.status_code == 400 and field_error(response, "reason") == "This field is required."

    response = client.post(credit_url(issued), {"mode": "lines", "reason": "goodwill"})
    assert response.status_code == 400
    assert field_error(response, "mode") == "Choose the lines to credit, or credit the whole invoice."

    response = client.post(
        credit_url(issued), {"mode": "lines", "reason": "goodwill", f"amount_{first.public_id.hex}": "1300"}
    )
    assert response.status_code == 400
    error = field_error(response, f"amount_{first.public_id.hex}")
    assert error.startswith("Line 1 (Data platform build, day 1): €1,300.00 is more than can be credited")
    assert "Nothing was changed. (HTTP 400 Bad Request)" in text_of(response)

    response = client.post(
        credit_url(issued), {"mode": "lines", "reason": "goodwill", f"amount_{first.public_id.hex}": "abc"}
    )
    assert response.status_code == 400 and field_error(response, f"amount_{first.public_id.hex}")

    response = client.post(credit_url(issued), {"mode": "full", "reason": "other", "explanation": ""})
    assert response.status_code == 400 and field_error(response, "explanation").startswith("Say what the other cause")

    response = client.post(credit_url(issued), {"mode": "sideways", "reason": "typo"})
    assert response.status_code == 400 and "Select a valid choice" in field_error(response, "reason")
    assert not Invoice.objects.filter(kind="credit_note").exists()


def test_the_page_offers_the_release_and_creates_a_releasing_credit_note(client, issued, people):
    client.force_login(people["finance"])
    html = client.get(credit_url(issued)).content.decode()
    checkbox = re.search(r'<input[^>]*name="release_items"[^>]*>', html)
    assert checkbox and "disabled" not in checkbox.group(0)
    assert "Release the credited items for rebilling" in html
    assert text_of(client.get(credit_url(issued))).count("· 1 billed item ") == 5  # what a whole line releases
    response = client.post(credit_url(issued), {"mode": "full", "reason": "pricing_error", "release_items": "on"})
    note = Invoice.objects.get(kind="credit_note")
    assert response.status_code == 302 and note.releases_items
    assert "Issuing it releases the credited items for rebilling." in text_of(client.get(response["Location"]))


def test_the_page_refuses_a_release_of_a_line_credited_in_part_on_the_field(client, issued, people):
    first = lines_of(issued)[0]
    client.force_login(people["finance"])
    data = {"mode": "lines", "reason": "goodwill", f"amount_{first.public_id.hex}": "100.00", "release_items": "on"}
    response = client.post(credit_url(issued), data)
    assert response.status_code == 400
    assert field_error(response, "release_items") == (
        "Only lines credited in full release their items for rebilling; Line 1 (Data platform build, day 1) is "
        "credited in part."
    )
    assert not Invoice.objects.filter(kind="credit_note").exists()


def test_a_changed_tax_is_shown_not_raised(client, issued, people, customer):
    client.force_login(people["finance"])
    TaxRegistration.objects.create(customer=customer, country="IE", number="IE6433435F")
    response = client.post(credit_url(issued), {"mode": "full", "reason": "misapplied_tax"})
    assert response.status_code == 409
    assert "but the engine now decides AE 0 %" in text_of(response)


def test_what_cannot_be_credited_answers_409_with_the_reason(client, make_draft, team, approved_time, people):
    draft = make_draft(team)
    client.force_login(people["finance"])
    for method in (client.get, client.post):
        response = method(credit_url(draft))
        assert response.status_code == 409
        assert "only issued invoices are credited" in text_of(response)
        assert f'href="{detail_url(draft)}"' in response.content.decode()
    assert not Invoice.objects.filter(kind="credit_note").exists()


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("sales", 403),
        ("pm", 403),
        ("consultant", 403),
        ("finance", 200),
        ("executive", 403),
        ("auditor", 403),
        ("admin", 200),
    ],
)
def test_who_may_open_the_credit_form(client, issued, people, who, expected):
    client.force_login(people[who])
    assert client.get(credit_url(issued)).status_code == expected
    assert client.post(credit_url(issued), {"mode": "full", "reason": "goodwill"}).status_code in {expected, 302}
    if expected == 403:
        assert not Invoice.objects.filter(kind="credit_note").exists()


def test_signed_out_goes_to_sign_in_and_an_unknown_invoice_is_404(client, issued, people):
    response = client.get(credit_url(issued))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(people["finance"])
    unknown = reverse("billing:credit-note-create", kwargs={"public_id": "00000000-0000-0000-0000-000000000000"})
    assert client.get(unknown).status_code == 404


# --- the panel on the invoice page ---------------------------------------------------------------------------


def test_the_panel_lists_credit_notes_and_the_remaining_balance(issued, people):
    lines = lines_of(issued)
    first = approve_and_issue(create(issued, people, lines=[{"line": lines[0], "amount": Decimal("300.00")}]), people)
    create(issued, people, lines=[{"line": lines[1], "amount": None}], reason=CreditReason.MISSING_TIME)

    panel = credit_notes_panel_context(user=people["finance"], invoice=issued)
    html = render_to_string("billing/partials/credit_notes_panel.html", {"credit_panel": panel})
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert first.number in text and "Pricing error" in text and "Missing time" in text
    assert "Invoiced €7,140.00" in text and "Credited €357.00" in text and "Remaining €6,783.00" in text
    assert "1 credit note not issued yet would credit €1,428.00 more" in text
    assert credit_url(issued) in html and detail_url(first) in html

    auditor_panel = credit_notes_panel_context(user=people["auditor"], invoice=issued)
    assert auditor_panel["create_url"] is None and auditor_panel["balance"] == panel["balance"]
    assert credit_notes_panel_context(user=people["finance"], invoice=first) is None  # a credit note: no panel
    assert render_to_string("billing/partials/credit_notes_panel.html", {"credit_panel": None}).strip() == ""


def test_the_panel_says_whether_a_credit_note_releases_its_items(issued, people):
    lines = lines_of(issued)
    pending = create(issued, people, lines=[{"line": lines[0], "amount": None}], release_items=True)

    def panel_text() -> str:
        panel = credit_notes_panel_context(user=people["finance"], invoice=issued)
        html = render_to_string("billing/partials/credit_notes_panel.html", {"credit_panel": panel})
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))

    assert "releases its items for rebilling once issued" in panel_text()
    approve_and_issue(pending, people)
    text = panel_text()
    assert "items released for rebilling" in text and "once issued" not in text


def test_the_panel_costs_the_same_queries_whatever_the_number_of_credit_notes(
    issued, people, django_assert_max_num_queries
):
    line = lines_of(issued)[0]
    create(issued, people, lines=[{"line": line, "amount": Decimal("1.00")}])
    with django_assert_max_num_queries(6) as captured:
        credit_notes_panel_context(user=people["finance"], invoice=issued)
    one = len(captured.captured_queries)
    for _ in range(4):
        create(issued, people, lines=[{"line": line, "amount": Decimal("1.00")}])
    with django_assert_max_num_queries(one):
        credit_notes_panel_context(user=people["finance"], invoice=issued)


def test_no_panel_for_drafts(make_draft, team, approved_time, people):
    assert credit_notes_panel_context(user=people["finance"], invoice=make_draft(team)) is None


def test_the_draft_is_priced_with_the_original_tax_point(issued, people, monkeypatch):
    """A credit note reverses the VAT of the supply it corrects: its tax point is the original's issue date."""
    seen = []
    real = cn.invoice_refigure

    def spy(invoice, lines=None, *, tax_point=None):
        seen.append(tax_point)
        return real(invoice, lines, tax_point=tax_point)

    monkeypatch.setattr(cn, "invoice_refigure", spy)
    create(issued, people, full=True)
    assert seen == [issued.issue_date]
