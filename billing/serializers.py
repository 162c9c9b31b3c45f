"""Serializers of the billing API: what a run, an invoice and its lines look like from outside."""

from __future__ import annotations

from rest_framework import serializers

from customers.models import Language, LegalEntity
from projects.serializers import named_choices

from .models import Invoice, InvoiceItem, InvoiceLine, InvoiceRun, RunException

RunStatusField = named_choices("InvoiceRunStatus", InvoiceRun.Status.choices)
RunExceptionReasonField = named_choices("RunExceptionReason", RunException.Reason.choices)
InvoiceStatusField = named_choices("InvoiceStatus", Invoice.Status.choices)
InvoiceKindField = named_choices("InvoiceKind", Invoice.Kind.choices)
LineKindField = named_choices("InvoiceLineKind", InvoiceLine.Kind.choices)
ItemKindField = named_choices("InvoiceItemKind", InvoiceItem.Kind.choices)
InvoiceLanguageField = named_choices("InvoiceLanguage", Language.choices)


def _public_id():
    return serializers.UUIDField(source="public_id", read_only=True)


class InvoiceRunSerializer(serializers.ModelSerializer):
    id = _public_id()
    status = RunStatusField(read_only=True)
    legal_entity = serializers.SlugRelatedField(slug_field="public_id", read_only=True)
    started_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    progress_percent = serializers.IntegerField(read_only=True)
    exceptions_count = serializers.SerializerMethodField()

    class Meta:
        model = InvoiceRun
        fields = [
            "id",
            "number",
            "legal_entity",
            "period_start",
            "period_end",
            "status",
            "trigger",
            "progress_percent",
            "projects_total",
            "projects_done",
            "invoices_created",
            "items_billed",
            "exceptions_count",
            "attempts",
            "started_by",
            "started_at",
            "finished_at",
            "error",
            "created_at",
        ]
        read_only_fields = fields

    def get_exceptions_count(self, run: InvoiceRun) -> int:
        counted = getattr(run, "exceptions_count", None)
        return counted if counted is not None else run.exceptions.count()


class InvoiceRunStartSerializer(serializers.Serializer):
    legal_entity = serializers.SlugRelatedField(
        slug_field="public_id", queryset=LegalEntity.objects.all(), help_text="The legal entity that bills."
    )
    period_start = serializers.DateField(help_text="First day of the billing period.")
    period_end = serializers.DateField(help_text="Last day: items dated up to it are billed (not in the future).")


class RunExceptionSerializer(serializers.ModelSerializer):
    id = _public_id()
    reason = RunExceptionReasonField(read_only=True)
    project = serializers.SlugRelatedField(slug_field="public_id", read_only=True)
    project_number = serializers.CharField(source="project.number", read_only=True, default="")
    customer = serializers.SlugRelatedField(slug_field="public_id", read_only=True)

    class Meta:
        model = RunException
        fields = [
            "id",
            "reason",
            "message",
            "project",
            "project_number",
            "customer",
            "item_kind",
            "item_public_id",
            "item_date",
            "amount",
        ]
        read_only_fields = fields


class InvoiceItemSerializer(serializers.ModelSerializer):
    id = _public_id()
    kind = ItemKindField(read_only=True)
    source = serializers.SerializerMethodField(help_text="Public ID of the time entry, expense or milestone.")

    class Meta:
        model = InvoiceItem
        fields = ["id", "kind", "source", "retainer_month", "date", "description", "quantity", "unit_price", "amount"]
        read_only_fields = fields

    def get_source(self, item: InvoiceItem) -> str | None:
        source = item.time_entry or item.expense or item.milestone
        return str(source.public_id) if source is not None else None


class InvoiceLineSerializer(serializers.ModelSerializer):
    id = _public_id()
    kind = LineKindField(read_only=True)
    project = serializers.SlugRelatedField(slug_field="number", read_only=True)

    class Meta:
        model = InvoiceLine
        fields = [
            "id",
            "position",
            "kind",
            "project",
            "description",
            "phase",
            "labour_category",
            "note",
            "quantity",
            "unit",
            "unit_price",
            "net_amount",
            "tax_category",
            "tax_rate",
            "service_start",
            "service_end",
        ]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    id = _public_id()
    kind = InvoiceKindField(read_only=True)
    status = InvoiceStatusField(read_only=True)
    legal_entity = serializers.SlugRelatedField(slug_field="public_id", read_only=True)
    customer = serializers.SlugRelatedField(slug_field="public_id", read_only=True)
    customer_name = serializers.CharField(source="customer.display_name", read_only=True)
    project = serializers.SlugRelatedField(slug_field="public_id", read_only=True)
    run = serializers.SlugRelatedField(slug_field="number", read_only=True)
    language = InvoiceLanguageField(read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    second_approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    issued_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "kind",
            "status",
            "number",
            "legal_entity",
            "customer",
            "customer_name",
            "project",
            "run",
            "currency",
            "language",
            "po_number",
            "period_start",
            "period_end",
            "issue_date",
            "due_date",
            "payment_terms_days",
            "net_total",
            "tax_total",
            "gross_total",
            "tax_breakdown",
            "legal_notes",
            "creditor_reference",
            "seller",
            "buyer",
            "created_by",
            "approved_by",
            "approved_at",
            "second_approved_by",
            "second_approved_at",
            "issued_by",
            "issued_at",
            "created_at",
        ]
        read_only_fields = fields


class InvoiceDetailSerializer(InvoiceSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta(InvoiceSerializer.Meta):
        fields = [*InvoiceSerializer.Meta.fields, "notes", "lines"]
        read_only_fields = fields


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why; kept in the history.")
