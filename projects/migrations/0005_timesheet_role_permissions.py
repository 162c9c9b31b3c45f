"""The projects app's slice of the ROLES.md matrix, restated with time, expenses and locked periods.

``grant_role_permissions`` makes the newest matrix the truth for the app, so everything of 0002 is repeated
here. Object scope narrows it in the selectors: people log and see their own time and expenses, a project
manager approves those of their own projects, finance locks months.
"""

import importlib

from django.db import migrations

from backbone.roles import ALL, ALL_VIEW, grant_role_permissions

PLAN = ["project", "contractversion", "ratecardentry", "budgetline", "milestone", "billingrule"]
ENTRIES = ["timeentry", "expense"]


def _perms(verbs, models):
    return [f"{verb}_{model}" for verb in verbs for model in models]


LOG_OWN = _perms(["view", "add", "change", "delete"], ENTRIES)

MATRIX = {
    "sales": _perms(["view"], PLAN) + ["view_changeorder", "add_changeorder", "change_changeorder"] + LOG_OWN,
    "project_manager": _perms(["view"], PLAN)
    + ["add_project", "change_project"]
    + ["view_changeorder", "add_changeorder", "change_changeorder", "approve_changeorder", "view_budgetalert"]
    + LOG_OWN
    + ["approve_timeentry", "view_projectmember"],
    "consultant": ["view_project", "view_ratecardentry", "view_milestone"] + LOG_OWN,
    "finance": _perms(["view"], PLAN)
    + ["view_changeorder", "approve_changeorder", "view_budgetalert"]
    + _perms(["view"], ENTRIES)
    + ["add_lockedperiod", "view_lockedperiod"],
    "executive": _perms(["view"], PLAN)
    + ["view_changeorder", "approve_changeorder", "view_budgetalert"]
    + _perms(["view"], ENTRIES),
    "auditor": [ALL_VIEW],
    "admin": [ALL],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, "projects", MATRIX)


def restore(apps, schema_editor):
    """Back to 0002's matrix (the truth before this one)."""
    previous = importlib.import_module("projects.migrations.0002_role_permissions")
    grant_role_permissions(apps, "projects", previous.MATRIX)


class Migration(migrations.Migration):
    dependencies = [("projects", "0004_time_entries_expenses_locked_periods")]

    operations = [migrations.RunPython(grant, restore)]
