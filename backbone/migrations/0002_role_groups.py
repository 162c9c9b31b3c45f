"""Create the role groups of ../shared/ROLES.md and grant the backbone's own permissions."""

from django.db import migrations

from backbone.roles import ALL, ALL_VIEW, grant_role_permissions

# The backbone's slice of the ROLES.md matrix. History/audit: finance, executives, auditors and admins see
# all of it; everyone else sees the timelines of the records they may open.
MATRIX = {
    "sales": ["view_externalid", "add_externalid"],
    "project_manager": ["view_externalid"],
    "consultant": [],
    "finance": ["view_externalid", "add_externalid", "view_auditentry"],
    "executive": ["view_externalid", "view_auditentry"],
    "auditor": [ALL_VIEW],
    "admin": [ALL],
}

AUTH_MATRIX = {
    "auditor": ["view_user", "view_group", "view_permission"],
    "admin": ["view_user", "add_user", "change_user", "view_group", "change_group", "view_permission"],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, "backbone", MATRIX)
    grant_role_permissions(apps, "auth", AUTH_MATRIX)
    grant_role_permissions(apps, "authtoken", {"admin": [ALL], "auditor": [ALL_VIEW]})


class Migration(migrations.Migration):
    dependencies = [
        ("backbone", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
