"""Sales reps and project managers may see our legal entities' registrations and bank accounts.

They are printed on every invoice and quote, so they are not secrets; the first matrix granted the
legal entity but not its details, while the pages showed them. Everything else stays as in 0002.
"""

from importlib import import_module

from django.db import migrations

from backbone.roles import grant_role_permissions


def grant(apps, schema_editor):
    module = import_module("customers.migrations.0002_role_permissions")
    matrix = {role: list(perms) for role, perms in module.MATRIX.items()}
    for role in ("sales", "project_manager"):
        matrix[role] += ["view_legalentityregistration", "view_bankaccount"]
    grant_role_permissions(apps, "customers", matrix)


class Migration(migrations.Migration):
    dependencies = [("customers", "0002_role_permissions")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
