"""The project pages through Django's test client: the list (filters, constant queries), a project's plan
versus actual, its contract versions and their diff, a project made by hand, change orders from the form to
approval (and every refusal shown as a message, never a 500), and winning a deal — twice, one project."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backbone.models import Notification
from customers.models import Deal, PipelineStage, Quote
from projects import services
from projects.models import ChangeOrder, ContractVersion, Project

from .factories import DealFactory, tm_quote

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
LIST_URL = reverse("projects:project-list")
CREATE_URL = reverse("projects:project-create")
HTMX = {"HX-Request": "true"}


# --- helpers ------------------------------------------------------------------------------------------------


def signed_in(client, user):
    client.force_login(user)
    return client


def text_of(response) -> str:
    """The page's visible text, tags stripped and whitespace collapsed, for assertions on wording."""
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", response.content.decode(), flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\s+", " ", text)
    return text.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&")


def field_error(response, html_name: str) -> str:
    """The error message rendered under the input named ``html_name`` (its ``<id>_error`` element)."""
    match = re.search(rf'id="id_{re.escape(html_name)}_error">(.*?)</div>', response.content.decode(), re.S)
    return match.group(1).replace("&#x27;", "'") if match else ""


def flashed(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def detail_url(project) -> str:
    return reverse("projects:project-detail", kwargs={"public_id": project.public_id})


def version_url(project, number: int) -> str:
    return reverse("projects:version-detail", kwargs={"public_id": project.public_id, "number": number})


def co_url(name: str, co) -> str:
    return reverse(f"projects:{name}", kwargs={"public_id": co.public_id})


def win_url(deal) -> str:
    return reverse("projects:deal-win", kwargs={"public_id": deal.public_id})


def management(prefix: str, total: int) -> dict[str, str]:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def change_order_post(*operations: dict, **header) -> dict[str, str]:
    """What the change order form sends: the header, then one formset row per operation."""
    data = {
        "title": "Second data source",
        "reason": "The customer adds their CRM as a source.",
        "effective_from": TODAY.isoformat(),
        "customer_accepted_by": "Ida Berg, COO",
        "customer_accepted_on": TODAY.isoformat(),
        **header,
        **management("changes", len(operations)),
    }
    for index, operation in enumerate(operations):
        for name, value in operation.items():
            data[f"changes-{index}-{name}"] = str(value)
    return data


# --- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture
def project(tm_deal, win):
    """A time & materials project running from a month ago for half a year (the dates of a page test must not
    depend on the day the suite runs)."""
    return win(tm_deal, planned_start=TODAY - dt.timedelta(days=30), planned_end=TODAY + dt.timedelta(days=180))


@pytest.fixture
def draft(project, people):
    return services.change_order_create(
        actor=people["pm"],
        project=project,
        title="More developer time",
        reason="A second data source.",
        effective_from=TODAY,
        changes=[
            {"op": "budget_line.add", "kind": "labour", "labour_category": "Developer", "hours": "40", "rate": "99"}
        ],
        customer_accepted_by="Ida Berg, COO",
        customer_accepted_on=TODAY,
    )


@pytest.fixture
def rate_change(project, people):
    """A submitted change order that changes a rate from next month (billing terms: finance approves)."""
    co = services.change_order_create(
        actor=people["pm"],
        project=project,
        title="Senior rate from next month",
        reason="Annual price review.",
        effective_from=TODAY,
        changes=[
            {
                "op": "rate.set",
                "labour_category": "Senior consultant",
                "rate": "180",
                "effective_from": (TODAY + dt.timedelta(days=20)).isoformat(),
            },
            {"op": "budget_line.add", "kind": "non_labour", "description": "Cloud credits", "amount": "800"},
        ],
        customer_accepted_by="Ida Berg, COO",
        customer_accepted_on=TODAY,
    )
    return services.change_order_submit(actor=people["pm"], change_order=co)


# --- the project list ---------------------------------------------------------------------------------------


def test_project_list_shows_the_projects_of_the_project_manager(client, people, project):
    response = signed_in(client, people["pm"]).get(LIST_URL)
    assert response.status_code == 200
    text = text_of(response)
    assert project.number in text and project.name in text
    assert project.customer.display_name in text
    assert "1 project" in text
    assert "New project" in text  # project managers create projects by hand
    assert reverse("projects:project-list") in response.text  # the navigation names the page


@pytest.mark.parametrize("who", ["sales2", "consultant", "pm2"])
def test_project_list_hides_projects_outside_the_scope_with_a_helpful_empty_state(client, people, project, who):
    response = signed_in(client, people[who]).get(LIST_URL)
    assert response.status_code == 200
    text = text_of(response)
    assert project.number not in text
    assert "No projects to show" in text or "No projects yet" in text
    assert "once its deal is won" in text or "marks a deal won" in text


@pytest.mark.parametrize("who", ["finance", "executive", "auditor", "sales"])
def test_project_list_offers_no_new_project_to_other_roles(client, people, project, who):
    response = signed_in(client, people[who]).get(LIST_URL)
    assert response.status_code == 200
    assert project.number in text_of(response)
    assert CREATE_URL not in response.text


def test_project_list_filters_by_status_customer_manager_and_search(client, people, project, fixed_project):
    services.project_set_status(actor=people["pm"], project=fixed_project, status=Project.Status.ACTIVE)
    signed_in(client, people["finance"])

    def numbers(**params) -> set[str]:
        return {p.number for p in client.get(LIST_URL, params).context["projects"]}

    both = {project.number, fixed_project.number}
    assert numbers() == both
    assert numbers(status="active") == {fixed_project.number}
    assert numbers(status="planned") == {project.number}
    assert numbers(customer=str(project.customer.public_id)) == both
    assert numbers(manager="pm") == both
    assert numbers(manager="pm2") == set()
    assert numbers(q=project.number) == {project.number}
    assert numbers(q="relaunch") == {fixed_project.number}  # "Website relaunch"
    empty = client.get(LIST_URL, {"q": "no such project"})
    assert "No projects match these filters" in text_of(empty)


def test_project_list_answers_htmx_with_the_results_only(client, people, project):
    response = signed_in(client, people["pm"]).get(LIST_URL, {"q": project.number}, headers=HTMX)
    assert response.status_code == 200
    assert "<html" not in response.text and project.number in response.text
    assert response["Vary"].count("HX-Request") == 1


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_project_list_queries_do_not_grow_with_rows(
    client, people, customer, legal_entity, win, project, django_assert_max_num_queries, headers
):
    signed_in(client, people["finance"])
    client.get(LIST_URL)  # the session and permission caches warm up alike for both counts
    with CaptureQueriesContext(connection) as one:
        assert client.get(LIST_URL, headers=headers).status_code == 200
    for index in range(4):
        deal = DealFactory(customer=customer, legal_entity=legal_entity, title=f"More work {index}")
        tm_quote(deal)
        win(deal)
    with django_assert_max_num_queries(len(one)):
        response = client.get(LIST_URL, headers=headers)
    assert len(response.context["projects"]) == 5


# --- one project ----------------------------------------------------------------------------------------------


def test_project_detail_shows_the_header_plan_versus_actual_and_the_rate_card(client, people, project):
    response = signed_in(client, people["pm"]).get(detail_url(project))
    assert response.status_code == 200
    text = text_of(response)
    for expected in (
        project.number,
        project.name,
        project.customer.display_name,
        project.legal_entity.short_name,
        "PO-4711",
        "Plan vs actual",
        "Actuals appear once time and expenses are approved.",
        "Senior consultant",
        "Developer",
        "Travel",
        "€37,000.00",  # 15,000 + 19,800 + 2,200: the whole value sold
        "Burn over time",
        "The actual line appears once time and expenses are approved",
        "Rate card",
        "in force today",
        "Billing rules",
        "Time & materials (rate card)",
        "Contract versions",
        "Version 1",
        "New change order",
    ):
        assert expected in text, expected
    chart = response.context["chart"]
    assert chart["actual"] == [] and chart["planned"][0]["y"] == "0.00"
    assert chart["planned"][-1] == {"x": project.planned_end.isoformat(), "y": "37000.00"}
    assert 'src="/static/vendor/chartjs/chart.umd.min.js"' in response.text
    rows = {row["row"].label: row for row in response.context["budget_rows"]}
    assert rows["Developer"]["planned_hours"] == "200" and rows["Developer"]["actual"] == "€0.00"


def test_project_detail_marks_the_rate_in_force_today_and_an_upcoming_one(client, people, project, rate_change):
    services.change_order_approve(actor=people["finance"], change_order=rate_change)
    response = signed_in(client, people["pm"]).get(detail_url(project))
    rows = [(row["entry"].labour_category, row["in_force"], row["upcoming"]) for row in response.context["rate_rows"]]
    assert ("Senior consultant", True, False) in rows
    assert ("Senior consultant", False, True) in rows
    assert "upcoming" in text_of(response)
    assert "Version 2" in text_of(response)


@pytest.mark.parametrize("who", ["finance", "executive", "auditor", "admin", "sales"])
def test_project_detail_is_readable_by_every_role_with_scope(client, people, project, who):
    response = signed_in(client, people[who]).get(detail_url(project))
    assert response.status_code == 200
    assert project.number in text_of(response)


@pytest.mark.parametrize("who", ["finance", "executive", "auditor"])
def test_project_detail_offers_readers_no_change(client, people, project, who):
    response = signed_in(client, people[who]).get(detail_url(project))
    text = text_of(response)
    assert "New change order" not in text
    assert reverse("projects:project-status", kwargs={"public_id": project.public_id}) not in response.text


@pytest.mark.parametrize("who", ["sales2", "pm2", "consultant"])
def test_project_detail_outside_the_scope_is_not_found(client, people, project, who):
    assert signed_in(client, people[who]).get(detail_url(project)).status_code == 404


def test_project_detail_signed_out_goes_to_sign_in(client, project):
    response = client.get(detail_url(project))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_project_detail_shows_milestones_with_baseline_and_slip(client, people, fixed_project):
    signed_in(client, people["pm"])
    co = services.change_order_create(
        actor=people["pm"],
        project=fixed_project,
        title="Beta later",
        reason="Customer's data arrives late.",
        effective_from=fixed_project.planned_start,
        changes=[{"op": "milestone.move", "key": "milestone:2", "planned_date": "2026-07-15"}],
        customer_accepted_by="Ida Berg",
        customer_accepted_on=TODAY,
    )
    services.change_order_submit(actor=people["pm"], change_order=co)
    services.change_order_approve(actor=people["pm"], change_order=co)
    response = client.get(detail_url(fixed_project))
    text = text_of(response)
    assert "Design sign-off" in text and "Baseline" in text
    slipped = [item for item in response.context["milestones"] if item["slipped"]]
    assert [item["milestone"].name for item in slipped] == ["Beta"]
    assert "Slipped 15 d" in text
    assert "Milestone 'Beta' moved to 2026-07-15" in text  # the slip alert


def test_project_detail_queries_do_not_grow_with_versions_and_change_orders(
    client, people, project, rate_change, django_assert_max_num_queries
):
    signed_in(client, people["admin"])
    client.get(detail_url(project))
    with CaptureQueriesContext(connection) as one:
        assert client.get(detail_url(project)).status_code == 200
    assert len(one) <= 17  # 15, plus the two queries of approved time and expenses behind the budget's actuals
    services.change_order_approve(actor=people["finance"], change_order=rate_change)
    for index in range(3):
        services.change_order_create(
            actor=people["pm"],
            project=project,
            title=f"Idea {index}",
            reason="Later.",
            effective_from=TODAY + dt.timedelta(days=20),
            changes=[{"op": "budget_line.add", "kind": "non_labour", "description": f"Item {index}", "amount": "10"}],
        )
    with django_assert_max_num_queries(len(one)):
        response = client.get(detail_url(project))
    assert len(response.context["change_orders"]) == 4 and len(response.context["versions"]) == 2


# --- status -------------------------------------------------------------------------------------------------


def test_the_project_manager_starts_the_project(client, people, project):
    url = reverse("projects:project-status", kwargs={"public_id": project.public_id})
    response = signed_in(client, people["pm"]).post(url, {"status": "active"})
    assert response.status_code == 302 and response["Location"] == detail_url(project)
    project.refresh_from_db()
    assert project.status == Project.Status.ACTIVE
    assert flashed(response) == [f"{project.number} is now active."]


def test_closing_without_a_reason_is_refused_with_a_message(client, people, project):
    url = reverse("projects:project-status", kwargs={"public_id": project.public_id})
    response = signed_in(client, people["pm"]).post(url, {"status": "closed", "reason": ""}, follow=True)
    assert response.status_code == 200
    assert f"Say why {project.number} is put closed." in text_of(response)
    project.refresh_from_db()
    assert project.status == Project.Status.PLANNED


@pytest.mark.parametrize(("who", "status"), [("auditor", 403), ("finance", 403), ("sales", 403), ("pm2", 404)])
def test_status_changes_are_refused_to_others(client, people, project, who, status):
    url = reverse("projects:project-status", kwargs={"public_id": project.public_id})
    assert signed_in(client, people[who]).post(url, {"status": "active"}).status_code == status
    project.refresh_from_db()
    assert project.status == Project.Status.PLANNED


def test_status_change_is_post_only(client, people, project):
    url = reverse("projects:project-status", kwargs={"public_id": project.public_id})
    assert signed_in(client, people["pm"]).get(url).status_code == 405


# --- a project by hand ------------------------------------------------------------------------------------------


def _project_post(customer, **overrides) -> dict[str, str]:
    data = {
        "name": "Internal analytics",
        "customer": str(customer.public_id),
        "planned_start": TODAY.isoformat(),
        "planned_end": (TODAY + dt.timedelta(days=90)).isoformat(),
        "reason": "Contract signed outside the pipeline",
        **management("rate_card", 1),
        "rate_card-0-labour_category": "Analyst",
        "rate_card-0-rate": "100",
        **management("budget", 1),
        "budget-0-kind": "labour",
        "budget-0-labour_category": "Analyst",
        "budget-0-hours": "50",
        "budget-0-rate": "100",
        **management("milestones", 0),
        **management("billing_rules", 1),
        "billing_rules-0-model": "tm",
    }
    data.update(overrides)
    return data


def test_a_project_manager_creates_a_project_by_hand(client, people, project):
    customer = project.customer  # the project manager sees the customers of their projects
    response = signed_in(client, people["pm"]).post(CREATE_URL, _project_post(customer))
    created = Project.objects.get(name="Internal analytics")
    assert response.status_code == 302 and response["Location"] == detail_url(created)
    assert created.project_manager == people["pm"] and created.deal is None
    version = created.contract_versions.get()
    assert version.source == ContractVersion.Source.MANUAL
    assert version.terms["budget"][0]["amount"] == "5000.00"


def test_a_project_by_hand_without_a_billing_rule_shows_the_services_message(client, people, project):
    data = _project_post(project.customer, **management("billing_rules", 1))
    data["billing_rules-0-model"] = ""
    del data["billing_rules-0-model"]
    data.update(management("billing_rules", 0))
    response = signed_in(client, people["pm"]).post(CREATE_URL, data)
    assert response.status_code == 400
    assert "Add at least one billing rule" in text_of(response)
    assert not Project.objects.filter(name="Internal analytics").exists()


def test_a_bad_budget_row_is_shown_on_its_input(client, people, project):
    data = _project_post(project.customer, **{"budget-0-amount": "1"})  # 50 h at 100 is not 1
    response = signed_in(client, people["pm"]).post(CREATE_URL, data)
    assert response.status_code == 400
    assert "= 5000.00, not 1.00" in field_error(response, "budget-0-amount")


@pytest.mark.parametrize("who", ["sales", "finance", "executive", "auditor", "consultant"])
def test_project_create_is_refused_to_other_roles(client, people, who):
    assert signed_in(client, people[who]).get(CREATE_URL).status_code == 403


def test_project_create_page_for_an_admin_asks_for_the_project_manager(client, people):
    response = signed_in(client, people["admin"]).get(CREATE_URL)
    assert response.status_code == 200
    assert 'name="project_manager"' in response.text
    pm_page = signed_in(client, people["pm"]).get(CREATE_URL)
    assert 'name="project_manager"' not in pm_page.text


# --- contract versions --------------------------------------------------------------------------------------------


def test_version_1_shows_the_frozen_terms(client, people, project):
    response = signed_in(client, people["sales"]).get(version_url(project, 1))
    assert response.status_code == 200
    text = text_of(response)
    for expected in (
        "Contract version 1",
        "Accepted quote",
        "The first version",
        "Lines sold",
        "Senior consultant",
        "€150.00",
        "Developer",
        "10 %",  # the developer's discount
        "Rate card",
        "Budget",
        "Billing rules",
        "Rebillable expenses with markup",
        "Markup 10 %",
        "Tax treatment",
        "Delivery as described in the statement of work.",
    ):
        assert expected in text, expected
    assert response.context["diff"] == []


def test_version_2_highlights_what_the_change_order_changed(client, people, project, rate_change):
    services.change_order_approve(actor=people["finance"], change_order=rate_change)
    response = signed_in(client, people["pm"]).get(version_url(project, 2))
    assert response.status_code == 200
    text = text_of(response)
    assert "What changed since version 1" in text
    assert "Rate for Senior consultant: €180.00 per hour" in text
    assert "Budget line added — Cloud credits: €800.00." in text
    assert "Total budget €37,000.00 → €37,800.00" in text
    assert 'class="tl-diff-added"' in response.text  # the new budget line and rate, marked green
    assert {row["change"] for row in response.context["diff"]} >= {"added", "total"}
    assert rate_change.number in text


def test_version_diff_shows_removed_lines_struck_through(client, people, project):
    co = services.change_order_create(
        actor=people["pm"],
        project=project,
        title="No travel",
        reason="Remote only.",
        effective_from=TODAY,
        changes=[{"op": "budget_line.remove", "key": "expenses:travel"}],
        customer_accepted_by="Ida Berg",
        customer_accepted_on=TODAY,
    )
    services.change_order_submit(actor=people["pm"], change_order=co)
    services.change_order_approve(actor=people["pm"], change_order=co)
    response = signed_in(client, people["pm"]).get(version_url(project, 2))
    assert 'class="tl-diff-removed"' in response.text
    assert "Budget line removed — Travel" in text_of(response)


@pytest.mark.parametrize(("who", "status"), [("consultant", 403), ("sales2", 404), ("pm2", 404)])
def test_version_detail_is_refused_outside_the_scope(client, people, project, who, status):
    assert signed_in(client, people[who]).get(version_url(project, 1)).status_code == status


def test_an_unknown_version_number_is_not_found(client, people, project):
    assert signed_in(client, people["pm"]).get(version_url(project, 7)).status_code == 404


# --- change orders: the form --------------------------------------------------------------------------------------


def test_change_order_form_offers_the_current_terms_as_choices(client, people, project):
    url = reverse("projects:change-order-create", kwargs={"public_id": project.public_id})
    response = signed_in(client, people["pm"]).get(url)
    assert response.status_code == 200
    form = response.context["formset"].forms[0]
    assert ("labour:developer", "Developer — €19,800.00") in form.fields["budget_line"].choices
    assert ("Senior consultant", "Senior consultant") in form.fields["labour_category"].choices
    assert 'id="operation-fields"' in response.text  # the map the script shows and hides fields by
    assert 'accept=".pdf,.jpg,.jpeg,.png' in response.text


@pytest.mark.parametrize(("who", "status"), [("finance", 403), ("auditor", 403), ("consultant", 403), ("sales2", 404)])
def test_change_order_form_is_refused_to_who_may_not_propose(client, people, project, who, status):
    url = reverse("projects:change-order-create", kwargs={"public_id": project.public_id})
    assert signed_in(client, people[who]).get(url).status_code == status


def test_the_sales_rep_of_the_account_may_propose(client, people, project):
    url = reverse("projects:change-order-create", kwargs={"public_id": project.public_id})
    assert signed_in(client, people["sales"]).get(url).status_code == 200


def test_a_good_change_order_is_saved_as_a_draft(client, people, project):
    url = reverse("projects:change-order-create", kwargs={"public_id": project.public_id})
    data = change_order_post(
        {"op": "budget_line.add", "kind": "labour", "labour_category": "Developer", "hours": "40", "rate": "110"},
        {"op": "end_date.set", "planned_end": (TODAY + dt.timedelta(days=200)).isoformat()},
        {"op": "rate.set", "new_labour_category": "Data engineer", "rate": "130", "effective_from": TODAY.isoformat()},
    )
    response = signed_in(client, people["pm"]).post(url, data)
    co = ChangeOrder.objects.get(project=project)
    assert response.status_code == 302 and response["Location"] == co_url("change-order-detail", co)
    assert co.status == ChangeOrder.Status.DRAFT and co.proposed_by == people["pm"]
    assert [op["op"] for op in co.changes] == ["budget_line.add", "end_date.set", "rate.set"]
    assert co.changes[2]["labour_category"] == "Data engineer"
    detail = client.get(response["Location"])
    text = text_of(detail)
    assert "Add a budget line: Developer — 40 h × €110.00 = €4,400.00" in text
    assert "Set a rate from a date: Data engineer at €130.00 per hour" in text
    assert "Submit for approval" in text and "Edit" in text


def test_a_bad_change_order_shows_each_error_on_its_row_and_saves_nothing(client, people, project):
    url = reverse("projects:change-order-create", kwargs={"public_id": project.public_id})
    data = change_order_post(
        {"op": "budget_line.add", "kind": "labour", "labour_category": "Developer", "hours": "10", "rate": "100"},
        {
            "op": "rate.set",
            "labour_category": "Developer",
            "rate": "120",
            "effective_from": (TODAY - dt.timedelta(days=400)).isoformat(),
        },
        {"op": "milestone.move", "milestone": ""},
    )
    response = signed_in(client, people["pm"]).post(url, data)
    assert response.status_code == 400
    assert "The change order was not saved." in text_of(response)
    assert "rates are never rewritten backwards" in field_error(response, "changes-1-effective_from")
    assert "There is no milestone" in field_error(response, "changes-2-milestone")
    assert field_error(response, "changes-0-hours") == ""
    assert not ChangeOrder.objects.exists()


def test_a_change_order_without_a_title_or_changes_is_refused_on_the_form(client, people, project):
    url = reverse("projects:change-order-create", kwargs={"public_id": project.public_id})
    response = signed_in(client, people["pm"]).post(url, change_order_post(title=""))
    assert response.status_code == 400
    assert field_error(response, "title") == "This field is required."
    assert not ChangeOrder.objects.exists()


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("acceptance.txt", b"ok", "text/plain"), "must be a PDF, JPEG or PNG"),
        (
            SimpleUploadedFile("acceptance.pdf", b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024), "application/pdf"),
            "at most 10 MB",
        ),
        (SimpleUploadedFile("acceptance.pdf", b"not a pdf at all", "application/pdf"), "its content is not a PDF"),
    ],
    ids=["type", "size", "content"],
)
def test_a_bad_acceptance_file_is_refused_on_its_input(client, people, project, upload, message):
    url = reverse("projects:change-order-create", kwargs={"public_id": project.public_id})
    data = change_order_post({"op": "end_date.set", "planned_end": (TODAY + dt.timedelta(days=200)).isoformat()})
    data["acceptance_file"] = upload
    response = signed_in(client, people["pm"]).post(url, data)
    assert response.status_code == 400
    assert message in field_error(response, "acceptance_file")
    assert not ChangeOrder.objects.exists()


