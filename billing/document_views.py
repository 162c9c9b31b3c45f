"""Downloads of the rendered documents of invoices (the PDF), as stored once after issue.

Never rendered here: the queue task ``billing.tasks.invoice_pdf_render`` renders and stores the PDF after
the issue commits, and an issued invoice's PDF is never rendered again. Until it is stored (a draft, or the
task has not run yet) the download answers 404 and the invoice page says the PDF is being rendered.
"""

from __future__ import annotations

from django.http import Http404

from backbone.downloads import stored_file_response
from backbone.views import Guarded

from . import selectors as s
from .models import InvoiceDocument


class InvoicePdfView(Guarded):
    """The stored PDF as an attachment, exactly as rendered. Whoever sees the invoice and holds
    ``billing.view_invoicedocument`` may download it; an invoice outside their scope answers 404."""

    permission_required = ("billing.view_invoice", "billing.view_invoicedocument")

    def get(self, request, public_id):
        invoice = s.access_invoice(user=request.user, public_id=public_id)
        document = InvoiceDocument.objects.filter(invoice=invoice, kind=InvoiceDocument.Kind.PDF).first()
        if document is None:
            raise Http404("The PDF of this invoice is not rendered yet.")
        return stored_file_response(
            document.file,
            filename=document.filename,
            content_type="application/pdf",
            missing="The PDF file is missing.",
        )
