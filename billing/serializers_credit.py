"""Serializers of credit notes in the API: what a client sends to credit an invoice (the whole of it, or chosen
lines with an optional amount each, the root cause, the explanation and the release wish), and what it gets
back (the credit note, and an invoice's credit notes with its balance).

They parse only: which lines may be credited and by how much, and when items may be released, is decided by
``billing.credit_notes`` (its messages name the line). A line is named by its public ID and must be a line of
the invoice in the URL (``context["invoice"]``).
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from projects.serializers import named_choices

from .models import CreditReason, Invoice, InvoiceLine
from .serializers import InvoiceSerializer

CreditReasonField = named_choices(
    "CreditNoteReason",
    CreditReason.choices,
    "Root cause: missing_time, misapplied_tax, scope_misunderstanding, pricing_error, goodwill, other.",
)


class CreditLineSerializer(serializers.Serializer):
    line = serializers.UUIDField(help_text="ID of a line of the credited invoice (GET /invoices/{id}/lines/).")
    amount = serializers.DecimalField(
        max_digits=None,
        decimal_places=None,
        required=False,
        allow_null=True,
        help_text="Net amount to credit, in the invoice's currency; leave it out to credit what remains of the line.",
    )

    def validate_line(self, value) -> InvoiceLine:
        invoice: Invoice = self.context["invoice"]
        lines = self.context.setdefault(
            "_invoice_lines", {line.public_id: line for line in InvoiceLine.objects.filter(invoice=invoice)}
        )
        line = lines.get(value)
        if line is None:
            raise serializers.ValidationError(f"{value} is not a line of {invoice}.")
        return line


class CreditNoteCreateSerializer(serializers.Serializer):
    full = serializers.BooleanField(
        default=False, help_text="Credit the whole invoice (what remains of every line); then send no lines."
    )
    lines = CreditLineSerializer(
        many=True, required=False, help_text="The lines to credit, each whole or in part (without full)."
    )
    reason = CreditReasonField()
    explanation = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=2000,
        help_text="Printed on the credit note; required for the reason other.",
    )
    release_items = serializers.BooleanField(
        default=False,
        help_text="Once the credit note is issued, the credited time, expenses, milestones and retainer months "
        "become billable again for a later run. Only for lines credited in full.",
    )

    def credit_request(self) -> dict[str, Any]:
        """The keyword arguments of ``credit_notes.credit_note_create`` (without actor and invoice)."""
        data = self.validated_data
        return {
            "full": data["full"],
            "lines": [{"line": row["line"], "amount": row.get("amount")} for row in data.get("lines") or []],
            "reason": data["reason"],
            "explanation": data.get("explanation", ""),
            "release_items": data["release_items"],
        }


class CreditNoteSerializer(InvoiceSerializer):
    """A credit note: the invoice fields with what it credits, why, and whether it releases the items."""

    credited_invoice = serializers.SlugRelatedField(slug_field="public_id", read_only=True)
    credited_invoice_number = serializers.CharField(source="credited_invoice.number", read_only=True, default="")
    credit_reason = CreditReasonField(read_only=True)
    credit_explanation = serializers.CharField(read_only=True)
    releases_items = serializers.BooleanField(read_only=True)

    class Meta(InvoiceSerializer.Meta):
        fields = [
            *InvoiceSerializer.Meta.fields,
            "credited_invoice",
            "credited_invoice_number",
            "credit_reason",
            "credit_explanation",
            "releases_items",
        ]
        read_only_fields = fields


class InvoiceBalanceSerializer(serializers.Serializer):
    """What an invoice still asks for after its credit notes (``credit_notes.invoice_balance``)."""

    currency = serializers.CharField()
    gross_total = serializers.DecimalField(max_digits=18, decimal_places=2)
    credited_amount = serializers.DecimalField(
        max_digits=18, decimal_places=2, help_text="Gross credited by issued credit notes (positive)."
    )
    remaining_amount = serializers.DecimalField(
        max_digits=18, decimal_places=2, help_text="Gross total less what issued credit notes credit."
    )
    pending_amount = serializers.DecimalField(
        max_digits=18, decimal_places=2, help_text="What credit notes not issued yet would credit on top."
    )
    issued_count = serializers.IntegerField()
    pending_count = serializers.IntegerField()


class CreditNoteListSerializer(serializers.Serializer):
    """A page of an invoice's credit notes (oldest first, discarded ones too) with the invoice's balance."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    balance = InvoiceBalanceSerializer()
    results = CreditNoteSerializer(many=True)
