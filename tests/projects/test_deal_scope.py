"""ROLES.md: a project manager sees the deals of their own projects, and no other deal of the same customer."""

from __future__ import annotations

import pytest

from customers.selectors import deal_edit_allowed, deals_visible_to
from tests.projects.factories import DealFactory, tm_quote

pytestmark = pytest.mark.django_db


def test_a_project_manager_sees_the_deal_of_their_project_only(people, tm_deal, win, customer, legal_entity):
    pm = people["pm"]
    other = DealFactory(customer=customer, owner=tm_deal.owner, legal_entity=legal_entity)
    tm_quote(other)
    assert not deals_visible_to(pm).exists()

    win(tm_deal)

    assert list(deals_visible_to(pm)) == [tm_deal]
    assert other not in deals_visible_to(pm)
    assert not deal_edit_allowed(user=pm, deal=tm_deal)