def test_a_pdf_acceptance_is_kept_with_its_name(client, people, project):
    url = reverse("projects:change-order-create", kwargs={"public_id": project.public_id})
    data = change_order_post({"op": "end_date.set", "planned_end": (TODAY + dt.timedelta(days=200)).isoformat()})
    data["acceptance_file"] = SimpleUploadedFile("signed-change.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")
    assert signed_in(client, people["pm"]).post(url, data).status_code == 302
    co = ChangeOrder.objects.get()
    assert co.customer_acceptance_filename == "signed-change.pdf" and co.customer_acceptance_file


def test_proposing_on_a_closed_project_is_refused_with_a_message(client, people, project):
    services.project_set_status(actor=people["pm"], project=project, status="closed", reason="Done")
    url = reverse("projects:change-order-create", kwargs={"public_id": project.public_id})
    response = signed_in(client, people["pm"]).get(url, follow=True)
    assert response.redirect_chain[-1][0] == detail_url(project)
    assert "closed projects take no change orders" in text_of(response)


def test_editing_a_draft_keeps_its_operations_and_saves_the_new_ones(client, people, draft):
    url = co_url("change-order-edit", draft)
    signed_in(client, people["pm"])
    page = client.get(url)
    assert page.status_code == 200
    initial = page.context["formset"].forms[0].initial
    assert initial["op"] == "budget_line.add" and initial["labour_category"] == "Developer"
    data = change_order_post(
        {"op": "budget_line.add", "kind": "labour", "labour_category": "Developer", "hours": "80", "rate": "99"},
        title="Even more developer time",
        edit_reason="Doubled the hours",
    )
    response = client.post(url, data)
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.title == "Even more developer time" and draft.changes[0]["hours"] == "80.00"


