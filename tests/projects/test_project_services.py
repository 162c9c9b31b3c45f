"""Projects made by hand (version 1 "manual"), their lifecycle, and who sees which project."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from projects import selectors, services
from projects.models import ContractVersion, Project
from projects.terms import terms_sha256

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(customer, legal_entity):
    return {
        "name": "Internal tooling",
        "customer": customer,
        "legal_entity": legal_entity,
        "planned_start": dt.date(2026, 3, 1),
        "planned_end": dt.date(2026, 6, 30),
        "rate_card": [{"labour_category": "Developer", "rate": Decimal("100")}],
        "budget": [
            {"kind": "labour", "labour_category": "Developer", "hours": Decimal("50"), "rate": Decimal("100")},
            {"kind": "non_labour", "description": "Fixed build", "amount": Decimal("2000"), "fixed_fee": True},
        ],
        "milestones": [{"name": "Done", "planned_date": dt.date(2026, 6, 30), "amount": Decimal("2000")}],
        "billing_rules": [{"model": "tm"}, {"model": "fixed_fee"}],
    }


def test_a_project_manager_creates_a_project_with_a_manual_version_1(data, people):
    project = services.project_create(actor=people["pm"], data=data)
    assert project.number == "PRJ-000001" and project.project_manager == people["pm"] and project.deal is None
    assert (project.currency, project.payment_terms_days) == ("EUR", 30)  # the customer's defaults
    version = ContractVersion.objects.get(project=project)
    assert (version.source, version.number, version.effective_from, version.quote) == (
        "manual",
        1,
        dt.date(2026, 3, 1),
        None,
    )
    assert version.sha256 == terms_sha256(version.terms) and version.terms["tax"] is None
    assert list(project.rate_card.values_list("labour_category", "rate", "effective_from")) == [
        ("Developer", Decimal("100.0000"), dt.date(2026, 3, 1))
    ]
    assert list(project.budget_lines.order_by("id").values_list("key", "amount")) == [
        ("labour:developer", Decimal("5000.00")),
        ("fixed:fixed-build", Decimal("2000.00")),
    ]
    assert project.milestones.get().key == "milestone:1"
    assert people["pm"].has_perm("projects.change_project", project)


def test_an_admin_creates_a_project_for_another_manager(data, people):
    project = services.project_create(actor=people["admin"], data={**data, "project_manager": people["pm2"]})
    assert project.project_manager == people["pm2"]
    assert people["pm2"].has_perm("projects.change_project", project)


def test_a_project_manager_cannot_create_for_another(data, people):
    with pytest.raises(ValidationFailed) as caught:
        services.project_create(actor=people["pm"], data={**data, "project_manager": people["pm2"]})
    assert "projects that you manage" in caught.value.errors["project_manager"][0]


@pytest.mark.parametrize("who", ["sales", "finance", "executive", "consultant", "auditor"])
def test_other_roles_cannot_create_projects(data, people, who):
    with pytest.raises(NotPermitted):
        services.project_create(actor=people[who], data=data)


def test_the_plan_is_checked_under_flat_keys(data, people):
    bad = {
        **data,
        "name": "",
        "budget": [{"kind": "labour", "labour_category": "Developer", "hours": "x", "rate": "100"}],
        "milestones": [{"name": "Late", "planned_date": dt.date(2026, 9, 1), "amount": "2000"}],
    }
    with pytest.raises(ValidationFailed) as caught:
        services.project_create(actor=people["pm"], data=bad)
    assert "name" in caught.value.errors
    with pytest.raises(ValidationFailed) as caught:
        services.project_create(actor=people["pm"], data={**bad, "name": "Named"})
    errors = caught.value.errors
    assert "budget.0.hours" in errors and "milestones.0.planned_date" in errors
    with pytest.raises(ValidationFailed) as caught:
        services.project_create(actor=people["pm"], data={**data, "billing_rules": []})
    assert "billing_rules" in caught.value.errors
    assert not Project.objects.exists()


def test_status_moves_along_the_table_with_reasons(tm_project, people):
    project = services.project_set_status(actor=people["pm"], project=tm_project, status="active")
    assert project.status == "active"
    with pytest.raises(ValidationFailed) as caught:
        services.project_set_status(actor=people["pm"], project=project, status="on_hold")
    assert "reason" in caught.value.errors
    project = services.project_set_status(actor=people["pm"], project=project, status="on_hold", reason="Budget freeze")
    assert project.history.first().history_change_reason == "Budget freeze"
    with pytest.raises(ValidationFailed):
        services.project_set_status(actor=people["pm"], project=project, status="finished")
    project = services.project_set_status(actor=people["admin"], project=project, status="closed", reason="Done")
    with pytest.raises(TransitionNotAllowed, match="A closed project cannot become active"):
        services.project_set_status(actor=people["admin"], project=project, status="active")


def test_status_is_changed_by_the_manager_or_an_admin_only(tm_project, people):
    for who in ("pm2", "sales", "finance", "executive", "auditor"):
        with pytest.raises(NotPermitted):
            services.project_set_status(actor=people[who], project=tm_project, status="active")


def test_closing_waits_for_submitted_change_orders(tm_project, propose, people):
    co = propose(
        tm_project,
        [{"op": "end_date.set", "planned_end": "2026-09-30"}],
        effective_from=dt.date(2026, 5, 1),
    )
    with pytest.raises(Conflict, match=co.number):
        services.project_set_status(actor=people["pm"], project=tm_project, status="closed", reason="Done")


def test_who_sees_which_project(tm_project, people, data):
    other = services.project_create(actor=people["pm2"], data=data)
    visible = {who: set(selectors.projects_visible_to(people[who])) for who in people}
    assert visible["pm"] == {tm_project}
    assert visible["pm2"] == {other}
    assert visible["sales"] == {tm_project, other}  # both are projects of the customer sales owns
    assert visible["sales2"] == set()
    assert visible["consultant"] == set()  # assignments come with time entry
    for who in ("finance", "executive", "auditor", "admin"):
        assert visible[who] == {tm_project, other}


def test_visibility_takes_a_constant_number_of_queries(tm_project, people, django_assert_num_queries):
    pm = people["pm"]
    selectors.projects_visible_to(pm)  # warm the role and permission caches
    with django_assert_num_queries(1):
        list(selectors.project_list(user=pm))
