"""Writes of the tax app: rates added in the app, rate data loads, calculation evidence, registration checks."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from backbone.errors import Conflict, ValidationFailed
from backbone.history import set_actor, set_reason
from tax import lock_objects
from tax.context import Registration, TaxContext, TaxResult, canonical_json
from tax.engines import calculate
from tax.loading import LoadReport, load_rate_data
from tax.models import Jurisdiction, RateDataLoad, TaxCalculation, TaxRate
from tax.rates import RATE_KIND_VALUES, RATE_KINDS, load_rate_file
from tax.registrations import EU_COUNTRIES, RegistrationInvalid, validate_vat
from tax.vies import get_vies_adapter


def _parse_rate(value: Any) -> Decimal | None:
    if isinstance(value, float):
        value = repr(value)
    try:
        rate = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return rate if rate.is_finite() else None


@transaction.atomic
def tax_rate_create(
    *,
    actor,
    country: str,
    kind: str,
    rate: Decimal | str,
    valid_from: dt.date,
    valid_to: dt.date | None = None,
    source_reference: str = "",
    note: str = "",
) -> TaxRate:
    """Add a rate with its validity window.

    A new rate that starts while an open-ended rate of the same kind is in force closes that rate the day
    before (the usual "from 1 January the rate is ..."); any other overlap is refused with the rate it hits.
    """
    errors: dict[str, list[str]] = {}
    jurisdiction = Jurisdiction.objects.filter(country=(country or "").upper()).first()
    if jurisdiction is None:
        errors["country"] = [f"No jurisdiction '{country}' is known."]
    if kind not in RATE_KIND_VALUES:
        errors["kind"] = [f"'{kind}' is not a rate kind; use one of {', '.join(sorted(RATE_KIND_VALUES))}."]
    parsed = _parse_rate(rate)
    if parsed is None:
        errors["rate"] = [f"'{rate}' is not a number."]
    elif not (Decimal("0") < parsed < Decimal("100")) or parsed != parsed.quantize(Decimal("0.001")):
        errors["rate"] = ["A rate is a percentage above 0 and below 100, with at most three decimals."]
    if not isinstance(valid_from, dt.date):
        errors["valid_from"] = ["Enter the first day the rate is in force."]
    elif valid_to is not None and valid_to < valid_from:
        errors["valid_to"] = ["The last day in force is before the first."]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)

    jurisdiction = lock_objects.jurisdiction_for_update(pk=jurisdiction.pk)
    label = dict(RATE_KINDS)[kind].lower()
    to_close = None
    for other in TaxRate.objects.filter(jurisdiction=jurisdiction, kind=kind).order_by("valid_from"):
        other_end = other.valid_to or dt.date.max
        if other.valid_from <= (valid_to or dt.date.max) and valid_from <= other_end:
            if other.valid_to is None and other.valid_from < valid_from and to_close is None:
                to_close = other
                continue
            end = other.valid_to.isoformat() if other.valid_to else "open end"
            raise Conflict(
                f"The {label} rate of {jurisdiction.name} overlaps the {other.rate.normalize()} % rate in force "
                f"{other.valid_from.isoformat()} – {end}.",
                field="valid_from",
            )
    if to_close is not None and valid_to is None:
        later = TaxRate.objects.filter(jurisdiction=jurisdiction, kind=kind, valid_from__gt=valid_from).exists()
        if later:
            raise Conflict("A later rate of this kind already exists; give the new rate an end date.", field="valid_to")
    if to_close is not None:
        to_close.valid_to = valid_from - dt.timedelta(days=1)
        set_actor(to_close, actor)
        set_reason(to_close, f"Superseded by the rate from {valid_from.isoformat()}")
        to_close.save(update_fields=["valid_to", "updated_at"])
        if valid_to is not None:
            # A temporary rate (e.g. 16 % for half a year) interrupts the open rate, which resumes after it.
            resumed = TaxRate(
                jurisdiction=jurisdiction,
                kind=kind,
                rate=to_close.rate,
                valid_from=valid_to + dt.timedelta(days=1),
                valid_to=None,
                source=TaxRate.Source.MANUAL,
                source_reference=to_close.source_reference,
                note=f"Resumes after the temporary rate {valid_from.isoformat()} – {valid_to.isoformat()}."[:300],
                created_by=actor if getattr(actor, "is_authenticated", False) else None,
            )
            set_actor(resumed, actor)
            set_reason(resumed, "The open rate resumes after a temporary rate")
            resumed.save()
    created = TaxRate(
        jurisdiction=jurisdiction,
        kind=kind,
        rate=parsed,
        valid_from=valid_from,
        valid_to=valid_to,
        source=TaxRate.Source.MANUAL,
        source_reference=source_reference.strip()[:200],
        note=note.strip()[:300],
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    set_actor(created, actor)
    set_reason(created, "Rate added in the app")
    created.save()
    return created


@transaction.atomic
def tax_rates_load(*, data: dict | None = None) -> LoadReport:
    """Load the shipped rate data file (or ``data``); safe to repeat."""
    return load_rate_data(
        data or load_rate_file(), jurisdiction_model=Jurisdiction, rate_model=TaxRate, load_model=RateDataLoad
    )


def tax_preview(*, context: TaxContext) -> TaxResult:
    """The tax of a document that is not issued yet (quotes, invoice drafts): nothing is stored."""
    return calculate(context)


def evidence_digest(*, context: dict, result: dict) -> str:
    return hashlib.sha256(canonical_json({"context": context, "result": result}).encode()).hexdigest()


@transaction.atomic
def tax_calculation_record(
    *,
    context: TaxContext,
    actor=None,
    purpose: str = "",
    document_type: str = "",
    document_ref: str = "",
    result: TaxResult | None = None,
) -> TaxCalculation:
    """Calculate (unless ``result`` is given by the caller's own call to the engine) and store the evidence."""
    result = result or calculate(context)
    context_data, result_data = context.to_dict(), result.to_dict()
    return TaxCalculation.objects.create(
        context=context_data,
        engine=result.engine,
        engine_version=result.engine_version,
        rate_data_version=result.rate_data_version,
        rules_fired=list(result.rules_fired),
        result=result_data,
        legal_notes=list(result.legal_notes),
        warnings=list(result.warnings),
        place_of_supply=result.place_of_supply,
        currency=result.currency,
        net_amount=result.net_amount,
        tax_amount=result.tax_amount,
        tax_point=context.tax_point,
        sha256=evidence_digest(context=context_data, result=result_data),
        purpose=purpose[:40],
        document_type=document_type[:40],
        document_ref=document_ref[:100],
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )


@transaction.atomic
def tax_calculation_lock(*, calculation: TaxCalculation, document_type: str, document_ref: str) -> TaxCalculation:
    """Tie the evidence to an issued document; from then on the database refuses any change to the row.

    Locking again for the same document is a no-op (a retried issue); for another document it is refused.
    """
    if not document_type or not document_ref:
        raise ValidationFailed("Name the issued document the calculation belongs to.", field="document_ref")
    calculation = lock_objects.calculation_for_update(pk=calculation.pk)
    if calculation.locked_at is not None:
        if (calculation.document_type, calculation.document_ref) == (document_type, document_ref):
            return calculation
        raise Conflict(
            f"This tax calculation already belongs to {calculation.document_type} {calculation.document_ref}."
        )
    if calculation.document_ref and calculation.document_ref != document_ref:
        raise Conflict(f"This tax calculation was made for {calculation.document_type} {calculation.document_ref}.")
    calculation.document_type, calculation.document_ref = document_type[:40], document_ref[:100]
    calculation.locked_at = timezone.now()
    calculation.save(update_fields=["document_type", "document_ref", "locked_at", "updated_at"])
    return calculation


@dataclass(frozen=True)
class RecheckDifference:
    calculation: TaxCalculation
    differences: list[str]


def tax_calculation_recheck(*, calculation: TaxCalculation, rates=None, engine=None) -> list[str]:
    """Recompute a stored calculation with the rate data of its tax point date; list what differs.

    Also proves the row is intact: its SHA-256 must match its own content.
    """
    differences = []
    if evidence_digest(context=calculation.context, result=calculation.result) != calculation.sha256:
        differences.append("stored SHA-256 does not match the stored context and result")
    try:
        fresh = calculate(TaxContext.from_dict(calculation.context), rates=rates, engine=engine)
    except ValidationFailed as exc:
        return [*differences, f"cannot be recomputed: {exc.message}"]
    stored = TaxResult.from_dict(calculation.result)
    for name in ("place_of_supply", "net_amount", "tax_amount", "gross_amount", "legal_notes", "rules_fired"):
        if getattr(stored, name) != getattr(fresh, name):
            differences.append(f"{name}: stored {getattr(stored, name)!r}, now {getattr(fresh, name)!r}")
    stored_rows = [(r.category, r.rate, r.taxable_amount, r.tax_amount) for r in stored.breakdown]
    fresh_rows = [(r.category, r.rate, r.taxable_amount, r.tax_amount) for r in fresh.breakdown]
    if stored_rows != fresh_rows:
        differences.append(f"breakdown: stored {_rows(stored_rows)}, now {_rows(fresh_rows)}")
    for old, new in zip(stored.lines, fresh.lines, strict=False):
        if (old.category, old.rate) != (new.category, new.rate):
            differences.append(
                f"line {old.line_id}: stored {old.category} {old.rate.normalize()} %, now {new.category} "
                f"{new.rate.normalize()} %"
            )
    return differences


def _rows(rows) -> str:
    return "; ".join(f"{c} {r.normalize()} %: {base} → {tax}" for c, r, base, tax in rows) or "none"


def registration_check(*, number: str, country: str, online: bool = False, requester: str = "") -> Registration:
    """Check a buyer's VAT ID offline (python-stdnum), then online through VIES when asked and configured.

    The answer is a ``Registration`` ready for a tax context: what was checked, how, and when.
    """
    today = timezone.localdate()
    try:
        checked = validate_vat(number, country)
    except RegistrationInvalid:
        return Registration(country=country, number=(number or "").upper(), valid=False, checked_on=today)
    adapter = get_vies_adapter() if online else None
    if adapter is None or checked.country not in EU_COUNTRIES:
        return Registration(country=checked.country, number=checked.number, valid=True, checked_on=today)
    answer = adapter.check(country=checked.country, number=checked.number, requester=requester)
    return Registration(
        country=checked.country,
        number=checked.number,
        valid=answer.valid,
        source="vies",
        checked_on=answer.checked_on,
        consultation_number=answer.consultation_number,
    )