def test_a_submitted_change_order_is_not_edited(client, people, rate_change):
    response = signed_in(client, people["pm"]).get(co_url("change-order-edit", rate_change), follow=True)
    assert "only drafts can be edited" in text_of(response)


# --- change orders: submission and decision ------------------------------------------------------------------


def test_submitting_tells_the_approvers(client, people, draft):
    response = signed_in(client, people["pm"]).post(co_url("change-order-submit", draft), follow=True)
    draft.refresh_from_db()
    assert draft.status == ChangeOrder.Status.SUBMITTED
    assert f"{draft.number} was submitted for approval" in text_of(response)
    assert Notification.objects.filter(title=f"{draft.number} waits for your approval").exists()


def test_submitting_without_the_customers_acceptance_shows_why(client, people, project):
    co = services.change_order_create(
        actor=people["pm"],
        project=project,
        title="Unagreed",
        reason="Not yet agreed.",
        effective_from=TODAY,
        changes=[{"op": "end_date.set", "planned_end": (TODAY + dt.timedelta(days=200)).isoformat()}],
    )
    response = signed_in(client, people["pm"]).post(co_url("change-order-submit", co), follow=True)
    assert response.status_code == 200
    assert "Record who accepted the change on the customer's side." in text_of(response)
    co.refresh_from_db()
    assert co.status == ChangeOrder.Status.DRAFT


