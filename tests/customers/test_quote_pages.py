"""The pipeline's pages: deal list and board (constant query counts, htmx moves), deal pages, the quote form
with its formsets and live tax panel, the lifecycle buttons, the PDF and attachments, and who gets 403/404."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from backbone.roles import Role
from customers import deal_views
from customers.models import Deal, PipelineStage, Quote, QuoteAttachment
from customers.services import deal_move_stage, quote_accept, quote_attachment_add, quote_send
from tests.customers.deal_factories import TODAY, make_customer, make_deal

pytestmark = pytest.mark.django_db

PDF_BYTES = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
HTMX = {"HTTP_HX_REQUEST": "true"}


def signed_in(client, user):
    client.force_login(user)
    return client


def quote_post(*, lines, milestones=(), **fields) -> dict[str, str]:
    data = {
        "currency": "EUR",
        "valid_until": (TODAY + dt.timedelta(days=30)).isoformat(),
        "payment_terms_days": "30",
        "retainer_amount": "0",
        "expense_markup_percent": "0",
        "terms": "",
        "lines-TOTAL_FORMS": str(len(lines)),
        "lines-INITIAL_FORMS": "0",
        "milestones-TOTAL_FORMS": str(len(milestones)),
        "milestones-INITIAL_FORMS": "0",
    }
    data.update({k: str(v) for k, v in fields.items()})
    for index, line in enumerate(lines):
        row = {
            "billing_model": "tm",
            "unit": "HUR",
            "tax_category": "S",
            "supply_kind": "general_service",
            "discount_percent": "0",
        }
        row.update(line)
        data.update({f"lines-{index}-{key}": str(value) for key, value in row.items()})
    for index, milestone in enumerate(milestones):
        data.update({f"milestones-{index}-{key}": str(value) for key, value in milestone.items()})
    return data


T_AND_M = {
    "description": "Senior consultant",
    "labour_category": "Senior consultant",
    "quantity": "40",
    "unit_price": "150",
}


class _Names(HTMLParser):
    """What a screen reader would call the quote form's rows: each ``data-formset-row`` fieldset's name (the text
    of the legend its aria-labelledby points to) and each checkbox's label, by the element's id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.row_labelledby: list[str] = []
        self.texts: dict[str, str] = {}  # legend id or label "for" -> its text
        self.checkboxes: list[str] = []
        self._open: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "fieldset" and "data-formset-row" in attrs:
            self.row_labelledby.append(attrs.get("aria-labelledby", ""))
        elif tag == "input" and attrs.get("type") == "checkbox":
            self.checkboxes.append(attrs.get("id", ""))
        elif tag == "legend" and attrs.get("id"):
            self._open = attrs["id"]
        elif tag == "label" and attrs.get("for"):
            self._open = attrs["for"]
        if self._open is not None:
            self.texts.setdefault(self._open, "")

    def handle_endtag(self, tag):
        if tag in ("legend", "label"):
            self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self.texts[self._open] += data

    def name(self, key: str) -> str:
        return " ".join(self.texts.get(key, "").split())

    def row_names(self) -> list[str]:
        return [self.name(key) for key in self.row_labelledby]


# --- deal list ------------------------------------------------------------------------------------------


def test_deal_list_shows_my_deals_only(client, sales, sales2, entity, deal):
    theirs = make_deal(sales2, make_customer(sales2, entity=entity), title="Their deal")
    response = signed_in(client, sales).get(reverse("customers:deal-list"))
    assert response.status_code == 200
    assert deal.title.encode() in response.content and theirs.title.encode() not in response.content


def test_deal_list_filters_searches_and_sorts(client, sales, account):
    make_deal(sales, account, title="Alpha portal", amount=Decimal("100"))
    beta = make_deal(sales, account, title="Beta app", amount=Decimal("900"))
    deal_move_stage(user=sales, deal=beta, stage="lost", lost_reason="No")
    signed_in(client, sales)
    assert b"Beta app" not in client.get(reverse("customers:deal-list"), {"q": "alpha"}).content
    response = client.get(reverse("customers:deal-list"), {"outcome": "lost"})
    assert b"Beta app" in response.content and b"Alpha portal" not in response.content
    response = client.get(reverse("customers:deal-list"), {"ordering": "-amount"})
    assert response.content.index(b"Beta app") < response.content.index(b"Alpha portal")
    response = client.get(reverse("customers:deal-list"), {"stage": ["qualified"]}, **HTMX)
    assert b"<html" not in response.content and b"Alpha portal" in response.content


