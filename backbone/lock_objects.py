"""Every row lock the backbone takes, in one place (locks are taken in a fixed order across models)."""

from __future__ import annotations

from .models import NumberSequence


def number_sequence_for_update(*, key: str, year: int) -> NumberSequence | None:
    return NumberSequence.objects.select_for_update().filter(key=key, year=year).first()
