"""Benchmark: the customer list page and API over a few thousand customers.

Run: DJANGO_SETTINGS_MODULE=config.settings.test python bench/bench_customer_list.py [--customers 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402


def seed(count: int) -> User:
    from customers.models import Address, Contact, Customer, TaxRegistration

    rep = User.objects.create_user("bench-sales", password="bench-pw-123")
    rep.groups.add(Group.objects.get(name="sales"))
    customers = Customer.objects.bulk_create(
        Customer(
            number=f"CUST-{n:06d}",
            legal_name=f"Bench Customer {n} GmbH",
            display_name=f"Bench {n}",
            status="active",
            owner=rep,
        )
        for n in range(1, count + 1)
    )
    Address.objects.bulk_create(
        Address(customer=c, kind="billing", line1="Torstraße 1", city="Berlin", country="DE") for c in customers
    )
    TaxRegistration.objects.bulk_create(
        TaxRegistration(customer=c, country="DE", number="DE136585820") for c in customers
    )
    Contact.objects.bulk_create(
        Contact(customer=c, last_name=f"Contact {i}", email=f"c{i}-{c.pk}@bench.test")
        for c in customers
        for i in range(2)
    )
    return rep


def measure(client: Client, url: str, runs: int) -> tuple[float, float, int]:
    timings, queries = [], 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        queries = len(captured)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.95) - 1], queries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        seed(args.customers)
        client = Client()
        assert client.login(username="bench-sales", password="bench-pw-123")
        print(f"{args.customers} customers, {args.runs} runs each, database {connection.vendor}")
        for label, url in [
            ("page  /customers/", "/customers/"),
            ("page  /customers/?q=Bench 19&ordering=-name", "/customers/?q=Bench%2019&ordering=-name"),
            ("API   /api/v1/customers/", "/api/v1/customers/"),
            ("API   /api/v1/customers/?page=40", "/api/v1/customers/?page=40"),
        ]:
            median, p95, queries = measure(client, url, args.runs)
            print(f"{label:<48} median {median:7.1f} ms   p95 {p95:7.1f} ms   {queries} queries")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
