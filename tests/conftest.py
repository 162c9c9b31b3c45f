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


def restore_data_migration_rows() -> None:
    """Put back the rows the data migrations made: role groups and their permissions, pipeline stages, and
    the shipped VAT rates.

    A transactional test ends by flushing the database, which empties those tables too, so a transactional
    test that runs after another would find no groups, stages or rates. The migrations' grant steps are
    re-runnable by design and are replayed in migration order; the rate data is loaded the way
    ``tax_load_rates`` does.
    """
    import sys

    from django.apps import apps
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.operations.special import RunPython

    from tax.models import TaxRate
    from tax.services import tax_rates_load

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes(), clean_start=True)
    for migration, _backwards in plan:
        if "grant_role_permissions" not in vars(sys.modules[migration.__module__]):
            continue
        for operation in migration.operations:
            if isinstance(operation, RunPython):
                operation.code(apps, None)  # the grant steps read models only, never the schema editor
    if not TaxRate.objects.exists():
        tax_rates_load()


@pytest.fixture(autouse=True)
def _data_migration_rows(request):
    """For transactional tests only: the data migrations' rows, which an earlier test's flush removed."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction")) or any(
        name in request.fixturenames for name in ("transactional_db", "live_server")
    )
    if transactional:
        request.getfixturevalue("transactional_db")
        restore_data_migration_rows()
