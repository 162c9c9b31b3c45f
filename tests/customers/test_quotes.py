"""Quotes: line nets rounded once, every validation rule with its flat key, versions, sending (the PDF rendered
once, after commit, never again), acceptance (one per deal, also in the database), attachments (type, size,
content), the tax preview, and who may do what."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.money import quantize
from backbone.roles import Role
from customers.models import Deal, Product, Quote, QuoteAttachment, QuoteLine, QuoteMilestone
from customers.services import (
    ATTACHMENT_MAX_BYTES,
    deal_move_stage,
    quote_accept,
    quote_attachment_add,
    quote_attachment_remove,
    quote_create,
    quote_line_net_amount,
    quote_new_version,
    quote_send,
    quote_tax_preview,
    quote_update,
)
from customers.tasks import quote_pdf_render
from tests.customers.deal_factories import (
    TODAY,
    fixed_line,
    make_customer,
    make_deal,
    make_quote,
    milestone,
    quote_data,
    tm_line,
)
from tests.customers.factories import ProductFactory

pytestmark = pytest.mark.django_db

PDF_BYTES = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def upload(name="signed.pdf", content=PDF_BYTES, content_type="application/pdf"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def office_file(parts: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return buffer.getvalue()


DOCX = office_file({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})
XLSX = office_file({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"})
ODT = office_file({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<office/>"})


def errors_of(call) -> dict:
    with pytest.raises(ValidationFailed) as exc:
        call()
    return exc.value.errors


# --- the one net amount ---------------------------------------------------------------------------------


def test_line_net_is_rounded_once_half_up():
    # 3 x 33.3333 = 99.9999, less 10 % = 89.99991 → 90.00 (not 3 x 30.00 = 90.00 by accident: per-unit would be 89.97)
    net = quote_line_net_amount(
        quantity=Decimal("3"), unit_price=Decimal("33.3333"), discount_percent=Decimal("10"), currency="EUR"
    )
    assert net == Decimal("90.00")
    assert quote_line_net_amount(
        quantity=Decimal("1"), unit_price=Decimal("0.125"), discount_percent=Decimal("0"), currency="EUR"
    ) == Decimal("0.13")
    assert quote_line_net_amount(
        quantity=Decimal("1.5"), unit_price=Decimal("1000.5"), discount_percent=Decimal("0"), currency="JPY"
    ) == Decimal("1501")


def test_expense_line_net_takes_the_markup_before_the_discount():
    net = quote_line_net_amount(
        quantity=Decimal("1"),
        unit_price=Decimal("1000"),
        discount_percent=Decimal("5"),
        markup_percent=Decimal("12.5"),
        currency="EUR",
    )
    assert net == Decimal("1068.75")  # 1000 x 1.125 x 0.95


@settings(max_examples=200, deadline=None)
@given(
    quantity=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"), places=4),
    price=st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=4),
    discount=st.decimals(min_value=Decimal("0"), max_value=Decimal("100"), places=2),
    currency=st.sampled_from(["EUR", "JPY", "GBP"]),
)
def test_line_net_is_within_half_a_minor_unit_of_the_exact_value(quantity, price, discount, currency):
    net = quote_line_net_amount(quantity=quantity, unit_price=price, discount_percent=discount, currency=currency)
    exact = quantity * price * (1 - discount / 100)
    assert net == quantize(net, currency)
    assert abs(net - exact) <= Decimal("0.5") * (Decimal("1") if currency == "JPY" else Decimal("0.01"))
    assert Decimal("0") <= net <= quantize(quantity * price, currency)


# --- quote_create ---------------------------------------------------------------------------------------


def test_quote_create_saves_lines_milestones_and_defaults(sales, deal, account):
    quote = make_quote(sales, deal, lines=[tm_line(discount_percent=Decimal("10")), fixed_line()])
    assert quote.version == 1 and quote.status == Quote.Status.DRAFT
    assert quote.currency == deal.currency and quote.payment_terms_days == account.payment_terms_days
    lines = list(quote.lines.all())
    assert [line.net_amount for line in lines] == [Decimal("5400.00"), Decimal("12000.00")]
    assert [line.position for line in lines] == [0, 1]
    assert quote.milestones.get().amount == Decimal("12000.00")


def test_quote_create_defaults_the_validity_to_30_days(sales, deal):
    quote = quote_create(user=sales, deal=deal, data={}, lines=[tm_line()], milestones=[])
    assert quote.valid_until == TODAY + dt.timedelta(days=30)


def test_a_quote_without_lines_is_refused(sales, deal):
    errors = errors_of(lambda: quote_create(user=sales, deal=deal, data=quote_data(), lines=[], milestones=[]))
    assert "lines" in errors
    assert not Quote.objects.exists()


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"unit_price": None}, "lines.1.unit_price"),
        ({"quantity": None}, "lines.1.quantity"),
        ({"quantity": Decimal("0")}, "lines.1.quantity"),
        ({"unit_price": Decimal("-1")}, "lines.1.unit_price"),
        ({"discount_percent": Decimal("100.01")}, "lines.1.discount_percent"),
        ({"discount_percent": Decimal("-1")}, "lines.1.discount_percent"),
        ({"labour_category": ""}, "lines.1.labour_category"),
        ({"description": ""}, "lines.1.description"),
        ({"billing_model": "barter"}, "lines.1.billing_model"),
        ({"unit": "XX"}, "lines.1.unit"),
        ({"tax_category": "AE"}, "lines.1.tax_category"),
        ({"quantity": Decimal("1.00001")}, "lines.1.quantity"),
        ({"quantity": "lots"}, "lines.1.quantity"),
    ],
)
def test_a_bad_line_is_refused_under_its_flat_key_and_nothing_is_saved(sales, deal, override, key):
    lines = [fixed_line(), tm_line(**override)]
    errors = errors_of(
        lambda: quote_create(user=sales, deal=deal, data=quote_data(), lines=lines, milestones=[milestone()])
    )
    assert key in errors, errors
    assert not Quote.objects.exists() and not QuoteLine.objects.exists() and not QuoteMilestone.objects.exists()


def test_every_problem_is_reported_at_once(sales, deal):
    errors = errors_of(
        lambda: quote_create(
            user=sales,
            deal=deal,
            data=quote_data(planned_start=TODAY, planned_end=TODAY - dt.timedelta(days=1)),
            lines=[tm_line(unit_price=None), tm_line(quantity=None, labour_category="")],
            milestones=[milestone(amount=Decimal("5"), name="")],
        )
    )
    assert {
        "planned_end",
        "lines.0.unit_price",
        "lines.1.quantity",
        "lines.1.labour_category",
        "milestones.0.name",
        "milestones.0.amount",
    } <= set(errors)


def test_a_product_priced_in_another_currency_is_refused(sales, deal):
    product = ProductFactory(currency="GBP", code="UX-GBP")
    errors = errors_of(lambda: make_quote(sales, deal, lines=[tm_line(product=product)], milestones=[]))
    assert "priced in GBP" in errors["lines.0.product"][0]


def test_a_retired_product_is_refused_and_a_product_fills_in_what_the_line_leaves_out(sales, deal):
    retired = ProductFactory(is_active=False, code="OLD")
    errors = errors_of(lambda: make_quote(sales, deal, lines=[tm_line(product=retired)], milestones=[]))
    assert "retired" in errors["lines.0.product"][0]
    font = ProductFactory(code="LIC-FONT", name="Font licence", unit="ANN", kind=Product.Kind.GOODS)
    quote = make_quote(
        sales,
        deal,
        lines=[{"product": font, "billing_model": "fixed_fee", "quantity": 1, "unit_price": 390}],
        milestones=[milestone(amount=Decimal("390"))],
    )
    line = quote.lines.get()
    assert (line.description, line.unit, line.supply_kind) == ("Font licence", "ANN", "goods")


def test_the_milestone_plan_must_add_up_to_the_fixed_fee(sales, deal):
    lines = [fixed_line(unit_price=Decimal("10000")), fixed_line(unit_price=Decimal("2500"), discount_percent=10)]
    errors = errors_of(
        lambda: make_quote(
            sales, deal, lines=lines, milestones=[milestone(amount=Decimal("6000")), milestone(amount=Decimal("6000"))]
        )
    )
    assert "add up to 12,000.00 EUR" in errors["milestones"][0] and "12,250.00 EUR" in errors["milestones"][0]
    quote = make_quote(
        sales, deal, lines=lines, milestones=[milestone(amount=Decimal("6000")), milestone(amount=Decimal("6250"))]
    )
    assert sum(m.amount for m in quote.milestones.all()) == Decimal("12250.00")


def test_fixed_fee_lines_need_milestones(sales, deal):
    errors = errors_of(lambda: make_quote(sales, deal, lines=[fixed_line()], milestones=[]))
    assert "add milestones" in errors["milestones"][0]


def test_without_fixed_fee_lines_milestones_are_checkpoints_without_amounts(sales, deal):
    errors = errors_of(lambda: make_quote(sales, deal, lines=[tm_line()], milestones=[milestone()]))
    assert "milestones.0.amount" in errors
    quote = make_quote(sales, deal, lines=[tm_line()], milestones=[milestone(amount=None)])
    assert quote.milestones.get().amount == 0


def test_a_milestone_outside_the_planned_period_is_refused(sales, deal):
    errors = errors_of(
        lambda: make_quote(
            sales,
            deal,
            planned_start=TODAY,
            planned_end=TODAY + dt.timedelta(days=30),
            milestones=[milestone(planned_date=TODAY + dt.timedelta(days=31))],
        )
    )
    assert "outside the quote's planned period" in errors["milestones.0.planned_date"][0]


def test_a_retainer_line_needs_the_monthly_retainer(sales, deal):
    retainer = {
        "description": "Support retainer",
        "billing_model": "retainer",
        "quantity": 12,
        "unit": "MON",
        "unit_price": Decimal("3200"),
    }
    errors = errors_of(lambda: make_quote(sales, deal, lines=[retainer], milestones=[]))
    assert "retainer_amount" in errors
    quote = make_quote(sales, deal, lines=[retainer], milestones=[], retainer_amount=Decimal("3200"))
    assert quote.lines.get().net_amount == Decimal("38400.00")


def test_expense_lines_take_the_quotes_markup(sales, deal):
    travel = {
        "description": "Travel",
        "billing_model": "expenses",
        "quantity": 1,
        "unit": "C62",
        "unit_price": Decimal("2000"),
    }
    quote = make_quote(sales, deal, lines=[travel, tm_line()], milestones=[], expense_markup_percent=Decimal("10"))
    nets = [line.net_amount for line in quote.lines.all()]
    assert nets == [Decimal("2200.00"), Decimal("6000.00")]  # the markup is for expenses only
    other = make_deal(sales, deal.customer)
    errors = errors_of(lambda: make_quote(sales, other, lines=[travel], milestones=[], expense_markup_percent=150))
    assert "expense_markup_percent" in errors


def test_quote_create_refuses_an_unknown_currency_and_odd_decimals(sales, deal):
    errors = errors_of(lambda: make_quote(sales, deal, currency="XXX"))
    assert "currency" in errors
    errors = errors_of(lambda: make_quote(sales, deal, milestones=[milestone(amount=Decimal("12000.001"))]))
    assert "milestones.0.amount" in errors


def test_one_draft_per_deal_and_none_once_accepted(sales, deal, draft):
    with pytest.raises(Conflict):
        make_quote(sales, deal)
    quote_accept(user=sales, quote=draft)
    with pytest.raises(Conflict):
        make_quote(sales, deal)


def test_quotes_are_made_on_open_deals_only(sales, deal):
    deal_move_stage(user=sales, deal=deal, stage="lost", lost_reason="No budget")
    with pytest.raises(TransitionNotAllowed):
        make_quote(sales, deal)


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.FINANCE, Role.EXECUTIVE, Role.PROJECT_MANAGER])
def test_quote_create_is_refused_to_roles_that_only_look(users, deal, role):
    with pytest.raises(NotPermitted):
        make_quote(users[role], deal)


def test_quote_create_is_refused_on_another_reps_deal(sales2, deal):
    with pytest.raises(NotPermitted):
        make_quote(sales2, deal)


# --- quote_update ---------------------------------------------------------------------------------------


def test_quote_update_replaces_lines_and_milestones_wholesale(sales, draft):
    old_ids = set(draft.lines.values_list("public_id", flat=True))
    quote = quote_update(
        user=sales, quote=draft, data={"terms": "New terms"}, lines=[tm_line(quantity=Decimal("10"))], milestones=[]
    )
    assert quote.terms == "New terms"
    assert [line.net_amount for line in quote.lines.all()] == [Decimal("1500.00")]
    assert not set(quote.lines.values_list("public_id", flat=True)) & old_ids
    assert not quote.milestones.exists()


def test_quote_update_without_lines_keeps_them_and_checks_them_again(sales, deal):
    product = ProductFactory(code="UX", currency="EUR")
    quote = make_quote(sales, deal, lines=[tm_line(product=product)], milestones=[])
    errors = errors_of(lambda: quote_update(user=sales, quote=quote, data={"currency": "GBP"}))
    assert "priced in EUR" in errors["lines.0.product"][0]
    quote = quote_update(user=sales, quote=quote, data={"payment_terms_days": 14})
    assert quote.lines.count() == 1 and quote.payment_terms_days == 14 and quote.currency == "EUR"


def test_quote_update_of_a_draft_with_a_broken_plan_saves_nothing(sales, draft):
    before = list(draft.lines.values_list("public_id", flat=True))
    with pytest.raises(ValidationFailed):
        quote_update(user=sales, quote=draft, data={"terms": "x"}, milestones=[milestone(amount=Decimal("1"))])
    draft.refresh_from_db()
    assert draft.terms != "x" and list(draft.lines.values_list("public_id", flat=True)) == before


def test_only_drafts_change(sales, draft):
    quote_send(user=sales, quote=draft)
    with pytest.raises(TransitionNotAllowed):
        quote_update(user=sales, quote=draft, data={"terms": "Too late"})


# --- versions -------------------------------------------------------------------------------------------


def test_new_version_copies_a_draft_and_supersedes_it(sales, draft):
    copy = quote_new_version(user=sales, quote=draft)
    draft.refresh_from_db()
    assert (copy.version, copy.status, draft.status) == (2, Quote.Status.DRAFT, Quote.Status.SUPERSEDED)
    assert [(line.description, line.net_amount) for line in copy.lines.all()] == [
        (line.description, line.net_amount) for line in draft.lines.all()
    ]
    assert copy.milestones.count() == draft.milestones.count()


def test_new_version_of_a_sent_quote_leaves_it_out_until_the_new_one_is_sent(sales, draft):
    quote_send(user=sales, quote=draft)
    copy = quote_new_version(user=sales, quote=draft)
    draft.refresh_from_db()
    assert draft.status == Quote.Status.SENT
    quote_send(user=sales, quote=copy)
    draft.refresh_from_db()
    assert draft.status == Quote.Status.SUPERSEDED


def test_new_version_of_a_declined_quote_and_a_fresh_validity(sales, deal, draft):
    quote_send(user=sales, quote=draft)
    deal_move_stage(user=sales, deal=deal, stage="lost", lost_reason="Paused")
    deal_move_stage(user=sales, deal=deal, stage="proposal")
    Quote.objects.filter(pk=draft.pk).update(valid_until=TODAY - dt.timedelta(days=3))
    draft.refresh_from_db()
    assert draft.status == Quote.Status.DECLINED
    copy = quote_new_version(user=sales, quote=draft)
    assert copy.valid_until == TODAY + dt.timedelta(days=30)


def test_no_new_version_of_an_accepted_or_superseded_quote(sales, draft):
    copy = quote_new_version(user=sales, quote=draft)
    with pytest.raises(TransitionNotAllowed):
        quote_new_version(user=sales, quote=draft)  # superseded
    quote_accept(user=sales, quote=copy)
    with pytest.raises(TransitionNotAllowed):
        quote_new_version(user=sales, quote=copy)


# --- sending and the PDF --------------------------------------------------------------------------------


def test_send_renders_the_pdf_once_after_commit(sales, draft, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        quote = quote_send(user=sales, quote=draft)
    assert quote.status == Quote.Status.SENT and quote.sent_at is not None
    quote.refresh_from_db()
    assert not quote.pdf  # nothing rendered inside the transaction
    assert len(callbacks) == 1
    callbacks[0]()  # the queue (sync in tests) runs customers.tasks.quote_pdf_render
    quote.refresh_from_db()
    assert quote.pdf and quote.pdf.read().startswith(b"%PDF-")
    quote.pdf.seek(0)
    assert hashlib.sha256(quote.pdf.read()).hexdigest() == quote.pdf_sha256
    stored, digest = quote.pdf.name, quote.pdf_sha256
    assert quote_pdf_render(quote.pk) is False  # a retried task renders nothing again
    quote.refresh_from_db()
    assert (quote.pdf.name, quote.pdf_sha256) == (stored, digest)


def test_a_draft_gets_no_pdf(sales, draft):
    assert quote_pdf_render(draft.pk) is False
    assert quote_pdf_render(0) is False


def test_send_updates_the_deal_value_and_supersedes_earlier_sent_versions(sales, deal, draft):
    quote_send(user=sales, quote=draft)
    deal.refresh_from_db()
    assert deal.amount == Decimal("18000.00")


def test_send_refuses_an_expired_offer(sales, deal):
    quote = make_quote(sales, deal, valid_until=TODAY - dt.timedelta(days=1))
    errors = errors_of(lambda: quote_send(user=sales, quote=quote))
    assert "valid_until" in errors
    quote.refresh_from_db()
    assert quote.status == Quote.Status.DRAFT


def test_send_checks_the_lines_again(sales, deal, draft):
    Product.objects.create(code="X", name="X", revenue_account="8400", currency="GBP")
    QuoteLine.objects.filter(quote=draft, position=0).update(product=Product.objects.get(code="X"))
    errors = errors_of(lambda: quote_send(user=sales, quote=draft))
    assert "lines.0.product" in errors


def test_send_refuses_when_the_tax_cannot_be_worked_out(sales, deal, draft):
    deal.customer.addresses.all().delete()
    with pytest.raises(ValidationFailed) as exc:
        quote_send(user=sales, quote=draft)
    assert "tax cannot be worked out" in exc.value.message


def test_only_a_draft_is_sent(sales, draft):
    quote_send(user=sales, quote=draft)
    with pytest.raises(TransitionNotAllowed):
        quote_send(user=sales, quote=draft)


def test_send_is_refused_to_auditors_and_other_reps(auditor, sales2, draft):
    for person in (auditor, sales2):
        with pytest.raises(NotPermitted):
            quote_send(user=person, quote=draft)


# --- acceptance -----------------------------------------------------------------------------------------


def test_accept_a_sent_quote_supersedes_the_other_open_versions_and_does_not_win(sales, deal, draft):
    quote_send(user=sales, quote=draft)
    newer = quote_new_version(user=sales, quote=draft)
    quote = quote_accept(user=sales, quote=draft, customer_signatory="Katrin Vogel")
    newer.refresh_from_db()
    assert quote.status == Quote.Status.ACCEPTED and quote.accepted_by == sales
    assert quote.customer_signatory == "Katrin Vogel" and newer.status == Quote.Status.SUPERSEDED
    deal.refresh_from_db()
    assert deal.stage.outcome == "open"


def test_accepting_a_draft_renders_its_pdf(sales, draft, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        quote_accept(user=sales, quote=draft)
    draft.refresh_from_db()
    assert draft.pdf and draft.pdf_sha256


def test_only_one_quote_per_deal_is_accepted(sales, deal, draft):
    quote_send(user=sales, quote=draft)
    copy = quote_new_version(user=sales, quote=draft)
    quote_accept(user=sales, quote=copy)
    with pytest.raises(TransitionNotAllowed):
        quote_accept(user=sales, quote=draft)  # superseded by the acceptance
    with pytest.raises(TransitionNotAllowed):
        quote_accept(user=sales, quote=copy)


def test_the_database_refuses_a_second_accepted_quote(sales, deal, draft):
    copy = quote_new_version(user=sales, quote=draft)
    quote_accept(user=sales, quote=copy)
    with pytest.raises(IntegrityError), transaction.atomic():
        Quote.objects.filter(pk=draft.pk).update(status=Quote.Status.ACCEPTED)


def test_accept_refuses_an_expired_offer_and_a_lost_deal(sales, deal, draft):
    Quote.objects.filter(pk=draft.pk).update(valid_until=TODAY - dt.timedelta(days=1))
    draft.refresh_from_db()
    assert "valid_until" in errors_of(lambda: quote_accept(user=sales, quote=draft))
    Quote.objects.filter(pk=draft.pk).update(valid_until=TODAY)
    deal_move_stage(user=sales, deal=deal, stage="lost", lost_reason="Gone")
    with pytest.raises(TransitionNotAllowed):
        quote_accept(user=sales, quote=draft)


def test_accept_is_refused_to_finance(finance, draft):
    with pytest.raises(NotPermitted):
        quote_accept(user=finance, quote=draft)


# --- attachments ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "content_type", "stored_type"),
    [
        ("signed.pdf", PDF_BYTES, "application/pdf", "application/pdf"),
        ("po.docx", DOCX, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", None),
        ("plan.xlsx", XLSX, "application/octet-stream", None),
        ("sow.odt", ODT, "application/vnd.oasis.opendocument.text", None),
    ],
)
def test_attachments_of_each_allowed_type_are_stored_with_their_hash(
    sales, draft, name, content, content_type, stored_type
):
    attachment = quote_attachment_add(
        user=sales, quote=draft, kind=QuoteAttachment.Kind.SIGNED_PROPOSAL, upload=upload(name, content, content_type)
    )
    assert attachment.sha256 == hashlib.sha256(content).hexdigest() and attachment.size == len(content)
    assert attachment.filename == name and attachment.uploaded_by == sales
    assert attachment.file.name.startswith(f"quotes/{draft.public_id}/") and name not in attachment.file.name
    if stored_type:
        assert attachment.content_type == stored_type


def test_a_png_attachment_is_checked_by_decoding_it(sales, draft):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (3, 3), "white").save(buffer, "PNG")
    attachment = quote_attachment_add(
        user=sales, quote=draft, kind="po", upload=upload("po.png", buffer.getvalue(), "image/png")
    )
    assert attachment.content_type == "image/png"


@pytest.mark.parametrize(
    ("name", "content", "content_type", "says"),
    [
        ("script.exe", b"MZ\x90\x00", "application/octet-stream", "must be a PDF"),
        ("fake.pdf", b"<html>not a pdf</html>", "application/pdf", "its content is not a PDF"),
        ("signed.pdf", PDF_BYTES, "text/html", "was sent as text/html"),
        ("doc.docx", b"PK\x03\x04garbage", "application/zip", "its content is not"),
        ("sheet.xlsx", DOCX, "application/octet-stream", "its content is a DOCX file"),
        (
            "sow.odt",
            office_file({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet", "content.xml": b"<x/>"}),
            "",
            "its content is not",
        ),
    ],
)
def test_attachments_of_the_wrong_type_or_content_are_refused(sales, draft, name, content, content_type, says):
    with pytest.raises(ValidationFailed) as exc:
        quote_attachment_add(user=sales, quote=draft, kind="other", upload=upload(name, content, content_type))
    assert says in exc.value.errors["file"][0]
    assert not QuoteAttachment.objects.exists()


def test_attachments_over_10_mb_are_refused(sales, draft):
    big = PDF_BYTES + b"0" * ATTACHMENT_MAX_BYTES
    with pytest.raises(ValidationFailed) as exc:
        quote_attachment_add(user=sales, quote=draft, kind="other", upload=upload("big.pdf", big))
    assert "the limit is 10 MB" in exc.value.errors["file"][0]


def test_attachment_kind_must_be_known(sales, draft):
    with pytest.raises(ValidationFailed) as exc:
        quote_attachment_add(user=sales, quote=draft, kind="selfie", upload=upload())
    assert "kind" in exc.value.errors


def test_attachments_go_on_current_versions_and_come_off_drafts_only(sales, draft):
    attachment = quote_attachment_add(user=sales, quote=draft, kind="sow", upload=upload())
    quote_send(user=sales, quote=draft)
    accepted_doc = quote_attachment_add(user=sales, quote=draft, kind="po", upload=upload())  # a sent quote: yes
    with pytest.raises(TransitionNotAllowed):
        quote_attachment_remove(user=sales, attachment=accepted_doc)
    copy = quote_new_version(user=sales, quote=draft)
    quote_send(user=sales, quote=copy)  # supersedes the first
    draft.refresh_from_db()
    with pytest.raises(TransitionNotAllowed):
        quote_attachment_add(user=sales, quote=draft, kind="po", upload=upload())
    assert QuoteAttachment.objects.filter(pk=attachment.pk).exists()


def test_removing_a_drafts_attachment(sales, draft, auditor):
    attachment = quote_attachment_add(user=sales, quote=draft, kind="sow", upload=upload())
    with pytest.raises(NotPermitted):
        quote_attachment_remove(user=auditor, attachment=attachment)
    quote_attachment_remove(user=sales, attachment=attachment)
    assert not QuoteAttachment.objects.exists()


def test_attachments_are_refused_to_auditors(auditor, draft):
    with pytest.raises(NotPermitted):
        quote_attachment_add(user=auditor, quote=draft, kind="sow", upload=upload())


# --- the tax preview ------------------------------------------------------------------------------------


def test_tax_preview_of_a_domestic_quote(draft):
    result = quote_tax_preview(quote=draft)
    assert result.net_amount == Decimal("18000.00")
    assert result.tax_amount == Decimal("3420.00") and result.gross_amount == Decimal("21420.00")
    assert result.place_of_supply == "DE"


def test_tax_preview_of_a_reverse_charge_quote_has_its_legal_note(sales, entity):
    from tax.registrations import validate_vat

    french = make_customer(sales, entity=entity, country="FR", legal_name="Atelier Lumière SAS")
    french.registrations.create(country="FR", number=validate_vat("FR40303265045", "FR").number)
    quote = make_quote(sales, make_deal(sales, french), planned_start=TODAY + dt.timedelta(days=7))
    result = quote_tax_preview(quote=quote)
    assert result.tax_amount == Decimal("0.00")
    assert any("reverse charge" in note.lower() for note in result.legal_notes)


def test_deal_value_and_status_are_untouched_by_a_refused_send(sales, deal, draft):
    before = Deal.objects.get(pk=deal.pk).amount
    Quote.objects.filter(pk=draft.pk).update(valid_until=timezone.localdate() - dt.timedelta(days=1))
    draft.refresh_from_db()
    with pytest.raises(ValidationFailed):
        quote_send(user=sales, quote=draft)
    assert Deal.objects.get(pk=deal.pk).amount == before


def test_a_sent_quote_is_accepted_as_sent_even_if_the_catalog_changed(sales, deal):
    product = ProductFactory(code="UX-SENT", currency="EUR")
    quote = quote_send(user=sales, quote=make_quote(sales, deal, lines=[tm_line(product=product)], milestones=[]))
    Product.objects.filter(pk=product.pk).update(is_active=False)
    assert quote_accept(user=sales, quote=quote).status == Quote.Status.ACCEPTED
