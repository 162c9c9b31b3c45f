"""Deals and quotes for tests, made through the services (the code under test never sees a half-made row)."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from django.utils import timezone

from customers.demo import complete_vat
from customers.models import Customer, LegalEntity, LegalEntityRegistration
from customers.services import customer_create, deal_create, quote_create
from tests.customers.factories import LegalEntityFactory

_serial = itertools.count(1)
TODAY = timezone.localdate()


def make_entity(**overrides) -> LegalEntity:
    """Our German delivering entity, VAT-registered."""
    entity = LegalEntityFactory(**overrides)
    if not entity.registrations.exists():
        LegalEntityRegistration.objects.create(legal_entity=entity, country="DE", number=complete_vat("DE13658582"))
    return entity


def make_customer(owner, *, entity: LegalEntity | None = None, country: str = "DE", **data) -> Customer:
    data.setdefault("legal_name", f"Kunde {next(_serial)} GmbH")
    data.setdefault("status", Customer.Status.ACTIVE)
    if entity is not None:
        data.setdefault("billing_entity", entity)
    city = {"DE": "Berlin", "FR": "Paris", "NO": "Oslo", "GB": "London"}.get(country, "Dublin")
    return customer_create(
        user=owner,
        data=data,
        addresses=[
            {"kind": "billing", "line1": "Hauptstraße 1", "postal_code": "10115", "city": city, "country": country}
        ],
        contacts=[
            {
                "first_name": "Ida",
                "last_name": "Berg",
                "email": f"ap{next(_serial)}@example.test",
                "role": "billing",
                "receives_invoices": True,
            }
        ],
    )


def make_deal(user, customer: Customer, **data):
    data.setdefault("title", f"Website relaunch {next(_serial)}")
    data["customer"] = customer
    return deal_create(user=user, data=data)


def tm_line(**overrides) -> dict:
    line = {
        "description": "Senior consultant",
        "billing_model": "tm",
        "labour_category": "Senior consultant",
        "quantity": Decimal("40"),
        "unit": "HUR",
        "unit_price": Decimal("150.00"),
        "discount_percent": Decimal("0"),
    }
    line.update(overrides)
    return line


def fixed_line(**overrides) -> dict:
    line = {
        "description": "Discovery and design phase",
        "billing_model": "fixed_fee",
        "phase": "Discovery",
        "quantity": Decimal("1"),
        "unit": "LS",
        "unit_price": Decimal("12000.00"),
    }
    line.update(overrides)
    return line


def milestone(**overrides) -> dict:
    row = {
        "name": "Design signed off",
        "phase": "Discovery",
        "planned_date": TODAY + dt.timedelta(days=40),
        "amount": Decimal("12000.00"),
    }
    row.update(overrides)
    return row


def quote_data(**overrides) -> dict:
    data = {"valid_until": TODAY + dt.timedelta(days=30), "terms": "Our general terms of business apply."}
    data.update(overrides)
    return data


def make_quote(user, deal, *, lines=None, milestones=None, **data):
    return quote_create(
        user=user,
        deal=deal,
        data=quote_data(**data),
        lines=lines if lines is not None else [tm_line(), fixed_line()],
        milestones=milestones if milestones is not None else [milestone()],
    )
