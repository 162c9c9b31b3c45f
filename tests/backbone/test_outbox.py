"""The Outbox: a message is stored with its attachments and sent in the queue after commit, once; a mail server
that fails is tried again with backoff (a one-off django-q2 schedule) until the message is sent or, after its
last attempt, failed — never lost, and "Send again" starts a new series. A changed attachment is never sent.
The Outbox page and API list every message with its attachments and attempts in a constant number of queries,
for finance, executives, auditors and admins only."""

from __future__ import annotations

import datetime as dt
import hashlib
import smtplib
import threading
import uuid

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import include, path, reverse
from django.utils import timezone
from django_q.models import Schedule
from rest_framework.routers import SimpleRouter
from rest_framework.test import APIClient

from backbone import outbox
from backbone.api_outbox import OutboxViewSet
from backbone.context_processors import NavGroup
from backbone.errors import NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.models import DeliveryAttempt, OutboundAttachment, OutboundMessage
from backbone.tasks import outbound_message_send, outbound_messages_sweep
from config import urls as site_urls

PDF_BYTES = b"%PDF-1.7\n% a stand-in document for the Outbox tests\n%%EOF\n"
SEND = "backbone.tasks.outbound_message_send"


class RefusingBackend(BaseEmailBackend):
    """A mail server that is down: every send raises what smtplib raises then."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


class BrokenHeaderBackend(BaseEmailBackend):
    """A backend refusing the message itself: no retry helps."""

    def send_messages(self, email_messages):
        raise ValueError("Header values may not contain linefeed or carriage return characters")


REFUSING = "tests.backbone.test_outbox.RefusingBackend"

# The API route of the Outbox (config/api_urls.py registers it; until it does, the tests add it here).
_router = SimpleRouter()
_router.register("outbox", OutboxViewSet, basename="outbox")
urlpatterns = [path("api/v1/", include(_router.urls)), *site_urls.urlpatterns]


def _api_has_outbox() -> bool:
    try:
        reverse("api:outbox-list")
    except Exception:
        return False
    return True


@pytest.fixture
def api_urls(settings):
    """The site's URLs, with the Outbox API route added when config/api_urls.py does not register it yet."""
    if not _api_has_outbox():
        settings.ROOT_URLCONF = __name__
    return "/api/v1/outbox/"


@pytest.fixture
def stored_pdf():
    name = default_storage.save(f"outbox-tests/{uuid.uuid4().hex}/INV-1.pdf", ContentFile(PDF_BYTES))
    return outbox.AttachmentFile(
        filename="INV-1.pdf",
        content_type="application/pdf",
        storage_name=name,
        size=len(PDF_BYTES),
        sha256=hashlib.sha256(PDF_BYTES).hexdigest(),
    )


@pytest.fixture
def queue(users, stored_pdf):
    """``queue(**fields)`` → a message queued by finance with the stored PDF (nothing sent: callbacks not run)."""

    def make(**fields) -> OutboundMessage:
        values = {
            "actor": users["finance"],
            "topic": "invoice",
            "to": ["ap@customer.test"],
            "subject": "Invoice INV-1 from Studio",
            "body": "Please find attached our invoice INV-1.",
            "attachments": [stored_pdf],
            "about_id": uuid.uuid4(),
            "about_label": "INV-1",
            "about_url": "/billing/invoices/x/",
            **fields,
        }
        return outbox.message_queue(**values)

    return make


def fresh(message: OutboundMessage) -> OutboundMessage:
    return OutboundMessage.objects.get(pk=message.pk)


def attempts(message: OutboundMessage) -> list[tuple[int, str]]:
    return list(DeliveryAttempt.objects.filter(message=message).order_by("number").values_list("number", "outcome"))


# --- queueing ---------------------------------------------------------------------------------------------------


