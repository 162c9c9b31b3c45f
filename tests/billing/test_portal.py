"""The client portal (``billing.portal``, ``billing.portal_views``): a signed, expiring link opens one issued
invoice without login — number, amount due after credit notes, status in words, payment instructions, the
PDF download and a dispute form (CSRF-checked) in the invoice's language, private headers on every answer,
a visit recorded per view, download and dispute; expired (410) and tampered (404) links say which and show
nothing; drafts have no link; the dispute shows on the finance invoice page, where finance resolves it and
copies the link (project managers and consultants cannot resolve); the disputes API; and the PDF carrying
the link (read back with ``pdftotext``)."""

from __future__ import annotations

import datetime as dt
import html
import re
import shutil
import time
from decimal import Decimal

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from backbone.errors import NotPermitted
from billing import disputes as d
from billing import pdf, portal
from billing import portal_views as pv
from billing.credit_notes import credit_note_create
from billing.issuing import invoice_approve, invoice_issue
from billing.models import CreditReason, Dispute, Invoice, InvoiceLine, PortalVisit
from billing.pricing import invoice_refigure
from billing.tasks import invoice_pdf_render
from tests.billing.test_pdf import pdf_text, stored_pdf

pytestmark = pytest.mark.django_db

API = "/api/v1"
needs_pdftotext = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext is missing")


def approve_and_issue(invoice: Invoice, people) -> Invoice:
    invoice_approve(actor=people["executive"], invoice=invoice)
    return invoice_issue(actor=people["finance"], invoice=Invoice.objects.get(pk=invoice.pk))


def manual_issued(*, legal_entity, customer, people, amount: str = "900.00", language: str = "en") -> Invoice:
    """An issued invoice of one manual line (no source items)."""
    invoice = Invoice.objects.create(
        legal_entity=legal_entity,
        customer=customer,
        currency="EUR",
        language=language,
        created_by=people["finance"],
        po_number="PO-7",
    )
    InvoiceLine.objects.create(
        invoice=invoice,
        position=1,
        kind="manual",
        description="Workshop: data contracts and ownership",
        quantity=Decimal("1"),
        unit="C62",
        unit_price=Decimal(amount),
        net_amount=Decimal(amount),
    )
    invoice_refigure(invoice)
    return approve_and_issue(Invoice.objects.get(pk=invoice.pk), people)


@pytest.fixture
def client_for():
    def make(user) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def issued(make_draft, team, approved_time, people, bank_account) -> Invoice:
    """Five days of 8 h at 150: 6,000.00 net, 7,140.00 gross (German VAT), due in 30 days."""
    return approve_and_issue(make_draft(team), people)


def page(client: Client, invoice: Invoice, **headers):
    return client.get(portal.portal_path(invoice), **headers)


def text_of(response) -> str:
    """The page's words as a reader sees them: tags dropped, entities decoded, whitespace collapsed."""
    words = html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode()))
    return " ".join(words.split())


def assert_private(response, referrer_policy: str = "no-referrer") -> None:
    assert response["Cache-Control"] == "no-store"
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert response["Referrer-Policy"] == referrer_policy


def old_token(invoice: Invoice, *, days: int) -> str:
    """A genuine token made ``days`` ago."""

    class Then(portal.PortalSigner):
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - days * 86400)

    return Then().sign(signing.b62_encode(invoice.public_id.int))


# --- the link ---------------------------------------------------------------------------------------------


def test_the_link_is_short_and_names_its_invoice(issued, settings):
    token = portal.portal_token(issued)
    assert len(token) <= 52 and re.fullmatch(r"[0-9A-Za-z]+\.[0-9A-Za-z]+\.[0-9A-Za-z_-]{22}", token)
    assert portal.invoice_public_id_for(token) == issued.public_id
    assert portal.portal_url(issued) == f"http://127.0.0.1:8000/billing/portal/{token}/"
    expires = portal.portal_expires_at(token)
    assert abs(expires - (timezone.now() + dt.timedelta(days=settings.PORTAL_LINK_MAX_AGE_DAYS))) < dt.timedelta(
        seconds=5
    )


