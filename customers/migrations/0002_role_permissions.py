"""The customers app's slice of the ../shared/ROLES.md matrix.

Model permissions are the ceiling; object scope narrows them in the selectors: a sales rep edits the accounts
they own (django-guardian object permission), a project manager sees the customers of their projects,
finance edits only the billing fields (``change_customer_billing``).
"""

from django.db import migrations

from backbone.roles import ALL, ALL_VIEW, grant_role_permissions

CUSTOMER_PARTS = ["customer", "address", "taxregistration", "contact"]


def _perms(verbs, models):
    return [f"{verb}_{model}" for verb in verbs for model in models]


MATRIX = {
    "sales": _perms(["view", "add", "change"], CUSTOMER_PARTS)
    + _perms(["delete"], ["address", "taxregistration", "contact"])
    + ["view_product", "view_legalentity"],
    "project_manager": _perms(["view"], CUSTOMER_PARTS) + ["view_product", "view_legalentity"],
    "consultant": [],
    "finance": _perms(["view"], CUSTOMER_PARTS)
    + ["change_customer_billing"]
    + _perms(["add", "change", "delete"], ["address", "taxregistration", "contact"])
    + _perms(["view", "add", "change"], ["product", "legalentity", "legalentityregistration", "bankaccount"])
    + _perms(["delete"], ["legalentityregistration", "bankaccount"]),
    "executive": _perms(
        ["view"], CUSTOMER_PARTS + ["product", "legalentity", "legalentityregistration", "bankaccount"]
    ),
    "auditor": [ALL_VIEW],
    "admin": [ALL],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, "customers", MATRIX)


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial"), ("backbone", "0002_role_groups")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
