"""Fixtures of the projects tests: one person per role with change-order limits, a customer owned by the
sales rep, and deals with a quote of each billing model."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from backbone.models import UserProfile
from projects import services
from tests.customers.factories import CustomerFactory, LegalEntityFactory

from .factories import DealFactory, fixed_fee_quote, retainer_quote, tm_quote

LIMITS = {"pm": "5000", "pm2": "5000", "finance": "20000", "executive": "1000000"}
ROLES = {
    "sales": ["sales"],
    "sales2": ["sales"],
    "pm": ["project_manager"],
    "pm2": ["project_manager"],
    "consultant": ["consultant"],
    "finance": ["finance"],
    "executive": ["executive"],
    "auditor": ["auditor"],
    "admin": ["admin"],
}


@pytest.fixture
def people(db):
    """``people["pm"]`` … fresh users (empty permission caches) holding the role; limits as in the demo."""
    User = get_user_model()
    made = {}
    for username, roles in ROLES.items():
        user = User.objects.create_user(username=username, password="pw", email=f"{username}@example.test")
        for role in roles:
            user.groups.add(Group.objects.get(name=role))
        if username == "admin":
            user.is_staff = user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])
        UserProfile.objects.create(user=user, change_order_limit_amount=Decimal(LIMITS.get(username, "0")))
        made[username] = User.objects.get(pk=user.pk)
    return made


@pytest.fixture
def legal_entity(db):
    return LegalEntityFactory(legal_name="Throughline Studio GmbH", short_name="Studio GmbH", invoice_prefix="DE")


@pytest.fixture
def customer(people, legal_entity):
    return CustomerFactory(owner=people["sales"], billing_entity=legal_entity)


@pytest.fixture
def deal(customer, legal_entity):
    return DealFactory(customer=customer, legal_entity=legal_entity, title="Data platform")


@pytest.fixture
def tm_deal(deal):
    tm_quote(deal)
    return deal


@pytest.fixture
def fixed_deal(customer, legal_entity):
    deal = DealFactory(customer=customer, legal_entity=legal_entity, title="Website relaunch")
    fixed_fee_quote(deal)
    return deal


@pytest.fixture
def retainer_deal(customer, legal_entity):
    deal = DealFactory(customer=customer, legal_entity=legal_entity, title="Support")
    retainer_quote(deal)
    return deal


@pytest.fixture
def win(people):
    """``win(deal)`` → the project, won by the deal's owner for the demo project manager."""

    def make(deal, **kwargs):
        kwargs.setdefault("project_manager", people["pm"])
        project, created = services.deal_win(actor=kwargs.pop("actor", deal.owner), deal=deal, **kwargs)
        assert created
        return project

    return make


@pytest.fixture
def tm_project(tm_deal, win):
    return win(tm_deal)


@pytest.fixture
def fixed_project(fixed_deal, win):
    return win(fixed_deal)


ACCEPTANCE = {"customer_accepted_by": "Ida Berg, COO", "customer_accepted_on": dt.date(2026, 2, 20)}


@pytest.fixture
def propose(people):
    """``propose(project, changes, effective_from=…)`` → a submitted change order (proposed by the project's
    manager unless ``actor`` is given)."""

    def make(project, changes, *, effective_from, actor=None, submit=True, **fields):
        co = services.change_order_create(
            actor=actor or project.project_manager,
            project=project,
            title=fields.pop("title", "Change"),
            reason=fields.pop("reason", "Agreed with the customer."),
            effective_from=effective_from,
            changes=changes,
            **{**ACCEPTANCE, **fields},
        )
        if submit:
            co = services.change_order_submit(actor=actor or project.project_manager, change_order=co)
        return co

    return make


@pytest.fixture
def amend(propose, people):
    """``amend(project, changes, effective_from=…)`` → the contract version an admin's approval made."""

    def make(project, changes, *, effective_from, **fields):
        co = propose(project, changes, effective_from=effective_from, **fields)
        return services.change_order_approve(actor=people["admin"], change_order=co)

    return make


@pytest.fixture
def team(tm_project, people):
    """The consultant (default category Developer) and the sales rep are on the T&M project's team."""
    from projects.models import ProjectMember

    ProjectMember.objects.create(project=tm_project, user=people["consultant"], labour_category="Developer")
    ProjectMember.objects.create(project=tm_project, user=people["sales"], labour_category="Senior consultant")
    return tm_project