def test_a_draft_has_no_link(make_draft, team, approved_time, people):
    draft = make_draft(team)
    with pytest.raises(NotPermitted):
        portal.portal_token(draft)
    assert pv.disputes_panel_context(user=people["finance"], invoice=draft) is None
    forged = portal.PortalSigner().sign(signing.b62_encode(draft.public_id.int))  # even signed with our key
    response = Client().get(reverse("billing:portal", kwargs={"token": forged}))
    assert response.status_code == 404 and "This link is not valid" in text_of(response)


# --- the page ---------------------------------------------------------------------------------------------


def test_the_link_opens_without_login_and_shows_number_amount_due_and_status(issued):
    response = page(Client(), issued, HTTP_USER_AGENT="Mozilla/5.0 (Portal test)")
    assert response.status_code == 200
    # The page with the dispute form sends a referrer to itself only: under "no-referrer" browsers post the form
    # with "Origin: null", which Django's CSRF check refuses.
    assert_private(response, referrer_policy="same-origin")
    text = text_of(response)
    due = pdf.format_day(issued.due_date, "en")
    for expected in (
        issued.number,
        "Amount due €7,140.00",
        f"Due on {due}",
        "Throughline Studio GmbH",
        "Data platform build, day 3",
        "Net total €6,000.00",
        "S Standard rate 19% €6,000.00 €1,140.00",
        "Total due €7,140.00",
        f"Please transfer €7,140.00 by {due} to the account below.",
        "DE89 3704 0044 0532 0130 00",
        issued.creditor_reference,
        "Something wrong? Raise a dispute",
    ):
        assert expected in text, expected
    assert 'class="tl-qr epc-qr" src="data:image/svg+xml' in response.content.decode()
    assert 'name="robots" content="noindex, nofollow"' in response.content.decode()
    markup = response.content.decode()
    assert "Sign out" not in text and "tl-navbar" not in markup  # no app navigation
    assert "/static/vendor/bootstrap/bootstrap.min.css" in markup and "//cdn" not in markup  # served from static/
    visit = PortalVisit.objects.get(invoice=issued)
    assert (visit.action, visit.user_agent) == ("view", "Mozilla/5.0 (Portal test)")


def test_the_page_is_branded_with_the_sellers_colour(legal_entity, customer, people, bank_account):
    legal_entity.brand_colour = "#FFD400"  # light: dark text on it
    legal_entity.save()
    invoice = manual_issued(legal_entity=legal_entity, customer=customer, people=people)
    html = page(Client(), invoice).content.decode()
    assert "--tl-brand: #FFD400; --tl-on-brand: #000000;" in html


def test_a_german_invoice_speaks_german(legal_entity, customer, people, bank_account):
    invoice = manual_issued(legal_entity=legal_entity, customer=customer, people=people, language="de")
    response = page(Client(), invoice)
    text = text_of(response)
    assert '<html lang="de">' in response.content.decode()
    for expected in ("Offener Betrag 1.071,00 €", "Fällig am", "Stimmt etwas nicht? Rechnung beanstanden", "Rechnung"):
        assert expected in text, expected
    assert "Amount due" not in text and "Raise a dispute" not in text


def test_a_partly_credited_invoice_asks_for_the_rest(issued, people):
    line = issued.lines.order_by("position").first()
    note = credit_note_create(
        actor=people["finance"], invoice=issued, lines=[{"line": line, "amount": Decimal("1000")}], reason="goodwill"
    )
    approve_and_issue(note, people)
    text = text_of(page(Client(), issued))
    assert "Amount due €5,950.00" in text and "Credited: -€1,190.00" in text
    assert "Please transfer €5,950.00 by" in text


def test_an_invoice_credited_in_full_says_credited_and_offers_no_dispute(issued, people):
    note = credit_note_create(actor=people["finance"], invoice=issued, full=True, reason=CreditReason.PRICING_ERROR)
    approve_and_issue(note, people)
    response = page(Client(), issued)
    text = text_of(response)
    assert "Amount due €0.00" in text and "Credited" in text
    assert "Nothing to pay: this invoice is credited in full." in text
    assert "Raise a dispute" not in text and "epc-qr" not in response.content.decode()
    assert_private(response)  # no form: no referrer at all


