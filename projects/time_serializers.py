"""API representations of time entries, expenses, timesheets, approvals, locked periods and project teams.

Serializers parse and present only. Every rule (quarter hours, 24 h a day, the project's dates, the rate card,
locked months, receipts, who decides what) is the services' (``projects.timesheets``, ``projects.members``),
which report errors under the same flat keys the API answers with (``hours``, ``date``, ``receipt``).
"""

from __future__ import annotations

import datetime as dt
import re

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from customers.serializers import CurrencyField, PublicIdRelatedField, ServiceModelSerializer

from .models import EntryStatus, Expense, LockedPeriod, Project, ProjectMember, TimeEntry
from .selectors import projects_visible_to
from .serializers import UsernameField, named_choices

EntryStatusField = named_choices(
    "EntryStatus", EntryStatus.choices, "draft → submitted → approved / rejected → billed; rejected is resubmitted."
)
ExpenseCategoryField = named_choices("ExpenseCategory", Expense.Category.choices)


class _ProjectReference(PublicIdRelatedField):
    """A project by public ID, among the projects the requesting person can see."""

    default_error_messages = {
        **PublicIdRelatedField.default_error_messages,
        "does_not_exist": "No project with ID {value} is visible to you.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("queryset", Project.objects.all())
        kwargs.setdefault("scope", projects_visible_to)
        kwargs.setdefault("help_text", "The project's public ID.")
        super().__init__(**kwargs)


class _OnlyKnownFields:
    """Refuse inputs the serializer does not know instead of ignoring them: a PATCH of ``project`` or
    ``status`` must say it changed nothing, not answer 200."""

    def validate(self, attrs):
        unknown = sorted(set(getattr(self, "initial_data", {}) or {}) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["This cannot be changed here."] for name in unknown})
        return super().validate(attrs)


class EntryProjectSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    number = serializers.CharField()
    name = serializers.CharField()


_ENTRY_TRAIL = [
    "status",
    "editable",
    "rejection_reason",
    "submitted_at",
    "decided_by",
    "decided_at",
    "invoice_ref",
    "billed_at",
    "created_at",
    "updated_at",
]


class _EntrySerializer(ServiceModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    project = EntryProjectSerializer(read_only=True)
    person = serializers.CharField(source="person.username", read_only=True, help_text="Username of who logged it.")
    status = EntryStatusField(read_only=True)
    editable = serializers.BooleanField(
        source="is_editable", read_only=True, help_text="Draft or rejected: its person may change or delete it."
    )
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, allow_null=True, default=None)


class TimeEntrySerializer(_EntrySerializer):
    """A time entry. ``adjusts`` names the approved or billed entry an adjustment corrects."""

    adjusts = serializers.UUIDField(source="adjusts.public_id", read_only=True, allow_null=True, default=None)

    class Meta:
        model = TimeEntry
        fields = [
            "id",
            "project",
            "person",
            "date",
            "hours",
            "labour_category",
            "description",
            "billable",
            "adjusts",
            *_ENTRY_TRAIL,
        ]
        read_only_fields = fields


class TimeEntryCreateSerializer(serializers.Serializer):
    project = _ProjectReference()
    date = serializers.DateField()
    hours = serializers.DecimalField(max_digits=5, decimal_places=2, help_text="Quarter-hour steps, at most 24.")
    labour_category = serializers.CharField(
        max_length=80, required=False, allow_blank=True, help_text="Default: your category on the project's team."
    )
    description = serializers.CharField(allow_blank=True, help_text="Client-facing: it appears on the invoice.")
    billable = serializers.BooleanField(required=False, default=True)


