"""The billing app's slice of the ROLES.md matrix. Object scope narrows it in the selectors: a project
manager reviews the drafts of their own projects; finance runs, edits, approves (within the approval limit)
and issues; executives view everything and approve above the limits; auditors read."""

from django.db import migrations

from backbone.roles import ALL, ALL_VIEW, grant_role_permissions

READ = ["view_invoicerun", "view_runexception", "view_invoice", "view_invoiceline", "view_invoiceitem"]

MATRIX = {
    "project_manager": ["view_invoice", "view_invoiceline", "view_invoiceitem"],
    "finance": READ
    + ["add_invoicerun", "start_invoicerun", "change_runexception"]
    + ["add_invoice", "change_invoice", "approve_invoice", "issue_invoice"]
    + ["add_invoiceline", "change_invoiceline", "delete_invoiceline"],
    "executive": READ + ["approve_invoice"],
    "auditor": [ALL_VIEW],
    "admin": [ALL],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, "billing", MATRIX)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_invoices_runs_items"), ("backbone", "0002_role_groups")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
