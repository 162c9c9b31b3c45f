"""Reads of the History area and of object timelines, shared by pages, template tags and commands.

Query counts are bounded: the audit list is one page query plus its count; a timeline is one query for at
most ``TIMELINE_LIMIT + 1`` history records plus one ``in_bulk`` per related model its diffs mention.
"""

from __future__ import annotations

import datetime
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.text import capfirst

from .history import HIDDEN_FIELDS
from .models import AuditChainHead, AuditEntry

TIMELINE_LIMIT = 50
# Never shown in a diff: internal keys and bookkeeping that changes on every save.
_NOT_DIFFED = HIDDEN_FIELDS | {"id"}


# --- the audit list -----------------------------------------------------------------------------------


def history_models() -> list[tuple[str, str]]:
    """(model label, readable name) of every model django-simple-history tracks, sorted by name.

    Read from the app registry, not from the entries, so the filter costs no query.
    """
    tracked = [
        (model._meta.label_lower, capfirst(str(model._meta.verbose_name)))
        for model in apps.get_models()
        if hasattr(model._meta, "simple_history_manager_attribute")
    ]
    return sorted(tracked, key=lambda item: (item[1].lower(), item[0]))


def audit_entry_list(
    *,
    model_label: str = "",
    obj: str = "",
    username: str = "",
    action: str = "",
    date_from: datetime.date | None = None,
    date_to: datetime.date | None = None,
) -> QuerySet[AuditEntry]:
    """Audit entries, newest first (chain order), narrowed by the History area's filters.

    ``obj`` matches a public UUID exactly, or else the object's text (name, human number) in part.
    Dates are inclusive and read in the current time zone.
    """
    entries = AuditEntry.objects.select_related("user").order_by("-id")
    if model_label:
        entries = entries.filter(model_label=model_label)
    obj = (obj or "").strip()
    if obj:
        try:
            entries = entries.filter(object_public_id=uuid.UUID(obj))
        except ValueError:
            entries = entries.filter(object_repr__icontains=obj)
    username = (username or "").strip()
    if username:
        entries = entries.filter(Q(user_display__icontains=username) | Q(user__username__iexact=username))
    if action:
        entries = entries.filter(action=action)
    if date_from:
        entries = entries.filter(occurred_at__date__gte=date_from)
    if date_to:
        entries = entries.filter(occurred_at__date__lte=date_to)
    return entries


def audit_entry_get(*, pk: int) -> AuditEntry:
    try:
        return AuditEntry.objects.select_related("user").get(pk=pk)
    except AuditEntry.DoesNotExist as exc:
        raise Http404("No such audit entry.") from exc


def audit_entries_recent(*, limit: int = 10) -> list[AuditEntry]:
    return list(AuditEntry.objects.select_related("user").order_by("-id")[:limit])


def audit_chain_length() -> int:
    head = AuditChainHead.objects.filter(pk=1).only("length").first()
    return head.length if head is not None else 0


def field_label(model_label: str, field_name: str) -> str:
    """The verbose name of a field of a tracked model, falling back to the raw name (no query)."""
    try:
        return capfirst(str(apps.get_model(model_label)._meta.get_field(field_name).verbose_name))
    except (LookupError, ValueError, FieldDoesNotExist, AttributeError):
        return field_name


# --- diffs --------------------------------------------------------------------------------------------


@dataclass
class FieldChange:
    field: str
    label: str
    old: Any = None
    new: Any = None


@dataclass
class HistoryItem:
    """One history record ready to show: what happened, by whom, and the field-by-field change.

    ``initial`` is true for a created record, whose ``changes`` list its first values (``old`` is None).
    """

    record: Any
    action: str
    changes: list[FieldChange] = field(default_factory=list)
    initial: bool = False

    @property
    def user_display(self) -> str:
        user = getattr(self.record, "history_user", None)
        return user.get_username() if user is not None else "system"

    @property
    def reason(self) -> str:
        return self.record.history_change_reason or ""

    @property
    def date(self):
        return self.record.history_date


def historical_model_for(model_label: str) -> type[models.Model] | None:
    """The django-simple-history model that stores the history of ``model_label``, if it is tracked."""
    try:
        model = apps.get_model(model_label)
    except (LookupError, ValueError):
        return None
    manager_name = getattr(model._meta, "simple_history_manager_attribute", None)
    if manager_name is None:
        return None
    return getattr(model, manager_name).model