def test_queueing_stores_the_message_and_its_attachment_and_sends_after_commit(
    queue, stored_pdf, users, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        message = queue(cc=["controller@customer.test", "AP@customer.test"], reply_to=["billing@studio.test"])
    assert len(callbacks) == 1 and mail.outbox == []  # nothing sent inside the transaction
    message = fresh(message)
    assert (message.status, message.attempts, message.created_by, message.to, message.cc) == (
        "queued",
        0,
        users["finance"],
        ["ap@customer.test"],
        ["controller@customer.test"],  # the address already in "to" is not copied again
    )
    (attachment,) = OutboundAttachment.objects.filter(message=message)
    assert (attachment.storage_name, attachment.sha256, attachment.size) == (
        stored_pdf.storage_name,
        hashlib.sha256(PDF_BYTES).hexdigest(),
        len(PDF_BYTES),
    )
    assert message.history.first().history_change_reason == "Queued for sending to ap@customer.test"

    callbacks[0]()  # the queue (sync in tests) runs backbone.tasks.outbound_message_send
    (sent,) = mail.outbox
    assert sent.to == ["ap@customer.test"] and sent.cc == ["controller@customer.test"]
    assert sent.reply_to == ["billing@studio.test"] and sent.subject == "Invoice INV-1 from Studio"
    assert sent.attachments == [("INV-1.pdf", PDF_BYTES, "application/pdf")]
    assert sent.extra_headers["X-Throughline-Message"] == str(message.public_id)
    message = fresh(message)
    assert (message.status, message.attempts, message.last_error) == ("sent", 1, "")
    assert message.sent_at is not None and attempts(message) == [(1, "sent")]


def test_running_the_task_twice_sends_once(queue):
    message = queue()
    assert outbound_message_send(message.pk) == "sent"
    assert outbound_message_send(message.pk) == "sent"
    assert len(mail.outbox) == 1 and attempts(message) == [(1, "sent")]
    assert outbound_message_send(0) == "missing"


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"to": []}, "to", "at least one recipient"),
        ({"to": ["ap@customer.test", "not-an-address"]}, "to", "“not-an-address” is not a valid email address"),
        ({"cc": ["a@b", "c@@d"]}, "cc", "are not valid email addresses"),
        ({"subject": "  "}, "subject", "subject is empty"),
        ({"to": [f"p{n}@customer.test" for n in range(21)]}, "to", "At most 20 recipients"),
    ],
)
def test_queueing_refuses_bad_input_naming_the_field_and_stores_nothing(queue, fields, field, words):
    with pytest.raises(ValidationFailed) as refused:
        queue(**fields)
    assert words in refused.value.message and field in refused.value.errors
    assert not OutboundMessage.objects.exists() and not OutboundAttachment.objects.exists()


def test_a_missing_file_is_not_queued(queue, stored_pdf):
    default_storage.delete(stored_pdf.storage_name)
    with pytest.raises(ValidationFailed, match=r"INV-1\.pdf is missing from the storage"):
        queue()
    assert not OutboundMessage.objects.exists()


def test_auditors_queue_nothing(queue, users):
    with pytest.raises(NotPermitted, match="change nothing"):
        queue(actor=users["auditor"])
    assert not OutboundMessage.objects.exists()


# --- failures, backoff, retries -----------------------------------------------------------------------------------