def test_change_order_detail_shows_effect_timeline_and_the_buttons_each_role_may_use(client, people, rate_change):
    finance = signed_in(client, people["finance"]).get(co_url("change-order-detail", rate_change))
    text = text_of(finance)
    assert finance.status_code == 200
    assert "+€800.00" in text  # the budget change
    assert "Rates or billing rules: finance approves." in text
    assert "Submitted for approval" in text and "Approved or rejected" in text
    assert "Approve" in text and "Reject" in text
    pm = signed_in(client, people["pm"]).get(co_url("change-order-detail", rate_change))
    assert co_url("change-order-approve", rate_change) not in pm.text
    assert "changes billing terms" in text_of(pm)  # why the project manager cannot approve it
    auditor = signed_in(client, people["auditor"]).get(co_url("change-order-detail", rate_change))
    assert auditor.status_code == 200
    assert "<form" not in auditor.text.split('id="main"')[1].split("</main>")[0]


def test_approving_makes_the_next_version_and_links_it(client, people, project, rate_change):
    response = signed_in(client, people["finance"]).post(co_url("change-order-approve", rate_change), follow=True)
    rate_change.refresh_from_db()
    assert rate_change.status == ChangeOrder.Status.APPROVED
    text = text_of(response)
    assert f"{rate_change.number} was approved: contract version 2 takes effect on {TODAY.isoformat()}." in text
    assert version_url(project, 2) in response.text