def test_deal_list_empty_states(client, sales, finance):
    assert b"No deals yet" in signed_in(client, sales).get(reverse("customers:deal-list")).content
    response = signed_in(client, finance).get(reverse("customers:deal-list"))
    assert b"No deals to show" in response.content


def test_deal_list_query_count_does_not_grow_with_rows(client, sales, account, django_assert_max_num_queries):
    make_deal(sales, account)
    signed_in(client, sales)
    client.get(reverse("customers:deal-list"))  # warm the session and caches
    with django_assert_max_num_queries(30) as few:
        client.get(reverse("customers:deal-list"))
    for _ in range(12):
        make_deal(sales, account)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("customers:deal-list"))
    assert response.content.count(b"DEAL-0000") >= 13


# --- the board ------------------------------------------------------------------------------------------


def test_board_shows_columns_counts_and_weighted_totals(client, sales, account):
    make_deal(sales, account, amount=Decimal("10000"))
    response = signed_in(client, sales).get(reverse("customers:pipeline"))
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("Qualified", "Proposal", "Negotiation", "Won", "Lost"):
        assert name in html
    assert "weighted €2,000.00" in html


def test_board_query_count_does_not_grow_with_deals(client, sales, account, django_assert_max_num_queries):
    make_deal(sales, account)
    signed_in(client, sales)
    client.get(reverse("customers:pipeline"))
    with django_assert_max_num_queries(30) as few:
        client.get(reverse("customers:pipeline"))
    for index in range(10):
        make_deal(sales, account, stage=PipelineStage.objects.get(code=("proposal", "negotiation")[index % 2]))
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("customers:pipeline"))


def test_moving_a_deal_on_the_board_swaps_the_board(client, sales, deal):
    response = signed_in(client, sales).post(
        reverse("customers:deal-stage", args=[deal.public_id]), {"stage": "proposal"}, **HTMX
    )
    assert response.status_code == 200
    assert b'id="pipeline-board"' in response.content and b"<html" not in response.content
    assert b"is now in Proposal" in response.content
    assert Deal.objects.get(pk=deal.pk).stage.code == "proposal"


def test_a_refused_move_says_why_on_the_board(client, sales, deal):
    signed_in(client, sales)
    response = client.post(reverse("customers:deal-stage", args=[deal.public_id]), {"stage": "won"}, **HTMX)
    assert b"Mark won" in response.content
    response = client.post(reverse("customers:deal-stage", args=[deal.public_id]), {"stage": "lost"}, **HTMX)
    assert b"Say why the deal was lost" in response.content
    assert Deal.objects.get(pk=deal.pk).stage.code == "qualified"


def test_moving_without_htmx_redirects_back_with_a_message(client, sales, deal):
    response = signed_in(client, sales).post(
        reverse("customers:deal-stage", args=[deal.public_id]),
        {"stage": "lost", "lost_reason": "Went with a competitor", "next": reverse("customers:pipeline")},
    )
    assert response.status_code == 302 and response["Location"] == reverse("customers:pipeline")
    response = client.post(
        reverse("customers:deal-stage", args=[deal.public_id]), {"stage": "qualified", "next": "https://evil.test/"}
    )
    assert response["Location"] == reverse("customers:deal-detail", args=[deal.public_id])


def test_another_reps_deal_cannot_be_moved(client, sales2, deal):
    response = signed_in(client, sales2).post(reverse("customers:deal-stage", args=[deal.public_id]), {"stage": "x"})
    assert response.status_code == 404


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.FINANCE])
def test_roles_that_only_look_cannot_move_deals(client, users, deal, role):
    response = signed_in(client, users[role]).post(
        reverse("customers:deal-stage", args=[deal.public_id]), {"stage": "proposal"}
    )
    assert response.status_code == 403