@override_settings(EMAIL_BACKEND=REFUSING, OUTBOX_BACKOFF_SECONDS=[60, 300, 1500])
def test_a_failing_mail_server_is_retried_with_backoff_then_the_message_fails_and_nothing_is_lost(queue):
    message = queue(max_attempts=3)
    before = timezone.now()
    assert outbound_message_send(message.pk) == "retrying"
    message = fresh(message)
    assert (message.status, message.attempts) == ("retrying", 1)
    assert "SMTPServerDisconnected: Connection unexpectedly closed" in message.last_error
    assert before + dt.timedelta(seconds=60) <= message.next_attempt_at <= timezone.now() + dt.timedelta(seconds=60)
    (retry,) = Schedule.objects.all()
    assert (retry.func, retry.args, retry.schedule_type, retry.repeats) == (SEND, repr(message.pk), Schedule.ONCE, -1)
    assert retry.next_run == message.next_attempt_at

    assert outbound_message_send(message.pk) == "retrying"  # the schedule's run: 5 minutes next
    message = fresh(message)
    assert message.attempts == 2
    gap = message.next_attempt_at - DeliveryAttempt.objects.get(message=message, number=2).finished_at
    assert gap == dt.timedelta(seconds=300)
    assert Schedule.objects.count() == 2  # the scheduler deletes a one-off schedule once it ran; here, none ran

    assert outbound_message_send(message.pk) == "failed"  # the last attempt
    message = fresh(message)
    assert (message.status, message.attempts, message.next_attempt_at) == ("failed", 3, None)
    assert "SMTPServerDisconnected" in message.last_error
    assert attempts(message) == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert Schedule.objects.count() == 2 and mail.outbox == []
    assert outbound_message_send(message.pk) == "failed"  # a stray run changes nothing: it waits for a person
    assert len(attempts(message)) == 3
    assert OutboundAttachment.objects.filter(message=message).count() == 1  # nothing lost