def test_a_credit_note_opens_as_a_credit_note_without_payment_or_dispute(issued, people):
    note = approve_and_issue(
        credit_note_create(actor=people["finance"], invoice=issued, full=True, reason=CreditReason.GOODWILL), people
    )
    text = text_of(page(Client(), note))
    assert "Credit note" in text and note.number in text and f"Credits invoice {issued.number}" in text
    assert "Amount credited €7,140.00" in text and "Total credited -€7,140.00" in text
    assert "Raise a dispute" not in text and "IBAN" not in text


def test_the_status_says_due_overdue_or_credited():
    invoice = Invoice(kind="invoice", due_date=dt.date(2026, 4, 30), issue_date=dt.date(2026, 3, 31))

    def status(today, remaining="10", credited=False, language="en"):
        return pv._status(invoice, remaining=Decimal(remaining), credited=credited, today=today, language=language)

    assert status(dt.date(2026, 4, 30)) == {"kind": "due", "text": "Due on Apr 30, 2026"}
    assert status(dt.date(2026, 5, 2)) == {"kind": "overdue", "text": "Overdue since May 1, 2026"}
    assert status(dt.date(2026, 5, 2), language="de")["text"] == "Überfällig seit 01.05.2026"
    assert status(dt.date(2026, 5, 2), remaining="0", credited=True) == {"kind": "credited", "text": "Credited"}


def test_every_language_has_every_portal_word():
    assert set(pv.PORTAL_LABELS) == set(pv.REASON_LABELS) == set(pdf.LABELS)
    keys = set(pv.PORTAL_LABELS["en"])
    assert all(set(words) == keys for words in pv.PORTAL_LABELS.values())
    assert all(set(words) == set(Dispute.Reason.values) for words in pv.REASON_LABELS.values())


# --- bad links --------------------------------------------------------------------------------------------


def test_a_tampered_link_answers_404_saying_so_and_nothing_else(issued, legal_entity, customer, people):
    token = portal.portal_token(issued)
    other = manual_issued(legal_entity=legal_entity, customer=customer, people=people)
    other_id = signing.b62_encode(other.public_id.int)
    head, made, signature = token.split(".")
    for bad in (
        f"{other_id}.{made}.{signature}",  # another invoice's ID under this signature
        f"{head}.{made}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
        token[:-3],
        "nonsense",
        signing.dumps(str(issued.public_id)),  # Django's default signer: other salt
    ):
        for url_name in ("billing:portal", "billing:portal-pdf"):
            response = Client().get(reverse(url_name, kwargs={"token": bad}))
            assert response.status_code == 404, bad
            assert_private(response)
            text = text_of(response)
            assert "This link is not valid" in text and "copied whole" in text
            for secret in (issued.number, other.number, "Throughline Studio GmbH", customer.legal_name, "€"):
                assert secret not in text, secret
    assert not PortalVisit.objects.exists()


def test_an_expired_link_answers_410_saying_so(issued, settings, customer):
    token = old_token(issued, days=settings.PORTAL_LINK_MAX_AGE_DAYS + 1)
    assert portal.invoice_public_id_for(old_token(issued, days=settings.PORTAL_LINK_MAX_AGE_DAYS - 1))
    for url_name in ("billing:portal", "billing:portal-pdf"):
        response = Client().get(reverse(url_name, kwargs={"token": token}))
        assert response.status_code == 410
        assert_private(response)
        text = text_of(response)
        assert "This link has expired" in text and "Ask us for a new link" in text
        assert issued.number not in text and customer.legal_name not in text and "Throughline" not in text
    german = Client().get(reverse("billing:portal", kwargs={"token": token}), HTTP_ACCEPT_LANGUAGE="de")
    assert german.status_code == 410 and "Dieser Link ist abgelaufen" in text_of(german)
    posted = Client().post(reverse("billing:portal-dispute", kwargs={"token": token}), {"reason": "rate"})
    assert posted.status_code == 410 and not Dispute.objects.exists()
    assert not PortalVisit.objects.exists()


