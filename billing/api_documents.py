"""Invoice API actions: Documents (PDF download) and credit notes.

A mixin of ``billing.api.InvoiceViewSet``; ``NEEDS`` adds the permission each action needs to the viewset's
``InvoicePermissions``.

* ``GET /invoices/{id}/pdf/`` — the stored PDF as rendered once after issue (``billing.tasks``), never rendered
  here. Until it is stored the answer is a JSON 404 that says why (a draft has none; an invoice issued a moment
  ago is being rendered, with ``Retry-After``). Whatever the client's ``Accept`` header, the answer is the file
  or a JSON error.
* ``GET /invoices/{id}/credit-notes/`` — the invoice's credit notes (discarded ones too: the record), oldest
  first, with the invoice's balance after them.
* ``POST /invoices/{id}/credit-notes/`` — a draft credit note of the issued invoice, through
  ``billing.credit_notes.credit_note_create`` (which decides everything and names the line it refuses);
  ``Idempotency-Key`` makes a retry return the first answer instead of a second credit note. Approve and issue
  it like any invoice (``/approve/``, ``/issue/``).
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response
from rest_framework.settings import api_settings

from backbone.api import IDEMPOTENCY_KEY, READ_ERRORS, WRITE_ERRORS, ApiErrorSerializer, flat_errors, idempotent
from backbone.downloads import StoredFileMissing, stored_file_response
from backbone.errors import ValidationFailed

from . import credit_notes as cn
from .models import Invoice, InvoiceDocument
from .serializers_credit import (
    CreditNoteCreateSerializer,
    CreditNoteListSerializer,
    CreditNoteSerializer,
    InvoiceBalanceSerializer,
)

NEEDS: dict[str, tuple[str, ...]] = {
    "pdf": ("billing.view_invoice", "billing.view_invoicedocument"),
    "credit_notes": ("billing.view_invoice",),
    "credit_note_create": ("billing.view_invoice", "billing.add_invoice"),  # the service: finance only
}

# An invoice issued less than this long ago without its PDF is "being rendered" (the queue task runs right after
# the issue commits); after that the PDF is overdue and the answer says so.
PDF_RENDER_GRACE = dt.timedelta(minutes=10)
PDF_RETRY_AFTER_SECONDS = 5

_CREDIT_NOTE_RELATED = (
    "customer",
    "legal_entity",
    "project",
    "run",
    "credited_invoice",
    "created_by",
    "approved_by",
    "second_approved_by",
    "issued_by",
)
_PAGE = [
    OpenApiParameter("page", OpenApiTypes.INT, OpenApiParameter.QUERY, description="Page number, from 1."),
    OpenApiParameter("page_size", OpenApiTypes.INT, OpenApiParameter.QUERY, description="At most 200; 25 unless set."),
]


class _FileOrJson(BaseContentNegotiation):
    """The download answers the file, or a JSON error, whatever the client accepts (``Accept: application/pdf``
    would otherwise be refused with 406 before the file is looked at)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _not_found(message: str, code: str, **headers: str) -> Response:
    return Response({"message": message, "code": code, "errors": {}}, status=status.HTTP_404_NOT_FOUND, headers=headers)


def _missing_pdf(invoice: Invoice) -> Response:
    """Why ``invoice`` has no PDF to download, as a JSON 404."""
    if invoice.status != Invoice.Status.ISSUED:
        state = {
            Invoice.Status.DRAFT: "is a draft",
            Invoice.Status.APPROVED: "is approved but not issued yet",
            Invoice.Status.DISCARDED: "was discarded",
        }.get(invoice.status, f"is {invoice.get_status_display().lower()}")
        return _not_found(f"{invoice} {state}: a PDF is rendered once it is issued.", "pdf_not_issued")
    if invoice.issued_at and timezone.now() - invoice.issued_at < PDF_RENDER_GRACE:
        return _not_found(
            f"The PDF of {invoice.number} is being rendered; try again in a few seconds.",
            "pdf_rendering",
            **{"Retry-After": str(PDF_RETRY_AFTER_SECONDS)},
        )
    return _not_found(
        f"The PDF of {invoice.number} is not rendered yet although it was issued on "
        f"{invoice.issue_date.isoformat()}; it is rendered in the queue (check that the queue runs).",
        "pdf_not_rendered",
    )


