"""Every row lock of issuing, in one place.

Lock order across apps (``projects/lock_objects.py``): customer → deal → quotes → project → change order →
invoice → lines → payment. Issuing locks the projects an invoice bills first, then the invoice, then (through
``backbone.services.sequence_next``) the number counter; the billed mark locks the projects again (already
held) and their entries.
"""

from __future__ import annotations

from django.db.models import Q

from projects.models import Project

from .models import Invoice, InvoiceItem, InvoiceLine


def invoice_for_update(*, pk: int) -> Invoice:
    return Invoice.objects.select_for_update(of=("self",)).select_related("legal_entity", "customer").get(pk=pk)


def invoice_projects_for_update(*, invoice_pk: int) -> list[Project]:
    """The projects an invoice bills (its own, its lines' and its items'), locked in key order: one query."""
    items = InvoiceItem.objects.filter(invoice_id=invoice_pk).order_by().values("project_id")
    lines = InvoiceLine.objects.filter(invoice_id=invoice_pk, project__isnull=False).order_by().values("project_id")
    own = Invoice.objects.filter(pk=invoice_pk, project__isnull=False).order_by().values("project_id")
    return list(
        Project.objects.filter(Q(pk__in=items) | Q(pk__in=lines) | Q(pk__in=own))
        .order_by("pk")
        .select_for_update(of=("self",))
    )
