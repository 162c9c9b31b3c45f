"""The Outbox: every email the product sends on someone's behalf, queued, sent in the queue, retried with
backoff, and kept with its attachments and each delivery attempt.

Writes (``message_queue``, ``message_resend``) and reads (``outbox_messages``, ``outbox_message_get``,
``messages_about``) of ``OutboundMessage``. The sending itself is the queue task
``backbone.tasks.outbound_message_send``; the apps above (billing: invoices, credit notes; later receivables:
reminders) decide what to say and to whom, and hand it here.

Life cycle: queued → sent; queued → retrying (the mail server failed, the next attempt is scheduled) →
… → sent, or failed after ``max_attempts``. A failed message is never dropped: ``message_resend`` queues it
again for a new series of attempts (its earlier attempts stay on record). A sent message is never sent again.

Attachments are references to files in the default storage with their SHA-256, not copies: the task reads the
file when it sends and refuses to send one whose content no longer matches the hash it was queued with.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.paginator import Page, Paginator
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Prefetch, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import Http404
from django.utils import timezone

from .errors import NotPermitted, TransitionNotAllowed, ValidationFailed
from .history import stamp
from .models import DeliveryAttempt, OutboundAttachment, OutboundMessage
from .roles import is_read_only

SEND_TASK = "backbone.tasks.outbound_message_send"
RESEND_PERMISSION = "backbone.resend_outboundmessage"
VIEW_PERMISSION = "backbone.view_outboundmessage"

MAX_RECIPIENTS = 20  # to + cc of one message: an invoice goes to a few billing contacts, never a mailing list
DEFAULT_BACKOFF_SECONDS = (60, 300, 1500, 7500)  # 1, 5, 25, 125 minutes; settings.OUTBOX_BACKOFF_SECONDS overrides
STUCK_AFTER = dt.timedelta(minutes=10)  # a queued message untouched this long lost its task (the sweep requeues it)


@dataclass(frozen=True)
class AttachmentFile:
    """A stored file to send with a message: its name in the default storage, and what it was when queued."""

    filename: str
    content_type: str
    storage_name: str
    size: int
    sha256: str


# --- helpers --------------------------------------------------------------------------------------------------


def backoff_seconds(failed_attempts: int) -> int:
    """How long to wait after the ``failed_attempts``-th failed attempt of a series (1, 5, 25, 125 minutes by
    default; the last step repeats). ``settings.OUTBOX_BACKOFF_SECONDS`` (a list) overrides it, e.g. ``[0]`` in
    tests to retry at once."""
    steps = list(getattr(settings, "OUTBOX_BACKOFF_SECONDS", None) or DEFAULT_BACKOFF_SECONDS)
    return max(0, int(steps[min(max(failed_attempts, 1), len(steps)) - 1]))


def clean_addresses(values: Iterable[str] | str | None, *, field: str) -> list[str]:
    """Addresses from a list or a text (commas, semicolons, spaces or new lines between them), each checked,
    duplicates (ignoring case) dropped, order kept. Raises ValidationFailed naming every bad one."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    parts: list[str] = []
    for value in values:
        parts.extend(str(value).replace(";", ",").replace("\n", ",").replace(" ", ",").split(","))
    cleaned, seen, bad = [], set(), []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        try:
            validate_email(part)
        except ValidationError:
            bad.append(part)
            continue
        if part.lower() not in seen:
            seen.add(part.lower())
            cleaned.append(part)
    if bad:
        listed = ", ".join(f"“{b}”" for b in bad[:5])
        raise ValidationFailed(
            f"{listed} {'is not a valid email address' if len(bad) == 1 else 'are not valid email addresses'}.",
            field=field,
        )
    return cleaned


def _enqueue(message: OutboundMessage) -> None:
    """Send once the caller's transaction commits: a rolled-back queueing sends nothing."""
    from django_q.tasks import async_task

    transaction.on_commit(
        lambda pk=message.pk, label=message.about_label or message.subject: async_task(
            SEND_TASK, pk, task_name=f"Mail {label}"[:100]
        )
    )


