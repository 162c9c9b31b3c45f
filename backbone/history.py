"""History and the tamper-evident audit chain.

django-simple-history keeps a per-model history table with the acting user (HistoryRequestMiddleware) and
the reason services set. Every history record also lands here as an ``AuditEntry`` in one hash chain, so
the History area can list every change across the system from one table, and ``audit_verify`` can prove
that no entry was edited or removed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import models, transaction
from django.dispatch import receiver
from simple_history.signals import post_create_historical_record

from .models import AuditChainHead, AuditEntry

HIDDEN_FIELDS = frozenset({"password", "updated_at", "created_at", "last_login"})


def set_reason(instance: models.Model, reason: str) -> models.Model:
    """Attach the why to the next history record of ``instance`` (services call this before save)."""
    instance._change_reason = reason
    return instance


def set_actor(instance: models.Model, user: Any) -> models.Model:
    """Name the acting user explicitly (tasks and commands have no request to take it from)."""
    if user is not None and getattr(user, "is_authenticated", False):
        instance._history_user = user
    return instance


def stamp(instance: models.Model, *, actor: Any, reason: str) -> models.Model:
    """Who and why for the next history record of ``instance``: what every service does before a save."""
    set_actor(instance, actor)
    set_reason(instance, reason)
    return instance


def changed_fields(history_instance: Any) -> list[str]:
    previous = history_instance.prev_record
    if previous is None:
        return []
    delta = history_instance.diff_against(previous, foreign_keys_are_objs=False)
    return sorted(c.field for c in delta.changes if c.field not in HIDDEN_FIELDS)


def entry_digest(*, prev_hash: str, payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}|{canonical}".encode()).hexdigest()


def entry_payload(entry: AuditEntry) -> dict[str, Any]:
    return {
        "occurred_at": entry.occurred_at.isoformat(),
        "model_label": entry.model_label,
        "object_pk": entry.object_pk,
        "object_public_id": str(entry.object_public_id or ""),
        "history_id": entry.history_id,
        "action": entry.action,
        "user_id": entry.user_id,
        "reason": entry.reason,
        "changed_fields": entry.changed_fields,
    }


@receiver(post_create_historical_record)
def append_audit_entry(sender, instance, history_instance, history_user=None, **kwargs) -> None:
    meta = instance._meta
    public_id = getattr(instance, "public_id", None)
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        entry = AuditEntry(
            occurred_at=history_instance.history_date,
            model_label=meta.label_lower,
            model_name=str(meta.verbose_name),
            object_pk=str(instance.pk),
            object_public_id=public_id,
            object_repr=str(instance)[:200],
            history_id=history_instance.history_id,
            action=history_instance.history_type,
            user=history_user if getattr(history_user, "pk", None) else None,
            user_display=(history_user.get_username() if getattr(history_user, "pk", None) else "system"),
            reason=history_instance.history_change_reason or "",
            changed_fields=changed_fields(history_instance) if history_instance.history_type == "~" else [],
            prev_hash=head.last_hash,
        )
        entry.entry_hash = entry_digest(prev_hash=head.last_hash, payload=entry_payload(entry))
        entry.save()
        head.last_hash = entry.entry_hash
        head.length += 1
        head.save(update_fields=["last_hash", "length"])


def audit_chain_verify() -> tuple[bool, int, AuditEntry | None]:
    """Walk the chain from the start; returns (intact, entries checked, first broken entry)."""
    prev = "0" * 64
    checked = 0
    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=2000):
        if entry.prev_hash != prev or entry.entry_hash != entry_digest(prev_hash=prev, payload=entry_payload(entry)):
            return False, checked, entry
        prev = entry.entry_hash
        checked += 1
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and (head.last_hash != prev or head.length != checked):
        return False, checked, None
    return True, checked, None


def audit_entries_append_bulk(*, history_instances, changed: list[str]) -> None:
    """Chain the history records of a bulk write (``bulk_history_create`` sends no per-record signal).

    One head lock and one INSERT for all of them, so approving a thousand time entries stays fast; the
    records must have their primary keys (PostgreSQL and SQLite return them from ``bulk_create``).
    ``changed`` names the fields the bulk update set, for the "~" records.
    """
    records = list(history_instances)
    if not records:
        return
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        prev, entries = head.last_hash, []
        for record in records:
            instance = record.instance
            meta = instance._meta
            user = record.history_user if getattr(record.history_user, "pk", None) else None
            entry = AuditEntry(
                occurred_at=record.history_date,
                model_label=meta.label_lower,
                model_name=str(meta.verbose_name),
                object_pk=str(instance.pk),
                object_public_id=getattr(instance, "public_id", None),
                object_repr=str(instance)[:200],
                history_id=record.history_id,
                action=record.history_type,
                user=user,
                user_display=user.get_username() if user is not None else "system",
                reason=record.history_change_reason or "",
                changed_fields=sorted(changed) if record.history_type == "~" else [],
                prev_hash=prev,
            )
            entry.entry_hash = prev = entry_digest(prev_hash=prev, payload=entry_payload(entry))
            entries.append(entry)
        AuditEntry.objects.bulk_create(entries)
        head.last_hash = prev
        head.length += len(entries)
        head.save(update_fields=["last_hash", "length"])