# --- deal pages -----------------------------------------------------------------------------------------


def test_deal_create_page_opens_a_deal(client, sales, account):
    signed_in(client, sales)
    response = client.get(reverse("customers:deal-create"), {"customer": str(account.public_id)})
    assert response.status_code == 200
    response = client.post(
        reverse("customers:deal-create"),
        {"title": "Data platform", "customer": str(account.public_id), "amount": "25000", "currency": ""},
    )
    deal = Deal.objects.get(title="Data platform")
    assert response.status_code == 302 and response["Location"] == reverse(
        "customers:deal-detail", args=[deal.public_id]
    )
    assert deal.currency == account.default_currency and deal.probability == 20


def test_deal_create_page_shows_refusals_next_to_the_inputs(client, sales, account):
    response = signed_in(client, sales).post(
        reverse("customers:deal-create"),
        {"title": "X", "customer": str(account.public_id), "stage": "won"},
    )
    assert response.status_code == 400
    assert not Deal.objects.exists()


def test_deal_edit_page_saves_and_is_404_for_another_rep(client, sales, sales2, deal):
    signed_in(client, sales)
    assert client.get(reverse("customers:deal-edit", args=[deal.public_id])).status_code == 200
    response = client.post(
        reverse("customers:deal-edit", args=[deal.public_id]),
        {
            "title": "Portal v2",
            "customer": str(deal.customer.public_id),
            "legal_entity": str(deal.legal_entity.public_id),
            "probability": "30",
            "amount": "5000",
            "currency": "EUR",
            "next_step": "Call",
        },
    )
    assert response.status_code == 302
    assert Deal.objects.get(pk=deal.pk).title == "Portal v2"
    client.force_login(sales2)
    assert client.get(reverse("customers:deal-edit", args=[deal.public_id])).status_code == 404


def test_deal_detail_offers_mark_won_once_a_quote_is_out(client, sales, deal, draft, monkeypatch):
    signed_in(client, sales)
    assert b"bi-trophy" not in client.get(reverse("customers:deal-detail", args=[deal.public_id])).content
    quote_send(user=sales, quote=draft)
    monkeypatch.setattr(deal_views, "DEAL_WIN_URL_NAME", "customers:deal-edit")  # any page taking public_id
    response = client.get(reverse("customers:deal-detail", args=[deal.public_id]))
    assert b"bi-trophy" in response.content
    assert reverse("customers:deal-edit", args=[deal.public_id]).encode() in response.content


def test_deal_detail_renders_without_the_projects_page(client, sales, deal, draft, monkeypatch):
    quote_accept(user=sales, quote=draft)
    monkeypatch.setattr(deal_views, "DEAL_WIN_URL_NAME", "projects:no-such-page")
    response = signed_in(client, sales).get(reverse("customers:deal-detail", args=[deal.public_id]))
    assert response.status_code == 200 and b"bi-trophy" in response.content and b"disabled" in response.content


def test_deal_detail_hides_mark_won_from_finance(client, sales, finance, deal, draft):
    quote_accept(user=sales, quote=draft)
    response = signed_in(client, finance).get(reverse("customers:deal-detail", args=[deal.public_id]))
    assert response.status_code == 200 and b"bi-trophy" not in response.content


def test_another_reps_deal_is_404(client, sales2, deal, draft):
    signed_in(client, sales2)
    assert client.get(reverse("customers:deal-detail", args=[deal.public_id])).status_code == 404
    assert client.get(reverse("customers:quote-detail", args=[draft.public_id])).status_code == 404


# --- the quote form -------------------------------------------------------------------------------------


