"""Writes of the shared kernel: human numbers, external IDs, user profiles."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, models, transaction

from .errors import Conflict, ValidationFailed
from .lock_objects import number_sequence_for_update
from .models import ExternalId, Notification, NumberSequence

SEQUENCE_PREFIXES = {"customer": "CUST", "product": "PROD", "deal": "DEAL", "project": "PRJ", "change_order": "CO"}


def sequence_next(*, key: str, year: int = 0, prefix: str | None = None, padding: int = 6) -> str:
    """Take the next number of a series, e.g. ``CUST-000042`` or ``INV-2026-000007``.

    Gapless per (key, year): the counter row is locked until the caller's transaction ends, so a rolled
    back transaction gives its number back. Call it inside the transaction that stores the number.
    """
    with transaction.atomic():
        seq = number_sequence_for_update(key=key, year=year)
        if seq is None:
            try:
                with transaction.atomic():
                    NumberSequence.objects.create(
                        key=key,
                        year=year,
                        prefix=prefix or SEQUENCE_PREFIXES.get(key, key.upper()),
                        padding=padding,
                    )
            except IntegrityError:
                pass  # another transaction created it first; lock theirs
            seq = number_sequence_for_update(key=key, year=year)
        seq.last_value += 1
        seq.save(update_fields=["last_value"])
        middle = f"-{year}" if year else ""
        return f"{seq.prefix}{middle}-{seq.last_value:0{seq.padding}d}"


def _clean_external(system: str, external_id: str) -> tuple[str, str]:
    system = (system or "").strip().lower()
    external_id = (external_id or "").strip()
    errors = {}
    if not system or not all(ch.isalnum() or ch in "-_" for ch in system) or len(system) > 40:
        errors["system"] = ["A system is a short slug of letters, digits, '-' or '_' (at most 40), e.g. 'hubspot'."]
    if not external_id or len(external_id) > 200:
        errors["external_id"] = ["An external ID is required and at most 200 characters long."]
    if errors:
        raise ValidationFailed("The external ID is not valid.", errors=errors)
    return system, external_id


def external_id_lookup(*, model: type[models.Model], system: str, external_id: str) -> models.Model | None:
    system, external_id = _clean_external(system, external_id)
    ct = ContentType.objects.get_for_model(model)
    link = ExternalId.objects.filter(system=system, content_type=ct, external_id=external_id).first()
    if link is None:
        return None
    return model._default_manager.filter(pk=link.object_id).first()


def external_id_link(*, obj: models.Model, system: str, external_id: str, user=None) -> ExternalId:
    """Anchor ``obj`` to an upstream ID. Idempotent for the same pair; refuses to re-point or rename.

    Once written, a link never changes: the same upstream ID cannot move to another record, and a record
    cannot get a second ID from the same system.
    """
    system, external_id = _clean_external(system, external_id)
    ct = ContentType.objects.get_for_model(obj)
    with transaction.atomic():
        existing = ExternalId.objects.filter(system=system, content_type=ct, external_id=external_id).first()
        if existing is not None:
            if existing.object_id != obj.pk:
                raise Conflict(
                    f"External ID {system}:{external_id} already belongs to another {ct.name}.",
                    field="external_id",
                )
            return existing
        other = ExternalId.objects.filter(system=system, content_type=ct, object_id=obj.pk).first()
        if other is not None:
            raise Conflict(
                f"This {ct.name} already has the {system} ID '{other.external_id}'; external IDs never change.",
                field="external_id",
            )
        try:
            with transaction.atomic():
                return ExternalId.objects.create(
                    system=system,
                    content_type=ct,
                    object_id=obj.pk,
                    external_id=external_id,
                    created_by=user if getattr(user, "pk", None) else None,
                )
        except IntegrityError as exc:
            raise Conflict(
                f"External ID {system}:{external_id} was just taken by another request.", field="external_id"
            ) from exc


def notify(*, users, title: str, body: str = "", url: str = "") -> list[Notification]:
    """Tell people something in the app, and by email once the transaction commits (through the queue).

    Duplicates in ``users`` and inactive users are skipped. The email task takes the notification's ID and
    marks it mailed, so a retried task never mails twice.
    """
    from django_q.tasks import async_task

    seen: set[int] = set()
    created = []
    for user in users:
        if user is None or not user.is_active or user.pk in seen:
            continue
        seen.add(user.pk)
        created.append(Notification.objects.create(user=user, title=title[:200], body=body, url=url[:300]))
    for notification in created:
        transaction.on_commit(lambda pk=notification.pk: async_task("backbone.tasks.notification_email_send", pk))
    return created
