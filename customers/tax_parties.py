"""Our legal entities and customers as the parties of a tax calculation.

The tax engine sees no models (``tax/context.py``): these functions read a legal entity and a customer and
give the JSON form of the seller and the buyer that ``TaxContext.from_dict`` reads, so that a quote, an
invoice draft or an issued invoice all build the same context the same way. Read-only; a handful of queries
whatever the number of registrations and certificates (already prefetched relations are not fetched again).

Nothing is made up: a customer without a billing address gives a buyer without a country, and the context
reports "The buyer's country is missing." rather than guessing one. VAT IDs go in unchecked (``valid`` None):
the engine checks their format and check digit itself and says so in the evidence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.db.models import prefetch_related_objects

from tax.context import TaxContext
from tax.thresholds import b2c_sales_eur, threshold_forced

from .models import Address, Customer, ExemptionCertificate, LegalEntity, LegalEntityRegistration, TaxRegistration


def _code(country) -> str:
    return str(getattr(country, "code", country) or "")


def _decimal(value: Decimal) -> str:
    return format(value, "f")


def seller_key(legal_entity: LegalEntity) -> str:
    """How the tax app's threshold registry names this seller (``tax.thresholds``)."""
    return str(legal_entity.public_id)


def tax_seller(legal_entity: LegalEntity, *, on: dt.date) -> dict[str, Any]:
    """The seller of a supply on ``on``: country, VAT registrations, OSS, and the EUR 10,000 threshold facts
    (cross-border B2C sales of ``on``'s year and the year before, from ``tax.thresholds``)."""
    prefetch_related_objects([legal_entity], "registrations")
    registrations = list(legal_entity.registrations.all())
    key = seller_key(legal_entity)
    country = _code(legal_entity.country)
    return {
        "country": country,
        "registrations": [
            {"country": _code(registration.country), "number": registration.number, "valid": None}
            for registration in sorted(registrations, key=lambda r: (_code(r.country), r.pk))
            if registration.kind == LegalEntityRegistration.Kind.VAT
        ],
        "oss_registered": any(registration.is_oss_registered for registration in registrations),
        "eu_b2c_sales_current_year_eur": _decimal(b2c_sales_eur(seller_key=key, year=on.year)),
        "eu_b2c_sales_previous_year_eur": _decimal(b2c_sales_eur(seller_key=key, year=on.year - 1)),
        "eu_b2c_threshold_exceeded": threshold_forced(country, key),
    }


def _certificates_for(certificates: Sequence[ExemptionCertificate], on: dt.date) -> list[ExemptionCertificate]:
    """The certificates valid on ``on``. When none is, all of them: the engine then names each one and why
    it does not apply (expired, not yet valid), which is what the person wondering about the VAT needs."""
    valid = [c for c in certificates if c.validity_on(on) == ExemptionCertificate.Validity.VALID]
    return valid or list(certificates)


def tax_buyer(customer: Customer, *, on: dt.date) -> dict[str, Any]:
    """The buyer of a supply on ``on``: the billing address's country, business or consumer, VAT IDs and
    the exemption certificates that matter on that day."""
    prefetch_related_objects([customer], "addresses", "registrations", "exemption_certificates")
    billing = next((a for a in customer.addresses.all() if a.kind == Address.Kind.BILLING), None)
    registrations = sorted(
        (r for r in customer.registrations.all() if r.kind == TaxRegistration.Kind.VAT),
        key=lambda r: (_code(r.country), r.pk),
    )
    certificates = sorted(customer.exemption_certificates.all(), key=lambda c: (c.valid_from, c.pk))
    return {
        "country": _code(billing.country) if billing is not None else None,
        "is_business": customer.kind == Customer.Kind.BUSINESS,
        "registrations": [
            {"country": _code(registration.country), "number": registration.number, "valid": None}
            for registration in registrations
        ],
        "exemption_certificates": [
            {
                "reference": certificate.reference,
                "reason_code": certificate.reason_code,
                "valid_from": certificate.valid_from.isoformat(),
                "valid_to": certificate.valid_to.isoformat() if certificate.valid_to else None,
                "country": _code(certificate.country) or None,
                "reason": certificate.reason,
            }
            for certificate in _certificates_for(certificates, on)
        ],
    }


def tax_context_data(
    *,
    legal_entity: LegalEntity,
    customer: Customer,
    lines: Sequence[Mapping[str, Any]],
    tax_point: dt.date,
    currency: str,
    eur_rate: Decimal | None = None,
) -> dict[str, Any]:
    """The JSON form of the context (what ``tax_context_for`` parses), for callers that store or show it."""
    return {
        "seller": tax_seller(legal_entity, on=tax_point),
        "buyer": tax_buyer(customer, on=tax_point),
        "lines": [dict(line) for line in lines],
        "tax_point": tax_point.isoformat(),
        "currency": currency,
        "eur_rate": _decimal(eur_rate) if isinstance(eur_rate, Decimal) else eur_rate,
    }


def tax_context_for(
    *,
    legal_entity: LegalEntity,
    customer: Customer,
    lines: Sequence[Mapping[str, Any]],
    tax_point: dt.date,
    currency: str,
    eur_rate: Decimal | None = None,
) -> TaxContext:
    """The tax context of ``lines`` sold by ``legal_entity`` to ``customer`` with this tax point.

    ``lines`` are in the JSON form of ``tax.context.Line`` (``id``, ``net_amount``, ``category``,
    ``supply_kind``...). Raises ``backbone.errors.ValidationFailed`` naming every missing or malformed
    fact under a flat key (``buyer.country``, ``lines.0.net_amount``).
    """
    return TaxContext.from_dict(
        tax_context_data(
            legal_entity=legal_entity,
            customer=customer,
            lines=lines,
            tax_point=tax_point,
            currency=currency,
            eur_rate=eur_rate,
        )
    )
