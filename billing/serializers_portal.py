"""Serializers of the disputes API (``billing.api_portal``): a dispute as finance sees it, and the bodies that
record and resolve one."""

from __future__ import annotations

from rest_framework import serializers

from projects.serializers import named_choices

from . import disputes as d
from .models import Dispute

DisputeReasonField = named_choices("DisputeReason", Dispute.Reason.choices)
DisputeStatusField = named_choices("DisputeStatus", Dispute.Status.choices)
DisputeSourceField = named_choices("DisputeSource", Dispute.Source.choices)
DisputeOutcomeField = named_choices(
    "DisputeOutcome",
    [(value, label) for value, label in Dispute.Status.choices if value in d.OUTCOMES],
    "resolved (the client was right, or it was settled) or rejected (the invoice stands)",
)


class DisputeSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    invoice = serializers.SlugRelatedField(slug_field="public_id", read_only=True)
    reason = DisputeReasonField(read_only=True)
    status = DisputeStatusField(read_only=True)
    source = DisputeSourceField(read_only=True)
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Dispute
        fields = [
            "id",
            "invoice",
            "reason",
            "message",
            "contact_name",
            "contact_email",
            "source",
            "status",
            "resolution",
            "resolved_by",
            "resolved_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DisputeRecordSerializer(serializers.Serializer):
    reason = DisputeReasonField(help_text="What the client says is wrong.")
    message = serializers.CharField(max_length=d.MESSAGE_MAX, help_text="Their objection, in their words.")
    contact_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    contact_email = serializers.EmailField(max_length=254, required=False, allow_blank=True, default="")


class DisputeResolveSerializer(serializers.Serializer):
    outcome = DisputeOutcomeField()
    resolution = serializers.CharField(
        max_length=d.RESOLUTION_MAX, help_text="What was done, or why the invoice stands; the client sees it."
    )