def test_an_approval_the_service_refuses_is_shown_as_a_message_not_a_500(client, people, rate_change):
    # The project manager holds approve_changeorder, but a change of billing terms is finance's to approve.
    response = signed_in(client, people["pm"]).post(co_url("change-order-approve", rate_change), follow=True)
    assert response.status_code == 200
    assert "changes billing terms" in text_of(response)
    rate_change.refresh_from_db()
    assert rate_change.status == ChangeOrder.Status.SUBMITTED


def test_approving_a_draft_is_refused_with_a_message(client, people, draft):
    response = signed_in(client, people["executive"]).post(co_url("change-order-approve", draft), follow=True)
    assert "only submitted ones are approved" in text_of(response)


def test_rejecting_needs_a_reason(client, people, rate_change):
    response = signed_in(client, people["finance"]).post(co_url("change-order-reject", rate_change), {"reason": ""})
    assert response.status_code == 400
    assert field_error(response, "reason") == "This field is required."
    rate_change.refresh_from_db()
    assert rate_change.status == ChangeOrder.Status.SUBMITTED


def test_rejecting_with_a_reason_tells_the_proposer(client, people, rate_change):
    url = co_url("change-order-reject", rate_change)
    response = signed_in(client, people["finance"]).post(url, {"reason": "Rate above the framework agreement."})
    assert response.status_code == 302
    rate_change.refresh_from_db()
    assert rate_change.status == ChangeOrder.Status.REJECTED
    detail = text_of(client.get(co_url("change-order-detail", rate_change)))
    assert "Rejected" in detail and "Rate above the framework agreement." in detail


