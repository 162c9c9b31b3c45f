"""The plumbing every service of the app shares: errors collected under flat keys, the guard that keeps
signed-out people and auditors from writing, and the history stamp (who and why) on each saved row."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import models

from backbone.errors import ValidationFailed


class _Errors:
    """Collects messages under flat keys; raises them together."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    def merge(self, prefix: str, exc: ValidationError) -> None:
        for field, messages in exc.message_dict.items():
            key = prefix.rstrip(".") if field == "__all__" else f"{prefix}{field}"
            for message in messages:
                self.add(key or "non_field_errors", message)

    def raise_if_any(self, summary: str) -> None:
        if self.errors:
            _first_key, first_messages = next(iter(self.errors.items()))
            raise ValidationFailed(f"{summary} {first_messages[0]}".strip(), errors=self.errors)


def _full_clean(errors: _Errors, prefix: str, instance: models.Model, exclude: Iterable[str] = ()) -> None:
    try:
        instance.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        errors.merge(prefix, exc)
