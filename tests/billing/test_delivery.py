"""Sending an issued invoice by email (``billing.delivery``): to the customer's billing contacts with the stored PDF
attached (its SHA-256 checked), written in the invoice's language with the number, the amount due, the due date
and the portal link; queued, sent once by the queue, retried with backoff when the mail server fails, and sent
again from the invoice's page after it failed. Refusals (a draft, no PDF yet, no contact, a bad address, a role
that may not send) are clear on the page and in the API; the same request twice makes one message."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import NoReverseMatch, resolve, reverse
from django_q.models import Schedule
from rest_framework.test import APIClient

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.models import DeliveryAttempt, OutboundAttachment, OutboundMessage
from backbone.tasks import outbound_message_send
from billing import delivery
from billing.credit_notes import credit_note_create
from billing.delivery import invoice_send
from billing.issuing import invoice_approve, invoice_issue
from billing.models import CreditReason, Invoice, InvoiceDocument
from billing.portal import invoice_public_id_for
from billing.tasks import invoice_pdf_render
from tests.customers.factories import ContactFactory

pytestmark = pytest.mark.django_db

REFUSING = "tests.backbone.test_outbox.RefusingBackend"  # raises smtplib.SMTPServerDisconnected
API = "/api/v1"
PORTAL_LINE = re.compile(r"^[^\n]*: (https?://\S+)$", re.M)


# --- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def portal_route(monkeypatch):
    """The portal link of the emails. billing/urls_portal.py routes the portal page; while it does not yet,
    ``portal_url`` cannot reverse, so the link is stood in for (the email's wording is what is tested here)."""
    try:
        reverse("billing:portal", kwargs={"token": "t"})
    except NoReverseMatch:
        monkeypatch.setattr(delivery, "portal_url", lambda invoice: f"http://testserver/portal-stand-in/{invoice.pk}/")
        return False
    return True


def approve_and_issue(invoice: Invoice, people) -> Invoice:
    invoice_approve(actor=people["executive"], invoice=invoice)
    return invoice_issue(actor=people["finance"], invoice=Invoice.objects.get(pk=invoice.pk))


@pytest.fixture
def contacts(customer):
    """Two billing contacts who receive invoices, and two who must not get them (inactive; not for invoices)."""
    return [
        ContactFactory(customer=customer, first_name="Aoife", last_name="Byrne", email="aoife@customer.test"),
        ContactFactory(customer=customer, first_name="Cian", last_name="Doyle", email="cian@customer.test"),
        ContactFactory(customer=customer, last_name="Gone", email="gone@customer.test", is_active=False),
        ContactFactory(customer=customer, last_name="Sales", email="buyer@customer.test", receives_invoices=False),
    ]


@pytest.fixture
def unrendered(make_draft, team, approved_time, people, bank_account) -> Invoice:
    """An issued invoice (7,140.00 gross) whose PDF the queue has not rendered yet."""
    return approve_and_issue(make_draft(team), people)


@pytest.fixture
def issued(unrendered) -> Invoice:
    """The issued invoice with its PDF stored."""
    assert invoice_pdf_render(unrendered.pk)
    return Invoice.objects.get(pk=unrendered.pk)


def draft_like(invoice: Invoice) -> Invoice:
    """A draft of the same customer (the approved time is on the issued one already)."""
    return Invoice.objects.create(
        legal_entity=invoice.legal_entity, customer=invoice.customer, currency=invoice.currency
    )


def pdf_bytes(invoice: Invoice) -> bytes:
    document = InvoiceDocument.objects.get(invoice=invoice, kind="pdf")
    with document.file.open("rb") as handle:
        return handle.read()


def page_url(invoice: Invoice) -> str:
    return reverse("billing:invoice-detail", kwargs={"public_id": invoice.public_id})


def send_url(invoice: Invoice) -> str:
    return reverse("billing:invoice-send", kwargs={"public_id": invoice.public_id})


def signed_in(client, user):
    client.force_login(user)
    return client


def text_of(response) -> str:
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", response.content.decode(), flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\s+", " ", text)
    return text.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&").replace("&#8220;", "“")