@override_settings(EMAIL_BACKEND=REFUSING, OUTBOX_BACKOFF_SECONDS=[0])
def test_without_backoff_the_retries_go_through_the_queue_at_once(queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        message = queue(max_attempts=4)
    assert fresh(message).status == "failed" and len(attempts(message)) == 4
    assert not Schedule.objects.exists()


@override_settings(OUTBOX_BACKOFF_SECONDS=[0])
def test_send_again_after_failing_starts_a_new_series_and_sends(queue, users, django_capture_on_commit_callbacks):
    with override_settings(EMAIL_BACKEND=REFUSING), django_capture_on_commit_callbacks(execute=True):
        message = queue(max_attempts=2)
    assert fresh(message).status == "failed"
    with django_capture_on_commit_callbacks(execute=True):
        again = outbox.message_resend(actor=users["finance"], message=message)
        assert (again.status, again.attempts, again.last_error) == ("queued", 0, "")
    message = fresh(message)
    assert (message.status, message.attempts) == ("sent", 1)
    assert attempts(message) == [(1, "failed"), (2, "failed"), (3, "sent")]  # numbered on; the old ones kept
    assert len(mail.outbox) == 1
    assert message.history.filter(history_change_reason="Queued again after failing").exists()
    with pytest.raises(TransitionNotAllowed, match="not sent twice"):
        outbox.message_resend(actor=users["finance"], message=message)


def test_send_again_is_refused_while_queued_or_waiting_and_to_those_who_may_not(queue, users):
    message = queue()
    with pytest.raises(TransitionNotAllowed, match="queued and about to be sent"):
        outbox.message_resend(actor=users["finance"], message=message)
    OutboundMessage.objects.filter(pk=message.pk).update(status="retrying", next_attempt_at=timezone.now())
    with pytest.raises(TransitionNotAllowed, match="waiting to retry on its own"):
        outbox.message_resend(actor=users["finance"], message=message)
    OutboundMessage.objects.filter(pk=message.pk).update(status="failed")
    for role, words in (("executive", "may not send messages again"), ("auditor", "change nothing")):
        with pytest.raises(NotPermitted, match=words):
            outbox.message_resend(actor=users[role], message=message)
    assert fresh(message).status == "failed"


def test_a_changed_attachment_is_never_sent(queue, stored_pdf):
    message = queue()
    default_storage.delete(stored_pdf.storage_name)
    default_storage.save(stored_pdf.storage_name, ContentFile(PDF_BYTES.replace(b"stand-in", b"tampered")))
    assert outbound_message_send(message.pk) == "failed"  # no retry: the file will not change back
    message = fresh(message)
    assert "INV-1.pdf changed since it was queued" in message.last_error
    assert mail.outbox == [] and not Schedule.objects.exists() and attempts(message) == [(1, "failed")]


@override_settings(EMAIL_BACKEND="tests.backbone.test_outbox.BrokenHeaderBackend")
def test_a_refusal_no_retry_changes_fails_at_once(queue):
    message = queue()
    assert outbound_message_send(message.pk) == "failed"
    assert "ValueError: Header values" in fresh(message).last_error and not Schedule.objects.exists()


@override_settings(OUTBOX_BACKOFF_SECONDS=[60])
def test_a_missing_file_at_send_time_is_retried_like_a_server_failure(queue, stored_pdf):
    message = queue()
    default_storage.delete(stored_pdf.storage_name)
    assert outbound_message_send(message.pk) == "retrying"
    assert Schedule.objects.count() == 1 and mail.outbox == []


def test_backoff_steps_default_to_1_5_25_125_minutes_and_repeat_the_last(settings):
    settings.OUTBOX_BACKOFF_SECONDS = None
    assert [outbox.backoff_seconds(n) for n in range(1, 7)] == [60, 300, 1500, 7500, 7500, 7500]
    settings.OUTBOX_BACKOFF_SECONDS = [0]
    assert outbox.backoff_seconds(3) == 0


def test_the_sweep_requeues_messages_whose_task_was_lost(queue):
    stuck, recent, sent = queue(), queue(), queue()
    outbound_message_send(sent.pk)
    long_ago = timezone.now() - dt.timedelta(hours=1)
    OutboundMessage.objects.filter(pk__in=[stuck.pk, sent.pk]).update(updated_at=long_ago)
    assert outbound_messages_sweep() == 1  # the queue (sync in tests) sends it
    assert (fresh(stuck).status, fresh(recent).status) == ("sent", "queued")
    assert len(mail.outbox) == 2


@pytest.mark.django_db(transaction=True)
def test_a_message_another_worker_is_sending_is_left_to_it():
    # Made directly: queueing through the service would send at once here (autocommit, a synchronous queue).
    message = OutboundMessage.objects.create(
        topic="invoice", from_email="billing@studio.test", to=["ap@customer.test"], subject="S", body="B"
    )
    locked, release, answers = threading.Event(), threading.Event(), []

    def other_worker():
        with transaction.atomic():
            OutboundMessage.objects.select_for_update().get(pk=message.pk)
            locked.set()
            release.wait(10)
        connection.close()

    worker = threading.Thread(target=other_worker)
    worker.start()
    try:
        assert locked.wait(10)
        answers.append(outbound_message_send(message.pk))
    finally:
        release.set()
        worker.join(10)
    assert answers == ["busy"] and mail.outbox == [] and fresh(message).attempts == 0
    assert outbound_message_send(message.pk) == "sent"


# --- the Outbox page -----------------------------------------------------------------------------------------------


def _login(client, user):
    client.force_login(user)
    return client


def test_the_outbox_lists_every_message_with_attachments_and_attempts(client, users, queue):
    sent = queue(subject="Invoice INV-1 from Studio")
    outbound_message_send(sent.pk)
    with override_settings(EMAIL_BACKEND=REFUSING):
        failed = queue(subject="Credit note CN-1 from Studio", topic="credit_note", about_label="CN-1", max_attempts=1)
        outbound_message_send(failed.pk)
    page = _login(client, users["finance"]).get(reverse("outbox"))
    assert page.status_code == 200
    html = page.content.decode()
    for expected in (
        "Invoice INV-1 from Studio",
        "Credit note CN-1 from Studio",
        "ap@customer.test",
        "INV-1.pdf",
        hashlib.sha256(PDF_BYTES).hexdigest()[:16],
        "SMTPServerDisconnected",
        "1 of 1",
        'href="/billing/invoices/x/"',
        "Credit note",
    ):
        assert expected in html, expected
    by_status = client.get(reverse("outbox"), {"status": "failed"}).context["outbox_messages"]
    assert [m.pk for m in by_status] == [failed.pk]
    by_topic = client.get(reverse("outbox"), {"topic": "invoice"}).context["outbox_messages"]
    assert [m.pk for m in by_topic] == [sent.pk]
    by_words = client.get(reverse("outbox"), {"q": "cn-1"}).context["outbox_messages"]
    assert [m.pk for m in by_words] == [failed.pk]
    bad = client.get(reverse("outbox"), {"status": "lost"})
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()


def test_the_outbox_is_empty_with_a_helpful_note(client, users):
    html = _login(client, users["executive"]).get(reverse("outbox")).content.decode()
    assert "The Outbox is empty" in html


def test_the_outbox_page_needs_constant_queries(client, users, queue):
    _login(client, users["finance"])
    queue()
    client.get(reverse("outbox"))  # warm caches (permissions, content types)
    with CaptureQueriesContext(connection) as one:
        assert client.get(reverse("outbox")).status_code == 200
    for _ in range(6):
        queue()
    with CaptureQueriesContext(connection) as seven:
        response = client.get(reverse("outbox"))
    assert len(response.context["outbox_messages"]) == 7
    assert len(seven) == len(one), [q["sql"] for q in seven.captured_queries]


def test_the_message_page_shows_the_body_and_send_again_for_finance(client, users, queue):
    with override_settings(EMAIL_BACKEND=REFUSING):
        message = queue(max_attempts=1, body="Dear customer,\nthe invoice is attached.")
        outbound_message_send(message.pk)
    url = reverse("outbox-detail", kwargs={"public_id": message.public_id})
    page = _login(client, users["finance"]).get(url)
    html = page.content.decode()
    assert page.status_code == 200 and "Dear customer,\nthe invoice is attached." in html
    assert hashlib.sha256(PDF_BYTES).hexdigest() in html and "Send again" in html
    for role in ("executive", "auditor"):
        other = _login(client, users[role]).get(url)
        assert other.status_code == 200 and "Send again" not in other.content.decode(), role
    resend = reverse("outbox-resend", kwargs={"public_id": message.public_id})
    assert _login(client, users["auditor"]).post(resend).status_code == 403
    assert _login(client, users["executive"]).post(resend).status_code == 403
    done = _login(client, users["finance"]).post(resend, follow=True)
    assert done.status_code == 200 and "queued again" in done.content.decode()
    assert fresh(message).status == "queued"  # the queue runs it after the commit (not in this test)
    refused = client.post(resend)
    assert refused.status_code == 409 and "Nothing was changed" in refused.content.decode()


def test_the_outbox_pages_are_denied_by_default(client, users, queue):
    message = queue()
    detail = reverse("outbox-detail", kwargs={"public_id": message.public_id})
    for url in (reverse("outbox"), detail):
        anonymous = client.get(url)
        assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
        for role in ("sales", "consultant", "project_manager"):
            assert _login(client, users[role]).get(url).status_code == 403, (url, role)
        client.logout()
    unknown = reverse("outbox-detail", kwargs={"public_id": uuid.uuid4()})
    assert _login(client, users["auditor"]).get(unknown).status_code == 404


def test_the_outbox_sits_in_the_billing_menu_of_those_who_may_read_it(client, make_user):
    finance = make_user("f-nav", "finance")
    bar = _login(client, finance).get(reverse("outbox")).context["nav_main"]()
    (billing,) = [e for e in bar if isinstance(e, NavGroup) and e.label == "Billing"]
    assert [i.label for i in billing.items] == ["Invoices", "Invoice runs", "Outbox"]
    assert [i.label for i in billing.items if i.active] == ["Outbox"]
    consultant = make_user("c-nav", "consultant")
    items = _login(client, consultant).get("/").context["nav_items"]()
    assert "Outbox" not in [i.label for i in items]
    assert Group.objects.get(name="executive").permissions.filter(codename="view_outboundmessage").exists()


# --- the Outbox API ------------------------------------------------------------------------------------------------


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_outbox_api_lists_and_shows_messages_with_attempts(api_urls, users, queue):
    message = queue()
    outbound_message_send(message.pk)
    listed = _api(users["auditor"]).get(api_urls).json()
    assert listed["count"] == 1
    (row,) = listed["results"]
    assert (row["id"], row["status"], row["to"], row["topic"]) == (
        str(message.public_id),
        "sent",
        ["ap@customer.test"],
        "invoice",
    )
    assert row["about"] == {"id": str(message.about_id), "label": "INV-1", "url": "/billing/invoices/x/"}
    assert row["attachments"] == [
        {
            "filename": "INV-1.pdf",
            "content_type": "application/pdf",
            "size": len(PDF_BYTES),
            "sha256": hashlib.sha256(PDF_BYTES).hexdigest(),
        }
    ]
    assert [(a["number"], a["outcome"]) for a in row["delivery_attempts"]] == [(1, "sent")]
    one = _api(users["finance"]).get(f"{api_urls}{message.public_id}/")
    assert one.status_code == 200 and one.json()["body"] == "Please find attached our invoice INV-1."
    assert _api(users["finance"]).get(api_urls, {"status": "failed"}).json()["count"] == 0
    assert _api(users["finance"]).get(api_urls, {"about": str(message.about_id)}).json()["count"] == 1
    assert _api(users["finance"]).get(f"{api_urls}{uuid.uuid4()}/").status_code == 404
    assert _api(users["finance"]).post(api_urls, {}, format="json").status_code in (403, 405)


def test_the_outbox_api_is_denied_by_default_and_read_only(api_urls, users, queue):
    message = queue()
    for role in ("sales", "consultant", "project_manager"):
        assert _api(users[role]).get(api_urls).status_code == 403, role
        assert _api(users[role]).get(f"{api_urls}{message.public_id}/").status_code == 403, role
    assert APIClient().get(api_urls).status_code in (401, 403)
    assert _api(users["finance"]).delete(f"{api_urls}{message.public_id}/").status_code in (403, 405)
    assert OutboundMessage.objects.filter(pk=message.pk).exists()


def test_the_outbox_api_needs_constant_queries(api_urls, users, queue):
    client = _api(users["finance"])
    queue()
    client.get(api_urls)
    with CaptureQueriesContext(connection) as one:
        client.get(api_urls)
    for _ in range(5):
        outbound_message_send(queue().pk)
    with CaptureQueriesContext(connection) as six:
        assert client.get(api_urls).json()["count"] == 6
    assert len(six) == len(one)


# --- what each role gets on GET (the rows of tests/test_permission_matrix.py) -----------------------------------

LOGIN = "login"
ROLES = ("anon", "sales", "project_manager", "consultant", "finance", "executive", "auditor", "admin")
GET_MATRIX = {
    #               anon   sales  pm   cons fin  exec aud  admin
    "outbox": (LOGIN, 403, 403, 403, 200, 200, 200, 200),
    "outbox-detail": (LOGIN, 403, 403, 403, 200, 200, 200, 200),
    "outbox-resend": (LOGIN, 403, 403, 403, 405, 403, 403, 405),
    "api-outbox-list": (401, 403, 403, 403, 200, 200, 200, 200),
    "api-outbox-detail": (401, 403, 403, 403, 200, 200, 200, 200),
}


@pytest.mark.parametrize("name", sorted(GET_MATRIX))
def test_get_outcomes_per_role(client, api_urls, users, queue, name):
    message = queue()
    url = {
        "outbox": reverse("outbox"),
        "outbox-detail": reverse("outbox-detail", kwargs={"public_id": message.public_id}),
        "outbox-resend": reverse("outbox-resend", kwargs={"public_id": message.public_id}),
        "api-outbox-list": api_urls,
        "api-outbox-detail": f"{api_urls}{message.public_id}/",
    }[name]
    for role, expected in zip(ROLES, GET_MATRIX[name], strict=True):
        client.logout()
        if name.startswith("api-"):
            got = (_api(users[role]) if role != "anon" else APIClient()).get(url).status_code
        else:
            if role != "anon":
                client.force_login(users[role])
            response = client.get(url)
            got = LOGIN if response.status_code == 302 and "/login/" in response["Location"] else response.status_code
        assert got == expected, (name, role, got)
