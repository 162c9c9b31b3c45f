"""The projects app's slice of the ROLES.md matrix. Object scope narrows it in the selectors: a project
manager edits their own projects, a sales rep sees the projects of accounts they own, a consultant the
projects they are assigned to."""

from django.db import migrations

from backbone.roles import ALL, ALL_VIEW, grant_role_permissions

PLAN = ["project", "contractversion", "ratecardentry", "budgetline", "milestone", "billingrule"]


def _perms(verbs, models):
    return [f"{verb}_{model}" for verb in verbs for model in models]


MATRIX = {
    "sales": _perms(["view"], PLAN) + ["view_changeorder", "add_changeorder", "change_changeorder"],
    "project_manager": _perms(["view"], PLAN)
    + ["add_project", "change_project"]
    + ["view_changeorder", "add_changeorder", "change_changeorder", "approve_changeorder", "view_budgetalert"],
    "consultant": ["view_project", "view_ratecardentry", "view_milestone"],
    "finance": _perms(["view"], PLAN) + ["view_changeorder", "approve_changeorder", "view_budgetalert"],
    "executive": _perms(["view"], PLAN) + ["view_changeorder", "approve_changeorder", "view_budgetalert"],
    "auditor": [ALL_VIEW],
    "admin": [ALL],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, "projects", MATRIX)


class Migration(migrations.Migration):
    dependencies = [("projects", "0001_initial"), ("backbone", "0002_role_groups")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