def form(**fields) -> dict[str, str]:
    return {f"send-{key}": value for key, value in {"to": "", "cc": "", "message": "", "token": "", **fields}.items()}


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def assert_portal_link(body: str, invoice: Invoice, real_route: bool) -> None:
    (link,) = PORTAL_LINE.findall(body)
    if real_route:
        token = resolve(urlsplit(link).path).kwargs["token"]
        assert invoice_public_id_for(token) == invoice.public_id
    else:
        assert link == f"http://testserver/portal-stand-in/{invoice.pk}/"


# --- the service ---------------------------------------------------------------------------------------------------


def test_sending_queues_the_pdf_for_the_billing_contacts_and_the_queue_sends_it_once(
    issued, contacts, people, portal_route, django_capture_on_commit_callbacks
):
    document = InvoiceDocument.objects.get(invoice=issued)
    with django_capture_on_commit_callbacks() as callbacks:
        message = invoice_send(actor=people["finance"], invoice=issued)
    assert len(callbacks) == 1 and mail.outbox == []
    assert (message.status, message.topic, message.about_id, message.about_label, message.about_url) == (
        "queued",
        "invoice",
        issued.public_id,
        issued.number,
        page_url(issued),
    )
    assert message.to == ["aoife@customer.test", "cian@customer.test"]  # active, receiving invoices; by name
    assert message.created_by == people["finance"]
    (attachment,) = OutboundAttachment.objects.filter(message=message)
    assert (attachment.filename, attachment.storage_name, attachment.sha256, attachment.size) == (
        f"{issued.number}.pdf",
        document.file.name,
        document.sha256,
        document.size,
    )
    assert attachment.sha256 == hashlib.sha256(pdf_bytes(issued)).hexdigest()

    callbacks[0]()  # the queue runs the send task
    (sent,) = mail.outbox
    assert sent.to == ["aoife@customer.test", "cian@customer.test"]
    assert sent.subject == f"Invoice {issued.number} from Throughline Studio GmbH"
    assert sent.attachments == [(f"{issued.number}.pdf", pdf_bytes(issued), "application/pdf")]
    due = issued.due_date
    for expected in (
        f"Please find attached our invoice {issued.number} of {issued.issue_date:%B} {issued.issue_date.day}, ",
        "Amount due: €7,140.00",
        f"Due date: {due:%B} {due.day}, {due.year}",
        f"Payment reference: {issued.creditor_reference}",
        "View, pay or dispute it online: ",
        "Kind regards,\nThroughline Studio GmbH",
    ):
        assert expected in sent.body, expected
    assert_portal_link(sent.body, issued, portal_route)
    assert outbound_message_send(message.pk) == "sent"  # the task again: nothing sent twice
    assert len(mail.outbox) == 1
    assert list(DeliveryAttempt.objects.filter(message=message).values_list("number", "outcome")) == [(1, "sent")]


@pytest.mark.parametrize(
    ("language", "words"),
    [
        (
            "de",
            [
                "Rechnung {number} von Throughline Studio GmbH",
                "Guten Tag,",
                "anbei erhalten Sie unsere Rechnung {number} vom ",
                "Offener Betrag: 7.140,00\xa0€",
                "Fällig am: ",
                "Online ansehen, bezahlen oder beanstanden: ",
                "Mit freundlichen Grüßen",
            ],
        ),
        (
            "fr",
            [
                "Facture {number} de Throughline Studio GmbH",
                "Bonjour,",
                "Veuillez trouver ci-joint notre facture {number} du ",
                "Montant dû : 7\u202f140,00\xa0€",
                "Échéance : ",
                "Consulter, payer ou contester en ligne : ",
                "Cordialement,",
            ],
        ),
    ],
)
def test_the_email_is_written_in_the_invoice_language(
    make_draft, team, approved_time, people, bank_account, contacts, portal_route, language, words
):
    draft = make_draft(team)
    Invoice.objects.filter(pk=draft.pk).update(language=language)
    invoice = approve_and_issue(Invoice.objects.get(pk=draft.pk), people)
    invoice_pdf_render(invoice.pk)
    message = invoice_send(actor=people["finance"], invoice=invoice, message="Merci / Danke.")
    text = f"{message.subject}\n{message.body}"
    for expected in words:
        assert expected.format(number=invoice.number) in text, expected
    assert message.body.index("Merci / Danke.") < message.body.index(invoice.number)  # the note comes first
    assert "Amount due" not in message.body and "Please find" not in message.body
    assert_portal_link(message.body, invoice, portal_route)


