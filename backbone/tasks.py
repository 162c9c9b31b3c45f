"""Queue tasks of the shared kernel (django-q2). Each takes IDs, re-fetches, and is safe to run twice."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import smtplib

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.mail import EmailMessage, send_mail
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone
from django_q.models import Schedule

from .history import set_reason
from .models import DeliveryAttempt, Notification, OutboundAttachment, OutboundMessage
from .outbox import STUCK_AFTER, backoff_seconds

log = logging.getLogger(__name__)


def notification_email_send(notification_id: int) -> bool:
    """Mail one notification to its person, once. Returns whether a mail went out."""
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(pk=notification_id)
            .first()
        )
        if notification is None or notification.emailed_at is not None or not notification.user.email:
            return False
        link = f"\n\n{settings.SITE_URL.rstrip('/')}{notification.url}" if notification.url else ""
        send_mail(
            subject=notification.title,
            message=f"{notification.body}{link}",
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[notification.user.email],
        )
        notification.emailed_at = timezone.now()
        notification.save(update_fields=["emailed_at"])
    return True


# --- the Outbox -----------------------------------------------------------------------------------------------


class AttachmentChanged(Exception):
    """A stored attachment no longer has the SHA-256 it was queued with: it is never sent (no retry helps)."""


# Failures of the mail server or the network: worth trying again later. Anything else (a changed attachment,
# a header the backend refuses) fails the message at once; it waits for a person in the Outbox.
TRANSIENT_ERRORS = (smtplib.SMTPException, OSError)


def _attachment_bytes(attachment: OutboundAttachment) -> bytes:
    with default_storage.open(attachment.storage_name, "rb") as handle:
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != attachment.sha256 or len(data) != attachment.size:
        raise AttachmentChanged(
            f"{attachment.filename} changed since it was queued (its SHA-256 no longer matches); it was not sent."
        )
    return data


def _email(message: OutboundMessage) -> EmailMessage:
    email = EmailMessage(
        subject=message.subject,
        body=message.body,
        from_email=message.from_email,
        to=list(message.to),
        cc=list(message.cc),
        reply_to=list(message.reply_to),
        headers={"X-Throughline-Message": str(message.public_id)},
    )
    for attachment in message.attachments.all():
        email.attach(attachment.filename, _attachment_bytes(attachment), attachment.content_type)
    return email


def _schedule_retry(message: OutboundMessage, delay_seconds: int) -> None:
    """Try again after the backoff: at once through the queue when there is none (tests), else by a one-off
    django-q2 schedule (deleted by the scheduler once it ran). Both only after the attempt's record commits."""
    from django_q.tasks import async_task

    if delay_seconds <= 0:
        transaction.on_commit(
            lambda pk=message.pk: async_task("backbone.tasks.outbound_message_send", pk, task_name=f"Mail retry {pk}")
        )
        return
    Schedule.objects.create(
        name=f"Outbox retry {message.public_id} #{message.attempts + 1}"[:100],
        func="backbone.tasks.outbound_message_send",
        args=repr(message.pk),
        schedule_type=Schedule.ONCE,
        repeats=-1,
        next_run=message.next_attempt_at,
    )


def outbound_message_send(message_id: int) -> str:
    """Make one delivery attempt of an Outbox message; returns its status for the task log.

    Safe to run twice or concurrently: the row is locked (a second worker finding it locked leaves it to the
    first: "busy"), a sent or failed message is left alone, and the attempt, its outcome and the message's new
    status commit together. The mail is handed to the backend before anything is written that would take the
    audit chain's lock, so a slow mail server holds only this message's row. A worker killed mid-send rolls
    back: the message stays queued and the queue runs the task again.
    """
    with transaction.atomic(durable=True):
        message = (
            OutboundMessage.objects.select_for_update(of=("self",), skip_locked=True)
            .prefetch_related("attachments")
            .filter(pk=message_id)
            .first()
        )
        if message is None:
            return "busy" if OutboundMessage.objects.filter(pk=message_id).exists() else "missing"
        if message.status in (OutboundMessage.Status.SENT, OutboundMessage.Status.FAILED):
            return message.status  # done, or waiting for a person's "Send again"
        started = timezone.now()
        number = (message.delivery_attempts.aggregate(last=Max("number"))["last"] or 0) + 1
        error, transient = "", False
        try:
            email = _email(message)  # reads and checks the attachments before the mail server is contacted
            if not email.send():
                error, transient = "The mail backend accepted nothing (no recipient was sent to).", True
        except AttachmentChanged as exc:
            error = str(exc)
        except TRANSIENT_ERRORS as exc:
            error, transient = f"{type(exc).__name__}: {exc}".strip(), True
        except Exception as exc:  # a refusal no retry changes (a bad header, a misconfigured backend)
            log.exception("Outbox message %s could not be sent", message.public_id)
            error = f"{type(exc).__name__}: {exc}".strip()
        finished = timezone.now()
        DeliveryAttempt.objects.create(
            message=message,
            number=number,
            started_at=started,
            finished_at=finished,
            outcome=DeliveryAttempt.Outcome.FAILED if error else DeliveryAttempt.Outcome.SENT,
            error=error[:2000],
        )
        message.attempts += 1
        if not error:
            message.status = OutboundMessage.Status.SENT
            message.sent_at = finished
            message.next_attempt_at = None
            message.last_error = ""
            reason = f"Sent (attempt {number})"
        elif transient and message.attempts < message.max_attempts:
            delay = backoff_seconds(message.attempts)
            message.status = OutboundMessage.Status.RETRYING
            message.next_attempt_at = finished + dt.timedelta(seconds=delay)
            message.last_error = error[:2000]
            reason = f"Attempt {number} failed; retrying in {delay} s"
        else:
            message.status = OutboundMessage.Status.FAILED
            message.next_attempt_at = None
            message.last_error = error[:2000]
            reason = f"Attempt {number} failed; given up" if transient else f"Attempt {number} refused; not retried"
        set_reason(message, reason)
        message.save(update_fields=["status", "attempts", "sent_at", "next_attempt_at", "last_error", "updated_at"])
        if message.status == OutboundMessage.Status.RETRYING:
            _schedule_retry(message, delay)
    return message.status


def outbound_messages_sweep() -> int:
    """Queue again the messages whose task was lost (a broker restart, a dropped schedule): queued and untouched
    for ``STUCK_AFTER``, or waiting to retry past their time by as long. Sending is idempotent, so a message
    that was merely slow is not sent twice. Returns how many were queued; meant for a periodic schedule."""
    from django_q.tasks import async_task

    cutoff = timezone.now() - STUCK_AFTER
    stuck = list(
        OutboundMessage.objects.filter(
            Q(status=OutboundMessage.Status.QUEUED, updated_at__lt=cutoff)
            | Q(status=OutboundMessage.Status.RETRYING, next_attempt_at__lt=cutoff)
        ).values_list("pk", flat=True)
    )
    for pk in stuck:
        async_task("backbone.tasks.outbound_message_send", pk, task_name=f"Mail sweep {pk}")
    return len(stuck)
