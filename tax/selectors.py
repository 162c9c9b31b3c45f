"""Reads of the tax app that pages, the API and other apps share."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import Http404

from tax.models import Jurisdiction, RateDataLoad, TaxCalculation, TaxRate
from tax.rates import RATE_KINDS, JurisdictionRow, RateBook, RateRow, clean_rate


def rate_data_version() -> str:
    latest = RateDataLoad.objects.order_by("-loaded_at", "-id").values_list("version", flat=True).first()
    return latest or "none"


def rate_book() -> RateBook:
    """Every rate in the database as the engines read them (two queries)."""
    jurisdictions = [
        JurisdictionRow(country=j.country, name=j.name, currency=j.currency, in_eu=j.in_eu)
        for j in Jurisdiction.objects.all()
    ]
    rates = [
        RateRow(
            country=r.jurisdiction.country,
            kind=r.kind,
            rate=clean_rate(r.rate),
            valid_from=r.valid_from,
            valid_to=r.valid_to,
            source=r.source_reference,
        )
        for r in TaxRate.objects.select_related("jurisdiction")
    ]
    return RateBook(jurisdictions, rates, base_version=rate_data_version())


@dataclass(frozen=True)
class RateTableRow:
    jurisdiction: Jurisdiction
    rates: dict[str, TaxRate | None]  # kind → the rate in force on the day
    changes: list[TaxRate]  # rates of this jurisdiction that start or end within the shown year


def rate_table(*, on: dt.date, country: str = "", eu_only: bool = False) -> list[RateTableRow]:
    """One row per jurisdiction with the rate of each kind in force on ``on`` (two queries)."""
    jurisdictions = Jurisdiction.objects.all()
    if country:
        jurisdictions = jurisdictions.filter(country=country.upper())
    if eu_only:
        jurisdictions = jurisdictions.filter(in_eu=True)
    jurisdictions = list(jurisdictions)
    rates = TaxRate.objects.filter(jurisdiction__in=jurisdictions).order_by("valid_from")
    by_jurisdiction: dict[int, list[TaxRate]] = {}
    for rate in rates:
        by_jurisdiction.setdefault(rate.jurisdiction_id, []).append(rate)
    year_start, year_end = dt.date(on.year, 1, 1), dt.date(on.year, 12, 31)
    rows = []
    for jurisdiction in jurisdictions:
        own = by_jurisdiction.get(jurisdiction.pk, [])
        current = {kind: None for kind, _ in RATE_KINDS}
        for rate in own:
            if rate.valid_from <= on and (rate.valid_to is None or on <= rate.valid_to):
                current[rate.kind] = rate
        changes = [
            rate
            for rate in own
            if year_start <= rate.valid_from <= year_end or (rate.valid_to and year_start <= rate.valid_to < year_end)
        ]
        rows.append(RateTableRow(jurisdiction, current, changes))
    return rows


def rates_of(*, jurisdiction: Jurisdiction) -> QuerySet[TaxRate]:
    return jurisdiction.rates.select_related("created_by").order_by("kind", "valid_from")


def access_jurisdiction(*, country: str) -> Jurisdiction:
    try:
        return Jurisdiction.objects.get(country=(country or "").upper())
    except Jurisdiction.DoesNotExist as exc:
        raise Http404("No such jurisdiction.") from exc


def calculations_visible_to(*, user) -> QuerySet[TaxCalculation]:
    """Evidence is read by finance, executives, auditors and admins (their model permission decides)."""
    if not user.has_perm("tax.view_taxcalculation"):
        return TaxCalculation.objects.none()
    return TaxCalculation.objects.select_related("created_by")


def access_calculation(*, user, public_id) -> TaxCalculation:
    try:
        return calculations_visible_to(user=user).get(public_id=public_id)
    except (TaxCalculation.DoesNotExist, ValueError) as exc:
        raise Http404("No such tax calculation.") from exc
