"""The billing app's slice of the ROLES.md matrix, restated with draft review and delivery: project managers
comment on the drafts of their projects (the selectors narrow it), finance sends issued invoices and resolves
disputes raised from the portal; executives read disputes and comments."""

import importlib

from django.db import migrations

from backbone.roles import ALL, ALL_VIEW, grant_role_permissions

READ = ["view_invoicerun", "view_runexception", "view_invoice", "view_invoiceline", "view_invoiceitem"]
REVIEW_READ = ["view_invoicecomment", "view_dispute", "view_portalvisit"]

MATRIX = {
    "project_manager": ["view_invoice", "view_invoiceline", "view_invoiceitem", "view_invoicedocument"]
    + ["view_invoicecomment", "add_invoicecomment", "view_dispute"],
    "finance": READ
    + ["view_invoicedocument"]
    + ["add_invoicerun", "start_invoicerun", "change_runexception"]
    + ["add_invoice", "change_invoice", "approve_invoice", "issue_invoice", "send_invoice"]
    + ["add_invoiceline", "change_invoiceline", "delete_invoiceline"]
    + REVIEW_READ
    + ["add_invoicecomment", "add_dispute", "resolve_dispute"],
    "executive": READ + ["view_invoicedocument", "approve_invoice"] + REVIEW_READ,
    "auditor": [ALL_VIEW],
    "admin": [ALL],
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, "billing", MATRIX)


def restore(apps, schema_editor):
    previous = importlib.import_module("billing.migrations.0006_document_permissions")
    grant_role_permissions(apps, "billing", previous.MATRIX)


class Migration(migrations.Migration):
    dependencies = [("billing", "0007_comments_disputes_portal")]

    operations = [migrations.RunPython(grant, restore)]