def test_quote_create_page_saves_a_draft(client, sales, deal):
    signed_in(client, sales)
    assert client.get(reverse("customers:quote-create", args=[deal.public_id])).status_code == 200
    response = client.post(
        reverse("customers:quote-create", args=[deal.public_id]),
        quote_post(
            lines=[
                T_AND_M,
                {
                    "description": "Design phase",
                    "billing_model": "fixed_fee",
                    "quantity": "1",
                    "unit": "LS",
                    "unit_price": "8000",
                },
            ],
            milestones=[
                {
                    "name": "Design accepted",
                    "planned_date": (TODAY + dt.timedelta(days=20)).isoformat(),
                    "amount": "8000",
                }
            ],
        ),
    )
    quote = Quote.objects.get(deal=deal)
    assert response.status_code == 302 and response["Location"] == reverse(
        "customers:quote-detail", args=[quote.public_id]
    )
    assert quote.lines.count() == 2 and quote.milestones.get().amount == Decimal("8000.00")


def test_quote_create_page_puts_each_refusal_on_its_row(client, sales, deal):
    response = signed_in(client, sales).post(
        reverse("customers:quote-create", args=[deal.public_id]),
        quote_post(lines=[T_AND_M, {**T_AND_M, "unit_price": ""}]),
    )
    assert response.status_code == 400
    formset = response.context["formsets"]["lines"]
    assert "Enter the unit price." in formset.forms[1].errors["unit_price"]
    assert not Quote.objects.exists()


def test_quote_edit_page_replaces_the_lines(client, sales, draft):
    signed_in(client, sales)
    response = client.get(reverse("customers:quote-edit", args=[draft.public_id]))
    assert response.status_code == 200 and b"Senior consultant" in response.content
    response = client.post(reverse("customers:quote-edit", args=[draft.public_id]), quote_post(lines=[T_AND_M]))
    assert response.status_code == 302
    assert draft.lines.count() == 1 and not draft.milestones.exists()


def test_quote_form_rows_are_groups_named_line_n_and_milestone_n(client, sales, draft):
    """Each line and milestone is a fieldset named by its legend, with a "Remove line N" tick of its own; the
    rows "Add line" clones are named "Line __num__" until the page's script numbers them."""
    response = signed_in(client, sales).get(reverse("customers:quote-edit", args=[draft.public_id]))
    html = response.content.decode()
    names = _Names(html)
    lines, milestones = draft.lines.count(), draft.milestones.count()
    assert lines == 2 and milestones == 1
    assert names.row_names() == [
        "Line 1",
        "Line 2",
        "Line __num__",  # the <template> that "Add line" clones
        "Milestone 1",
        "Milestone __num__",
    ]
    assert [names.name(f"id_lines-{i}-DELETE") for i in range(lines)] == ["Remove line 1", "Remove line 2"]
    assert names.name("id_milestones-0-DELETE") == "Remove milestone 1"
    assert names.name("id_lines-__prefix__-DELETE") == "Remove line __num__"
    assert names.name("id_milestones-__prefix__-DELETE") == "Remove milestone __num__"
    assert all(names.name(box) for box in names.checkboxes), "every tick has a label"
    # The script numbers the clones: Django's __prefix__ for the names, __num__ for what people read.
    assert 'replaceAll("__prefix__"' in html and 'replaceAll("__num__"' in html


def test_quote_create_page_numbers_its_first_line_and_milestone(client, sales, deal):
    response = signed_in(client, sales).get(reverse("customers:quote-create", args=[deal.public_id]))
    names = _Names(response.content.decode())
    assert names.row_names() == ["Line 1", "Line __num__", "Milestone 1", "Milestone __num__"]
    assert names.name("id_lines-0-DELETE") == "Remove line 1"


def test_a_refused_quote_form_keeps_its_row_names(client, sales, deal):
    response = signed_in(client, sales).post(
        reverse("customers:quote-create", args=[deal.public_id]),
        quote_post(lines=[T_AND_M, {**T_AND_M, "unit_price": ""}]),
    )
    assert response.status_code == 400
    names = _Names(response.content.decode())
    assert names.row_names()[:2] == ["Line 1", "Line 2"]
    assert names.name("id_lines-1-DELETE") == "Remove line 2"


def test_quote_edit_page_of_a_sent_quote_goes_back_to_the_quote(client, sales, draft):
    quote_send(user=sales, quote=draft)
    response = signed_in(client, sales).get(reverse("customers:quote-edit", args=[draft.public_id]))
    assert response.status_code == 302 and response["Location"] == reverse(
        "customers:quote-detail", args=[draft.public_id]
    )


