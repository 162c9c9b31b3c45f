"""The backbone's slice of the ROLES.md matrix, restated with the Outbox: finance sends invoices and sees every
message sent and its attempts, and may send a failed one again; executives read it; auditors read everything."""

import importlib

from django.db import migrations

from backbone.roles import ALL, ALL_VIEW, grant_role_permissions

OUTBOX_READ = ["view_outboundmessage", "view_outboundattachment", "view_deliveryattempt"]

MATRIX = {
    "sales": ["view_externalid", "add_externalid"],
    "project_manager": ["view_externalid"],
    "consultant": [],
    "finance": ["view_externalid", "add_externalid", "view_auditentry"] + OUTBOX_READ + ["resend_outboundmessage"],
    "executive": ["view_externalid", "view_auditentry"] + OUTBOX_READ,
    "auditor": [ALL_VIEW],
    "admin": [ALL],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, "backbone", MATRIX)


def restore(apps, schema_editor):
    previous = importlib.import_module("backbone.migrations.0002_role_groups")
    grant_role_permissions(apps, "backbone", previous.MATRIX)


class Migration(migrations.Migration):
    dependencies = [("backbone", "0005_outbox")]

    operations = [migrations.RunPython(grant, restore)]
