"""Two syncs of the same upstream record at the same moment make one customer (PostgreSQL only)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from backbone.models import ExternalId, NumberSequence
from customers import api as customers_api
from customers.models import Customer


@pytest.mark.django_db(transaction=True)
def test_concurrent_upserts_of_one_record_create_one_customer(django_user_model, customer_payload, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("row locks and unique-index waits need PostgreSQL")
    # A superuser: transactional tests start from an empty database, without the role groups.
    token = Token.objects.create(user=django_user_model.objects.create_superuser("root", password="x"))
    both_looked = threading.Barrier(2, timeout=10)
    first_lookup_done = threading.local()
    real_lookup = customers_api.external_id_lookup

    def lookup_then_wait(**kwargs):
        found = real_lookup(**kwargs)
        if not getattr(first_lookup_done, "value", False):
            first_lookup_done.value = True
            both_looked.wait()  # both requests have seen "no such customer" before either creates it
        return found

    monkeypatch.setattr(customers_api, "external_id_lookup", lookup_then_wait)
    statuses, failures = [], []

    def sync() -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
            statuses.append(
                client.put(
                    "/api/v1/customers/by-external-id/hubspot/HS-1/", customer_payload(), format="json"
                ).status_code
            )
        except Exception as exc:  # reported below: a thread must not swallow it
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sync) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not failures
    assert sorted(statuses) == [200, 201]
    assert Customer.objects.count() == 1
    assert ExternalId.objects.count() == 1
    # The loser's customer number was rolled back with it: the series stays gapless.
    assert NumberSequence.objects.get(key="customer").last_value == 1
