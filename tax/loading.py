"""Loading the shipped rate data file into the database: the data migration and ``tax_load_rates`` share it.

Written against model classes passed in, so the migration can hand over its historical models. Re-running
is safe: a row is identified by (country, kind, valid_from); shipped rows are brought in line with the
file, rows added in the app are never touched, and any overlap with them is reported, not overwritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal

from tax.rates import parse_rate_data


@dataclass
class LoadReport:
    version: str
    jurisdictions_created: int = 0
    rates_created: int = 0
    rates_updated: int = 0
    rates_unchanged: int = 0
    rates_removed: int = 0
    conflicts: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"Rate data {self.version}: {self.jurisdictions_created} jurisdictions added, "
            f"{self.rates_created} rates added, {self.rates_updated} updated, {self.rates_unchanged} unchanged, "
            f"{self.rates_removed} no longer in the file removed"
        )
        if self.conflicts:
            text += f", {len(self.conflicts)} conflicts with rates added in the app"
        return text + "."


def _overlaps(a_from: dt.date, a_to: dt.date | None, b_from: dt.date, b_to: dt.date | None) -> bool:
    return a_from <= (b_to or dt.date.max) and b_from <= (a_to or dt.date.max)


def file_digest(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _closed_in_the_app(same, row, existing) -> bool:
    """A shipped rate the app ended the day before a rate added in the app: the file's open end is stale."""
    if same is None or same.source != "data_file" or Decimal(same.rate) != row.rate or same.valid_to is None:
        return False
    if row.valid_to is not None and row.valid_to <= same.valid_to:
        return False
    successor = same.valid_to + dt.timedelta(days=1)
    return any(obj.source == "manual" and obj.valid_from == successor for obj in existing)


def load_rate_data(data: dict, *, jurisdiction_model, rate_model, load_model=None) -> LoadReport:
    jurisdictions, rates = parse_rate_data(data)
    report = LoadReport(version=data["version"])
    by_country = {}
    for row in jurisdictions:
        obj, created = jurisdiction_model.objects.get_or_create(
            country=row.country, defaults={"name": row.name, "currency": row.currency, "in_eu": row.in_eu}
        )
        if not created and (obj.name, obj.currency, obj.in_eu) != (row.name, row.currency, row.in_eu):
            obj.name, obj.currency, obj.in_eu = row.name, row.currency, row.in_eu
            obj.save(update_fields=["name", "currency", "in_eu", "updated_at"])
        report.jurisdictions_created += int(created)
        by_country[row.country] = obj
    notes = {
        (item["country"], rate["kind"], rate["valid_from"]): rate.get("note", "")
        for item in data["jurisdictions"]
        for rate in item["rates"]
    }
    reference = f"vat_rates.json {data['version']}"
    for row in rates:
        jurisdiction = by_country[row.country]
        existing = list(rate_model.objects.filter(jurisdiction=jurisdiction, kind=row.kind))
        same = next((obj for obj in existing if obj.valid_from == row.valid_from), None)
        if _closed_in_the_app(same, row, existing):
            report.rates_unchanged += 1
            continue
        manual_clash = [
            obj
            for obj in existing
            if obj.source == "manual"
            and obj is not same
            and _overlaps(obj.valid_from, obj.valid_to, row.valid_from, row.valid_to)
        ]
        if same is not None and same.source == "manual":
            report.conflicts.append(
                f"{row.country} {row.kind} from {row.valid_from}: a rate added in the app starts that day; kept."
            )
            continue
        if manual_clash:
            report.conflicts.append(
                f"{row.country} {row.kind} {row.rate}% from {row.valid_from}: overlaps a rate added in the app "
                f"({manual_clash[0].rate}% from {manual_clash[0].valid_from}); not loaded."
            )
            continue
        note = notes.get((row.country, row.kind, row.valid_from.isoformat()), "")[:300]
        source_reference = f"{reference} / {row.source}" if row.source else reference
        if same is None:
            rate_model.objects.create(
                jurisdiction=jurisdiction,
                kind=row.kind,
                rate=row.rate,
                valid_from=row.valid_from,
                valid_to=row.valid_to,
                source="data_file",
                source_reference=source_reference[:200],
                note=note,
            )
            report.rates_created += 1
        elif (Decimal(same.rate), same.valid_to) != (row.rate, row.valid_to):
            same.rate, same.valid_to, same.source_reference, same.note = (
                row.rate,
                row.valid_to,
                source_reference[:200],
                note,
            )
            same.save(update_fields=["rate", "valid_to", "source_reference", "note", "updated_at"])
            report.rates_updated += 1
        else:
            report.rates_unchanged += 1
    shipped = {(row.country, row.kind, row.valid_from) for row in rates}
    for stale in rate_model.objects.filter(source="data_file").select_related("jurisdiction"):
        if (stale.jurisdiction.country, stale.kind, stale.valid_from) not in shipped:
            stale.delete()
            report.rates_removed += 1
    if load_model is not None:
        load_model.objects.create(version=report.version, file_sha256=file_digest(data), summary=report.summary())
    return report
