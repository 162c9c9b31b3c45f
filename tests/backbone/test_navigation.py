"""The main bar: related work areas share a dropdown once a person has two or more of them; a lone entry of
a group stands by itself; tools live in the user menu."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from backbone.context_processors import NavGroup


def _bar(client, *roles):
    user = get_user_model().objects.create_user(username="-".join(roles), password="pw")
    for role in roles:
        user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    bar = client.get("/").context["nav_main"]()
    return [
        (entry.label, [i.label for i in entry.items]) if isinstance(entry, NavGroup) else entry.label for entry in bar
    ]


@pytest.mark.django_db
def test_a_consultant_gets_a_time_menu(client):
    assert _bar(client, "consultant") == ["Home", "Projects", ("Time", ["Timesheet", "Expenses", "Import time"])]


@pytest.mark.django_db
def test_a_project_manager_bar_stays_short(client):
    bar = _bar(client, "project_manager")
    assert ("Time", ["Timesheet", "Expenses", "Approvals", "Import time"]) in bar
    assert [e for e in bar if isinstance(e, tuple) and e[0] == "Reference"] == [
        ("Reference", ["Catalog", "Legal entities", "Tax preview"])
    ], bar
    assert len(bar) <= 8


@pytest.mark.django_db
def test_finance_sees_expenses_alone_and_reference_data_grouped(client):
    bar = _bar(client, "finance")
    assert "Expenses" in bar  # the only entry of its group: no dropdown of one
    assert ("Reference", ["Catalog", "Legal entities", "Tax", "Tax preview"]) in bar


@pytest.mark.django_db
def test_the_group_of_the_current_page_is_active(client):
    user = get_user_model().objects.create_user(username="c", password="pw")
    user.groups.add(Group.objects.get(name="consultant"))
    client.force_login(user)
    response = client.get("/projects/expenses/")
    (time,) = [e for e in response.context["nav_main"]() if isinstance(e, NavGroup)]
    assert time.active and [i.label for i in time.items if i.active] == ["Expenses"]
    assert 'aria-current="page"' in response.content.decode()
