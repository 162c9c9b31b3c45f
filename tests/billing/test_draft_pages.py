"""The draft editor and the review comments on the invoice page, through Django's test client: the header
form, the inline (htmx) edit of a line's description with its 422, manual lines and discounts, deleting them,
the comments panel, and a constant number of queries however many lines the draft has."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing import drafts
from billing.issuing import invoice_approve, invoice_discard
from billing.models import Invoice, InvoiceComment, InvoiceLine
from projects import timesheets as ts
from projects.models import TimeEntry
from tests.customers.factories import ProductFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def signed_in(client, user):
    client.force_login(user)
    return client


def text_of(response) -> str:
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", response.content.decode(), flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\s+", " ", text)
    return text.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&")


def flashed(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def field_error(response, html_name: str) -> str:
    match = re.search(rf'id="id_{re.escape(html_name)}_error">(.*?)</div>', response.content.decode(), re.S)
    return match.group(1).replace("&#x27;", "'") if match else ""


def url(invoice, name="invoice-detail", line=None) -> str:
    kwargs = {"public_id": invoice.public_id}
    if line is not None:
        kwargs["line_id"] = line.public_id
    return reverse(f"billing:{name}", kwargs=kwargs)


def lines_of(invoice) -> list[InvoiceLine]:
    return list(InvoiceLine.objects.filter(invoice=invoice).order_by("position"))


def header(invoice, **changes) -> dict[str, str]:
    data = {
        "header-po_number": invoice.po_number,
        "header-payment_terms_days": str(invoice.payment_terms_days),
        "header-grouping": invoice.grouping,
        "header-notes": invoice.notes,
    }
    if invoice.detail_appendix:
        data["header-detail_appendix"] = "on"
    data.update({f"header-{key}": value for key, value in changes.items()})
    return data


@pytest.fixture
def draft(team, approved_time, make_draft):
    """Five lines of 8 h Senior consultant at 150 (6,000.00 net), made by finance."""
    return make_draft(team)


# --- what each person is offered -------------------------------------------------------------------------------


def test_finance_gets_the_editor_on_a_draft(client, people, draft):
    response = signed_in(client, people["finance"]).get(url(draft))
    assert response.status_code == 200
    editor = response.context["draft_editor"]
    assert editor["can_edit"] and editor["can_add_lines"] and editor["can_delete_lines"]
    html = response.content.decode()
    assert url(draft, "invoice-draft-header") in html and url(draft, "invoice-draft-line-add") in html
    assert url(draft, "invoice-draft-line-edit", lines_of(draft)[0]) in html
    text = text_of(response)
    assert "Add catalog item" in text and "Add discount" in text and "Review comments" in text
    assert 'name="htmx-config"' in html


def test_a_project_manager_comments_but_does_not_edit(client, people, draft):
    response = signed_in(client, people["pm"]).get(url(draft))
    editor = response.context["draft_editor"]
    assert not editor["can_edit"] and editor["comment_form"] is not None
    html = response.content.decode()
    assert url(draft, "invoice-draft-header") not in html and "invoice-draft-line-edit" not in html
    assert url(draft, "invoice-comment-add") in html and "Edit the draft" not in text_of(response)


def test_an_auditor_reads_the_comments_only(client, people, draft):
    drafts.invoice_comment_add(actor=people["pm"], invoice=draft, body="Day 3 was the workshop.")
    response = signed_in(client, people["auditor"]).get(url(draft))
    editor = response.context["draft_editor"]
    assert not editor["can_edit"] and editor["comment_form"] is None and editor["comment_closed"] == ""
    assert "Day 3 was the workshop." in text_of(response)
    assert url(draft, "invoice-comment-add") not in response.content.decode()


def test_an_approved_invoice_tells_finance_to_return_it_to_draft(client, people, draft):
    invoice_approve(actor=people["executive"], invoice=draft)
    response = signed_in(client, people["finance"]).get(url(draft))
    text = text_of(response)
    assert "is approved: return it to draft to edit it" in text
    assert "the review is closed" in text and url(draft, "invoice-draft-header") not in response.content.decode()


def test_a_pending_first_approval_is_announced_in_the_editor(client, people, draft):
    Invoice.objects.filter(pk=draft.pk).update(approved_by=people["executive"])
    text = text_of(signed_in(client, people["finance"]).get(url(draft)))
    assert "Any change here clears that approval" in text


def test_sales_see_no_invoice_and_no_editor(client, people, draft):
    assert signed_in(client, people["sales"]).get(url(draft)).status_code == 403


# --- the header -----------------------------------------------------------------------------------------------


def test_the_header_form_saves_and_redirects(client, people, draft):
    response = signed_in(client, people["finance"]).post(
        url(draft, "invoice-draft-header"), header(draft, po_number="PO-77", payment_terms_days="21", notes="Hi")
    )
    assert response.status_code == 302 and response["Location"] == url(draft) + "#draft-editor"
    draft.refresh_from_db()
    assert (draft.po_number, draft.payment_terms_days, draft.notes) == ("PO-77", 21, "Hi")
    assert any("is saved" in message for message in flashed(response))


def test_a_bad_header_is_shown_on_its_field_with_400(client, people, draft):
    response = signed_in(client, people["finance"]).post(
        url(draft, "invoice-draft-header"), header(draft, payment_terms_days="500")
    )
    assert response.status_code == 400
    assert "0 to 365 days" in field_error(response, "header-payment_terms_days")
    draft.refresh_from_db()
    assert draft.payment_terms_days != 500


def test_the_header_form_regroups_the_lines(client, people, draft):
    signed_in(client, people["finance"]).post(url(draft, "invoice-draft-header"), header(draft, grouping="detailed"))
    response = client.post(
        url(draft, "invoice-draft-header"), header(Invoice.objects.get(pk=draft.pk), grouping="rolled_up")
    )
    assert response.status_code == 302
    assert [line.quantity for line in lines_of(draft)] == [Decimal("40")]


def test_editing_an_approved_invoice_answers_409_with_the_reason(client, people, draft):
    invoice_approve(actor=people["executive"], invoice=draft)
    response = signed_in(client, people["finance"]).post(url(draft, "invoice-draft-header"), header(draft, notes="x"))
    assert response.status_code == 409
    assert "return it to draft" in text_of(response)


def test_clearing_a_first_approval_is_said(client, people, draft):
    Invoice.objects.filter(pk=draft.pk).update(approved_by=people["executive"])
    response = signed_in(client, people["finance"]).post(url(draft, "invoice-draft-header"), header(draft, notes="x"))
    assert any("first approval was cleared by this edit" in message for message in flashed(response))


# --- inline line edit (htmx) ----------------------------------------------------------------------------------


def test_a_lines_description_is_edited_inline(client, people, draft):
    line = lines_of(draft)[0]
    signed_in(client, people["finance"])
    form = client.get(url(draft, "invoice-draft-line-edit", line), **HTMX)
    assert form.status_code == 200
    assert '<textarea name="description"' in form.content.decode() and "Data platform build, day 1" in text_of(form)

    saved = client.post(url(draft, "invoice-draft-line-edit", line), {"description": "Kick-off workshop"}, **HTMX)
    assert saved.status_code == 200
    html = saved.content.decode()
    assert html.lstrip().startswith(f'<tr id="line-{line.public_id}"') and "Kick-off workshop" in html
    assert 'id="invoice-totals" hx-swap-oob="true"' in html and "€7,140.00" in html
    assert "<textarea" not in html
    line.refresh_from_db()
    assert line.description == "Kick-off workshop"


def test_an_empty_description_answers_422_with_the_message(client, people, draft):
    line = lines_of(draft)[0]
    response = signed_in(client, people["finance"]).post(
        url(draft, "invoice-draft-line-edit", line), {"description": "  "}, **HTMX
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "<textarea" in html and "is-invalid" in html and "Enter the client-facing description." in html
    line.refresh_from_db()
    assert line.description == "Data platform build, day 1"


def test_cancel_brings_the_row_back(client, people, draft):
    line = lines_of(draft)[0]
    response = signed_in(client, people["finance"]).get(url(draft, "invoice-draft-line", line), **HTMX)
    assert response.status_code == 200 and "<textarea" not in response.content.decode()
    assert "Data platform build, day 1" in text_of(response)


def test_an_inline_edit_of_an_approved_invoice_is_refused_as_text(client, people, draft):
    invoice_approve(actor=people["executive"], invoice=draft)
    line = lines_of(draft)[0]
    signed_in(client, people["finance"])
    response = client.get(url(draft, "invoice-draft-line-edit", line), **HTMX)
    assert response.status_code == 409 and response["Content-Type"].startswith("text/plain")
    response = client.post(url(draft, "invoice-draft-line-edit", line), {"description": "x"}, **HTMX)
    assert response.status_code == 409 and "return it to draft" in response.content.decode()


def test_an_inline_edit_that_clears_a_first_approval_reloads_the_page(client, people, draft):
    Invoice.objects.filter(pk=draft.pk).update(approved_by=people["executive"])
    line = lines_of(draft)[0]
    response = signed_in(client, people["finance"]).post(
        url(draft, "invoice-draft-line-edit", line), {"description": "Kick-off"}, **HTMX
    )
    assert response.status_code == 200 and response["HX-Refresh"] == "true"
    assert Invoice.objects.get(pk=draft.pk).approved_by is None


def test_without_htmx_the_line_edit_redirects(client, people, draft):
    line = lines_of(draft)[0]
    signed_in(client, people["finance"])
    assert client.get(url(draft, "invoice-draft-line-edit", line)).status_code == 302
    response = client.post(url(draft, "invoice-draft-line-edit", line), {"description": "Kick-off"})
    assert response.status_code == 302 and response["Location"] == url(draft)


@pytest.mark.parametrize("name", ["pm", "auditor", "executive"])
def test_roles_that_do_not_edit_get_403_on_the_line_edit(client, people, draft, name):
    line = lines_of(draft)[0]
    response = signed_in(client, people[name]).post(
        url(draft, "invoice-draft-line-edit", line), {"description": "mine"}, **HTMX
    )
    assert response.status_code == 403


def test_a_line_of_another_invoice_is_404(client, people, draft, team, make_draft):
    other = Invoice.objects.create(
        legal_entity=draft.legal_entity, customer=draft.customer, currency="EUR", created_by=people["finance"]
    )
    line = lines_of(draft)[0]
    response = signed_in(client, people["finance"]).get(url(other, "invoice-draft-line-edit", line), **HTMX)
    assert response.status_code == 404


# --- manual lines, discounts, deleting -------------------------------------------------------------------------


def test_a_catalog_item_is_added_from_the_page(client, people, draft):
    product = ProductFactory(code="WS-1", name="Workshop day", unit="DAY", default_price_amount=Decimal("900"))
    response = signed_in(client, people["finance"]).post(
        url(draft, "invoice-draft-line-add"), {"manual-product": str(product.public_id), "manual-quantity": "2"}
    )
    assert response.status_code == 302
    line = lines_of(draft)[-1]
    assert (line.description, line.net_amount) == ("Workshop day", Decimal("1800.00"))
    assert response["Location"] == url(draft) + f"#line-{line.public_id}"
    page = client.get(url(draft))
    assert "€7,800.00" in text_of(page) and url(draft, "invoice-draft-line-delete", line) in page.content.decode()


def test_a_manual_line_without_price_shows_the_field_errors(client, people, draft):
    response = signed_in(client, people["finance"]).post(url(draft, "invoice-draft-line-add"), {"manual-quantity": "1"})
    assert response.status_code == 400
    assert "Enter the unit price." in field_error(response, "manual-unit_price")
    assert "Enter the description" in field_error(response, "manual-description")
    assert 'class="collapse show" id="draft-add-manual"' in response.content.decode()
    assert len(lines_of(draft)) == 5


def test_a_discount_is_added_from_the_page(client, people, draft):
    response = signed_in(client, people["finance"]).post(
        url(draft, "invoice-draft-discount-add"), {"discount-method": "percent", "discount-value": "10"}
    )
    assert response.status_code == 302
    page = client.get(url(draft))
    text = text_of(page)
    assert "Discount 10 %" in text and "-€600.00" in text and "10 % of €6,000.00" in text
    assert "€6,426.00" in text  # 5,400 + 19 %


def test_a_bad_discount_is_shown_on_its_value(client, people, draft):
    response = signed_in(client, people["finance"]).post(
        url(draft, "invoice-draft-discount-add"), {"discount-method": "percent", "discount-value": "120"}
    )
    assert response.status_code == 400
    assert "at most 100" in field_error(response, "discount-value")


def test_manual_lines_are_deleted_and_lines_of_work_are_refused(client, people, draft):
    manual = drafts.line_add_manual(actor=people["finance"], invoice=draft, description="Travel", unit_price="300")
    signed_in(client, people["finance"])
    response = client.post(url(draft, "invoice-draft-line-delete", manual))
    assert response.status_code == 302 and not InvoiceLine.objects.filter(pk=manual.pk).exists()
    refused = client.post(url(draft, "invoice-draft-line-delete", lines_of(draft)[0]))
    assert refused.status_code == 409
    assert "Remove work by discarding the draft and re-running" in text_of(refused)
    assert len(lines_of(draft)) == 5


def test_get_on_the_post_only_routes_is_405(client, people, draft):
    signed_in(client, people["finance"])
    line = lines_of(draft)[0]
    for name, target in (
        ("invoice-draft-header", None),
        ("invoice-draft-line-add", None),
        ("invoice-draft-discount-add", None),
        ("invoice-draft-line-delete", line),
        ("invoice-comment-add", None),
    ):
        assert client.get(url(draft, name, target)).status_code == 405, name


# --- comments -------------------------------------------------------------------------------------------------


def test_a_project_manager_adds_a_comment(client, people, draft):
    response = signed_in(client, people["pm"]).post(url(draft, "invoice-comment-add"), {"comment-body": "Looks right."})
    assert response.status_code == 302 and response["Location"] == url(draft) + "#comments"
    comment = InvoiceComment.objects.get()
    assert (comment.author, comment.body) == (people["pm"], "Looks right.")
    page = client.get(url(draft))
    assert "Looks right." in text_of(page) and "pm" in text_of(page)


def test_an_empty_comment_shows_its_error(client, people, draft):
    response = signed_in(client, people["pm"]).post(url(draft, "invoice-comment-add"), {"comment-body": " "})
    assert response.status_code == 400 and field_error(response, "comment-body") == "Enter the comment."


def test_another_project_manager_gets_404(client, people, draft):
    response = signed_in(client, people["pm2"]).post(url(draft, "invoice-comment-add"), {"comment-body": "Hi"})
    assert response.status_code == 404


def test_executives_cannot_comment(client, people, draft):
    response = signed_in(client, people["executive"]).post(url(draft, "invoice-comment-add"), {"comment-body": "Hi"})
    assert response.status_code == 403


def test_issued_invoices_show_their_comments_read_only(client, people, draft, bank_account):
    from billing.issuing import invoice_issue

    drafts.invoice_comment_add(actor=people["pm"], invoice=draft, body="Approved by the client on the phone.")
    invoice_issue(actor=people["finance"], invoice=invoice_approve(actor=people["executive"], invoice=draft))
    response = signed_in(client, people["pm"]).get(url(draft))
    editor = response.context["draft_editor"]
    assert editor["comment_form"] is None and "comments are taken while it is a draft" in editor["comment_closed"]
    assert "Approved by the client on the phone." in text_of(response)
    assert url(draft, "invoice-comment-add") not in response.content.decode()


def test_an_issued_invoice_without_comments_shows_no_comments_panel(client, people, draft, bank_account):
    from billing.issuing import invoice_issue

    invoice_issue(actor=people["finance"], invoice=invoice_approve(actor=people["executive"], invoice=draft))
    response = signed_in(client, people["finance"]).get(url(draft))
    assert "Review comments" not in text_of(response)


# --- queries --------------------------------------------------------------------------------------------------


def entries(project, person, count: int) -> None:
    made = TimeEntry.objects.bulk_create(
        [
            TimeEntry(
                person=person,
                project=project,
                date=dt.date(2026, 4, 1) + dt.timedelta(days=offset % 60),
                hours=Decimal("1"),
                labour_category="Senior consultant",
                description=f"Task {offset}",
                status="submitted",
            )
            for offset in range(count)
        ]
    )
    ts.time_entries_approve(actor=project.project_manager, entries=made)


def test_the_invoice_page_asks_the_same_queries_for_5_and_50_lines(
    client, people, draft, team, make_draft, django_assert_max_num_queries
):
    drafts.invoice_comment_add(actor=people["pm"], invoice=draft, body="One")
    drafts.line_add_discount(actor=people["finance"], invoice=draft, percent="5")
    signed_in(client, people["finance"])
    client.get(url(draft))
    with CaptureQueriesContext(connection) as five:
        assert client.get(url(draft)).status_code == 200
    assert len(lines_of(draft)) == 6

    invoice_discard(actor=people["finance"], invoice=draft, reason="Measured")  # its five entries are free again
    entries(team, people["sales"], 45)
    big = make_draft(team)
    assert len(lines_of(big)) == 50
    drafts.invoice_comment_add(actor=people["pm"], invoice=big, body="One")
    drafts.invoice_comment_add(actor=people["finance"], invoice=big, body="Two")
    drafts.line_add_discount(actor=people["finance"], invoice=big, percent="5")
    with django_assert_max_num_queries(len(five)):
        response = client.get(url(big))
    assert response.status_code == 200 and response.context["draft_editor"]["can_edit"]
