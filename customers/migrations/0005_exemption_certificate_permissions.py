"""Who may see and keep customers' tax exemption certificates (ROLES.md "tax rules, rates, exemptions").

Finance keeps them (view, add, change, delete); sales, project managers and executives see them; auditors
see them through ALL_VIEW and admins hold ALL. ``grant_role_permissions`` makes the matrix given here the
whole truth for this app and expands ALL_VIEW / ALL against the permissions that exist when it runs, so the
matrix below is 0003's (0002 plus the legal entity details) plus the new rows, auditor and admin included:
their grants are re-expanded here to take in the new model's permissions.
"""

from importlib import import_module

from django.db import migrations

from backbone.roles import grant_role_permissions

CERTIFICATE = "exemptioncertificate"

# 0003 added these to 0002's matrix (its function builds them; repeated here as data).
ADDED_IN_0003 = {
    "sales": ["view_legalentityregistration", "view_bankaccount"],
    "project_manager": ["view_legalentityregistration", "view_bankaccount"],
}
ADDED_HERE = {
    "finance": [f"{verb}_{CERTIFICATE}" for verb in ("view", "add", "change", "delete")],
    "sales": [f"view_{CERTIFICATE}"],
    "project_manager": [f"view_{CERTIFICATE}"],
    "executive": [f"view_{CERTIFICATE}"],
}


def _matrix(*, with_certificates: bool) -> dict[str, list[str]]:
    base = import_module("customers.migrations.0002_role_permissions").MATRIX
    matrix = {role: list(perms) + ADDED_IN_0003.get(role, []) for role, perms in base.items()}
    if with_certificates:
        for role, perms in ADDED_HERE.items():
            matrix[role] = matrix.get(role, []) + perms
    return matrix


def grant(apps, schema_editor):
    grant_role_permissions(apps, "customers", _matrix(with_certificates=True))


def revoke(apps, schema_editor):
    """Back to 0003's matrix (auditors and admins keep whatever ALL_VIEW / ALL expand to)."""
    grant_role_permissions(apps, "customers", _matrix(with_certificates=False))


class Migration(migrations.Migration):
    dependencies = [("customers", "0004_exemption_certificates")]

    operations = [migrations.RunPython(grant, revoke)]
