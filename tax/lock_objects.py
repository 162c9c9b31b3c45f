"""Row locks of the tax app."""

from __future__ import annotations

from .models import Jurisdiction, TaxCalculation


def jurisdiction_for_update(*, pk: int) -> Jurisdiction:
    """Adding a rate locks its jurisdiction, so two concurrent additions cannot both pass the overlap check."""
    return Jurisdiction.objects.select_for_update(of=("self",)).get(pk=pk)


def calculation_for_update(*, pk: int) -> TaxCalculation:
    return TaxCalculation.objects.select_for_update(of=("self",)).get(pk=pk)