def test_a_credit_note_is_sent_with_its_own_words_and_the_invoice_then_asks_for_the_rest(
    issued, contacts, people, portal_route
):
    note = credit_note_create(
        actor=people["finance"], invoice=issued, full=True, reason=CreditReason.GOODWILL, explanation="Goodwill."
    )
    note = approve_and_issue(note, people)
    invoice_pdf_render(note.pk)
    message = invoice_send(actor=people["finance"], invoice=Invoice.objects.get(pk=note.pk))
    assert message.topic == "credit_note" and message.about_label == note.number
    assert message.subject == f"Credit note {note.number} from Throughline Studio GmbH"
    assert f"which credits invoice {issued.number}" in message.body
    assert "Amount credited: €7,140.00" in message.body and "Due date" not in message.body
    again = invoice_send(actor=people["finance"], invoice=issued)
    assert "Amount due: €0.00" in again.body  # fully credited


def test_given_addresses_replace_the_contacts_and_copies_are_kept(issued, contacts, people):
    message = invoice_send(
        actor=people["finance"],
        invoice=issued,
        to="ap@other.test; Payables@Other.test, ap@other.test",
        cc=["controller@other.test"],
    )
    assert message.to == ["ap@other.test", "Payables@Other.test"] and message.cc == ["controller@other.test"]


@pytest.mark.parametrize(
    ("to", "cc", "field", "words"),
    [
        ("ap@other.test, nobody", None, "to", "“nobody” is not a valid email address."),
        (None, ["x@"], "cc", "“x@” is not a valid email address."),
    ],
)
def test_bad_addresses_are_refused_by_name(issued, contacts, people, to, cc, field, words):
    with pytest.raises(ValidationFailed) as refused:
        invoice_send(actor=people["finance"], invoice=issued, to=to, cc=cc)
    assert refused.value.message == words and field in refused.value.errors
    assert not OutboundMessage.objects.exists()


def test_a_customer_without_billing_contacts_needs_an_address(issued, people, customer):
    ContactFactory(customer=customer, email="buyer@customer.test", receives_invoices=False)
    with pytest.raises(ValidationFailed, match="has no active contact who receives invoices") as refused:
        invoice_send(actor=people["finance"], invoice=issued)
    assert "to" in refused.value.errors and not OutboundMessage.objects.exists()
    assert invoice_send(actor=people["finance"], invoice=issued, to=["ap@customer.test"]).to == ["ap@customer.test"]


def test_only_issued_invoices_with_their_pdf_are_sent(unrendered, contacts, people):
    with pytest.raises(Conflict, match=r"^The PDF is still being rendered"):
        invoice_send(actor=people["finance"], invoice=unrendered)
    with pytest.raises(TransitionNotAllowed, match="Only an issued invoice can be sent; this one is draft"):
        invoice_send(actor=people["finance"], invoice=draft_like(unrendered))
    assert not OutboundMessage.objects.exists()


@pytest.mark.parametrize(
    ("who", "words"),
    [
        ("executive", "may not send invoices"),
        ("pm", "may not send invoices"),
        ("auditor", "change nothing"),
        ("consultant", "may not send invoices"),
    ],
)
def test_only_finance_and_admins_send(issued, contacts, people, who, words):
    with pytest.raises(NotPermitted, match=words):
        invoice_send(actor=people[who], invoice=issued)
    assert invoice_send(actor=people["admin"], invoice=issued).status == "queued"


def test_a_long_note_is_refused(issued, contacts, people):
    with pytest.raises(ValidationFailed, match="at most 2000 characters"):
        invoice_send(actor=people["finance"], invoice=issued, message="x" * 2001)


