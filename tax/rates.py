"""Rate data as an engine reads it: an immutable book of rates with validity windows.

The book is built from the database (``tax.selectors.rate_book``) or straight from the shipped data file
(``RateBook.from_file``); engines never query the database themselves, which keeps ``calculate`` pure.
Validity windows are inclusive at both ends; ``valid_to`` None means still in force.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from backbone.errors import ValidationFailed

DATA_FILE = Path(__file__).resolve().parent / "data" / "vat_rates.json"

RATE_KINDS = [
    ("standard", "Standard"),
    ("reduced", "Reduced"),
    ("reduced_2", "Second reduced"),
    ("reduced_3", "Third reduced"),
    ("super_reduced", "Super-reduced"),
    ("parking", "Parking"),
]
RATE_KIND_VALUES = frozenset(kind for kind, _ in RATE_KINDS)


def clean_rate(rate: Decimal) -> Decimal:
    """19.000 → 19, 25.50 → 25.5: one spelling of each rate, so evidence hashes do not depend on the source."""
    rate = Decimal(rate)
    return rate.quantize(Decimal(1)) if rate == rate.to_integral_value() else rate.normalize()


@dataclass(frozen=True)
class RateRow:
    country: str
    kind: str
    rate: Decimal  # percent
    valid_from: dt.date
    valid_to: dt.date | None
    source: str = ""

    def in_force(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True)
class JurisdictionRow:
    country: str
    name: str
    currency: str
    in_eu: bool


class RateBook:
    """All known rates; ``version`` names the data exactly (file version plus a digest of every row)."""

    def __init__(self, jurisdictions: list[JurisdictionRow], rates: list[RateRow], *, base_version: str) -> None:
        self.jurisdictions = {row.country: row for row in jurisdictions}
        self._rates: dict[tuple[str, str], list[RateRow]] = {}
        for row in sorted(rates, key=lambda r: (r.country, r.kind, r.valid_from)):
            self._rates.setdefault((row.country, row.kind), []).append(row)
        digest = hashlib.sha256()
        for row in sorted(rates, key=lambda r: (r.country, r.kind, r.valid_from)):
            digest.update(f"{row.country}|{row.kind}|{row.rate.normalize()}|{row.valid_from}|{row.valid_to}\n".encode())
        self.base_version = base_version
        self.version = f"{base_version}+{digest.hexdigest()[:12]}"

    def __contains__(self, country: str) -> bool:
        return country in self.jurisdictions

    def is_eu(self, country: str) -> bool:
        row = self.jurisdictions.get(country)
        return bool(row and row.in_eu)

    def rate(self, country: str, kind: str, day: dt.date) -> RateRow:
        """The rate of ``kind`` in force in ``country`` on ``day``; a domain error says precisely what is missing."""
        if country not in self.jurisdictions:
            raise ValidationFailed(
                f"No VAT rates are known for {country}; add the jurisdiction and its rates first.", field="rates"
            )
        rows = self._rates.get((country, kind), [])
        for row in rows:
            if row.in_force(day):
                return row
        name = self.jurisdictions[country].name
        label = dict(RATE_KINDS).get(kind, kind).lower()
        if not rows:
            raise ValidationFailed(f"{name} ({country}) has no {label} VAT rate.", field="rates")
        first, last = rows[0], rows[-1]
        known = f"known from {first.valid_from}" + (f" to {last.valid_to}" if last.valid_to else " onwards")
        raise ValidationFailed(
            f"No {label} VAT rate of {name} ({country}) is in force on {day.isoformat()} ({known}).", field="tax_point"
        )

    def rows(self) -> list[RateRow]:
        return [row for rows in self._rates.values() for row in rows]

    @classmethod
    def from_data(cls, data: dict) -> RateBook:
        jurisdictions, rates = parse_rate_data(data)
        return cls(jurisdictions, rates, base_version=data["version"])

    @classmethod
    def from_file(cls, path: Path = DATA_FILE) -> RateBook:
        return cls.from_data(load_rate_file(path))


def load_rate_file(path: Path = DATA_FILE) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def parse_rate_data(data: dict) -> tuple[list[JurisdictionRow], list[RateRow]]:
    jurisdictions: list[JurisdictionRow] = []
    rates: list[RateRow] = []
    for item in data["jurisdictions"]:
        country = item["country"]
        jurisdictions.append(
            JurisdictionRow(country=country, name=item["name"], currency=item["currency"], in_eu=bool(item["eu"]))
        )
        for row in item["rates"]:
            rates.append(
                RateRow(
                    country=country,
                    kind=row["kind"],
                    rate=clean_rate(Decimal(str(row["rate"]))),
                    valid_from=dt.date.fromisoformat(row["valid_from"]),
                    valid_to=dt.date.fromisoformat(row["valid_to"]) if row.get("valid_to") else None,
                    source=row.get("source", ""),
                )
            )
    return jurisdictions, rates
