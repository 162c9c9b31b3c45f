"""The billing app's slice of the ROLES.md matrix, restated with the rendered documents (PDFs) of invoices
and credit notes: whoever sees an invoice may download its PDF (the selectors narrow it to their scope)."""

import importlib

from django.db import migrations

from backbone.roles import ALL, ALL_VIEW, grant_role_permissions

READ = ["view_invoicerun", "view_runexception", "view_invoice", "view_invoiceline", "view_invoiceitem"]

MATRIX = {
    "project_manager": ["view_invoice", "view_invoiceline", "view_invoiceitem", "view_invoicedocument"],
    "finance": READ
    + ["view_invoicedocument"]
    + ["add_invoicerun", "start_invoicerun", "change_runexception"]
    + ["add_invoice", "change_invoice", "approve_invoice", "issue_invoice"]
    + ["add_invoiceline", "change_invoiceline", "delete_invoiceline"],
    "executive": READ + ["view_invoicedocument", "approve_invoice"],
    "auditor": [ALL_VIEW],
    "admin": [ALL],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, "billing", MATRIX)


def restore(apps, schema_editor):
    previous = importlib.import_module("billing.migrations.0002_role_permissions")
    grant_role_permissions(apps, "billing", previous.MATRIX)


class Migration(migrations.Migration):
    dependencies = [("billing", "0005_credit_notes_and_documents")]

    operations = [migrations.RunPython(grant, restore)]