def _parse_credit_request(view, invoice: Invoice) -> dict:
    """The body as ``credit_note_create``'s arguments; per-field errors flattened (``lines.0.line``) like
    ``backbone.api.parse``."""
    serializer = CreditNoteCreateSerializer(
        data=view.request.data, context={**view.get_serializer_context(), "invoice": invoice}
    )
    if not serializer.is_valid():
        errors = flat_errors(serializer.errors)
        key, messages = next(iter(errors.items()))
        summary = messages[0] if key == api_settings.NON_FIELD_ERRORS_KEY else f"{key}: {messages[0]}"
        raise ValidationFailed(f"The credit note was not created: {summary}", errors=errors)
    return serializer.credit_request()


class InvoiceDocumentsActions:
    @extend_schema(
        summary="Download the PDF of an issued invoice or credit note",
        description="The document as rendered once after issue (never re-rendered), as an attachment named after "
        "the number. 404 with a JSON message until it is stored: code pdf_not_issued (drafts have no PDF), "
        "pdf_rendering (issued a moment ago; retry after Retry-After seconds) or pdf_not_rendered.",
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF."),
            (404, "application/json"): OpenApiResponse(
                ApiErrorSerializer, description="Not found, outside your scope, or no PDF yet (see the code)."
            ),
        },
    )
    @action(
        detail=True, methods=["get"], filter_backends=[], pagination_class=None, content_negotiation_class=_FileOrJson
    )
    def pdf(self, request, *args, **kwargs):
        invoice = self.get_object()
        document = InvoiceDocument.objects.filter(invoice=invoice, kind=InvoiceDocument.Kind.PDF).first()
        if document is None:
            return _missing_pdf(invoice)
        try:
            return stored_file_response(document.file, filename=document.filename, content_type="application/pdf")
        except StoredFileMissing:
            return _not_found(f"The PDF file of {invoice.number} is missing from the storage.", "pdf_missing")

    @extend_schema(
        summary="The credit notes of an invoice, with its balance",
        description="Oldest first, discarded ones included (the record). balance: the gross total, what issued "
        "credit notes credit, what remains, and what credit notes not issued yet would credit on top.",
        parameters=_PAGE,
        responses={200: CreditNoteListSerializer, **READ_ERRORS},
    )
    @action(detail=True, methods=["get"], url_path="credit-notes", filter_backends=[])
    def credit_notes(self, request, *args, **kwargs):
        invoice = self.get_object()
        notes = cn.credit_notes_of(invoice).select_related(*_CREDIT_NOTE_RELATED)
        page = self.paginate_queryset(notes)
        body = self.get_paginated_response(
            CreditNoteSerializer(page, many=True, context=self.get_serializer_context()).data
        ).data
        return Response(
            {
                "count": body["count"],
                "next": body["next"],
                "previous": body["previous"],
                "balance": InvoiceBalanceSerializer(cn.invoice_balance(invoice)).data,
                "results": body["results"],
            }
        )

    @extend_schema(
        summary="Credit an issued invoice",
        description="Finance. Creates a draft credit note: the whole invoice (full: true) or chosen lines, each "
        "whole (no amount) or in part (a net amount), with a root cause; release_items gives the credited items "
        "back to billing once the credit note is issued (lines credited in full only). Approve and issue it like "
        "an invoice. Refusals name the field or the line: errors are keyed like lines.0.amount. 409 when the "
        "invoice cannot be credited (a draft, a credit note).",
        request=CreditNoteCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: CreditNoteSerializer, **WRITE_ERRORS},
    )
    @credit_notes.mapping.post
    def credit_note_create(self, request, *args, **kwargs):
        def handler() -> Response:
            invoice = self.get_object()
            note = cn.credit_note_create(actor=request.user, invoice=invoice, **_parse_credit_request(self, invoice))
            note = Invoice.objects.select_related(*_CREDIT_NOTE_RELATED).get(pk=note.pk)
            data = CreditNoteSerializer(note, context=self.get_serializer_context()).data
            return Response(data, status=status.HTTP_201_CREATED)

        return idempotent(request, handler)