def test_portal_pages_never_show_other_invoices(issued, legal_entity, customer, people):
    other = manual_issued(legal_entity=legal_entity, customer=customer, people=people, amount="1234.00")
    text = text_of(page(Client(), issued))
    assert other.number not in text and "1,234.00" not in text and str(other.public_id) not in text
    client = Client()
    client.post(
        portal.portal_path(issued).rstrip("/") + "/dispute/",
        {
            "reason": "rate",
            "message": "Too high.",
            "contact_name": "Ida",
            "contact_email": "ida@client.example",
            "invoice": str(other.public_id),  # ignored: the token names the invoice
        },
    )
    assert list(Dispute.objects.values_list("invoice_id", flat=True)) == [issued.pk]


# --- the PDF ----------------------------------------------------------------------------------------------


def test_the_pdf_is_being_prepared_until_it_is_stored_then_downloads_and_is_recorded(issued):
    url = reverse("billing:portal-pdf", kwargs={"token": portal.portal_token(issued)})
    pending = Client().get(url)
    assert pending.status_code == 404
    assert_private(pending)
    assert "The PDF is being prepared" in text_of(pending) and issued.number in text_of(pending)
    assert "The PDF is being prepared; try again in a few minutes." in text_of(page(Client(), issued))
    assert not PortalVisit.objects.filter(action="download").exists()

    invoice_pdf_render(issued.pk)
    _, data = stored_pdf(issued)
    response = Client().get(url, HTTP_USER_AGENT="pdf-reader")
    assert response.status_code == 200
    assert_private(response)
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{issued.number}.pdf"'
    assert b"".join(response.streaming_content) == data
    visit = PortalVisit.objects.get(action="download")
    assert (visit.invoice_id, visit.user_agent) == (issued.pk, "pdf-reader")
    assert re.search(r'href="/billing/portal/[^"/]+/pdf/" download>', page(Client(), issued).content.decode())


@needs_pdftotext
def test_the_pdf_carries_the_portal_link_that_opens_the_invoice(issued):
    invoice_pdf_render(issued.pk)
    text = pdf_text(stored_pdf(issued)[1])
    assert "Pay or dispute online:" in text
    compact = text.replace(" ", "")
    found = re.search(
        r"http://127\.0\.0\.1:8000/billing/portal/([0-9A-Za-z]+\.[0-9A-Za-z]+\.[0-9A-Za-z_-]{22})/", compact
    )
    assert found, text
    response = Client().get(reverse("billing:portal", kwargs={"token": found.group(1)}))
    assert response.status_code == 200 and issued.number in text_of(response)


@needs_pdftotext
def test_a_german_pdf_says_it_in_german(legal_entity, customer, people, bank_account):
    invoice = manual_issued(legal_entity=legal_entity, customer=customer, people=people, language="de")
    text = pdf_text(pdf.render_invoice_pdf(invoice))
    assert "Online bezahlen oder beanstanden:" in text and "Pay or dispute online" not in text


# --- disputes from the portal -----------------------------------------------------------------------------


def csrf_token_of(response) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode()).group(1)


def test_a_dispute_raised_on_the_page_needs_csrf_and_shows_for_finance(issued, people, client):
    browser = Client(enforce_csrf_checks=True)
    opened = page(browser, issued)
    url = reverse("billing:portal-dispute", kwargs={"token": portal.portal_token(issued)})
    data = {
        "reason": "rate",
        "message": "Day 3 was billed at the senior rate; we agreed the standard rate.",
        "contact_name": "Ida Berg",
        "contact_email": "ida.berg@client.example",
    }
    assert browser.post(url, data).status_code == 403  # no CSRF token
    assert not Dispute.objects.exists()

    sent = browser.post(url, {**data, "csrfmiddlewaretoken": csrf_token_of(opened)})
    assert sent.status_code == 302 and sent["Location"].endswith("#dispute-status")
    assert_private(sent)
    dispute = Dispute.objects.get(invoice=issued)
    assert (dispute.source, dispute.reason, dispute.contact_email) == ("portal", "rate", "ida.berg@client.example")
    assert PortalVisit.objects.filter(invoice=issued, action="dispute").count() == 1

    after = text_of(browser.get(sent["Location"].split("#")[0]))
    assert "Thank you. Your dispute was sent to our finance team" in after
    assert "Disputed since" in after and "Wrong rate or price" in after
    assert "Add to your dispute" in after

    client.force_login(people["finance"])
    finance_page = text_of(client.get(reverse("billing:invoice-detail", kwargs={"public_id": issued.public_id})))
    for expected in (
        "Disputes",
        "1 open",
        "Wrong rate or price",
        "Day 3 was billed at the senior rate; we agreed the standard rate.",
        "Ida Berg",
        "ida.berg@client.example",
        "Client portal",
        "Resolve or reject…",
    ):
        assert expected in finance_page, expected