# --- the invoice page ---------------------------------------------------------------------------------------------


def test_finance_sees_the_send_form_with_the_contacts_prefilled(client, issued, contacts, people):
    page = signed_in(client, people["finance"]).get(page_url(issued))
    panel = page.context["delivery_panel"]
    assert panel["form"]["to"].value() == "aoife@customer.test, cian@customer.test"
    assert panel["form"]["token"].value() and panel["rows"] == []
    html = page.content.decode()
    assert f'action="{send_url(issued)}"' in html and 'Send<span class="visually-hidden"> by email</span>…' in html
    assert "Not sent yet" in text_of(page)


def test_who_sees_what_of_delivery_on_the_invoice_page(client, issued, contacts, people):
    invoice_send(actor=people["finance"], invoice=issued)
    executive = signed_in(client, people["executive"]).get(page_url(issued)).context["delivery_panel"]
    assert executive["form"] is None and len(executive["rows"]) == 1 and executive["rows"][0]["resend_url"] is None
    assert executive["outbox_url"] == f"/outbox/?q={issued.number}"
    listed = client.get(executive["outbox_url"]).context["outbox_messages"]
    assert [m.about_id for m in listed] == [issued.public_id]
    auditor = signed_in(client, people["auditor"]).get(page_url(issued)).context["delivery_panel"]
    assert auditor["form"] is None and len(auditor["rows"]) == 1
    assert signed_in(client, people["pm"]).get(page_url(issued)).context["delivery_panel"] is None
    draft = draft_like(issued)
    assert signed_in(client, people["finance"]).get(page_url(draft)).context["delivery_panel"] is None
    InvoiceDocument.objects.filter(invoice=issued).delete()  # as before the queue rendered it
    waiting = signed_in(client, people["finance"]).get(page_url(issued))
    assert waiting.context["delivery_panel"]["form"] is None and len(waiting.context["delivery_panel"]["rows"]) == 1
    assert "The PDF is still being rendered" in text_of(waiting)


def test_sending_from_the_page_once_per_form_and_again_on_purpose(
    client, issued, contacts, people, django_capture_on_commit_callbacks
):
    signed_in(client, people["finance"])
    token = uuid.uuid4().hex
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(send_url(issued), form(to="aoife@customer.test", message="As agreed.", token=token))
    assert response.status_code == 302 and response["Location"] == page_url(issued) + "#delivery"
    (flash,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert flash.startswith(f"{issued.number} is queued for sending to aoife@customer.test")
    (sent,) = mail.outbox
    assert sent.to == ["aoife@customer.test"] and "As agreed." in sent.body

    twice = client.post(send_url(issued), form(to="aoife@customer.test", message="As agreed.", token=token))
    assert twice.status_code == 302 and OutboundMessage.objects.count() == 1  # a double click: one message
    assert "already queued for sending with this form" in str(list(get_messages(twice.wsgi_request))[-1])

    with django_capture_on_commit_callbacks(execute=True):
        client.post(send_url(issued), form(token=uuid.uuid4().hex))  # sending again on purpose: to the contacts
    assert OutboundMessage.objects.count() == 2 and len(mail.outbox) == 2
    assert mail.outbox[1].to == ["aoife@customer.test", "cian@customer.test"]
    page = client.get(page_url(issued))
    rows = page.context["delivery_panel"]["rows"]
    assert [row["message"].status for row in rows] == ["sent", "sent"]
    assert [[a.outcome for a in row["attempts"]] for row in rows] == [["sent"], ["sent"]]
    assert "Attempt 1: Sent" in text_of(page) and f"{issued.number}.pdf" in text_of(page)


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"to": "aoife@customer.test, not-an-address"}, 400, "“not-an-address” is not a valid email address."),
        ({"cc": "x@"}, 400, "“x@” is not a valid email address."),
        ({"message": "x" * 2001}, 400, "Ensure this value has at most 2000 characters"),
    ],
)
def test_the_page_refuses_bad_input_next_to_the_field_keeping_what_was_typed(
    client, issued, contacts, people, fields, status, words
):
    response = signed_in(client, people["finance"]).post(send_url(issued), form(token="t1", **fields))
    assert response.status_code == status
    assert words in text_of(response)
    panel = response.context["delivery_panel"]
    assert panel["form"].errors and panel["form"]["token"].value() == "t1"
    for key, value in fields.items():
        assert panel["form"][key].value() == value
    assert not OutboundMessage.objects.exists()


