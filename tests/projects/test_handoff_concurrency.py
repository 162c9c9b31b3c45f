"""Two wins of the same deal at the same moment make one project (PostgreSQL only): the deal row lock makes
the second wait, then find the first one's project and answer "already won"."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from backbone.models import NumberSequence
from customers.models import PipelineStage, Quote
from projects import services
from projects.models import ContractVersion, Project
from tax.services import tax_rates_load
from tests.customers.factories import CustomerFactory, LegalEntityFactory

from .factories import DealFactory, tm_quote

STAGES = [("negotiation", 30, 60, "open"), ("won", 40, 100, "won"), ("lost", 50, 0, "lost")]


@pytest.mark.django_db(transaction=True)
def test_concurrent_wins_of_one_deal_create_one_project(django_user_model, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    # Transactional tests start from an empty database: the data migrations' rows are rebuilt here.
    tax_rates_load()
    for code, position, probability, outcome in STAGES:
        PipelineStage.objects.get_or_create(
            code=code,
            defaults={
                "name": code.title(),
                "position": position,
                "default_probability": probability,
                "outcome": outcome,
            },
        )
    admin = django_user_model.objects.create_superuser("root", password="x")
    pm = django_user_model.objects.create_user("pm", password="x")
    pm.groups.add(Group.objects.get_or_create(name="project_manager")[0])
    token = Token.objects.create(user=admin)
    customer = CustomerFactory(owner=admin)
    deal = DealFactory(customer=customer, legal_entity=LegalEntityFactory())
    tm_quote(deal)

    both_checked = threading.Barrier(2, timeout=10)
    real_lock = services.deal_for_update

    def wait_then_lock(**kwargs):
        both_checked.wait()  # both requests passed their checks and reach for the deal row together
        return real_lock(**kwargs)

    monkeypatch.setattr(services, "deal_for_update", wait_then_lock)
    answers, failures = [], []

    def win() -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
            response = client.post(f"/api/v1/deals/{deal.public_id}/win/", {"project_manager": "pm"}, format="json")
            answers.append((response.status_code, response.json()))
        except Exception as exc:  # reported below: a thread must not swallow it
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=win) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not failures
    assert sorted(code for code, _ in answers) == [200, 201], answers
    assert {body["created"] for _, body in answers} == {True, False}
    assert len({body["id"] for _, body in answers}) == 1
    assert Project.objects.count() == 1 and ContractVersion.objects.count() == 1
    assert Quote.objects.get(deal=deal).status == Quote.Status.ACCEPTED
    assert NumberSequence.objects.get(key="project").last_value == 1