def test_a_second_dispute_on_the_page_is_added_to_the_open_one(issued):
    browser = Client()
    url = reverse("billing:portal-dispute", kwargs={"token": portal.portal_token(issued)})
    data = {"reason": "rate", "message": "First.", "contact_name": "Ida", "contact_email": "ida@client.example"}
    browser.post(url, data)
    sent = browser.post(url, {**data, "message": "Second."})
    assert "Your message was added to your open dispute" in text_of(browser.get(sent["Location"].split("#")[0]))
    assert Dispute.objects.get().message.endswith("Second.")


def test_form_errors_come_back_in_the_invoices_language_and_save_nothing(legal_entity, customer, people, bank_account):
    invoice = manual_issued(legal_entity=legal_entity, customer=customer, people=people, language="de")
    url = reverse("billing:portal-dispute", kwargs={"token": portal.portal_token(invoice)})
    response = Client().post(url, {"reason": "angry", "message": "", "contact_email": "not-an-email"})
    assert response.status_code == 400
    assert_private(response, referrer_policy="same-origin")
    text = text_of(response)
    assert "Bitte korrigieren Sie die markierten Felder." in text
    assert "Dieses Feld ist zwingend erforderlich." in text  # Django's own words, in German
    assert response.content.decode().count('aria-invalid="true"') == 4
    assert not Dispute.objects.exists() and not PortalVisit.objects.filter(action="dispute").exists()


def test_the_dispute_address_takes_posts_only(issued):
    url = reverse("billing:portal-dispute", kwargs={"token": portal.portal_token(issued)})
    assert Client().get(url).status_code == 405


def test_the_client_sees_the_resolution_of_the_last_dispute(issued, people):
    dispute = d.dispute_raise(
        invoice=issued, reason="po", message="PO is 4711.", contact_name="Ida", contact_email="i@c.example"
    )
    d.dispute_resolve(
        actor=people["finance"], dispute=dispute, outcome="resolved", resolution="Credit note with PO 4711."
    )
    text = text_of(page(Client(), issued))
    assert "Your dispute of" in text and "was resolved:" in text and "Credit note with PO 4711." in text
    assert "PO is 4711." not in text  # the thread (finance's notes too) stays inside


# --- the finance panel ------------------------------------------------------------------------------------


def raised(invoice) -> Dispute:
    return d.dispute_raise(
        invoice=invoice, reason="rate", message="Too high.", contact_name="Ida", contact_email="ida@client.example"
    )


def resolve_url(dispute: Dispute) -> str:
    return reverse("billing:dispute-resolve", kwargs={"public_id": dispute.public_id})


def detail_url(invoice: Invoice) -> str:
    return reverse("billing:invoice-detail", kwargs={"public_id": invoice.public_id})


def test_finance_resolves_on_the_invoice_page(issued, people, client):
    dispute = raised(issued)
    client.force_login(people["finance"])
    prefix = f"resolve-{dispute.public_id}"
    response = client.post(
        resolve_url(dispute), {f"{prefix}-outcome": "rejected", f"{prefix}-resolution": "The rate is in the contract."}
    )
    assert response.status_code == 302 and response["Location"] == detail_url(issued) + "#disputes"
    dispute.refresh_from_db()
    assert (dispute.status, dispute.resolution, dispute.resolved_by) == (
        "rejected",
        "The rate is in the contract.",
        people["finance"],
    )
    text = text_of(client.get(detail_url(issued)))
    assert f"The dispute of {issued.number} is rejected." in text
    assert "Rejected by finance" in text and "The rate is in the contract." in text


