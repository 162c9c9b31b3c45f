"""The Outbox over the API (``/api/v1/outbox/``), read-only: every message sent, its attachments (name, size,
SHA-256) and each delivery attempt. Finance, executives, auditors and admins (``backbone.view_outboundmessage``);
a message is addressed by its public ID. The serializers here are also what billing answers for an invoice's
messages (``/api/v1/invoices/{id}/messages/``)."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, viewsets

from . import outbox
from .api import READ_ERRORS, ApiViewMixin, RolePermissions, lookup_public_id
from .models import DeliveryAttempt, OutboundAttachment, OutboundMessage


@extend_schema_field(
    {"type": "string", "enum": [v for v, _ in OutboundMessage.Status.choices]}, component_name="OutboundMessageStatus"
)
class MessageStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        kwargs["choices"] = OutboundMessage.Status.choices
        super().__init__(**kwargs)


@extend_schema_field(
    {"type": "string", "enum": [v for v, _ in DeliveryAttempt.Outcome.choices] + [""]},
    component_name="DeliveryAttemptOutcome",
)
class AttemptOutcomeField(serializers.CharField):
    pass


class OutboundAttachmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = OutboundAttachment
        fields = ["filename", "content_type", "size", "sha256"]
        read_only_fields = fields


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    outcome = AttemptOutcomeField(read_only=True, help_text="sent, failed, or empty while in progress.")

    class Meta:
        model = DeliveryAttempt
        fields = ["number", "started_at", "finished_at", "outcome", "error"]
        read_only_fields = fields


class AboutSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="about_id", allow_null=True, help_text="Public ID of what it is about.")
    label = serializers.CharField(source="about_label", help_text="e.g. the invoice number.")
    url = serializers.CharField(source="about_url", help_text="Path of its page.")


class OutboundMessageSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    status = MessageStatusField(read_only=True)
    about = AboutSerializer(source="*", read_only=True)
    to = serializers.ListField(child=serializers.EmailField(), read_only=True)
    cc = serializers.ListField(child=serializers.EmailField(), read_only=True)
    reply_to = serializers.ListField(child=serializers.EmailField(), read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    attachments = OutboundAttachmentSerializer(many=True, read_only=True)
    delivery_attempts = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = OutboundMessage
        fields = [
            "id",
            "topic",
            "about",
            "status",
            "from_email",
            "to",
            "cc",
            "reply_to",
            "subject",
            "body",
            "attempts",
            "max_attempts",
            "next_attempt_at",
            "sent_at",
            "last_error",
            "attachments",
            "delivery_attempts",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


class OutboxFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=OutboundMessage.Status.choices)
    topic = filters.CharFilter(help_text="invoice, credit_note, reminder…")
    about = filters.UUIDFilter(field_name="about_id", label="Public ID of what the messages are about")

    class Meta:
        model = OutboundMessage
        fields = ["status", "topic", "about"]


class OutboxPermissions(RolePermissions):
    """Reads only (``backbone.view_outboundmessage``); the viewset has no writes."""


@extend_schema_view(
    list=extend_schema(
        summary="The Outbox: every message sent",
        description="Newest first, each with its attachments and delivery attempts; filter by status, topic, about.",
    ),
    retrieve=extend_schema(
        summary="One message with its body, attachments and attempts",
        responses={200: OutboundMessageSerializer, **READ_ERRORS},
    ),
)
@extend_schema(tags=["outbox"])
class OutboxViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = OutboundMessageSerializer
    permission_classes = [OutboxPermissions]
    filterset_class = OutboxFilter
    queryset = OutboundMessage.objects.none()

    def get_queryset(self):
        return outbox.outbox_messages(user=self.request.user).prefetch_related("delivery_attempts")

    def get_object(self) -> OutboundMessage:
        return outbox.outbox_message_get(user=self.request.user, public_id=lookup_public_id(self))