def history_record_for(entry: AuditEntry) -> tuple[Any, Any] | None:
    """The history record an audit entry was written for and the record before it (two queries)."""
    historical = historical_model_for(entry.model_label)
    if historical is None:
        return None
    record = historical.objects.select_related("history_user").filter(history_id=entry.history_id).first()
    if record is None:
        return None
    return record, record.prev_record


def history_items(pairs: list[tuple[Any, Any]]) -> list[HistoryItem]:
    """Turn (record, previous record) pairs into displayable items, resolving related objects in bulk."""
    items = [_raw_item(record, previous) for record, previous in pairs]
    _resolve_related(items)
    return items


def object_timeline(obj: models.Model, *, limit: int = TIMELINE_LIMIT) -> list[HistoryItem]:
    """The ``limit`` most recent history records of ``obj``, newest first, each diffed against the one before."""
    manager_name = getattr(obj._meta, "simple_history_manager_attribute", None)
    if manager_name is None or obj.pk is None:
        return []
    records = list(
        getattr(obj, manager_name).select_related("history_user").order_by("-history_date", "-history_id")[: limit + 1]
    )
    pairs = [(record, records[i + 1] if i + 1 < len(records) else None) for i, record in enumerate(records[:limit])]
    # The oldest shown record has no predecessor only when it really is the first one.
    return history_items(pairs)


def _raw_item(record, previous) -> HistoryItem:
    action = record.history_type
    if action == "-":
        return HistoryItem(record=record, action=action)
    if action == "+" or previous is None:
        changes = []
        for model_field in record.tracked_fields:
            if model_field.name in _NOT_DIFFED:
                continue
            value = model_field.value_from_object(record)
            if value is None or value == "":
                continue
            changes.append(FieldChange(model_field.name, _verbose(record, model_field.name), None, value))
        return HistoryItem(record=record, action=action, changes=changes, initial=True)
    delta = record.diff_against(previous, excluded_fields=_NOT_DIFFED)
    changes = [FieldChange(c.field, _verbose(record, c.field), c.old, c.new) for c in delta.changes]
    return HistoryItem(record=record, action=action, changes=changes)


def _verbose(record, name: str) -> str:
    try:
        return capfirst(str(record.instance_type._meta.get_field(name).verbose_name))
    except FieldDoesNotExist:
        return name


def _field_meta(record, name: str):
    try:
        return record.instance_type._meta.get_field(name)
    except FieldDoesNotExist:
        return None


def _m2m_ids(model_field, rows) -> list[Any]:
    from simple_history.utils import get_m2m_reverse_field_name

    name = get_m2m_reverse_field_name(model_field)
    return [row.get(name) for row in rows or []]


def _resolve_related(items: list[HistoryItem]) -> None:
    """Replace raw keys by readable values: related objects by their text (one query per related model),
    choices by their labels, booleans by Yes/No, empty values by None."""
    wanted: dict[type[models.Model], set[Any]] = defaultdict(set)
    for item in items:
        for change in item.changes:
            meta = _field_meta(item.record, change.field)
            if meta is None:
                continue
            if meta.many_to_many:
                wanted[meta.related_model].update(_m2m_ids(meta, change.old) + _m2m_ids(meta, change.new))
            elif meta.is_relation and meta.related_model is not None:
                wanted[meta.related_model].update(v for v in (change.old, change.new) if v is not None)
    found = {
        model: model._default_manager.in_bulk([pk for pk in pks if pk is not None]) for model, pks in wanted.items()
    }

    for item in items:
        for change in item.changes:
            meta = _field_meta(item.record, change.field)
            change.old = _display(meta, change.old, found)
            change.new = _display(meta, change.new, found)


def _display(meta, value, found) -> Any:
    if meta is None:
        return None if value in (None, "") else value
    if meta.many_to_many:
        objects = found.get(meta.related_model, {})
        names = [str(objects.get(pk, "(deleted)")) for pk in _m2m_ids(meta, value)]
        return ", ".join(names) if names else None
    if value is None or value == "":
        return None
    if meta.is_relation and meta.related_model is not None:
        related = found.get(meta.related_model, {}).get(value)
        return str(related) if related is not None else "(deleted)"
    if meta.choices:
        labels = dict(meta.flatchoices)
        return labels.get(value, labels.get(str(value), value))
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return value