def test_a_resolve_without_resolution_is_shown_on_the_panel_with_400(issued, people, client):
    dispute = raised(issued)
    client.force_login(people["finance"])
    prefix = f"resolve-{dispute.public_id}"
    response = client.post(resolve_url(dispute), {f"{prefix}-outcome": "resolved", f"{prefix}-resolution": " "})
    assert response.status_code == 400
    html = response.content.decode()
    assert '<details class="mt-2" open>' in html and "This field is required." in html
    assert Dispute.objects.get(pk=dispute.pk).status == "open"


def test_closing_twice_answers_409_on_the_page(issued, people, client):
    dispute = raised(issued)
    d.dispute_resolve(actor=people["admin"], dispute=dispute, outcome="resolved", resolution="Done.")
    client.force_login(people["finance"])
    prefix = f"resolve-{dispute.public_id}"
    response = client.post(resolve_url(dispute), {f"{prefix}-outcome": "rejected", f"{prefix}-resolution": "No."})
    assert response.status_code == 409
    assert "it cannot be closed again" in text_of(response)


@pytest.mark.parametrize(("name", "status"), [("pm", 403), ("consultant", 403), ("executive", 403), ("auditor", 403)])
def test_project_managers_and_consultants_cannot_resolve(issued, people, client, name, status):
    dispute = raised(issued)
    client.force_login(people[name])
    prefix = f"resolve-{dispute.public_id}"
    response = client.post(resolve_url(dispute), {f"{prefix}-outcome": "resolved", f"{prefix}-resolution": "Ok."})
    assert response.status_code == status
    assert Dispute.objects.get(pk=dispute.pk).status == "open"


def test_signed_out_visitors_cannot_resolve(issued, client):
    dispute = raised(issued)
    response = client.post(resolve_url(dispute), {})
    assert response.status_code == 302 and "next=" in response["Location"]


def test_finance_records_a_phoned_in_dispute(issued, people, client):
    client.force_login(people["finance"])
    url = reverse("billing:dispute-record", kwargs={"public_id": issued.public_id})
    response = client.post(url, {"record-reason": "work_not_done", "record-message": "Phoned: day 5 not worked."})
    assert response.status_code == 302
    dispute = Dispute.objects.get(invoice=issued)
    assert (dispute.source, dispute.reason, dispute.message) == (
        "finance",
        "work_not_done",
        "Phoned: day 5 not worked.",
    )
    refused = client.post(url, {"record-reason": "", "record-message": ""})
    assert refused.status_code == 400 and Dispute.objects.count() == 1
    client.force_login(people["pm"])
    assert client.post(url, {"record-reason": "other", "record-message": "x"}).status_code == 403


def test_recording_on_a_draft_is_refused_with_409(make_draft, team, approved_time, people, client):
    draft = make_draft(team)
    client.force_login(people["finance"])
    url = reverse("billing:dispute-record", kwargs={"public_id": draft.public_id})
    response = client.post(url, {"record-reason": "other", "record-message": "Heard so."})
    assert response.status_code == 409 and "only issued invoices can be disputed" in text_of(response)


def test_finance_copies_the_portal_link_with_its_expiry(issued, people, client):
    client.force_login(people["finance"])
    html = client.get(detail_url(issued)).content.decode()
    found = re.search(r'id="portal-link-url"[^>]*>http://127\.0\.0\.1:8000(/billing/portal/[^<]+/)</textarea>', html)
    assert found and "Valid until" in html
    expires = pv.disputes_panel_context(user=people["finance"], invoice=issued)["link"]["expires_at"]
    assert f">{expires:%Y-%m-%d}</time>" in html
    assert Client().get(found.group(1)).status_code == 200
    assert "The client has not opened the portal yet." not in client.get(detail_url(issued)).content.decode()


