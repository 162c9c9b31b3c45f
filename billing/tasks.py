"""django-q2 task functions of billing; each is idempotent and safe to retry."""

from __future__ import annotations

import hashlib

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Invoice, InvoiceDocument
from .pdf import render_invoice_document, renderer_name
from .services import invoice_run_execute


def invoice_run_task(run_id: int) -> str:
    """Execute (or continue, or do nothing for) the invoice run; returns its status for the task log."""
    run = invoice_run_execute(run_id)
    return run.status if run is not None else "missing"


# --- the invoice PDF ------------------------------------------------------------------------------------------


def invoice_pdf_enqueue(invoice: Invoice) -> None:
    """Render the PDF of an invoice (or credit note) being issued once the issuing transaction commits:
    called inside it, so a rolled-back issue queues nothing."""
    from django_q.tasks import async_task

    transaction.on_commit(
        lambda pk=invoice.pk, number=invoice.number: async_task(
            "billing.tasks.invoice_pdf_render", pk, task_name=f"PDF {number or pk}"
        )
    )


def _has_pdf(invoice: Invoice) -> bool:
    return InvoiceDocument.objects.filter(invoice=invoice, kind=InvoiceDocument.Kind.PDF).exists()


def invoice_pdf_render(invoice_id: int) -> bool:
    """Render an issued invoice's PDF and store it once (file, SHA-256, size, pages, renderer). Returns
    whether it stored one: a missing or unissued invoice gets none, and an invoice that has its PDF keeps it
    (a retried or duplicated task changes nothing; two racing ones are settled by the unique constraint
    ``invoice_document_once``, the loser's file is removed). The task commits on its own (durable)."""
    return _render_and_store(invoice_id, durable=True)


def invoice_pdf_render_within(invoice_id: int) -> bool:
    """``invoice_pdf_render`` inside the caller's transaction (the demo seeder renders before it sends)."""
    return _render_and_store(invoice_id, durable=False)


def _render_and_store(invoice_id: int, *, durable: bool) -> bool:
    invoice = (
        Invoice.objects.select_related("legal_entity", "customer", "credited_invoice").filter(pk=invoice_id).first()
    )
    if invoice is None or invoice.status != Invoice.Status.ISSUED:
        return False
    if _has_pdf(invoice):
        return False
    rendered = render_invoice_document(invoice)  # outside any transaction: rendering takes a moment
    filename = f"{invoice.number}.pdf"
    document = InvoiceDocument(
        invoice=invoice,
        kind=InvoiceDocument.Kind.PDF,
        filename=filename,
        sha256=hashlib.sha256(rendered.data).hexdigest(),
        size=len(rendered.data),
        pages=rendered.pages,
        renderer=renderer_name(),
        rendered_at=timezone.now(),
    )
    document.file.save(filename, ContentFile(rendered.data), save=False)
    try:
        with transaction.atomic(durable=durable):
            document.save()
    except IntegrityError:
        document.file.delete(save=False)  # another task stored the PDF meanwhile; it stays the only one
        return False
    return True
