"""Invoice API actions: Draft editing and review (header fields, lines, manual lines and discounts, comments).

A mixin of ``billing.api.InvoiceViewSet``; ``NEEDS`` adds the permission each action needs to the viewset's
``InvoicePermissions``.

* ``POST /api/v1/invoices/{id}/edit/``: header fields (only those given change).
* ``POST /api/v1/invoices/{id}/add-line/``: a manual line or a discount (``Idempotency-Key`` honoured).
* ``PATCH|DELETE /api/v1/invoices/{id}/lines/{line_id}/``: a line's description (and a manual line's
  figures); delete a manual line or a discount.
* ``GET|POST /api/v1/invoices/{id}/comments/``: the review comments; add one.

Every change answers the draft with its lines and the tax preview. ``billing.drafts`` checks every rule and
names the field at fault (400), refuses roles that do not edit (403) and invoices that are not drafts (409).
"""

from __future__ import annotations

import uuid

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from backbone.api import IDEMPOTENCY_KEY, READ_ERRORS, WRITE_ERRORS, idempotent, parse

from . import drafts, selectors
from .models import Invoice, InvoiceLine
from .serializers_drafts import (
    DraftHeaderSerializer,
    DraftLineAddSerializer,
    DraftLineUpdateSerializer,
    InvoiceCommentSerializer,
    InvoiceDraftSerializer,
)

NEEDS: dict[str, tuple[str, ...]] = {
    "edit": ("billing.view_invoice", "billing.change_invoice"),
    "add_line": ("billing.view_invoice", "billing.change_invoice", "billing.add_invoiceline"),
    # DELETE also needs billing.delete_invoiceline: the service checks it.
    "update_line": ("billing.view_invoice", "billing.change_invoice", "billing.change_invoiceline"),
    # POST also needs billing.add_invoicecomment: the service checks it (executives read, never write).
    "comments": ("billing.view_invoice", "billing.view_invoicecomment"),
}

LINE_ID = OpenApiParameter("line_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The line's ID.")


class InvoiceDraftsActions:
    def _draft(self, invoice: Invoice, status_code: int = status.HTTP_200_OK) -> Response:
        """The invoice as it is now, with its lines (two queries for them)."""
        invoice = selectors.access_invoice(user=self.request.user, public_id=invoice.public_id)
        invoice._prefetched_objects_cache = {"lines": selectors.invoice_lines(invoice)}
        return Response(InvoiceDraftSerializer(invoice, context=self.get_serializer_context()).data, status=status_code)

    def _line(self, invoice: Invoice, line_id: str) -> InvoiceLine:
        try:
            public_id = uuid.UUID(str(line_id))
        except ValueError:
            raise Http404 from None
        line = InvoiceLine.objects.filter(invoice=invoice, public_id=public_id).first()
        if line is None:
            raise Http404("No such line on this invoice.")
        line.invoice = invoice
        return line

    @extend_schema(
        summary="Edit a draft's header",
        description="PO number, printed notes, payment terms, grouping (a new one rebuilds the lines of work: "
        "rolled up by labour category and rate, or one line per entry; manual lines, discounts and descriptions "
        "of lines that bill the same entries stay) and the detail appendix. Only the fields given change. A draft "
        "waiting for its second approval loses its first one (approved again from the start); 409 for an "
        "approved invoice (return it to draft first) or an issued one.",
        request=DraftHeaderSerializer,
        responses={200: InvoiceDraftSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], serializer_class=DraftHeaderSerializer)
    def edit(self, request, *args, **kwargs):
        data = parse(self)
        invoice = drafts.invoice_update_header(actor=request.user, invoice=self.get_object(), **data)
        return self._draft(invoice)

    @extend_schema(
        summary="Add a manual line or a discount to a draft",
        description="kind manual: a catalog product (its name, unit, price and tax category are the defaults) or "
        "a description with quantity, unit and unit_price; it goes before the discounts. kind discount: percent "
        "(of the net of the other lines, per VAT category, rounded half up to the cent, following later changes) "
        "or amount (of one VAT category: product_tax_category when the lines have several). Answers the draft "
        "with the tax preview.",
        request=DraftLineAddSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: InvoiceDraftSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="add-line", serializer_class=DraftLineAddSerializer)
    def add_line(self, request, *args, **kwargs):
        invoice = self.get_object()

        def handler() -> Response:
            data = parse(self)
            if data.pop("kind") == "manual":
                drafts.line_add_manual(
                    actor=request.user,
                    invoice=invoice,
                    product=data.get("product"),
                    description=data.get("description", ""),
                    quantity=data.get("quantity"),
                    unit=data.get("unit", ""),
                    unit_price=data.get("unit_price"),
                    product_tax_category=data.get("product_tax_category", ""),
                )
            else:
                drafts.line_add_discount(
                    actor=request.user,
                    invoice=invoice,
                    description=data.get("description", ""),
                    percent=data.get("percent"),
                    amount=data.get("amount"),
                    product_tax_category=data.get("product_tax_category", ""),
                )
            return self._draft(invoice, status.HTTP_201_CREATED)

        return idempotent(request, handler)

    @extend_schema(
        methods=["PATCH"],
        summary="Change a line of a draft",
        description="The client-facing description and phase of any line; quantity, unit_price and "
        "product_tax_category of a manual line only (the lines of work take theirs from the entries they bill: "
        "400 naming the field). Answers the draft with the tax preview.",
        request=DraftLineUpdateSerializer,
        parameters=[LINE_ID],
        responses={200: InvoiceDraftSerializer, **WRITE_ERRORS},
    )
    @extend_schema(
        methods=["DELETE"],
        summary="Delete a manual line or a discount of a draft",
        description="Lines of work are not deleted (409): remove work by discarding the draft and re-running. "
        "Answers the draft with the tax preview.",
        request=None,
        parameters=[LINE_ID],
        responses={200: InvoiceDraftSerializer, **WRITE_ERRORS},
    )
    @action(
        detail=True,
        methods=["patch", "delete"],
        url_path=r"lines/(?P<line_id>[0-9a-fA-F-]+)",
        serializer_class=DraftLineUpdateSerializer,
    )
    def update_line(self, request, *args, line_id=None, **kwargs):
        invoice = self.get_object()
        line = self._line(invoice, line_id)
        if request.method == "DELETE":
            return self._draft(drafts.line_delete(actor=request.user, line=line))
        data = parse(self)
        drafts.line_update(actor=request.user, line=line, **data)
        return self._draft(invoice)

    @extend_schema(
        methods=["GET"],
        summary="The review comments of an invoice",
        description="Oldest first, paginated. Project managers see those of their projects' invoices.",
        responses={200: InvoiceCommentSerializer(many=True), **READ_ERRORS},
    )
    @extend_schema(
        methods=["POST"],
        summary="Comment on a draft",
        description="Project managers on the drafts of their projects (finance is notified), finance on any "
        "draft. 409 once the invoice is approved or issued.",
        request=InvoiceCommentSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: InvoiceCommentSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["get", "post"], serializer_class=InvoiceCommentSerializer)
    def comments(self, request, *args, **kwargs):
        invoice = self.get_object()
        if request.method == "POST":

            def handler() -> Response:
                data = parse(self)
                comment = drafts.invoice_comment_add(actor=request.user, invoice=invoice, body=data["body"])
                return Response(InvoiceCommentSerializer(comment).data, status=status.HTTP_201_CREATED)

            return idempotent(request, handler)
        page = self.paginate_queryset(drafts.invoice_comments(invoice))
        return self.get_paginated_response(InvoiceCommentSerializer(page, many=True).data)