@pytest.mark.parametrize(
    ("name", "sees_disputes", "can_resolve", "can_record", "gets_link"),
    [
        ("finance", True, True, True, True),
        ("admin", True, True, True, True),
        ("executive", True, False, False, False),
        ("auditor", True, False, False, False),
        ("pm", True, False, False, False),
    ],
)
def test_the_panel_offers_each_role_what_it_may_do(
    issued, people, name, sees_disputes, can_resolve, can_record, gets_link
):
    raised(issued)
    panel = pv.disputes_panel_context(user=people[name], invoice=issued)
    assert panel["can_view"] is sees_disputes and len(panel["rows"]) == 1
    assert (panel["rows"][0]["resolve_form"] is not None) is can_resolve
    assert (panel["record_form"] is not None) is can_record
    assert (panel["link"] is not None) is gets_link


@pytest.mark.parametrize("name", ["sales", "consultant"])
def test_those_without_dispute_permissions_get_no_panel(issued, people, name):
    assert pv.disputes_panel_context(user=people[name], invoice=issued) is None


# --- the API ----------------------------------------------------------------------------------------------


def test_the_disputes_api(issued, people, client_for):
    dispute = raised(issued)
    listed = f"{API}/invoices/{issued.public_id}/disputes/"
    rows = client_for(people["finance"]).get(listed).json()["results"]
    assert [row["id"] for row in rows] == [str(dispute.public_id)]
    assert rows[0]["status"] == "open" and rows[0]["reason"] == "rate" and rows[0]["invoice"] == str(issued.public_id)
    assert client_for(people["pm"]).get(listed).status_code == 200
    assert client_for(people["auditor"]).get(listed).status_code == 200
    assert client_for(people["pm2"]).get(listed).status_code == 404
    assert client_for(people["sales"]).get(listed).status_code == 403

    resolve = f"{API}/invoices/{issued.public_id}/disputes/{dispute.public_id}/resolve/"
    body = {"outcome": "resolved", "resolution": "Credited day 3."}
    assert client_for(people["pm"]).post(resolve, body, format="json").status_code == 403
    assert client_for(people["auditor"]).post(resolve, body, format="json").status_code == 403
    bad = client_for(people["finance"]).post(resolve, {"outcome": "open", "resolution": ""}, format="json")
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {"outcome", "resolution"}
    finance = client_for(people["finance"])
    done = finance.post(resolve, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert done.status_code == 200 and done.json()["status"] == "resolved" and done.json()["resolved_by"] == "finance"
    replay = finance.post(resolve, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert replay.status_code == 200 and replay["Idempotent-Replayed"] == "true"
    again = finance.post(resolve, body, format="json")
    assert again.status_code == 409 and "cannot be closed again" in again.json()["message"]
    assert (
        finance.post(f"{API}/invoices/{issued.public_id}/disputes/nonsense/resolve/", body, format="json").status_code
        == 404
    )


def test_finance_records_over_the_api(issued, people, client_for, make_draft, team):
    url = f"{API}/invoices/{issued.public_id}/disputes/"
    finance = client_for(people["finance"])
    made = finance.post(url, {"reason": "tax", "message": "Called: should be reverse charge."}, format="json")
    assert made.status_code == 201 and made.json()["source"] == "finance"
    added = finance.post(url, {"reason": "tax", "message": "Emailed their VAT ID."}, format="json")
    assert added.status_code == 200 and added.json()["id"] == made.json()["id"]
    assert client_for(people["pm"]).post(url, {"reason": "tax", "message": "x"}, format="json").status_code == 403
    bad = finance.post(url, {"reason": "nope", "message": ""}, format="json")
    assert bad.status_code == 400 and {"reason", "message"} <= set(bad.json()["errors"])


def test_the_disputes_api_is_in_the_schema(people, client_for):
    schema = client_for(people["finance"]).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert "get" in schema["paths"]["/api/v1/invoices/{id}/disputes/"]
    assert "post" in schema["paths"]["/api/v1/invoices/{id}/disputes/"]
    assert "post" in schema["paths"]["/api/v1/invoices/{id}/disputes/{dispute_id}/resolve/"]