def _require_sender(actor) -> None:
    if not getattr(actor, "is_authenticated", False):
        raise NotPermitted("Sign in to send messages.")
    if is_read_only(actor):
        raise NotPermitted("Auditors can view everything but change nothing.")


# --- writes ---------------------------------------------------------------------------------------------------


def message_queue(
    *,
    actor,
    topic: str,
    to: Sequence[str],
    subject: str,
    body: str,
    cc: Sequence[str] = (),
    reply_to: Sequence[str] = (),
    attachments: Sequence[AttachmentFile] = (),
    about_id: uuid.UUID | None = None,
    about_label: str = "",
    about_url: str = "",
    from_email: str | None = None,
    max_attempts: int | None = None,
) -> OutboundMessage:
    """Store a message with its attachments and send it in the queue after commit.

    The caller decided who may send what (billing checks ``billing.send_invoice`` for invoices); here the
    message itself is checked: at least one recipient, every address valid, a subject on one line, every
    attachment present in the storage. Nothing is stored when anything is refused."""
    if actor is not None:
        _require_sender(actor)
    to_clean = clean_addresses(list(to), field="to")
    cc_clean = [a for a in clean_addresses(list(cc), field="cc") if a.lower() not in {t.lower() for t in to_clean}]
    reply_clean = clean_addresses(list(reply_to), field="reply_to")
    if not to_clean:
        raise ValidationFailed("Give at least one recipient.", field="to")
    if len(to_clean) + len(cc_clean) > MAX_RECIPIENTS:
        raise ValidationFailed(f"At most {MAX_RECIPIENTS} recipients (to and cc together).", field="to")
    subject = " ".join((subject or "").split())
    if not subject:
        raise ValidationFailed("The subject is empty.", field="subject")
    if len(subject) > OutboundMessage._meta.get_field("subject").max_length:
        raise ValidationFailed("The subject is too long.", field="subject")
    for attachment in attachments:
        if not default_storage.exists(attachment.storage_name):
            raise ValidationFailed(
                f"The file {attachment.filename} is missing from the storage; it cannot be attached.",
                field="attachments",
            )
    with transaction.atomic():
        message = OutboundMessage(
            topic=topic,
            about_id=about_id,
            about_label=about_label[:120],
            about_url=about_url[:300],
            from_email=from_email or settings.DEFAULT_FROM_EMAIL,
            to=to_clean,
            cc=cc_clean,
            reply_to=reply_clean,
            subject=subject,
            body=body,
            max_attempts=max_attempts or OutboundMessage._meta.get_field("max_attempts").default,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        stamp(message, actor=actor, reason=f"Queued for sending to {', '.join(to_clean)}").save()
        OutboundAttachment.objects.bulk_create(
            [
                OutboundAttachment(
                    message=message,
                    filename=a.filename,
                    content_type=a.content_type,
                    storage_name=a.storage_name,
                    size=a.size,
                    sha256=a.sha256,
                )
                for a in attachments
            ]
        )
        _enqueue(message)
    return message


def message_resend(*, actor, message: OutboundMessage) -> OutboundMessage:
    """Queue a failed message again: a new series of up to ``max_attempts`` attempts, numbered on from the
    earlier ones (which stay on record). A sent message is never sent again; one still queued or waiting to
    retry is already on its way."""
    _require_sender(actor)
    if not actor.has_perm(RESEND_PERMISSION):
        raise NotPermitted("Your role may not send messages again.")
    with transaction.atomic():
        locked = OutboundMessage.objects.select_for_update(of=("self",)).get(pk=message.pk)
        if locked.status == OutboundMessage.Status.SENT:
            when = timezone.localtime(locked.sent_at).strftime("%Y-%m-%d %H:%M") if locked.sent_at else "already"
            raise TransitionNotAllowed(
                f"This message was sent ({when}); it is not sent twice. To send the document again, send it anew "
                "from its page."
            )
        if locked.status == OutboundMessage.Status.QUEUED:
            raise TransitionNotAllowed("This message is queued and about to be sent; wait for the outcome.")
        if locked.status == OutboundMessage.Status.RETRYING:
            when = (
                timezone.localtime(locked.next_attempt_at).strftime("%Y-%m-%d %H:%M")
                if locked.next_attempt_at
                else "shortly"
            )
            raise TransitionNotAllowed(f"This message is waiting to retry on its own (next attempt {when}).")
        locked.status = OutboundMessage.Status.QUEUED
        locked.attempts = 0
        locked.next_attempt_at = None
        locked.last_error = ""
        stamp(locked, actor=actor, reason="Queued again after failing").save(
            update_fields=["status", "attempts", "next_attempt_at", "last_error", "updated_at"]
        )
        _enqueue(locked)
    return locked


# --- reads ----------------------------------------------------------------------------------------------------


def outbox_visible_to(user) -> QuerySet[OutboundMessage]:
    """Every message, for those who may read the Outbox (finance, executives, auditors, admins); none else."""
    if not getattr(user, "is_authenticated", False) or not user.has_perm(VIEW_PERMISSION):
        return OutboundMessage.objects.none()
    return OutboundMessage.objects.all()


def outbox_messages(
    *, user, status: str = "", topic: str = "", q: str = "", about_id: uuid.UUID | None = None
) -> QuerySet[OutboundMessage]:
    """The Outbox, newest first, with what a row shows (sender and attachments) in a constant number of
    queries: the page, the count, and one for the attachments of the page."""
    messages = outbox_visible_to(user).select_related("created_by").prefetch_related("attachments")
    if status:
        messages = messages.filter(status=status)
    if topic:
        messages = messages.filter(topic=topic)
    if about_id:
        messages = messages.filter(about_id=about_id)
    q = (q or "").strip()
    if q:
        messages = messages.annotate(recipients_text=Cast("to", TextField())).filter(
            Q(subject__icontains=q) | Q(about_label__icontains=q) | Q(recipients_text__icontains=q)
        )
    return messages.order_by("-created_at", "-id")


def outbox_topics() -> list[str]:
    """The topics messages were sent about (for the filter), one query."""
    return sorted(set(OutboundMessage.objects.order_by().values_list("topic", flat=True).distinct()))


def outbox_message_get(*, user, public_id) -> OutboundMessage:
    """One message with its attachments and attempts, for those who may read the Outbox; else 404."""
    try:
        return (
            outbox_visible_to(user)
            .select_related("created_by")
            .prefetch_related("attachments", "delivery_attempts")
            .get(public_id=public_id)
        )
    except (OutboundMessage.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such message.") from exc


def messages_about(about_id: uuid.UUID) -> QuerySet[OutboundMessage]:
    """The messages about one record (an invoice), newest first, each with its attachments and attempts:
    three queries whatever their number. The caller checked that the person may see the record."""
    return (
        OutboundMessage.objects.filter(about_id=about_id)
        .select_related("created_by")
        .prefetch_related(
            "attachments", Prefetch("delivery_attempts", queryset=DeliveryAttempt.objects.order_by("number"))
        )
        .order_by("-created_at", "-id")
    )


def topic_label(topic: str) -> str:
    """ "credit_note" → "Credit note"."""
    return (topic or "").replace("_", " ").capitalize()


def paginate(queryset: QuerySet, page: str | None, *, per_page: int = 25) -> Page:
    return Paginator(queryset, per_page).get_page(page)


def can_resend(*, user, message: OutboundMessage) -> bool:
    """Offer "Send again": a failed message, a person who may resend and is not read-only."""
    return (
        message.status == OutboundMessage.Status.FAILED
        and getattr(user, "is_authenticated", False)
        and not is_read_only(user)
        and user.has_perm(RESEND_PERMISSION)
    )