@pytest.mark.parametrize("name", ["change-order-submit", "change-order-approve", "change-order-reject"])
def test_auditors_change_nothing(client, people, rate_change, name):
    response = signed_in(client, people["auditor"]).post(co_url(name, rate_change), {"reason": "x"})
    assert response.status_code == 403
    rate_change.refresh_from_db()
    assert rate_change.status == ChangeOrder.Status.SUBMITTED


@pytest.mark.parametrize("name", ["change-order-submit", "change-order-approve", "change-order-reject"])
def test_change_order_actions_are_post_only(client, people, rate_change, name):
    assert signed_in(client, people["admin"]).get(co_url(name, rate_change)).status_code == 405


def test_a_change_order_outside_the_scope_is_not_found(client, people, rate_change):
    assert signed_in(client, people["sales2"]).get(co_url("change-order-detail", rate_change)).status_code == 404
    assert signed_in(client, people["consultant"]).get(co_url("change-order-detail", rate_change)).status_code == 403


# --- winning a deal ----------------------------------------------------------------------------------------------


def test_the_win_page_shows_the_deal_its_quote_and_the_prefilled_project(client, people, tm_deal):
    response = signed_in(client, people["sales"]).get(win_url(tm_deal))
    assert response.status_code == 200
    text = text_of(response)
    assert tm_deal.number in text and tm_deal.customer.display_name in text
    assert "Quote version 1 — sent" in text and "winning the deal accepts it" in text
    assert "€37,000.00" in text
    form = response.context["form"]
    quote = tm_deal.quotes.get()
    assert form.initial == {
        "name": tm_deal.title,
        "planned_start": quote.planned_start,
        "planned_end": quote.planned_end,
    }
    assert [user.username for user in form.fields["project_manager"].queryset] == ["pm", "pm2"]