def test_the_page_says_when_there_is_nobody_to_send_to(client, issued, people):
    page = signed_in(client, people["finance"]).get(page_url(issued))
    assert "has no active contact who receives invoices: give the address" in text_of(page)
    response = client.post(send_url(issued), form())
    assert response.status_code == 400
    assert "has no active contact who receives invoices" in text_of(response)
    assert "Nothing was changed. (HTTP 400" in text_of(response)


def test_the_page_refuses_a_draft_and_an_invoice_without_its_pdf(client, unrendered, contacts, people):
    signed_in(client, people["finance"])
    waiting = client.post(send_url(unrendered), form())
    assert waiting.status_code == 409 and "The PDF is still being rendered" in text_of(waiting)
    draft = client.post(send_url(draft_like(unrendered)), form())
    assert draft.status_code == 409 and "Only an issued invoice can be sent" in text_of(draft)
    assert not OutboundMessage.objects.exists()


@pytest.mark.parametrize("who", ["sales", "consultant", "pm", "executive", "auditor"])
def test_sending_from_the_page_is_refused_to_those_who_may_not(client, issued, contacts, people, who):
    assert signed_in(client, people[who]).post(send_url(issued), form()).status_code == 403
    assert not OutboundMessage.objects.exists()


def test_sending_needs_a_post_and_a_signed_in_person(client, issued):
    anonymous = client.post(send_url(issued), form())
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    unknown = reverse("billing:invoice-send", kwargs={"public_id": uuid.uuid4()})
    client.force_login(issued.issued_by)
    assert client.post(unknown, form()).status_code == 404
    assert client.get(send_url(issued)).status_code == 405


@override_settings(EMAIL_BACKEND=REFUSING, OUTBOX_BACKOFF_SECONDS=[60, 300, 1500, 7500])
def test_a_failing_mail_server_shows_each_attempt_and_send_again_works_from_the_page(
    client, issued, contacts, people, django_capture_on_commit_callbacks
):
    signed_in(client, people["finance"])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(send_url(issued), form(token="first"))
    message = OutboundMessage.objects.get()
    assert (message.status, message.attempts) == ("retrying", 1)
    (retry,) = Schedule.objects.all()
    assert retry.func == "backbone.tasks.outbound_message_send" and retry.next_run == message.next_attempt_at
    page = text_of(client.get(page_url(issued)))
    assert "Waiting to retry" in page and "SMTPServerDisconnected" in page and "Next attempt" in page

    for expected in ("retrying", "retrying", "retrying", "failed"):  # the schedules' runs, 5, 25, 125 min apart
        assert outbound_message_send(message.pk) == expected
    message.refresh_from_db()
    assert (message.status, message.attempts, Schedule.objects.count()) == ("failed", 5, 4)
    assert mail.outbox == []
    page = client.get(page_url(issued))
    (row,) = page.context["delivery_panel"]["rows"]
    assert [a.outcome for a in row["attempts"]] == ["failed"] * 5
    assert "Not delivered after 5 attempts" in text_of(page) and "Send again" in text_of(page)
    assert row["resend_url"] == reverse(
        "billing:message-resend", kwargs={"public_id": issued.public_id, "message_id": message.public_id}
    )
    assert signed_in(client, people["auditor"]).post(row["resend_url"]).status_code == 403
    assert signed_in(client, people["executive"]).post(row["resend_url"]).status_code == 403

    signed_in(client, people["finance"])
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(row["resend_url"])
        assert response.status_code == 302 and response["Location"] == page_url(issued) + "#delivery"
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("sent", 1)
    (sent,) = mail.outbox
    assert sent.attachments[0][1] == pdf_bytes(issued)
    (row,) = client.get(page_url(issued)).context["delivery_panel"]["rows"]
    assert [a.number for a in row["attempts"]] == [1, 2, 3, 4, 5, 6] and row["attempts"][-1].outcome == "sent"
    assert row["resend_url"] is None
    again = client.post(
        reverse("billing:message-resend", kwargs={"public_id": issued.public_id, "message_id": message.public_id})
    )
    assert again.status_code == 409 and "not sent twice" in text_of(again)


