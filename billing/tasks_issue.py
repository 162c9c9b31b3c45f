"""Issuing from the queue: ``invoice_issue_task`` issues one approved invoice (a bulk issue of many approved
invoices enqueues one task each). Idempotent and safe to retry: an invoice issued already, by this task's
earlier attempt or by a duplicate racing it, is left as it is and its number returned. The PDF follows as
after any issue (``billing.tasks.invoice_pdf_render``, queued when the issuing transaction commits)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from backbone.errors import TransitionNotAllowed

from .issuing import invoice_issue
from .models import Invoice


def invoice_issue_task(invoice_id: int, actor_id: int) -> str:
    """Issue the invoice as ``actor_id``; returns its number for the task log ("missing" when the invoice is
    gone). Domain errors other than "already issued" (not approved, no bank account…) fail the task with their
    message, and nothing is issued."""
    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None:
        return "missing"
    if invoice.status == Invoice.Status.ISSUED:
        return invoice.number
    actor = get_user_model().objects.get(pk=actor_id)
    try:
        with transaction.atomic(durable=True):
            return invoice_issue(actor=actor, invoice=invoice).number
    except TransitionNotAllowed:
        # A duplicate of this task issued it while this one waited for the invoice's lock.
        invoice.refresh_from_db(fields=["status", "number"])
        if invoice.status == Invoice.Status.ISSUED:
            return invoice.number
        raise
