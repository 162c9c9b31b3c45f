"""The one way billing learns the terms of a day: the contract version in force (greatest effective_from on or
before the day, ties by number) and the rate of a labour category on that day — on the boundaries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from projects import selectors
from projects.errors import ContractNotInForce, RateMissing

from .factories import START

pytestmark = pytest.mark.django_db

RAISE = dt.date(2026, 5, 1)
DAY = dt.timedelta(days=1)


@pytest.fixture
def raised(tm_project, amend):
    """Version 2 from 1 May: the senior consultant at 165 from 1 June (a rate set ahead of its version)."""
    amend(
        tm_project,
        [{"op": "rate.set", "labour_category": "Senior consultant", "rate": "165", "effective_from": "2026-06-01"}],
        effective_from=RAISE,
    )
    return tm_project


def test_no_contract_is_in_force_before_version_1(tm_project):
    with pytest.raises(ContractNotInForce, match=r"on 2026-03-01; the first version takes effect on 2026-03-02"):
        selectors.contract_version_on(project=tm_project, day=START - DAY)


@pytest.mark.parametrize(
    ("day", "number"),
    [(START, 1), (START + DAY, 1), (RAISE - DAY, 1), (RAISE, 2), (RAISE + DAY, 2), (dt.date(2030, 1, 1), 2)],
)
def test_the_version_in_force_on_the_boundaries(raised, day, number):
    assert selectors.contract_version_on(project=raised, day=day).number == number


def test_two_versions_from_the_same_day_the_later_number_governs(raised, amend):
    amend(raised, [{"op": "end_date.set", "planned_end": "2026-09-30"}], effective_from=RAISE)
    assert selectors.contract_version_on(project=raised, day=RAISE).number == 3
    assert selectors.contract_version_on(project=raised, day=RAISE - DAY).number == 1


@pytest.mark.parametrize(
    ("day", "rate"),
    [
        (START, "150"),
        (RAISE, "150"),  # version 2 governs, its new rate starts later
        (dt.date(2026, 5, 31), "150"),
        (dt.date(2026, 6, 1), "165"),
        (dt.date(2026, 6, 2), "165"),
    ],
)
def test_rate_on_the_boundaries(raised, day, rate):
    assert selectors.rate_on(project=raised, labour_category="Senior consultant", day=day) == Decimal(rate)


def test_rate_on_matches_the_category_whatever_its_case(raised):
    assert selectors.rate_on(project=raised, labour_category="senior CONSULTANT", day=START) == Decimal("150")


def test_a_missing_category_names_itself_and_the_day(tm_project):
    with pytest.raises(RateMissing, match=r"version 1\) has no rate for 'Architect' on that day"):
        selectors.rate_on(project=tm_project, labour_category="Architect", day=START)


def test_rate_on_before_the_contract_is_the_contract_error(tm_project):
    with pytest.raises(ContractNotInForce):
        selectors.rate_on(project=tm_project, labour_category="Senior consultant", day=START - DAY)


def test_the_rate_card_rows_keep_every_rate_with_the_version_that_brought_it(raised):
    rows = list(
        raised.rate_card.filter(labour_category="Senior consultant").values_list(
            "rate", "effective_from", "contract_version__number"
        )
    )
    assert rows == [(Decimal("150.0000"), START, 1), (Decimal("165.0000"), dt.date(2026, 6, 1), 2)]


def test_versions_and_diff_against_the_previous(raised):
    versions = list(selectors.versions_of(raised))
    assert [v.number for v in versions] == [1, 2]
    assert selectors.version_diff_from_previous(versions[0]) == []
    rows = selectors.version_diff_from_previous(versions[1])
    assert [(r["area"], r["change"]) for r in rows] == [("rate_card", "added")]
    assert selectors.current_terms(raised) == versions[1].terms