def test_winning_twice_makes_one_project(client, people, tm_deal):
    signed_in(client, people["sales"])
    data = {"project_manager": "pm", "name": "Data platform", "planned_start": "", "planned_end": ""}
    first = client.post(win_url(tm_deal), data)
    project = Project.objects.get(deal=tm_deal)
    assert first.status_code == 302 and first["Location"] == detail_url(project)
    assert any("is won" in message for message in flashed(first))
    second = client.post(win_url(tm_deal), data)
    assert second.status_code == 302 and second["Location"] == detail_url(project)
    assert flashed(second)[-1] == f"This deal was already won: project {project.number}."
    assert Project.objects.filter(deal=tm_deal).count() == 1
    again = client.get(win_url(tm_deal))
    assert again.status_code == 302 and again["Location"] == detail_url(project)


def test_a_win_the_service_refuses_shows_the_message_on_the_field(client, people, tm_deal):
    data = {"project_manager": "pm", "planned_start": "2026-05-01", "planned_end": "2026-04-01"}
    response = signed_in(client, people["sales"]).post(win_url(tm_deal), data)
    assert response.status_code == 400
    assert "is before the planned start" in field_error(response, "planned_end")
    assert not Project.objects.filter(deal=tm_deal).exists()


def test_a_win_without_a_project_manager_is_refused_on_the_form(client, people, tm_deal):
    response = signed_in(client, people["sales"]).post(win_url(tm_deal), {"project_manager": "sales"})
    assert response.status_code == 400
    assert "Select a valid choice" in field_error(response, "project_manager")