class TimeEntryUpdateSerializer(_OnlyKnownFields, serializers.Serializer):
    """Drafts and rejected entries of one's own; the project is fixed (delete and log again to move time)."""

    date = serializers.DateField(required=False)
    hours = serializers.DecimalField(max_digits=5, decimal_places=2, required=False)
    labour_category = serializers.CharField(max_length=80, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    billable = serializers.BooleanField(required=False)


class TimeEntryAdjustSerializer(serializers.Serializer):
    hours = serializers.DecimalField(
        max_digits=5, decimal_places=2, help_text="The correction, e.g. -1.5 or 0.75 (quarter-hour steps, not 0)."
    )
    description = serializers.CharField(allow_blank=True, help_text="Why the time is corrected; on the invoice.")


class ExpenseSerializer(_EntrySerializer):
    category = ExpenseCategoryField(read_only=True)
    currency = CurrencyField(read_only=True)
    receipt = serializers.SerializerMethodField(help_text="Where to download the receipt; null without one.")

    class Meta:
        model = Expense
        fields = [
            "id",
            "project",
            "person",
            "date",
            "category",
            "amount",
            "currency",
            "markup_percent",
            "description",
            "billable",
            "receipt",
            "receipt_filename",
            *_ENTRY_TRAIL,
        ]
        read_only_fields = fields

    def get_receipt(self, expense: Expense) -> str | None:
        if not expense.receipt:
            return None
        path = reverse("api:expense-receipt", kwargs={"id": expense.public_id})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class ExpenseCreateSerializer(serializers.Serializer):
    project = _ProjectReference()
    date = serializers.DateField()
    category = ExpenseCategoryField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    currency = CurrencyField(required=False, help_text="Default: the project's currency (the only one accepted).")
    description = serializers.CharField(allow_blank=True, help_text="Client-facing: it appears on the invoice.")
    billable = serializers.BooleanField(required=False, default=True)
    receipt = serializers.FileField(
        required=False, allow_null=True, help_text="Multipart only: a PDF, JPEG or PNG of at most 5 MB."
    )


class ExpenseUpdateSerializer(_OnlyKnownFields, serializers.Serializer):
    date = serializers.DateField(required=False)
    category = ExpenseCategoryField(required=False)
    amount = serializers.DecimalField(max_digits=18, decimal_places=2, required=False)
    currency = CurrencyField(required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    billable = serializers.BooleanField(required=False)
    receipt = serializers.FileField(
        required=False, allow_null=True, help_text="Multipart only: a new receipt replaces the old one."
    )


# --- timesheets and approvals ---------------------------------------------------------------------------


class TimesheetSubmitSerializer(serializers.Serializer):
    week_start = serializers.DateField(help_text="The Monday of the ISO week to submit.")


class TimesheetSubmitResultSerializer(serializers.Serializer):
    week_start = serializers.DateField()
    week_end = serializers.DateField()
    submitted = serializers.IntegerField(help_text="How many time entries and expenses were submitted.")


class QueueTimeEntrySerializer(TimeEntrySerializer):
    """A submitted time entry waiting for a decision (the rejection reason is the previous round's)."""

    class Meta(TimeEntrySerializer.Meta):
        fields = [name for name in TimeEntrySerializer.Meta.fields if name not in ("decided_by", "decided_at")]
        read_only_fields = fields


class QueueExpenseSerializer(ExpenseSerializer):
    class Meta(ExpenseSerializer.Meta):
        fields = [name for name in ExpenseSerializer.Meta.fields if name not in ("decided_by", "decided_at")]
        read_only_fields = fields


class ApprovalQueueSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="All matching time entries and expenses together.")
    time_entries_count = serializers.IntegerField(help_text="All matching time entries.")
    expenses_count = serializers.IntegerField(help_text="All matching expenses.")
    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last one.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null on the first one.")
    time_entries = QueueTimeEntrySerializer(many=True, help_text="This page's time entries.")
    expenses = QueueExpenseSerializer(many=True, help_text="This page's expenses.")


class ApprovalQueueQuerySerializer(serializers.Serializer):
    person = serializers.CharField(required=False, help_text="Only this person's entries (username).")
    project = serializers.UUIDField(required=False, help_text="Only this project's entries (public ID).")
    week = serializers.DateField(required=False, help_text="Any day of an ISO week: only entries of that week.")
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=1000, default=200, help_text="At most this many of each list."
    )
    offset = serializers.IntegerField(required=False, min_value=0, default=0, help_text="Skip this many of each.")


class ApprovalDecisionSerializer(serializers.Serializer):
    time_entries = serializers.ListField(
        child=serializers.UUIDField(), required=False, default=list, help_text="Public IDs of submitted time."
    )
    expenses = serializers.ListField(
        child=serializers.UUIDField(), required=False, default=list, help_text="Public IDs of submitted expenses."
    )

    def validate(self, attrs):
        if not attrs.get("time_entries") and not attrs.get("expenses"):
            raise serializers.ValidationError("Name at least one time entry or expense.")
        return attrs


class ApprovalRejectSerializer(ApprovalDecisionSerializer):
    reason = serializers.CharField(
        help_text="Why the entries go back; their people see it.",
        error_messages={
            "required": "Give a reason for the rejection: the person sees it.",
            "blank": "Give a reason for the rejection: the person sees it.",
        },
    )


class ApprovalResultSerializer(serializers.Serializer):
    status = EntryStatusField(help_text="approved or rejected")
    count = serializers.IntegerField()
    time_entries = serializers.ListField(child=serializers.UUIDField())
    expenses = serializers.ListField(child=serializers.UUIDField())


# --- locked periods -------------------------------------------------------------------------------------

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@extend_schema_field(
    {
        "type": "string",
        "example": "2026-10",
        "description": "The month as YYYY-MM, or any date in it (YYYY-MM-DD).",
    }
)
class MonthField(serializers.Field):
    default_error_messages = {"invalid": "Enter the month as YYYY-MM (e.g. 2026-10) or a date in it."}

    def to_internal_value(self, data) -> dt.date:
        text = str(data or "").strip()
        try:
            match = _MONTH.match(text)
            if match:
                return dt.date(int(match[1]), int(match[2]), 1)
            return dt.date.fromisoformat(text).replace(day=1)
        except ValueError:
            self.fail("invalid")

    def to_representation(self, value: dt.date) -> str:
        return value.strftime("%Y-%m")


class LockedPeriodSerializer(ServiceModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    month = MonthField(read_only=True)
    first_day = serializers.DateField(source="month", read_only=True)
    label = serializers.CharField(source="__str__", read_only=True, help_text="e.g. October 2026")
    locked_by = serializers.CharField(source="locked_by.username", read_only=True)

    class Meta:
        model = LockedPeriod
        fields = ["id", "month", "first_day", "label", "locked_by", "locked_at"]
        read_only_fields = fields


class LockedPeriodCreateSerializer(serializers.Serializer):
    month = MonthField()


# --- project teams --------------------------------------------------------------------------------------


class ProjectMemberSerializer(ServiceModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    user = serializers.CharField(source="user.username", read_only=True)
    name = serializers.CharField(source="user.get_full_name", read_only=True)

    class Meta:
        model = ProjectMember
        fields = ["id", "user", "name", "labour_category", "created_at", "updated_at"]
        read_only_fields = fields


class ProjectMemberCreateSerializer(serializers.Serializer):
    user = UsernameField(help_text="Username of a consultant, project manager or sales rep.")
    labour_category = serializers.CharField(
        max_length=80, required=False, allow_blank=True, help_text="Their usual category; on the rate card."
    )


class ProjectMemberUpdateSerializer(_OnlyKnownFields, serializers.Serializer):
    labour_category = serializers.CharField(max_length=80, allow_blank=True)
