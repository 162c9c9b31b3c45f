"""Fixtures of the API tests: people per role, signed-in clients, and records made through the services."""

from __future__ import annotations

import itertools

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from customers import services

_serial = itertools.count(1)

BILLING_ADDRESS = {"kind": "billing", "line1": "Torstraße 1", "postal_code": "10119", "city": "Berlin", "country": "DE"}


@pytest.fixture
def person(db):
    """``person("sales")`` → a fresh user holding the role (several roles: ``person("sales", "finance")``)."""

    def make(*roles: str, username: str | None = None, **extra):
        username = username or f"{'-'.join(roles) or 'nobody'}-{next(_serial)}"
        user = get_user_model().objects.create_user(username=username, password="pw-" + username, **extra)
        for role in roles:
            user.groups.add(Group.objects.get(name=role))
        # A fresh instance: permission and role caches start empty.
        return get_user_model().objects.get(pk=user.pk)

    return make


@pytest.fixture
def client_for():
    """``client_for(user)`` → an API client signed in with a session, as a browser-less script would be."""

    def make(user) -> APIClient:
        client = APIClient()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def customer_payload():
    def make(**overrides) -> dict:
        payload = {
            "legal_name": "Nordlicht Analytics GmbH",
            "display_name": "Nordlicht",
            "kind": "business",
            "payment_terms_days": 30,
            "addresses": [dict(BILLING_ADDRESS)],
            "registrations": [{"country": "DE", "number": "DE 123 456 788"}],
            "contacts": [{"first_name": "Ida", "last_name": "Berg", "email": "Ida.Berg@nordlicht.example"}],
        }
        payload.update(overrides)
        return payload

    return make


@pytest.fixture
def make_customer():
    """``make_customer(user, legal_name=...)`` → a customer created through the service."""

    def make(user, *, addresses=None, registrations=(), contacts=(), external_ids=(), **data):
        data.setdefault("legal_name", f"Customer {next(_serial)} Ltd")
        return services.customer_create(
            user=user,
            data=data,
            addresses=addresses if addresses is not None else [dict(BILLING_ADDRESS)],
            registrations=registrations,
            contacts=contacts,
            external_ids=external_ids,
        )

    return make
