"""The shared kernel's tables: public IDs, external IDs, number sequences, idempotency, the audit chain."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from simple_history.models import HistoricalRecords


class PublicModel(models.Model):
    """Base of every business model: an immutable public UUID for URLs and the API, and timestamps.

    The integer primary key stays internal; nothing outside the database sees it.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True, editable=False)

    class Meta:
        abstract = True


class ExternalId(models.Model):
    """An upstream system's identifier for one of our records; written once, never changed.

    Unique per (system, object type, external id): the same upstream ID can never point at two records.
    """

    system = models.SlugField(max_length=40, help_text="Upstream system, e.g. 'hubspot', 'xero'.")
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT)
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")
    external_id = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "external ID"
        constraints = [
            models.UniqueConstraint(
                fields=["system", "content_type", "external_id"], name="external_id_unique_per_system_type"
            ),
            models.UniqueConstraint(
                fields=["system", "content_type", "object_id"], name="external_id_one_per_object_and_system"
            ),
        ]
        indexes = [models.Index(fields=["content_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.system}:{self.external_id}"


class NumberSequence(models.Model):
    """A counter per series (and optionally per year) for human numbers such as ``CUST-000042``.

    Values are taken under a row lock, so they are gapless as long as the taking transaction commits.
    """

    key = models.CharField(max_length=60)
    year = models.PositiveSmallIntegerField(default=0, help_text="0 for series that do not restart yearly.")
    prefix = models.CharField(max_length=20)
    padding = models.PositiveSmallIntegerField(default=6)
    last_value = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "year"], name="number_sequence_unique_key_year")]

    def __str__(self) -> str:
        return f"{self.key}/{self.year or '-'} at {self.last_value}"


class IdempotencyRecord(models.Model):
    """The stored response to a POST made with an ``Idempotency-Key`` header, replayed on retries."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField(null=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_user_key")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"


class AuditEntry(models.Model):
    """One change anywhere in the system, chained by hash so that an edited or deleted row is detectable.

    Written by the receiver in ``backbone.history`` for every django-simple-history record; append-only
    (on PostgreSQL a trigger refuses UPDATE and DELETE). ``entry_hash`` = SHA-256 over the previous
    entry's hash and this entry's canonical content.
    """

    class Action(models.TextChoices):
        CREATED = "+", "Created"
        CHANGED = "~", "Changed"
        DELETED = "-", "Deleted"

    occurred_at = models.DateTimeField(db_index=True)
    model_label = models.CharField(max_length=100, db_index=True)
    model_name = models.CharField(max_length=100)
    object_pk = models.CharField(max_length=64)
    object_public_id = models.UUIDField(null=True, blank=True, db_index=True)
    object_repr = models.CharField(max_length=200)
    history_id = models.PositiveBigIntegerField()
    action = models.CharField(max_length=1, choices=Action.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    user_display = models.CharField(max_length=150, blank=True)
    reason = models.TextField(blank=True)
    changed_fields = models.JSONField(default=list)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)

    class Meta:
        verbose_name_plural = "audit entries"
        ordering = ["-id"]
        indexes = [models.Index(fields=["model_label", "object_pk"])]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.model_name} {self.object_repr}"


class AuditChainHead(models.Model):
    """Single row holding the newest entry hash; locked while appending so the chain never forks."""

    last_hash = models.CharField(max_length=64, default="0" * 64)
    length = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.length} entries, head {self.last_hash[:12]}…"


class UserProfile(models.Model):
    """Per-user settings the roles need: approval limits (in the legal entity's currency)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    approval_limit_amount = models.DecimalField(
        max_digits=18, decimal_places=2, default=0, help_text="Largest amount this person may approve alone."
    )
    change_order_limit_amount = models.DecimalField(
        max_digits=18, decimal_places=2, default=0, help_text="Largest change order this person may approve."
    )
    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"Profile of {self.user}"


def _register_user_history() -> None:
    # Users and their roles matter to auditors: who could approve what, and since when.
    from django.contrib.auth import get_user_model
    from simple_history import register

    register(get_user_model(), app="backbone", m2m_fields=["groups"], excluded_fields=["last_login"])


_register_user_history()


class Notification(models.Model):
    """An in-app message to one person (budget alerts, approvals waiting); mailed once through the queue."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True, help_text="Where the person acts on it (a path).")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return self.title


class OutboundMessage(PublicModel):
    """An email the product sends on someone's behalf (an invoice, a credit note, a reminder), kept with its
    attachments and every delivery attempt: the Outbox. Sending happens in the queue and is retried with
    backoff; a failed message loses nothing and can be sent again."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RETRYING = "retrying", "Waiting to retry"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    topic = models.CharField(max_length=40, db_index=True, help_text="invoice, credit_note, reminder…")
    about_id = models.UUIDField(null=True, blank=True, db_index=True, help_text="Public ID of what it is about.")
    about_label = models.CharField(max_length=120, blank=True, help_text="e.g. the invoice number.")
    about_url = models.CharField(max_length=300, blank=True, help_text="Path of the page it is about.")
    from_email = models.CharField(max_length=254)
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list, blank=True)
    reply_to = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=5)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("resend_outboundmessage", "Can send a failed message again")]

    def __str__(self) -> str:
        return self.subject


class OutboundAttachment(models.Model):
    """A file sent with a message: a reference to a stored file (not a copy), with its SHA-256."""

    message = models.ForeignKey(OutboundMessage, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    storage_name = models.CharField(max_length=300, help_text="The file's name in the default storage.")
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["message", "id"]

    def __str__(self) -> str:
        return self.filename


class DeliveryAttempt(models.Model):
    """One try at handing a message to the mail server, and what came of it."""

    class Outcome(models.TextChoices):
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    message = models.ForeignKey(OutboundMessage, on_delete=models.CASCADE, related_name="delivery_attempts")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["message", "number"]
        constraints = [models.UniqueConstraint(fields=["message", "number"], name="delivery_attempt_once")]

    def __str__(self) -> str:
        return f"Attempt {self.number}: {self.outcome or 'in progress'}"