def test_a_deal_without_a_sent_quote_explains_why_it_cannot_be_won(client, people, deal):
    tm_quote(deal, status=Quote.Status.DRAFT)
    signed_in(client, people["sales"])
    page = client.get(win_url(deal))
    assert "This quote is draft" in text_of(page)
    response = client.post(win_url(deal), {"project_manager": "pm"})
    assert response.status_code == 400
    assert "has no accepted or sent quote" in text_of(response)


@pytest.mark.parametrize(("who", "status"), [("pm", 403), ("finance", 403), ("auditor", 403), ("sales2", 404)])
def test_winning_is_refused_to_others(client, people, tm_deal, who, status):
    assert signed_in(client, people[who]).get(win_url(tm_deal)).status_code == status
    assert signed_in(client, people[who]).post(win_url(tm_deal), {"project_manager": "pm"}).status_code == status
    assert not Project.objects.filter(deal=tm_deal).exists()


def test_a_visible_deal_of_another_rep_explains_the_refusal(client, people, customer, legal_entity):
    deal = DealFactory(customer=customer, legal_entity=legal_entity, owner=people["sales2"])
    tm_quote(deal)
    response = signed_in(client, people["sales"]).get(win_url(deal))  # sales owns the account, not the deal
    assert response.status_code == 403
    assert "belongs to another sales rep" in text_of(response)
    assert "Mark won and create the project" not in text_of(response)
    refused = client.post(win_url(deal), {"project_manager": "pm"})
    assert refused.status_code == 403 and "belongs to another sales rep" in text_of(refused)
    assert not Project.objects.filter(deal=deal).exists()


def test_the_default_start_of_a_change_order_is_not_before_the_version_in_force(client, people, project, rate_change):
    services.change_order_approve(actor=people["finance"], change_order=rate_change)
    later = services.change_order_create(
        actor=people["pm"],
        project=project,
        title="From next month",
        reason="Scope grows.",
        effective_from=TODAY + dt.timedelta(days=10),
        changes=[{"op": "budget_line.add", "kind": "non_labour", "description": "Licences", "amount": "100"}],
        customer_accepted_by="Ida Berg",
        customer_accepted_on=TODAY,
    )
    services.change_order_submit(actor=people["pm"], change_order=later)
    services.change_order_approve(actor=people["pm"], change_order=later)
    url = reverse("projects:change-order-create", kwargs={"public_id": project.public_id})
    form = signed_in(client, people["pm"]).get(url).context["form"]
    assert form.initial["effective_from"] == TODAY + dt.timedelta(days=10)


def test_an_admin_wins_any_deal(client, people, tm_deal):
    response = signed_in(client, people["admin"]).post(win_url(tm_deal), {"project_manager": "pm2"})
    assert response.status_code == 302
    assert Project.objects.get(deal=tm_deal).project_manager == people["pm2"]
    deal = Deal.objects.get(pk=tm_deal.pk)
    assert deal.stage.outcome == PipelineStage.Outcome.WON
    assert Decimal(deal.probability) == 100
