"""The projects app's slice of the ROLES.md matrix, restated with milestone acceptance and project members.

``grant_role_permissions`` makes the newest matrix the truth for the app, so everything of 0005 is repeated
here. Project managers record the client's acceptance of their own projects' milestones and keep the team
of their own projects (selectors narrow both to their projects); admins do everything. Everyone who logs
time sees which months are locked and the teams of the projects they see.
"""

import importlib

from django.db import migrations

from backbone.roles import ALL, ALL_VIEW, grant_role_permissions

PLAN = ["project", "contractversion", "ratecardentry", "budgetline", "milestone", "billingrule"]
ENTRIES = ["timeentry", "expense"]


def _perms(verbs, models):
    return [f"{verb}_{model}" for verb in verbs for model in models]


LOG_OWN = _perms(["view", "add", "change", "delete"], ENTRIES)
TEAM = _perms(["view", "add", "change", "delete"], ["projectmember"])

MATRIX = {
    "sales": _perms(["view"], PLAN)
    + ["view_changeorder", "add_changeorder", "change_changeorder"]
    + LOG_OWN
    + ["view_lockedperiod", "view_projectmember"],
    "project_manager": _perms(["view"], PLAN)
    + ["add_project", "change_project"]
    + ["view_changeorder", "add_changeorder", "change_changeorder", "approve_changeorder", "view_budgetalert"]
    + LOG_OWN
    + ["approve_timeentry", "accept_milestone", "view_lockedperiod"]
    + TEAM,
    "consultant": ["view_project", "view_ratecardentry", "view_milestone", "view_lockedperiod", "view_projectmember"]
    + LOG_OWN,
    "finance": _perms(["view"], PLAN)
    + ["view_changeorder", "approve_changeorder", "view_budgetalert", "view_projectmember"]
    + _perms(["view"], ENTRIES)
    + ["add_lockedperiod", "view_lockedperiod"],
    "executive": _perms(["view"], PLAN)
    + ["view_changeorder", "approve_changeorder", "view_budgetalert", "view_projectmember", "view_lockedperiod"]
    + _perms(["view"], ENTRIES),
    "auditor": [ALL_VIEW],
    "admin": [ALL],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, "projects", MATRIX)


def restore(apps, schema_editor):
    """Back to 0005's matrix (the truth before this one)."""
    previous = importlib.import_module("projects.migrations.0005_timesheet_role_permissions")
    grant_role_permissions(apps, "projects", previous.MATRIX)


class Migration(migrations.Migration):
    dependencies = [("projects", "0006_milestone_acceptance")]

    operations = [migrations.RunPython(grant, restore)]