def test_send_again_only_for_a_message_about_this_invoice(client, issued, contacts, people):
    message = invoice_send(actor=people["finance"], invoice=issued)
    OutboundMessage.objects.filter(pk=message.pk).update(status="failed")
    other = draft_like(issued)
    url = reverse("billing:message-resend", kwargs={"public_id": other.public_id, "message_id": message.public_id})
    assert signed_in(client, people["finance"]).post(url).status_code == 404


# --- the API ------------------------------------------------------------------------------------------------------


def test_the_api_sends_once_per_idempotency_key_and_lists_the_messages_with_attempts(
    issued, contacts, people, django_capture_on_commit_callbacks
):
    finance = api_for(people["finance"])
    url = f"{API}/invoices/{issued.public_id}/send/"
    with django_capture_on_commit_callbacks(execute=True):
        first = finance.post(url, {"message": "As agreed."}, format="json", HTTP_IDEMPOTENCY_KEY="send-1")
    assert first.status_code == 201, first.json()
    body = first.json()
    assert body["status"] == "queued" and body["to"] == ["aoife@customer.test", "cian@customer.test"]
    assert body["attachments"][0]["sha256"] == InvoiceDocument.objects.get(invoice=issued).sha256
    assert body["about"]["id"] == str(issued.public_id)
    replay = finance.post(url, {"message": "As agreed."}, format="json", HTTP_IDEMPOTENCY_KEY="send-1")
    assert replay.status_code == 201 and replay.json()["id"] == body["id"] and replay["Idempotent-Replayed"] == "true"
    assert OutboundMessage.objects.count() == 1 and len(mail.outbox) == 1

    second = finance.post(url, {"to": ["ap@other.test"]}, format="json")  # a deliberate second send
    assert second.status_code == 201 and OutboundMessage.objects.count() == 2

    listed = finance.get(f"{API}/invoices/{issued.public_id}/messages/").json()
    assert listed["count"] == 2
    assert [m["id"] for m in listed["results"]] == [second.json()["id"], body["id"]]
    assert [(a["number"], a["outcome"]) for a in listed["results"][1]["delivery_attempts"]] == [(1, "sent")]
    assert listed["results"][1]["status"] == "sent"


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        ({"to": ["nobody"]}, 400, "“nobody” is not a valid email address."),
        ({"to": "ap@other.test"}, 400, 'to: Expected a list of items but got type "str".'),
        ({"message": "x" * 2001}, 400, "message: Ensure this field has no more than 2000 characters."),
    ],
)
def test_the_api_refuses_bad_input_as_json(issued, contacts, people, payload, status, words):
    response = api_for(people["finance"]).post(f"{API}/invoices/{issued.public_id}/send/", payload, format="json")
    assert response.status_code == status and response.json()["message"] == words
    assert not OutboundMessage.objects.exists()


def test_the_api_refuses_what_cannot_be_sent(unrendered, people):
    finance = api_for(people["finance"])
    waiting = finance.post(f"{API}/invoices/{unrendered.public_id}/send/", {}, format="json")
    assert waiting.status_code == 409 and waiting.json()["message"].startswith("The PDF is still being rendered")
    draft = finance.post(f"{API}/invoices/{draft_like(unrendered).public_id}/send/", {}, format="json")
    assert draft.status_code == 409 and draft.json()["code"] == "transition_not_allowed"
    invoice_pdf_render(unrendered.pk)
    nobody = finance.post(f"{API}/invoices/{unrendered.public_id}/send/", {}, format="json")
    assert nobody.status_code == 400 and "has no active contact who receives invoices" in nobody.json()["message"]
    assert "to" in nobody.json()["errors"]