def test_live_tax_panel_shows_the_vat_of_the_form_as_it_stands(client, sales, deal):
    response = signed_in(client, sales).post(
        reverse("customers:quote-tax-preview", args=[deal.public_id]),
        quote_post(lines=[T_AND_M, {**T_AND_M, "quantity": ""}]),
        **HTMX,
    )
    html = response.content.decode()
    assert response.status_code == 200 and "€6,000.00" in html and "€1,140.00" in html and "19" in html
    assert "1 incomplete line left out" in html
    assert not Quote.objects.exists()


def test_live_tax_panel_explains_what_is_missing(client, sales, deal):
    response = signed_in(client, sales).post(
        reverse("customers:quote-tax-preview", args=[deal.public_id]), quote_post(lines=[]), **HTMX
    )
    assert b"Add a line" in response.content or b"at least one line" in response.content


# --- the quote page and its buttons ---------------------------------------------------------------------


def test_quote_page_shows_lines_milestones_tax_and_actions(client, sales, draft):
    response = signed_in(client, sales).get(reverse("customers:quote-detail", args=[draft.public_id]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Design signed off" in html and "€21,420.00" in html and ">" in html
    assert reverse("customers:quote-send", args=[draft.public_id]) in html
    assert reverse("customers:quote-edit", args=[draft.public_id]) in html
    assert 'role="group" aria-label="Actions"' in html  # the buttons are announced as one named group


def test_sending_from_the_page_stores_the_pdf_for_download(client, sales, draft, django_capture_on_commit_callbacks):
    signed_in(client, sales)
    assert client.get(reverse("customers:quote-pdf", args=[draft.public_id])).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("customers:quote-send", args=[draft.public_id]))
    assert response.status_code == 302
    assert "is sent" in next(str(m) for m in get_messages(response.wsgi_request))
    response = client.get(reverse("customers:quote-pdf", args=[draft.public_id]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content).startswith(b"%PDF-")
    assert f"{draft.deal.number}-v1.pdf" in response["Content-Disposition"]


def test_a_refused_send_says_why(client, sales, draft):
    Quote.objects.filter(pk=draft.pk).update(valid_until=TODAY - dt.timedelta(days=1))
    response = signed_in(client, sales).post(reverse("customers:quote-send", args=[draft.public_id]))
    assert response.status_code == 302
    assert "before today" in next(str(m) for m in get_messages(response.wsgi_request))
    assert Quote.objects.get(pk=draft.pk).status == Quote.Status.DRAFT


def test_accept_and_new_version_from_the_page(client, sales, draft):
    signed_in(client, sales)
    response = client.post(reverse("customers:quote-new-version", args=[draft.public_id]))
    copy = Quote.objects.get(version=2)
    assert response["Location"] == reverse("customers:quote-detail", args=[copy.public_id])
    client.post(reverse("customers:quote-accept", args=[copy.public_id]), {"customer_signatory": "K. Vogel"})
    copy.refresh_from_db()
    assert copy.status == Quote.Status.ACCEPTED and copy.customer_signatory == "K. Vogel"


@pytest.mark.parametrize("name", ["quote-send", "quote-accept", "quote-new-version"])
def test_auditors_cannot_press_the_quote_buttons(client, auditor, draft, name):
    response = signed_in(client, auditor).post(reverse(f"customers:{name}", args=[draft.public_id]))
    assert response.status_code == 403
    assert Quote.objects.get(pk=draft.pk).status == Quote.Status.DRAFT


def test_auditors_read_the_quote_page_without_buttons(client, auditor, draft):
    response = signed_in(client, auditor).get(reverse("customers:quote-detail", args=[draft.public_id]))
    assert response.status_code == 200
    assert reverse("customers:quote-send", args=[draft.public_id]).encode() not in response.content


# --- attachments ----------------------------------------------------------------------------------------


def test_attach_download_and_remove_a_document(client, sales, draft):
    signed_in(client, sales)
    response = client.post(
        reverse("customers:quote-attachment-add", args=[draft.public_id]),
        {"kind": "sow", "file": SimpleUploadedFile("SOW final.pdf", PDF_BYTES, "application/pdf")},
    )
    assert response.status_code == 302
    attachment = QuoteAttachment.objects.get()
    response = client.get(reverse("customers:quote-attachment-download", args=[attachment.public_id]))
    assert response.status_code == 200 and b"".join(response.streaming_content) == PDF_BYTES
    assert response["X-Content-Type-Options"] == "nosniff" and "SOW final.pdf" in response["Content-Disposition"]
    client.post(reverse("customers:quote-attachment-delete", args=[attachment.public_id]))
    assert not QuoteAttachment.objects.exists()


def test_a_refused_attachment_says_why(client, sales, draft):
    response = signed_in(client, sales).post(
        reverse("customers:quote-attachment-add", args=[draft.public_id]),
        {"kind": "sow", "file": SimpleUploadedFile("evil.pdf", b"<script>", "application/pdf")},
    )
    assert "its content is not" in next(str(m) for m in get_messages(response.wsgi_request))
    assert not QuoteAttachment.objects.exists()


def test_attachments_are_404_outside_ones_scope(client, sales, sales2, users, draft):
    attachment = quote_attachment_add(
        user=sales, quote=draft, kind="po", upload=SimpleUploadedFile("po.pdf", PDF_BYTES, "application/pdf")
    )
    url = reverse("customers:quote-attachment-download", args=[attachment.public_id])
    assert signed_in(client, sales2).get(url).status_code == 404
    assert signed_in(client, users[Role.PROJECT_MANAGER]).get(url).status_code == 404
    assert signed_in(client, users[Role.CONSULTANT]).get(url).status_code == 403
    assert signed_in(client, users[Role.FINANCE]).get(url).status_code == 200
    response = signed_in(client, users[Role.AUDITOR]).post(
        reverse("customers:quote-attachment-delete", args=[attachment.public_id])
    )
    assert response.status_code == 403 and QuoteAttachment.objects.exists()


def test_navigation_offers_deals_and_pipeline(client, sales, users):
    html = signed_in(client, sales).get(reverse("customers:deal-list")).content.decode()
    assert reverse("customers:pipeline") in html
    html = signed_in(client, users[Role.CONSULTANT]).get(reverse("home")).content.decode()
    assert reverse("customers:deal-list") not in html


def test_a_lost_deal_shows_its_reason(client, sales, deal):
    deal_move_stage(user=sales, deal=deal, stage="lost", lost_reason="Chose a cheaper agency")
    response = signed_in(client, sales).get(reverse("customers:deal-detail", args=[deal.public_id]))
    assert b"Chose a cheaper agency" in response.content


def test_admin_lists_deals_and_shows_quotes_read_only(client, admin_user, auditor, deal, draft):
    signed_in(client, admin_user)
    assert client.get(reverse("admin:customers_deal_changelist")).status_code == 200
    assert client.get(reverse("admin:customers_deal_change", args=[deal.pk])).status_code == 200
    assert client.get(reverse("admin:customers_deal_add")).status_code == 403
    response = client.get(reverse("admin:customers_quote_change", args=[draft.pk]))
    assert response.status_code == 200 and b"Senior consultant" in response.content
    assert b'name="_save"' not in response.content
    assert client.get(reverse("admin:customers_pipelinestage_changelist")).status_code == 200
    signed_in(client, auditor)
    response = client.get(reverse("admin:customers_deal_change", args=[deal.pk]))
    assert response.status_code == 200 and b'name="_save"' not in response.content


def test_customer_page_lists_its_deals_with_a_new_deal_button(client, sales, users, deal):
    response = signed_in(client, sales).get(reverse("customers:customer-detail", args=[deal.customer.public_id]))
    html = response.content.decode()
    assert deal.title in html and f"{reverse('customers:deal-create')}?customer={deal.customer.public_id}" in html
    response = signed_in(client, users[Role.FINANCE]).get(
        reverse("customers:customer-detail", args=[deal.customer.public_id])
    )
    assert deal.title in response.content.decode() and reverse("customers:deal-create") not in response.content.decode()
