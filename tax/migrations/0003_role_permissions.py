"""The tax app's slice of the ../shared/ROLES.md matrix: finance edits rates, executives view them, auditors
read everything; whoever prices quotes or invoice drafts may preview tax."""

from django.db import migrations

from backbone.roles import ALL, ALL_VIEW, grant_role_permissions

MATRIX = {
    "sales": ["preview_tax"],
    "project_manager": ["preview_tax"],
    "consultant": [],
    "finance": [
        "view_jurisdiction",
        "view_taxrate",
        "add_taxrate",
        "change_taxrate",
        "view_taxcalculation",
        "view_ratedataload",
        "preview_tax",
    ],
    "executive": ["view_jurisdiction", "view_taxrate", "view_taxcalculation", "view_ratedataload", "preview_tax"],
    "auditor": [ALL_VIEW],
    "admin": [ALL],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, "tax", MATRIX)


class Migration(migrations.Migration):
    dependencies = [("tax", "0002_load_rate_data"), ("backbone", "0002_role_groups")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