def test_the_api_is_denied_by_default(issued, contacts, people):
    send = f"{API}/invoices/{issued.public_id}/send/"
    messages = f"{API}/invoices/{issued.public_id}/messages/"
    for who in ("sales", "consultant", "pm", "executive", "auditor"):
        assert api_for(people[who]).post(send, {}, format="json").status_code == 403, who
    for who in ("sales", "consultant", "pm"):
        assert api_for(people[who]).get(messages).status_code == 403, who
    for who in ("executive", "auditor", "finance", "admin"):
        assert api_for(people[who]).get(messages).status_code == 200, who
    assert APIClient().post(send, {}, format="json").status_code in (401, 403)
    assert api_for(people["finance"]).get(f"{API}/invoices/{uuid.uuid4()}/messages/").status_code == 404
    assert not OutboundMessage.objects.exists()


def test_the_messages_of_an_invoice_need_constant_queries(issued, contacts, people):
    finance = api_for(people["finance"])
    url = f"{API}/invoices/{issued.public_id}/messages/"
    outbound_message_send(invoice_send(actor=people["finance"], invoice=issued).pk)
    finance.get(url)
    with CaptureQueriesContext(connection) as one:
        finance.get(url)
    for _ in range(4):
        outbound_message_send(invoice_send(actor=people["finance"], invoice=issued).pk)
    with CaptureQueriesContext(connection) as five:
        assert finance.get(url).json()["count"] == 5
    assert len(five) == len(one)


def test_the_invoice_page_needs_constant_queries_whatever_was_sent(client, issued, contacts, people):
    signed_in(client, people["finance"])
    outbound_message_send(invoice_send(actor=people["finance"], invoice=issued).pk)
    client.get(page_url(issued))
    with CaptureQueriesContext(connection) as one:
        client.get(page_url(issued))
    for _ in range(4):
        outbound_message_send(invoice_send(actor=people["finance"], invoice=issued).pk)
    with CaptureQueriesContext(connection) as five:
        assert len(client.get(page_url(issued)).context["delivery_panel"]["rows"]) == 5
    assert len(five) == len(one)


def test_amounts_in_the_email_are_the_invoice_balance(issued, contacts, people):
    body = delivery.invoice_email(issued)["body"]
    assert "Amount due: €7,140.00" in body and issued.gross_total == Decimal("7140.00")
    assert issued.due_date == issued.issue_date + dt.timedelta(days=issued.payment_terms_days)


# --- what each role gets on GET (the rows of tests/test_permission_matrix.py) -----------------------------------

LOGIN = "login"
ROLES = ("anon", "sales", "pm", "consultant", "finance", "executive", "auditor", "admin")
GET_MATRIX = {
    #                      anon   sales  pm   cons fin  exec aud  admin
    "billing:invoice-send": (LOGIN, 403, 403, 403, 405, 403, 403, 405),
    "billing:message-resend": (LOGIN, 403, 403, 403, 405, 403, 403, 405),
    "api:invoice-send": (401, 403, 405, 403, 405, 405, 405, 405),
    "api:invoice-messages": (401, 403, 403, 403, 200, 200, 200, 200),
}


@pytest.mark.parametrize("name", sorted(GET_MATRIX))
def test_get_outcomes_per_role(client, issued, contacts, people, name):
    message = invoice_send(actor=people["finance"], invoice=issued)
    if name.startswith("api:"):
        url = reverse(name, kwargs={"id": issued.public_id})
    elif name == "billing:message-resend":
        url = reverse(name, kwargs={"public_id": issued.public_id, "message_id": message.public_id})
    else:
        url = reverse(name, kwargs={"public_id": issued.public_id})
    for role, expected in zip(ROLES, GET_MATRIX[name], strict=True):
        client.logout()
        if name.startswith("api:"):
            api = api_for(people[role]) if role != "anon" else APIClient()
            got = api.get(url).status_code
        else:
            if role != "anon":
                client.force_login(people[role])
            response = client.get(url)
            got = LOGIN if response.status_code == 302 and "/login/" in response["Location"] else response.status_code
        assert got == expected, (name, role, got)
