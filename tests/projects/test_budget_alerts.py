"""Alerts are raised once per crossing: budget thresholds per contract version, milestone slips per new date;
each new alert tells the project manager and finance once. (Nothing feeds actuals yet: time entry will.)"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from backbone.errors import ValidationFailed
from backbone.models import Notification
from projects import selectors, services
from projects.models import BudgetAlert

pytestmark = pytest.mark.django_db

# tm_project's budget: 15,000 + 19,800 + 2,200 = 37,000.00


def _told(project) -> list[tuple[str, str]]:
    return sorted(
        Notification.objects.filter(title__startswith=f"{project.number}:").values_list("user__username", "title")
    )


def test_each_threshold_crossed_raises_one_alert_and_tells_pm_and_finance_once(tm_project):
    assert services.budget_alerts_evaluate(project=tm_project, actual_amount=Decimal("20000")) == []

    raised = services.budget_alerts_evaluate(project=tm_project, actual_amount=Decimal("28000.00"))  # 75.7 %
    assert [(a.key, a.threshold_percent, a.kind) for a in raised] == [("budget:v1:75", 75, "budget_threshold")]
    assert raised[0].message == "75 % of the budget used: €28,000.00 of €37,000.00 (contract version 1)."
    assert (raised[0].actual_amount, raised[0].budget_amount) == (Decimal("28000.00"), Decimal("37000.00"))
    assert [who for who, _ in _told(tm_project)] == ["finance", "pm"]

    assert services.budget_alerts_evaluate(project=tm_project, actual_amount=Decimal("29000")) == []
    raised = services.budget_alerts_evaluate(project=tm_project, actual_amount=Decimal("37000"))
    assert [a.key for a in raised] == ["budget:v1:90", "budget:v1:100"]
    assert services.budget_alerts_evaluate(project=tm_project, actual_amount=Decimal("40000")) == []
    assert BudgetAlert.objects.filter(project=tm_project).count() == 3
    assert len(_told(tm_project)) == 6  # three alerts, two people each


def test_a_new_contract_version_gets_its_own_crossings(tm_project, amend):
    services.budget_alerts_evaluate(project=tm_project, actual_amount=Decimal("30000"))
    amend(
        tm_project,
        [{"op": "budget_line.add", "kind": "non_labour", "description": "Licences", "amount": "3000"}],
        effective_from=dt.date(2026, 5, 1),
    )
    raised = services.budget_alerts_evaluate(project=tm_project, actual_amount=Decimal("30000"))  # 75 % of 40,000
    assert [a.key for a in raised] == ["budget:v2:75"]


def test_an_empty_budget_raises_nothing(people, customer, legal_entity):
    project = services.project_create(
        actor=people["pm"],
        data={
            "name": "Internal",
            "customer": customer,
            "legal_entity": legal_entity,
            "planned_start": dt.date(2026, 3, 1),
            "planned_end": dt.date(2026, 3, 31),
            "billing_rules": [{"model": "tm"}],
        },
    )
    assert services.budget_alerts_evaluate(project=project, actual_amount=Decimal("100")) == []


def test_actuals_must_be_a_decimal(tm_project):
    with pytest.raises(ValidationFailed):
        services.budget_alerts_evaluate(project=tm_project, actual_amount=1000.5)


def test_a_milestone_slip_raises_one_alert_per_new_date(fixed_project, amend, people):
    move = [{"op": "milestone.move", "key": "milestone:2", "planned_date": "2026-07-15"}]
    amend(fixed_project, move, effective_from=dt.date(2026, 5, 1))
    alert = BudgetAlert.objects.get(project=fixed_project)
    assert (alert.kind, alert.key) == ("milestone_slip", "slip:milestone:2:2026-07-15")
    assert alert.milestone.key == "milestone:2"
    assert alert.message.startswith("Milestone 'Beta' moved to 2026-07-15, after its baseline 2026-06-30")
    assert [who for who, _ in _told(fixed_project)] == ["finance", "pm"]

    # Back to the baseline (no slip), then to the same late date again: that crossing was already told.
    amend(fixed_project, [{**move[0], "planned_date": "2026-06-30"}], effective_from=dt.date(2026, 5, 1))
    amend(fixed_project, move, effective_from=dt.date(2026, 5, 1))
    assert BudgetAlert.objects.filter(project=fixed_project).count() == 1
    amend(fixed_project, [{**move[0], "planned_date": "2026-07-31"}], effective_from=dt.date(2026, 5, 1))
    assert sorted(BudgetAlert.objects.filter(project=fixed_project).values_list("key", flat=True)) == [
        "slip:milestone:2:2026-07-15",
        "slip:milestone:2:2026-07-31",
    ]
    assert len(_told(fixed_project)) == 4


def test_moving_a_milestone_earlier_raises_nothing(fixed_project, amend):
    amend(
        fixed_project,
        [{"op": "milestone.move", "key": "milestone:2", "planned_date": "2026-06-15"}],
        effective_from=dt.date(2026, 5, 1),
    )
    assert not BudgetAlert.objects.exists()


def test_alerts_are_shown_to_those_who_may_see_them(tm_project, people):
    services.budget_alerts_evaluate(project=tm_project, actual_amount=Decimal("37000"))
    assert selectors.budget_alerts_of(user=people["pm"], project=tm_project).count() == 3
    assert selectors.budget_alerts_of(user=people["finance"], project=tm_project).count() == 3
    assert selectors.budget_alerts_of(user=people["sales"], project=tm_project).count() == 0  # no view_budgetalert
    assert selectors.budget_alerts_of(user=people["pm2"], project=tm_project).count() == 0  # not their project
    assert selectors.notifications_of(people["pm"]).filter(title__contains="% of the budget").count() == 3


def test_budget_summary_plans_per_category_with_zero_actuals(tm_project):
    summary = selectors.project_budget_summary(tm_project)
    assert [(r.key, r.label, r.planned_hours, r.planned_amount, r.actual_amount) for r in summary.rows] == [
        ("labour:senior-consultant", "Senior consultant", Decimal("100.00"), Decimal("15000.00"), Decimal(0)),
        ("labour:developer", "Developer", Decimal("200.00"), Decimal("19800.00"), Decimal(0)),
        ("expenses:travel", "Travel", None, Decimal("2200.00"), Decimal(0)),
    ]
    assert (summary.planned_amount, summary.planned_hours, summary.burn_percent) == (
        Decimal("37000.00"),
        Decimal("300.00"),
        Decimal("0.0"),
    )
