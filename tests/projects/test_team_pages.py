"""A project's team: the services of projects/members.py (every refusal and its message) and the team page
through Django's test client (who sees it, who changes it, confirmations, constant queries)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from backbone.errors import Conflict, NotPermitted, ValidationFailed
from projects import services
from projects import timesheets as ts
from projects.members import member_refusal, project_member_add, project_member_remove, project_member_update
from projects.models import ProjectMember

pytestmark = pytest.mark.django_db


def signed_in(client, user):
    client.force_login(user)
    return client


def text_of(response) -> str:
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", response.content.decode(), flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\s+", " ", text)
    return text.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&")


def field_error(response, html_name: str) -> str:
    match = re.search(rf'id="id_{re.escape(html_name)}_error">(.*?)</div>', response.content.decode(), re.S)
    return match.group(1).replace("&#x27;", "'") if match else ""


def flashed(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def team_url(project, name: str = "project-team") -> str:
    return reverse(f"projects:{name}", kwargs={"public_id": project.public_id})


def member_url(member, name: str) -> str:
    return reverse(f"projects:{name}", kwargs={"public_id": member.public_id})


def close(project, people) -> None:
    services.project_set_status(actor=people["pm"], project=project, status="closed", reason="Done")


# --- the services -------------------------------------------------------------------------------------


def test_the_project_manager_adds_a_person_with_a_category(tm_project, people):
    member = project_member_add(
        actor=people["pm"], project=tm_project, user=people["consultant"], labour_category="Developer"
    )
    assert (member.project, member.user, member.labour_category) == (tm_project, people["consultant"], "Developer")
    record = member.history.get()
    assert (record.history_user, record.history_change_reason) == (people["pm"], "Added to the team of PRJ-000001")
    # Now a member, the consultant may log on the project.
    assert ts.time_entry_create(
        actor=people["consultant"], project=tm_project, date=tm_project.planned_start, hours="1", description="Kick-off"
    )


def test_admins_keep_any_team(tm_project, people):
    assert project_member_add(actor=people["admin"], project=tm_project, user=people["sales"]).labour_category == ""


def test_add_refuses_a_duplicate(team, people):
    with pytest.raises(ValidationFailed) as caught:
        project_member_add(actor=people["pm"], project=team, user=people["consultant"])
    assert caught.value.errors == {"user": ["consultant is already on the team of PRJ-000001."]}
    assert (
        caught.value.message == "The person was not added to the team. consultant is already on the team of PRJ-000001."
    )


@pytest.mark.parametrize("role", ["finance", "executive", "auditor"])
def test_add_refuses_a_person_without_a_logging_role(tm_project, people, role):
    with pytest.raises(ValidationFailed) as caught:
        project_member_add(actor=people["pm"], project=tm_project, user=people[role])
    assert caught.value.errors == {
        "user": [f"{role} holds no role that logs time (consultant, project manager or sales)."]
    }
    assert not ProjectMember.objects.exists()


def test_add_refuses_an_inactive_person(tm_project, people):
    people["consultant"].is_active = False
    people["consultant"].save(update_fields=["is_active"])
    with pytest.raises(ValidationFailed) as caught:
        project_member_add(actor=people["pm"], project=tm_project, user=people["consultant"])
    assert caught.value.errors == {"user": ["Choose an active person."]}


def test_add_refuses_a_category_not_on_the_rate_card(tm_project, people):
    with pytest.raises(ValidationFailed) as caught:
        project_member_add(actor=people["pm"], project=tm_project, user=people["consultant"], labour_category="Pilot")
    assert caught.value.errors == {
        "labour_category": [
            "'Pilot' is not on the rate card of PRJ-000001; choose one of Developer, Senior consultant."
        ]
    }


def test_add_refuses_on_a_closed_project(tm_project, people):
    close(tm_project, people)
    with pytest.raises(ValidationFailed) as caught:
        project_member_add(actor=people["pm"], project=tm_project, user=people["consultant"])
    assert caught.value.errors == {"project": ["PRJ-000001 is closed; its team no longer changes."]}


@pytest.mark.parametrize(
    ("role", "message"),
    [
        ("pm2", "Only the project manager of PRJ-000001 keeps its team."),
        ("finance", "Your role does not keep project teams."),
        ("consultant", "Your role does not keep project teams."),
        ("auditor", "Auditors can view everything but change nothing."),
    ],
)
def test_only_the_projects_manager_and_admins_keep_the_team(team, people, role, message):
    member = ProjectMember.objects.get(user=people["consultant"])
    calls = [
        lambda: project_member_add(actor=people[role], project=team, user=people["pm2"]),
        lambda: project_member_update(actor=people[role], member=member, labour_category="Senior consultant"),
        lambda: project_member_remove(actor=people[role], member=member),
    ]
    for call in calls:
        with pytest.raises(NotPermitted) as caught:
            call()
        assert caught.value.message == message
    member.refresh_from_db()
    assert member.labour_category == "Developer"


def test_member_refusal_answers_for_the_page(team, people):
    assert member_refusal(people["pm"], team) is None
    assert member_refusal(people["admin"], team) is None
    assert member_refusal(people["pm2"], team) == "Only the project manager of PRJ-000001 keeps its team."


def test_update_changes_the_category_and_refuses_an_unknown_one(team, people):
    member = ProjectMember.objects.get(user=people["consultant"])
    assert project_member_update(
        actor=people["pm"], member=member, labour_category="Senior consultant"
    ).labour_category == ("Senior consultant")
    assert project_member_update(actor=people["pm"], member=member, labour_category=" ").labour_category == ""
    with pytest.raises(ValidationFailed) as caught:
        project_member_update(actor=people["pm"], member=member, labour_category="Pilot")
    assert caught.value.message.startswith("The team member was not changed. 'Pilot' is not on the rate card")


def test_update_refuses_on_a_closed_project(team, people):
    member = ProjectMember.objects.get(user=people["consultant"])
    close(team, people)
    with pytest.raises(ValidationFailed) as caught:
        project_member_update(actor=people["pm"], member=member, labour_category="Senior consultant")
    assert caught.value.errors == {"project": ["PRJ-000001 is closed; its team no longer changes."]}


def test_remove_stops_logging_and_keeps_what_was_logged(team, people):
    con = people["consultant"]
    entry = ts.time_entry_create(actor=con, project=team, date=team.planned_start, hours="2", description="Work")
    member = ProjectMember.objects.get(user=con)
    project_member_remove(actor=people["pm"], member=member)
    assert not ProjectMember.objects.filter(pk=member.pk).exists()
    entry.refresh_from_db()
    assert entry.person == con
    with pytest.raises(NotPermitted, match="not a member"):
        ts.time_entry_create(actor=con, project=team, date=team.planned_start, hours="1", description="More")
    with pytest.raises(Conflict) as caught:
        project_member_remove(actor=people["pm"], member=member)
    assert caught.value.message == "That person is no longer on the team."
    with pytest.raises(Conflict):
        project_member_update(actor=people["pm"], member=member, labour_category="")


def test_remove_refuses_on_a_closed_project(team, people):
    member = ProjectMember.objects.get(user=people["consultant"])
    close(team, people)
    with pytest.raises(ValidationFailed) as caught:
        project_member_remove(actor=people["pm"], member=member)
    assert caught.value.message == "PRJ-000001 is closed; its team no longer changes."
    assert ProjectMember.objects.filter(pk=member.pk).exists()


# --- the page -----------------------------------------------------------------------------------------


def test_the_team_page_lists_the_members_for_the_project_manager_with_the_forms(client, people, team):
    response = signed_in(client, people["pm"]).get(team_url(team))
    assert response.status_code == 200
    text = text_of(response)
    assert "Members (2)" in text
    rows = {row["member"].user.username: row for row in response.context["rows"]}
    assert set(rows) == {"consultant", "sales"}
    assert rows["consultant"]["roles"] == ["Consultant"] and rows["sales"]["roles"] == ["Sales"]
    assert rows["consultant"]["member"].labour_category == "Developer"
    assert re.search(r"\d{4}-\d{2}-\d{2}", text)  # added when
    # The add form offers people with a logging role who are not on the team yet.
    offered = {str(value) for value, _ in response.context["add_form"].fields["user"].choices if value}
    assert offered == {"pm", "pm2", "sales2"}
    categories = [value for value, _ in response.context["add_form"].fields["labour_category"].choices]
    assert categories == ["", "Developer", "Senior consultant"]
    html = response.content.decode()
    assert member_url(rows["consultant"]["member"], "project-team-remove") in html
    assert member_url(rows["consultant"]["member"], "project-team-member") in html


@pytest.mark.parametrize("role", ["finance", "executive", "auditor", "pm2_on_team"])
def test_others_who_may_see_the_project_see_the_team_read_only(client, people, team, role):
    if role == "pm2_on_team":
        ProjectMember.objects.create(project=team, user=people["pm2"])
        role = "pm2"
    response = signed_in(client, people[role]).get(team_url(team))
    assert response.status_code == 200
    assert response.context["add_form"] is None and all("form" not in row for row in response.context["rows"])
    assert team_url(team, "project-team-add") not in response.content.decode()
    assert response.context["refusal"]


def test_the_team_page_is_refused_outside_the_scope(client, people, team):
    assert signed_in(client, people["pm2"]).get(team_url(team)).status_code == 404


@pytest.mark.parametrize("role", ["consultant", "sales"])
def test_members_see_their_team_but_do_not_change_it(client, people, team, role):
    response = signed_in(client, people[role]).get(team_url(team))
    assert response.status_code == 200 and response.context["add_form"] is None
    assert team_url(team, "project-team-add") not in response.content.decode()


def test_the_team_page_signed_out_goes_to_sign_in(client, team):
    response = client.get(team_url(team))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_an_empty_team_says_who_logs(client, people, tm_project):
    text = text_of(signed_in(client, people["pm"]).get(team_url(tm_project)))
    assert "Nobody on the team yet" in text


def test_add_from_the_page(client, people, tm_project):
    signed_in(client, people["pm"])
    response = client.post(
        team_url(tm_project, "project-team-add"), {"user": "consultant", "labour_category": "Senior consultant"}
    )
    assert response.status_code == 302 and response["Location"] == team_url(tm_project)
    member = ProjectMember.objects.get()
    assert (member.user, member.labour_category) == (people["consultant"], "Senior consultant")
    assert flashed(response) == ["consultant is on the team of PRJ-000001 as Senior consultant; they may log time now."]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"user": "consultant"}, "user", "consultant is already on the team of PRJ-000001."),
        ({"user": "finance"}, "user", "finance holds no role that logs time (consultant, project manager or sales)."),
        ({"user": "nobody"}, "user", "Choose a person from the list"),
        ({"user": ""}, "user", "Choose the person to add."),
        (
            {"user": "sales2", "labour_category": "Pilot"},
            "labour_category",
            "Choose a labour category from the project",
        ),
    ],
    ids=["duplicate", "no-logging-role", "unknown-person", "no-person", "unknown-category"],
)
def test_add_refusals_are_shown_on_the_field(client, people, team, data, field, message):
    response = signed_in(client, people["pm"]).post(team_url(team, "project-team-add"), data)
    assert response.status_code == 400
    assert message in field_error(response, field)
    assert ProjectMember.objects.count() == 2


def test_add_on_a_closed_project_is_refused_with_the_reason(client, people, team):
    close(team, people)
    response = signed_in(client, people["pm"]).get(team_url(team))
    assert response.context["add_form"] is None
    assert "PRJ-000001 is closed; its team no longer changes." in text_of(response)
    response = client.post(team_url(team, "project-team-add"), {"user": "sales2"})
    assert response.status_code == 400
    assert "PRJ-000001 is closed; its team no longer changes." in text_of(response)
    assert ProjectMember.objects.count() == 2


def test_a_project_manager_on_someone_elses_team_is_refused_on_post(client, people, team):
    ProjectMember.objects.create(project=team, user=people["pm2"])
    response = signed_in(client, people["pm2"]).post(team_url(team, "project-team-add"), {"user": "sales2"})
    assert response.status_code == 403
    assert "Only the project manager of PRJ-000001 keeps its team." in text_of(response)
    member = ProjectMember.objects.get(user=people["consultant"])
    response = client.post(member_url(member, "project-team-member"), {"labour_category": "Senior consultant"})
    assert response.status_code == 403
    assert client.get(member_url(member, "project-team-remove")).status_code == 403
    client.post(member_url(member, "project-team-remove"))
    assert ProjectMember.objects.filter(pk=member.pk).exists()


def test_change_the_category_from_the_page(client, people, team):
    member = ProjectMember.objects.get(user=people["consultant"])
    signed_in(client, people["pm"])
    response = client.post(member_url(member, "project-team-member"), {"labour_category": "Senior consultant"})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.labour_category == "Senior consultant"
    assert flashed(response) == ["consultant's usual labour category is now Senior consultant."]
    response = client.post(member_url(member, "project-team-member"), {"labour_category": "Pilot"})
    assert response.status_code == 400
    assert "'Pilot' is not on the rate card of PRJ-000001" in text_of(response)
    row = next(row for row in response.context["rows"] if row["member"] == member)
    assert row["error"].startswith("'Pilot' is not on the rate card")
    member.refresh_from_db()
    assert member.labour_category == "Senior consultant"


def test_remove_asks_first_and_says_what_stays(client, people, team):
    con = people["consultant"]
    ts.time_entry_create(actor=con, project=team, date=team.planned_start, hours="2", description="Work")
    member = ProjectMember.objects.get(user=con)
    signed_in(client, people["pm"])
    page = client.get(member_url(member, "project-team-remove"))
    assert page.status_code == 200
    assert "Take consultant off the team of PRJ-000001?" in text_of(page)
    assert "1 time entry and 0 expenses" in text_of(page)
    response = client.post(member_url(member, "project-team-remove"))
    assert response.status_code == 302 and response["Location"] == team_url(team)
    assert not ProjectMember.objects.filter(pk=member.pk).exists()
    assert "what they logged stays as it is" in flashed(response)[0]
    assert client.post(member_url(member, "project-team-remove")).status_code == 404


@pytest.mark.parametrize(
    ("role", "status"), [("finance", 403), ("executive", 403), ("auditor", 403), ("consultant", 403), ("sales", 403)]
)
def test_roles_without_the_team_permissions_change_nothing(client, people, team, role, status):
    member = ProjectMember.objects.get(user=people["consultant"])
    signed_in(client, people[role])
    assert client.post(team_url(team, "project-team-add"), {"user": "sales2"}).status_code == status
    assert client.post(member_url(member, "project-team-member"), {"labour_category": ""}).status_code == status
    assert client.post(member_url(member, "project-team-remove")).status_code == status
    assert ProjectMember.objects.count() == 2


def test_members_of_projects_out_of_scope_answer_404(client, people, team):
    member = ProjectMember.objects.get(user=people["consultant"])
    signed_in(client, people["pm2"])
    assert client.post(team_url(team, "project-team-add"), {"user": "sales2"}).status_code == 404
    assert client.post(member_url(member, "project-team-member"), {"labour_category": ""}).status_code == 404
    assert client.get(member_url(member, "project-team-remove")).status_code == 404
    assert client.get(team_url(team, "project-team-add")).status_code == 405  # POST only


def test_team_page_queries_do_not_grow_with_members(client, people, team, make_user, django_assert_max_num_queries):
    signed_in(client, people["pm"])
    client.get(team_url(team))
    with CaptureQueriesContext(connection) as one:
        assert client.get(team_url(team)).status_code == 200
    for index in range(5):
        person = make_user(f"extra{index}", "consultant")
        person.groups.add(Group.objects.get(name="sales"))
        ProjectMember.objects.create(project=team, user=person, labour_category="Developer")
        make_user(f"candidate{index}", "consultant")
    with django_assert_max_num_queries(len(one)):
        response = client.get(team_url(team))
    assert len(response.context["rows"]) == 7
