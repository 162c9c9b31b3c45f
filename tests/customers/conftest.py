"""Fixtures of the pipeline tests (deals, quotes): records made through the services."""

from __future__ import annotations

import pytest

from backbone.roles import Role
from tests.customers.deal_factories import make_customer, make_deal, make_entity, make_quote


@pytest.fixture
def sales2(make_user):
    return make_user("sales2", Role.SALES)


@pytest.fixture
def entity(db):
    return make_entity()


@pytest.fixture
def account(sales, entity):
    """A German business customer owned by ``sales``, billed by ``entity``."""
    return make_customer(sales, entity=entity, legal_name="Nordlicht Energie AG")


@pytest.fixture
def deal(sales, account):
    return make_deal(sales, account, title="Customer portal relaunch")


@pytest.fixture
def draft(sales, deal):
    """A draft quote: 40 h of a senior consultant at 150.00 and a 12,000.00 fixed-fee phase with its milestone."""
    return make_quote(sales, deal)
