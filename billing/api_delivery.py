"""Invoice API actions: Delivery (send an issued invoice, its messages and attempts) and disputes.

A mixin of ``billing.api.InvoiceViewSet``; ``NEEDS`` adds the permission each action needs to the viewset's
``InvoicePermissions``.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from backbone.api import IDEMPOTENCY_KEY, READ_ERRORS, WRITE_ERRORS, idempotent, parse

from . import delivery
from .serializers_delivery import InvoiceSendSerializer, OutboundMessageSerializer

NEEDS: dict[str, tuple[str, ...]] = {
    "send": ("billing.view_invoice", delivery.SEND_PERMISSION),
    "messages": ("billing.view_invoice", "backbone.view_outboundmessage"),
}


class InvoiceDeliveryActions:
    @extend_schema(
        summary="Send an issued invoice or credit note by email",
        description="Queues an email with the stored PDF attached to the given addresses (default: the customer's "
        "active contacts who receive invoices), written in the invoice's language with the amount due, the due "
        "date and the portal link. Sent in the queue and retried with backoff; follow it in `messages` or the "
        "Outbox. The same Idempotency-Key queues one message; a new send makes another. 409 for a draft or "
        "before the PDF is rendered; 400 when there is no recipient or an address is invalid.",
        request=InvoiceSendSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: OutboundMessageSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], serializer_class=InvoiceSendSerializer)
    def send(self, request, *args, **kwargs):
        def handler() -> Response:
            data = parse(self)
            invoice = self.get_object()
            message = delivery.invoice_send(
                actor=request.user,
                invoice=invoice,
                to=data.get("to") or None,
                cc=data.get("cc") or None,
                message=data.get("message", ""),
            )
            message = delivery.messages_about_invoice(invoice).get(pk=message.pk)
            return Response(OutboundMessageSerializer(message).data, status=status.HTTP_201_CREATED)

        return idempotent(request, handler)

    @extend_schema(
        summary="The emails sent about an invoice, with each delivery attempt",
        responses={200: OutboundMessageSerializer(many=True), **READ_ERRORS},
    )
    @action(detail=True, methods=["get"], serializer_class=OutboundMessageSerializer)
    def messages(self, request, *args, **kwargs):
        rows = delivery.messages_about_invoice(self.get_object())
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(OutboundMessageSerializer(page, many=True).data)
