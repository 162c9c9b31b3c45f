"""Fixtures shared by every test: users per role, an API client, and the browser switch."""

from __future__ import annotations

import os
import shutil

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from backbone.roles import Role

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def pytest_collection_modifyitems(config, items):
    """Browser tests run when Chromium is present; otherwise they are skipped with the reason — unless
    REQUIRE_BROWSER_TESTS is set (CI), where a missing browser is a failure, not a skip."""
    if shutil.which(CHROMIUM) or os.path.exists(CHROMIUM):
        return
    if os.environ.get("REQUIRE_BROWSER_TESTS"):
        raise pytest.UsageError(f"REQUIRE_BROWSER_TESTS is set but Chromium was not found at {CHROMIUM}.")
    skip = pytest.mark.skip(reason=f"Chromium not found at {CHROMIUM}; install Debian's chromium to run browser tests")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def make_user(db, django_user_model):
    def make(username: str, *roles: str, **extra):
        user = django_user_model.objects.create_user(
            username=username, password="pw-" + username, email=f"{username}@example.test", **extra
        )
        for role in roles:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def users(make_user):
    """One user per role, named after the role."""
    people = {role: make_user(role, role) for role in Role.values if role != Role.ADMIN}
    people[Role.ADMIN] = make_user("admin", Role.ADMIN, is_staff=True, is_superuser=True)
    people[Role.AUDITOR].is_staff = True
    people[Role.AUDITOR].save(update_fields=["is_staff"])
    return people


@pytest.fixture
def sales(users):
    return users[Role.SALES]


@pytest.fixture
def finance(users):
    return users[Role.FINANCE]


@pytest.fixture
def auditor(users):
    return users[Role.AUDITOR]


@pytest.fixture
def admin_user(users):
    return users[Role.ADMIN]


@pytest.fixture
def api_client():
    return APIClient()
