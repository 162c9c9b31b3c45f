"""API representations of projects, their plan, contract versions and change orders.

Serializers only parse and present; every rule (dates, the approval matrix, the operations of a change order)
is checked by the services, which report errors under the same flat keys the API returns
(``changes.2.rate``, ``budget.0.amount``).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from customers.models import BillingModel, Customer, Language, LegalEntity
from customers.serializers import CurrencyField, ServiceModelSerializer

from .models import (
    BillingRule,
    BudgetAlert,
    BudgetLine,
    ChangeOrder,
    ContractVersion,
    Milestone,
    Project,
    RateCardEntry,
)
from .selectors import projects_visible_to


def _public_id(**kwargs) -> serializers.UUIDField:
    return serializers.UUIDField(source="public_id", read_only=True, **kwargs)


class _PublicIdLookup(serializers.SlugRelatedField):
    """A reference by public ID; ``scope(user)`` narrows the choices to what the requesting person may see."""

    def __init__(self, *, scope=None, **kwargs):
        self.scope = scope
        super().__init__(slug_field="public_id", **kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        if self.scope is not None and request is not None:
            return self.scope(request.user)
        return super().get_queryset()


def named_choices(component_name: str, choices, description: str = "") -> type[serializers.ChoiceField]:
    """A ChoiceField whose enum is its own named schema component (no collisions with other apps' enums)."""

    @extend_schema_field(
        {"type": "string", "enum": [value for value, _ in choices], "description": description},
        component_name=component_name,
    )
    class Field(serializers.ChoiceField):
        def __init__(self, **kwargs):
            kwargs["choices"] = choices
            super().__init__(**kwargs)

    Field.__name__ = f"{component_name}Field"
    return Field


ProjectStatusField = named_choices("ProjectStatus", Project.Status.choices, "planned, active, on_hold, closed")
ProjectLanguageField = named_choices("ProjectLanguage", Language.choices, "Language of the invoice itemisation.")
BudgetKindField = named_choices("BudgetLineKind", BudgetLine.Kind.choices)
MilestoneStatusField = named_choices("MilestoneStatus", Milestone.Status.choices)
AlertKindField = named_choices("BudgetAlertKind", BudgetAlert.Kind.choices)
VersionSourceField = named_choices("ContractVersionSource", ContractVersion.Source.choices)
ChangeOrderStatusField = named_choices("ChangeOrderStatus", ChangeOrder.Status.choices)
BillingModelField = named_choices("ProjectBillingModel", BillingModel.choices)


class UsernameField(serializers.SlugRelatedField):
    """A person by username (users have no public ID); the service checks the role they need."""

    def __init__(self, **kwargs):
        kwargs.setdefault("queryset", get_user_model().objects.filter(is_active=True))
        super().__init__(slug_field="username", **kwargs)


# --- projects ---------------------------------------------------------------------------------------


class ProjectCustomerSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    number = serializers.CharField()
    name = serializers.CharField(source="display_name")


class ProjectLegalEntitySerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    name = serializers.CharField(source="short_name")


class ProjectDealSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    number = serializers.CharField()


class ProjectSerializer(ServiceModelSerializer):
    """A project with its current contract version number; the plan is under its nested endpoints."""

    id = _public_id()
    customer = ProjectCustomerSerializer(read_only=True)
    legal_entity = ProjectLegalEntitySerializer(read_only=True)
    deal = ProjectDealSerializer(read_only=True, allow_null=True)
    project_manager = serializers.CharField(source="project_manager.username", read_only=True)
    currency = CurrencyField(read_only=True)
    status = ProjectStatusField(read_only=True)
    language = ProjectLanguageField(read_only=True)
    contract_version = serializers.SerializerMethodField(help_text="Number of the newest contract version.")

    class Meta:
        model = Project
        fields = [
            "id",
            "number",
            "name",
            "status",
            "customer",
            "legal_entity",
            "deal",
            "project_manager",
            "currency",
            "language",
            "planned_start",
            "planned_end",
            "po_number",
            "po_required",
            "portal_required",
            "payment_terms_days",
            "alert_thresholds",
            "contract_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_contract_version(self, project: Project) -> int | None:
        number = getattr(project, "contract_version_number", None)
        if number is None:
            number = project.contract_versions.order_by("-number").values_list("number", flat=True).first()
        return number


class ProjectWinSerializer(ProjectSerializer):
    created = serializers.BooleanField(
        read_only=True, help_text="false when the deal had been won before: the same project, nothing changed."
    )

    class Meta(ProjectSerializer.Meta):
        fields = [*ProjectSerializer.Meta.fields, "created"]
        read_only_fields = fields


class RateInputSerializer(serializers.Serializer):
    labour_category = serializers.CharField(max_length=80)
    rate = serializers.DecimalField(max_digits=18, decimal_places=4, help_text="Per hour, in the project currency.")
    effective_from = serializers.DateField(required=False, help_text="Default: the planned start.")


class BudgetInputSerializer(serializers.Serializer):
    kind = BudgetKindField()
    labour_category = serializers.CharField(max_length=80, required=False, allow_blank=True)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    hours = serializers.DecimalField(max_digits=18, decimal_places=2, required=False, allow_null=True)
    rate = serializers.DecimalField(max_digits=18, decimal_places=4, required=False, allow_null=True)
    amount = serializers.DecimalField(
        max_digits=18, decimal_places=2, required=False, allow_null=True, help_text="Default: hours × rate."
    )
    fixed_fee = serializers.BooleanField(
        required=False, default=False, help_text="Part of the fixed fee (the milestones must add up to it)."
    )


class MilestoneInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    phase = serializers.CharField(max_length=120, required=False, allow_blank=True)
    planned_date = serializers.DateField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=2, required=False, default=0)
    acceptance_criteria = serializers.CharField(required=False, allow_blank=True)


class BillingRuleInputSerializer(serializers.Serializer):
    model = BillingModelField()
    retainer_amount = serializers.DecimalField(max_digits=18, decimal_places=2, required=False, default=0)
    markup_percent = serializers.DecimalField(max_digits=6, decimal_places=2, required=False, default=0)


class ProjectCreateSerializer(serializers.Serializer):
    """A project by hand (without a deal): its fields and the plan that becomes contract version 1."""

    name = serializers.CharField(max_length=200)
    customer = _PublicIdLookup(queryset=Customer.objects.all(), help_text="The customer's public ID.")
    legal_entity = _PublicIdLookup(
        queryset=LegalEntity.objects.all(), required=False, help_text="Default: the customer's billing entity."
    )
    project_manager = UsernameField(required=False, help_text="Username; default: you (project managers).")
    currency = CurrencyField(required=False)
    language = ProjectLanguageField(required=False)
    planned_start = serializers.DateField()
    planned_end = serializers.DateField()
    po_number = serializers.CharField(max_length=60, required=False, allow_blank=True)
    po_required = serializers.BooleanField(required=False, allow_null=True, default=None)
    portal_required = serializers.BooleanField(required=False, default=False)
    payment_terms_days = serializers.IntegerField(required=False, min_value=0, max_value=365)
    rate_card = RateInputSerializer(many=True, required=False)
    budget = BudgetInputSerializer(many=True, required=False)
    milestones = MilestoneInputSerializer(many=True, required=False)
    billing_rules = BillingRuleInputSerializer(many=True)
    reason = serializers.CharField(required=False, allow_blank=True, write_only=True)


class ProjectStatusSerializer(serializers.Serializer):
    status = ProjectStatusField()
    reason = serializers.CharField(required=False, allow_blank=True, help_text="Required for on hold and closed.")


# --- the plan (mirrors of the newest contract version) ------------------------------------------------


class RateCardEntrySerializer(ServiceModelSerializer):
    id = _public_id()
    currency = CurrencyField(read_only=True)
    contract_version = serializers.IntegerField(
        source="contract_version.number", read_only=True, help_text="The version that brought this rate."
    )

    class Meta:
        model = RateCardEntry
        fields = ["id", "labour_category", "rate", "currency", "effective_from", "contract_version"]
        read_only_fields = fields


class BudgetLineSerializer(ServiceModelSerializer):
    id = _public_id()
    kind = BudgetKindField(read_only=True)

    class Meta:
        model = BudgetLine
        fields = ["id", "key", "kind", "labour_category", "description", "hours", "rate", "amount"]
        read_only_fields = fields


class MilestoneSerializer(ServiceModelSerializer):
    id = _public_id()
    slipped = serializers.SerializerMethodField(help_text="Planned later than the date first promised.")
    status = MilestoneStatusField(read_only=True)

    class Meta:
        model = Milestone
        fields = [
            "id",
            "key",
            "position",
            "name",
            "phase",
            "planned_date",
            "baseline_date",
            "slipped",
            "amount",
            "acceptance_criteria",
            "status",
            "accepted_by_name",
            "accepted_on",
            "acceptance_note",
            "acceptance_document_filename",
            "acceptance_document_sha256",
            "acceptance_recorded_by",
            "acceptance_recorded_at",
            "invoice_ref",
        ]
        read_only_fields = fields

    acceptance_recorded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    def get_slipped(self, milestone: Milestone) -> bool:
        return milestone.planned_date > milestone.baseline_date


class BillingRuleSerializer(ServiceModelSerializer):
    id = _public_id()
    model = BillingModelField(read_only=True)

    class Meta:
        model = BillingRule
        fields = ["id", "model", "retainer_amount", "markup_percent"]
        read_only_fields = fields


class BudgetAlertSerializer(ServiceModelSerializer):
    id = _public_id()
    milestone = serializers.CharField(source="milestone.key", read_only=True, allow_null=True, default=None)
    kind = AlertKindField(read_only=True)

    class Meta:
        model = BudgetAlert
        fields = [
            "id",
            "kind",
            "key",
            "message",
            "threshold_percent",
            "milestone",
            "actual_amount",
            "budget_amount",
            "created_at",
        ]
        read_only_fields = fields


class BudgetRowSerializer(serializers.Serializer):
    key = serializers.CharField()
    kind = serializers.CharField()
    label = serializers.CharField()
    planned_hours = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    planned_amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    actual_hours = serializers.DecimalField(max_digits=18, decimal_places=2)
    actual_amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    remaining_amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    burn_percent = serializers.DecimalField(max_digits=8, decimal_places=1, allow_null=True)


class BudgetSummarySerializer(serializers.Serializer):
    """Plan per labour category and non-labour line. Actuals are 0 until time entry exists."""

    currency = serializers.CharField()
    rows = BudgetRowSerializer(many=True)
    planned_amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    planned_hours = serializers.DecimalField(max_digits=18, decimal_places=2)
    actual_amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    burn_percent = serializers.DecimalField(max_digits=8, decimal_places=1, allow_null=True)


# --- contract versions --------------------------------------------------------------------------------


class VersionChangeOrderSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    number = serializers.CharField()


@extend_schema_field(
    {
        "type": "object",
        "description": "The frozen terms (schema 1): project, customer, legal_entity, quote, lines, tax, rate_card, "
        "budget, milestones, billing_rules, attachments. Decimals as strings, dates ISO.",
        "additionalProperties": True,
    }
)
class TermsField(serializers.JSONField):
    pass


class ContractVersionSerializer(ServiceModelSerializer):
    id = _public_id()
    quote = serializers.UUIDField(source="quote.public_id", read_only=True, allow_null=True, default=None)
    change_order = VersionChangeOrderSerializer(read_only=True, allow_null=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True, default=None)
    terms = TermsField(read_only=True)
    source = VersionSourceField(read_only=True)

    class Meta:
        model = ContractVersion
        fields = [
            "id",
            "number",
            "effective_from",
            "source",
            "quote",
            "change_order",
            "sha256",
            "created_by",
            "created_at",
            "terms",
        ]
        read_only_fields = fields


class DiffRowSerializer(serializers.Serializer):
    area = named_choices(
        "ContractDiffArea",
        [(a, a) for a in ("schedule", "budget", "rate_card", "milestones", "billing_rules")],
    )()
    change = serializers.CharField(help_text="added, removed, changed, moved or total")
    key = serializers.CharField()
    text = serializers.CharField()


class VersionDiffSerializer(serializers.Serializer):
    number = serializers.IntegerField(help_text="This version.")
    previous = serializers.IntegerField(allow_null=True, help_text="The version before it (none for version 1).")
    changes = DiffRowSerializer(many=True)


# --- change orders ------------------------------------------------------------------------------------


@extend_schema_field(
    {
        "type": "array",
        "description": "Operations, each an object with 'op': budget_line.add {kind, labour_category, "
        "description, hours, rate, amount, fixed_fee}, budget_line.change {key, …}, budget_line.remove {key}, "
        "rate.set {labour_category, rate, effective_from}, milestone.add {name, phase, planned_date, amount, "
        "acceptance_criteria}, milestone.move {key, planned_date}, milestone.change {key, …}, "
        "milestone.remove {key}, end_date.set {planned_end}, billing_rule.set {model, retainer_amount, "
        "markup_percent}, billing_rule.remove {model}. Numbers as decimal strings, dates YYYY-MM-DD.",
        "items": {"type": "object", "properties": {"op": {"type": "string"}}, "additionalProperties": True},
    }
)
class ChangesField(serializers.JSONField):
    pass


class ChangeOrderSerializer(ServiceModelSerializer):
    """A change order. ``changes`` is checked against the newest contract version by the service."""

    id = _public_id()
    project = _PublicIdLookup(
        queryset=Project.objects.all(), scope=projects_visible_to, help_text="The project's public ID."
    )
    changes = ChangesField()
    status = ChangeOrderStatusField(read_only=True)
    proposed_by = serializers.CharField(source="proposed_by.username", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, allow_null=True, default=None)
    has_acceptance_file = serializers.SerializerMethodField()
    resulting_version = serializers.SerializerMethodField(help_text="The contract version its approval made.")

    class Meta:
        model = ChangeOrder
        fields = [
            "id",
            "number",
            "project",
            "title",
            "reason",
            "effective_from",
            "changes",
            "status",
            "customer_accepted_by",
            "customer_accepted_on",
            "has_acceptance_file",
            "customer_acceptance_filename",
            "budget_delta_amount",
            "touches_billing_terms",
            "proposed_by",
            "submitted_at",
            "decided_by",
            "decided_at",
            "rejection_reason",
            "resulting_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "number",
            "status",
            "customer_acceptance_filename",
            "budget_delta_amount",
            "touches_billing_terms",
            "submitted_at",
            "decided_at",
            "rejection_reason",
        ]
        extra_kwargs = {"customer_accepted_by": {"required": False}, "customer_accepted_on": {"required": False}}

    def get_has_acceptance_file(self, co: ChangeOrder) -> bool:
        return bool(co.customer_acceptance_file)

    def get_resulting_version(self, co: ChangeOrder) -> int | None:
        try:
            return co.resulting_version.number
        except ContractVersion.DoesNotExist:
            return None

    def validate_project(self, project: Project) -> Project:
        if self.instance is not None and project.pk != self.instance.project_id:
            raise serializers.ValidationError("A change order stays on its project.")
        return project


class ChangeOrderRejectSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why it is sent back; the proposer is told.")


class MilestoneAcceptSerializer(serializers.Serializer):
    accepted_by_name = serializers.CharField(max_length=120, help_text="Who accepted it on the client side.")
    accepted_on = serializers.DateField(help_text="The day the client accepted (not in the future).")
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Carried onto the invoice that bills it."
    )
    document = serializers.FileField(
        required=False, allow_null=True, help_text="The signed acceptance: PDF, JPEG or PNG, at most 5 MB."
    )


class MilestoneWithdrawSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, help_text="Why the acceptance record is withdrawn.")


# --- the handoff --------------------------------------------------------------------------------------


class DealWinSerializer(serializers.Serializer):
    project_manager = UsernameField(help_text="Username of the project manager.")
    quote = serializers.UUIDField(
        required=False, allow_null=True, help_text="Default: the accepted quote, else the latest sent one."
    )
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, help_text="Default: the deal title.")
    planned_start = serializers.DateField(required=False, allow_null=True, help_text="Default: the quote's.")
    planned_end = serializers.DateField(required=False, allow_null=True, help_text="Default: the quote's.")
