"""Serializers of sending an invoice by email over the API: the request, and the Outbox message it answers."""

from __future__ import annotations

from rest_framework import serializers

from backbone.api_outbox import OutboundMessageSerializer

from .delivery import MESSAGE_MAX_LENGTH

__all__ = ["InvoiceSendSerializer", "OutboundMessageSerializer"]


class InvoiceSendSerializer(serializers.Serializer):
    """Who gets the invoice. Addresses are checked by the service (its message names the bad ones)."""

    to = serializers.ListField(
        child=serializers.CharField(max_length=254),
        required=False,
        max_length=20,
        help_text="Email addresses. Omitted or empty: the customer's active contacts who receive invoices.",
    )
    cc = serializers.ListField(child=serializers.CharField(max_length=254), required=False, max_length=20)
    message = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MESSAGE_MAX_LENGTH,
        help_text="Your own words, put before the standard text (written in the invoice's language).",
    )
