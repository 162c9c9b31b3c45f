"""The demo seeder wins one project per billing model through the real handoff, approves one change order
(contract version 2) and leaves one waiting — and a second run changes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from backbone.demo import seed_users
from backbone.models import UserProfile
from customers.demo import seed_customers
from projects.demo import seed_projects
from projects.models import BudgetAlert, ChangeOrder, ContractVersion, Project

pytestmark = pytest.mark.django_db


def _state() -> tuple:
    return (
        list(Project.objects.order_by("pk").values_list("number", "name", "status")),
        list(ContractVersion.objects.order_by("pk").values_list("project__number", "number", "sha256")),
        list(ChangeOrder.objects.order_by("pk").values_list("number", "status")),
    )


def test_demo_projects_are_seeded_once():
    seed_users(password="demo")
    seed_customers(password="demo")

    summary = seed_projects(password="demo")

    assert summary.startswith("4 demo projects (4 new), 2 new change orders (1 waiting for approval)")
    models = {tuple(sorted(p.billing_rules.values_list("model", flat=True))) for p in Project.objects.all()}
    assert models == {("tm",), ("fixed_fee",), ("retainer",), ("expenses", "tm")}
    assert all(p.deal and p.deal.stage.outcome == "won" for p in Project.objects.all())
    assert ContractVersion.objects.filter(source="change_order").count() == 1
    assert list(ChangeOrder.objects.order_by("pk").values_list("status", "touches_billing_terms")) == [
        ("approved", True),
        ("submitted", False),
    ]
    limits = dict(UserProfile.objects.values_list("user__username", "change_order_limit_amount"))
    assert (limits["pm"], limits["finance"], limits["executive"]) == (
        Decimal("5000"),
        Decimal("20000"),
        Decimal("1000000"),
    )
    assert not BudgetAlert.objects.filter(kind="budget_threshold").exists()  # no actuals are made up

    before = _state()
    again = seed_projects(password="demo")
    assert again.startswith("4 demo projects (0 new), 0 new change orders")
    assert _state() == before
