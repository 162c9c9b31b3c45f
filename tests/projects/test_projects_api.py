"""The projects API: the deal-won handoff (201, then 200 "already won"), projects and their nested plan,
contract versions with their diff, change orders and their actions; errors as JSON; lists in a constant
number of queries; everything in the OpenAPI schema."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from projects import services
from projects.models import ChangeOrder, Project

from .factories import DealFactory, tm_quote

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.fixture
def client_for():
    def make(user) -> APIClient:
        client = APIClient()
        client.force_login(user)
        return client

    return make


def win_url(deal) -> str:
    return f"{API}/deals/{deal.public_id}/win/"


# --- the handoff -------------------------------------------------------------------------------------------


def test_winning_answers_201_then_200_with_the_same_project(tm_deal, people, client_for):
    client = client_for(people["sales"])
    body = {"project_manager": "pm", "name": "Platform"}

    first = client.post(win_url(tm_deal), body, format="json")
    again = client.post(win_url(tm_deal), {"project_manager": "pm2"}, format="json")

    assert first.status_code == 201, first.json()
    assert again.status_code == 200, again.json()
    project = Project.objects.get()
    assert first.json()["id"] == again.json()["id"] == str(project.public_id)
    assert (first.json()["created"], again.json()["created"]) == (True, False)
    assert first.json()["number"] == "PRJ-000001" and first.json()["contract_version"] == 1
    assert first.json()["deal"] == {"id": str(tm_deal.public_id), "number": tm_deal.number}
    assert again.json()["project_manager"] == "pm" and again.json()["name"] == "Platform"


def test_the_idempotency_key_replays_the_first_answer(tm_deal, people, client_for):
    client = client_for(people["sales"])
    first = client.post(win_url(tm_deal), {"project_manager": "pm"}, format="json", HTTP_IDEMPOTENCY_KEY="win-1")
    replay = client.post(win_url(tm_deal), {"project_manager": "pm"}, format="json", HTTP_IDEMPOTENCY_KEY="win-1")
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay["Idempotent-Replayed"] == "true" and replay.json() == first.json()
    assert Project.objects.count() == 1


@pytest.mark.parametrize(("who", "status"), [("sales2", 404), ("pm", 403), ("finance", 403), ("auditor", 403)])
def test_only_the_deals_owner_or_an_admin_wins_it(tm_deal, people, client_for, who, status):
    response = client_for(people[who]).post(win_url(tm_deal), {"project_manager": "pm"}, format="json")
    assert response.status_code == status
    assert set(response.json()) == {"message", "code", "errors"}
    assert not Project.objects.exists()


def test_signed_out_callers_get_401(tm_deal):
    assert APIClient().post(win_url(tm_deal), {"project_manager": "pm"}, format="json").status_code == 401


def test_handoff_refusals_are_json_with_flat_keys(tm_deal, people, client_for, customer, legal_entity):
    client = client_for(people["sales"])
    response = client.post(win_url(tm_deal), {"project_manager": "nobody"}, format="json")
    assert response.status_code == 400 and "project_manager" in response.json()["errors"]

    response = client.post(win_url(tm_deal), {"project_manager": "consultant"}, format="json")
    assert response.status_code == 400
    assert "not an active project manager" in response.json()["errors"]["project_manager"][0]

    other = tm_quote(DealFactory(customer=customer, legal_entity=legal_entity))
    response = client.post(win_url(tm_deal), {"project_manager": "pm", "quote": str(other.public_id)}, format="json")
    assert response.status_code == 400 and "quote" in response.json()["errors"]

    bare = DealFactory(customer=customer, legal_entity=legal_entity)  # no quote at all
    response = client.post(win_url(bare), {"project_manager": "pm"}, format="json")
    assert response.status_code == 400 and "no accepted or sent quote" in response.json()["message"]


# --- projects and their plan --------------------------------------------------------------------------------


def _more_projects(people, customer, legal_entity, count: int) -> None:
    for n in range(count):
        deal = DealFactory(customer=customer, legal_entity=legal_entity, title=f"Project {n}")
        tm_quote(deal)
        services.deal_win(actor=people["sales"], deal=deal, project_manager=people["pm"])


def test_project_list_scope_and_constant_queries(
    tm_project, people, client_for, customer, legal_entity, django_assert_max_num_queries
):
    client = client_for(people["pm"])
    with django_assert_max_num_queries(8):
        assert client.get(f"{API}/projects/").json()["count"] == 1
    _more_projects(people, customer, legal_entity, 3)
    with django_assert_max_num_queries(8):
        body = client.get(f"{API}/projects/").json()
    assert body["count"] == 4 and {row["contract_version"] for row in body["results"]} == {1}
    assert client_for(people["pm2"]).get(f"{API}/projects/").json()["count"] == 0
    assert client_for(people["consultant"]).get(f"{API}/projects/").json()["count"] == 0
    assert client_for(people["finance"]).get(f"{API}/projects/?q=PRJ-000001").json()["count"] == 1


def test_a_project_outside_ones_scope_answers_404(tm_project, people, client_for):
    url = f"{API}/projects/{tm_project.public_id}/"
    assert client_for(people["pm"]).get(url).status_code == 200
    assert client_for(people["pm2"]).get(url).status_code == 404
    assert client_for(people["sales2"]).get(f"{API}/projects/{tm_project.public_id}/rate-card/").status_code == 404
    assert client_for(people["pm"]).get(f"{API}/projects/not-a-uuid/rate-card/").status_code == 404


def test_nested_plan_reads(fixed_project, tm_project, people, client_for):
    client = client_for(people["sales"])
    base = f"{API}/projects/{tm_project.public_id}"
    rates = client.get(f"{base}/rate-card/").json()["results"]
    assert [(r["labour_category"], r["rate"], r["contract_version"]) for r in rates] == [
        ("Developer", "99.0000", 1),
        ("Senior consultant", "150.0000", 1),
    ]
    lines = client.get(f"{base}/budget-lines/").json()["results"]
    assert {line["key"] for line in lines} == {"labour:senior-consultant", "labour:developer", "expenses:travel"}
    rules = client.get(f"{base}/billing-rules/").json()["results"]
    assert [r["model"] for r in rules] == ["expenses", "tm"]
    milestones = client.get(f"{API}/projects/{fixed_project.public_id}/milestones/").json()["results"]
    assert (milestones[0]["key"], milestones[0]["amount"], milestones[0]["slipped"]) == (
        "milestone:1",
        "12000.00",
        False,
    )
    budget = client.get(f"{base}/budget/").json()
    assert budget["planned_amount"] == "37000.00" and budget["actual_amount"] == "0.00"
    assert client.get(f"{base}/alerts/").status_code == 403  # sales do not see budget alerts
    assert client_for(people["pm"]).get(f"{base}/alerts/").json()["count"] == 0


def test_consultants_are_kept_out_of_the_plan(tm_project, people, client_for):
    client = client_for(people["consultant"])
    base = f"{API}/projects/{tm_project.public_id}"
    assert client.get(f"{base}/budget-lines/").status_code == 403  # no view_budgetline
    assert client.get(f"{base}/rate-card/").status_code == 404  # allowed in principle, no project in scope


def test_create_a_project_by_hand(people, client_for, customer, legal_entity):
    body = {
        "name": "Internal tooling",
        "customer": str(customer.public_id),
        "planned_start": "2026-03-01",
        "planned_end": "2026-06-30",
        "rate_card": [{"labour_category": "Developer", "rate": "100.00"}],
        "budget": [{"kind": "labour", "labour_category": "Developer", "hours": "10", "rate": "100"}],
        "billing_rules": [{"model": "tm"}],
    }
    client = client_for(people["pm"])
    bad = client.post(
        f"{API}/projects/", {**body, "budget": [{"kind": "non_labour", "description": "x"}]}, format="json"
    )
    assert bad.status_code == 400 and "budget.0.amount" in bad.json()["errors"]
    response = client.post(f"{API}/projects/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["project_manager"] == "pm" and response.json()["contract_version"] == 1
    assert client_for(people["sales"]).post(f"{API}/projects/", body, format="json").status_code == 403


def test_status_action(tm_project, people, client_for):
    url = f"{API}/projects/{tm_project.public_id}/status/"
    assert client_for(people["pm"]).post(url, {"status": "active"}, format="json").json()["status"] == "active"
    response = client_for(people["pm"]).post(url, {"status": "planned"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "transition_not_allowed"
    assert client_for(people["sales"]).post(url, {"status": "on_hold", "reason": "x"}, format="json").status_code == 403
    assert client_for(people["pm2"]).post(url, {"status": "on_hold", "reason": "x"}, format="json").status_code == 404


# --- contract versions ---------------------------------------------------------------------------------------


def test_versions_with_terms_and_the_diff(tm_project, amend, people, client_for, django_assert_max_num_queries):
    amend(
        tm_project,
        [{"op": "rate.set", "labour_category": "Senior consultant", "rate": "165", "effective_from": "2026-06-01"}],
        effective_from=dt.date(2026, 5, 1),
    )
    client = client_for(people["finance"])
    url = f"{API}/projects/{tm_project.public_id}/contract-versions/"
    with django_assert_max_num_queries(8):
        rows = client.get(url).json()["results"]
    assert [(v["number"], v["source"], v["effective_from"]) for v in rows] == [
        (1, "quote", "2026-03-02"),
        (2, "change_order", "2026-05-01"),
    ]
    assert rows[1]["change_order"]["number"] == "CO-000001" and rows[0]["quote"]
    detail = client.get(f"{url}{rows[1]['id']}/").json()
    assert detail["terms"]["rate_card"][-1]["rate"] == "165.0000" and len(detail["sha256"]) == 64
    diff = client.get(f"{url}{rows[1]['id']}/diff/").json()
    assert diff["number"] == 2 and diff["previous"] == 1
    assert diff["changes"][0]["text"] == "Rate for Senior consultant: €165.00 per hour from 2026-06-01 (was €150.00)."
    assert client.get(f"{url}{rows[0]['id']}/diff/").json() == {"number": 1, "previous": None, "changes": []}


# --- change orders -----------------------------------------------------------------------------------------

CHANGES = [{"op": "budget_line.add", "kind": "non_labour", "description": "Licences", "amount": "1000.00"}]


def _co_body(project, **overrides) -> dict:
    return {
        "project": str(project.public_id),
        "title": "More licences",
        "reason": "The team grew.",
        "effective_from": "2026-05-01",
        "changes": CHANGES,
        "customer_accepted_by": "Ida Berg",
        "customer_accepted_on": "2026-04-20",
        **overrides,
    }


def test_change_order_lifecycle_through_the_api(tm_project, people, client_for):
    pm = client_for(people["sales"])
    bad = pm.post(
        f"{API}/change-orders/",
        _co_body(tm_project, changes=[{"op": "rate.set", "labour_category": "Dev", "rate": 1.5}]),
        format="json",
    )
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) == {"changes.0.rate", "changes.0.effective_from"}

    created = pm.post(f"{API}/change-orders/", _co_body(tm_project), format="json")
    assert created.status_code == 201, created.json()
    co = created.json()
    assert (co["status"], co["budget_delta_amount"], co["proposed_by"]) == ("draft", "1000.00", "sales")
    url = f"{API}/change-orders/{co['id']}/"

    patched = pm.patch(url, {"title": "Licences for the new team"}, format="json")
    assert patched.status_code == 200 and patched.json()["title"] == "Licences for the new team"
    assert pm.post(f"{url}submit/").json()["status"] == "submitted"
    assert pm.patch(url, {"title": "Too late"}, format="json").status_code == 409

    refused = client_for(people["finance"]).post(f"{url}approve/")
    assert refused.status_code == 403 and "does not change billing terms" in refused.json()["message"]
    approved = client_for(people["pm"]).post(f"{url}approve/")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert approved.json()["resulting_version"] == 2 and approved.json()["decided_by"] == "pm"
    assert client_for(people["pm"]).post(f"{url}approve/").status_code == 409


def test_refusal_names_the_limit_and_the_amount(tm_project, propose, people, client_for):
    co = propose(
        tm_project, [{**CHANGES[0], "amount": "6000"}], effective_from=dt.date(2026, 5, 1), actor=people["sales"]
    )
    response = client_for(people["pm"]).post(f"{API}/change-orders/{co.public_id}/approve/")
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert "€6,000.00, above your change-order limit of €5,000.00" in response.json()["message"]


def test_reject_through_the_api(tm_project, propose, people, client_for):
    co = propose(tm_project, CHANGES, effective_from=dt.date(2026, 5, 1), actor=people["sales"])
    url = f"{API}/change-orders/{co.public_id}/reject/"
    assert client_for(people["pm"]).post(url, {}, format="json").status_code == 400
    response = client_for(people["pm"]).post(url, {"reason": "Not now."}, format="json")
    assert response.status_code == 200 and response.json()["rejection_reason"] == "Not now."


@pytest.mark.parametrize(("who", "status"), [("finance", 403), ("auditor", 403), ("consultant", 403), ("pm2", 400)])
def test_who_may_propose_through_the_api(tm_project, people, client_for, who, status):
    response = client_for(people[who]).post(f"{API}/change-orders/", _co_body(tm_project), format="json")
    assert response.status_code == status  # pm2 cannot even name a project outside their scope
    assert not ChangeOrder.objects.exists()


def test_change_order_list_scope_and_constant_queries(
    tm_project, propose, people, client_for, django_assert_max_num_queries
):
    propose(tm_project, CHANGES, effective_from=dt.date(2026, 5, 1))
    client = client_for(people["executive"])
    with django_assert_max_num_queries(8):
        assert client.get(f"{API}/change-orders/").json()["count"] == 1
    for _ in range(3):
        propose(tm_project, CHANGES, effective_from=dt.date(2026, 5, 1))
    with django_assert_max_num_queries(8):
        assert client.get(f"{API}/change-orders/").json()["count"] == 4
    assert client_for(people["pm2"]).get(f"{API}/change-orders/").json()["count"] == 0
    assert client_for(people["consultant"]).get(f"{API}/change-orders/").status_code == 403
    assert client.get(f"{API}/change-orders/?status=submitted&project={tm_project.public_id}").json()["count"] == 4


def test_nested_lists_keep_a_constant_number_of_queries(
    tm_project, amend, people, client_for, django_assert_max_num_queries
):
    client = client_for(people["pm"])
    base = f"{API}/projects/{tm_project.public_id}"
    for n in range(3):
        amend(
            tm_project,
            [
                {
                    "op": "rate.set",
                    "labour_category": "Developer",
                    "rate": str(100 + n),
                    "effective_from": f"2026-0{5 + n}-01",
                },
                {"op": "budget_line.add", "kind": "non_labour", "description": f"Item {n}", "amount": "10"},
            ],
            effective_from=dt.date(2026, 5, 1),
        )
    for path in ("rate-card", "budget-lines", "milestones", "billing-rules", "contract-versions"):
        with django_assert_max_num_queries(8):
            assert client.get(f"{base}/{path}/").status_code == 200


# --- schema ----------------------------------------------------------------------------------------------


def test_the_endpoints_are_in_the_openapi_schema(people, client_for):
    schema = client_for(people["pm"]).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/deals/{id}/win/",
        "/api/v1/projects/",
        "/api/v1/projects/{id}/status/",
        "/api/v1/projects/{project_id}/contract-versions/{id}/diff/",
        "/api/v1/change-orders/{id}/approve/",
    ):
        assert path in paths, path
    win = paths["/api/v1/deals/{id}/win/"]["post"]
    assert {"200", "201", "400", "403", "404", "409"} <= set(win["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in win["parameters"])
