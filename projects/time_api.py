"""REST API of time entries, expenses, timesheets, approvals, locked periods and project teams (``/api/v1/``).

Thin like the pages: a serializer parses, a service of ``projects.timesheets`` or ``projects.members`` writes
(and checks every rule and who may do it), a selector reads. Records are addressed by public ID; a record
outside a person's scope answers 404. Service refusals answer with their flat field keys: 400 for input,
403 for a role or person that may not, 409 for a state that does not allow it (approved time is corrected
with an adjustment, locked months stay as they are). POSTs honour ``Idempotency-Key``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import PurePosixPath

from django.contrib.auth import get_user_model
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import path
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.utils.urls import replace_query_param

from backbone.api import (
    IDEMPOTENCY_KEY,
    READ_ERRORS,
    WRITE_ERRORS,
    ApiErrorSerializer,
    ApiViewMixin,
    RolePermissions,
    flat_errors,
    idempotent,
    lookup_public_id,
    parse,
)
from backbone.downloads import stored_file_response
from backbone.errors import ValidationFailed
from backbone.roles import is_read_only
from customers.uploads import CANONICAL_CONTENT_TYPES

from . import members, selectors, timesheets
from .api import PROJECT_ID, ChildPermissions
from .models import EntryStatus, Expense, LockedPeriod, Project, ProjectMember, TimeEntry
from .time_serializers import (
    ApprovalDecisionSerializer,
    ApprovalQueueQuerySerializer,
    ApprovalQueueSerializer,
    ApprovalRejectSerializer,
    ApprovalResultSerializer,
    ExpenseCreateSerializer,
    ExpenseSerializer,
    ExpenseUpdateSerializer,
    LockedPeriodCreateSerializer,
    LockedPeriodSerializer,
    ProjectMemberCreateSerializer,
    ProjectMemberSerializer,
    ProjectMemberUpdateSerializer,
    TimeEntryAdjustSerializer,
    TimeEntryCreateSerializer,
    TimeEntrySerializer,
    TimeEntryUpdateSerializer,
    TimesheetSubmitResultSerializer,
    TimesheetSubmitSerializer,
)

# Detail routes match public IDs only, so a sibling path such as ``time-entries/import/`` is never taken for one.
UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

DELETE_ERRORS = {
    403: OpenApiResponse(ApiErrorSerializer, description="Not yours, or your role may not delete it."),
    **READ_ERRORS,
    409: OpenApiResponse(ApiErrorSerializer, description="Not a draft or rejected, or its month is locked."),
}


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.isoweekday() - 1)


class _Needs(permissions.BasePermission):
    """Deny by default with explicit model permissions: ``read`` for safe methods, ``write`` for the rest
    (never for auditors, whatever else they hold)."""

    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS:
            return all(user.has_perm(perm) for perm in self.read)
        return not is_read_only(user) and all(user.has_perm(perm) for perm in self.write)


# --- time entries and expenses ---------------------------------------------------------------------------


class _EntryFilter(filters.FilterSet):
    project = filters.UUIDFilter(field_name="project__public_id", label="Project ID")
    person = filters.CharFilter(field_name="person__username", label="Person (username)")
    status = filters.ChoiceFilter(choices=EntryStatus.choices)
    date_from = filters.DateFilter(field_name="date", lookup_expr="gte", label="On or after this day")
    date_to = filters.DateFilter(field_name="date", lookup_expr="lte", label="On or before this day")
    week = filters.DateFilter(method="in_week", label="Any day of an ISO week: entries of its Monday to Sunday")

    def in_week(self, queryset, name, value):
        monday = _monday(value)
        return queryset.filter(date__range=(monday, monday + dt.timedelta(days=6)))


class TimeEntryFilter(_EntryFilter):
    class Meta:
        model = TimeEntry
        fields = ["project", "person", "status", "date_from", "date_to", "week", "billable", "labour_category"]


class ExpenseFilter(_EntryFilter):
    class Meta:
        model = Expense
        fields = ["project", "person", "status", "date_from", "date_to", "week", "billable", "category"]


class _EntryViewSet(
    ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Shared by time entries and expenses: deny by default on the model permissions (auditors read only),
    the visible rows from the selectors, writes through the services."""

    permission_classes = [RolePermissions]
    lookup_value_regex = UUID_PATTERN
    read_serializer: type = TimeEntrySerializer
    write_serializers: dict[str, type] = {}

    def get_serializer_class(self):
        return self.write_serializers.get(self.action, self.read_serializer)

    def get_object(self):
        return get_object_or_404(self.get_queryset(), public_id=lookup_public_id(self))

    def _respond(self, row, status_code: int = status.HTTP_200_OK) -> Response:
        row = self.get_queryset().get(pk=row.pk)
        return Response(self.read_serializer(row, context=self.get_serializer_context()).data, status=status_code)


@extend_schema_view(
    list=extend_schema(
        summary="List time entries",
        description="Your own; a project manager's also those of their projects; finance, executives, auditors "
        "and admins all. Filter with project, person, status, date_from, date_to, week.",
    ),
    retrieve=extend_schema(summary="A time entry", responses={200: TimeEntrySerializer, **READ_ERRORS}),
    create=extend_schema(
        summary="Log time (a draft of your own)",
        description="On a project whose team you are on (or that you manage): quarter-hour steps, at most 24 h a "
        "day across your entries, within the project's dates, outside locked months, and with a rate for the "
        "labour category on that day when billable.",
        request=TimeEntryCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: TimeEntrySerializer, **WRITE_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a draft or rejected entry of your own",
        request=TimeEntryUpdateSerializer,
        responses={200: TimeEntrySerializer, **WRITE_ERRORS},
    ),
    destroy=extend_schema(
        summary="Delete a draft or rejected entry of your own", responses={204: None, **DELETE_ERRORS}
    ),
)
@extend_schema(tags=["time and expenses"])
class TimeEntryViewSet(_EntryViewSet):
    """Hours of one person on one project and day: draft → submitted → approved / rejected → billed."""

    queryset = TimeEntry.objects.none()
    filterset_class = TimeEntryFilter
    read_serializer = TimeEntrySerializer
    serializer_class = TimeEntrySerializer
    write_serializers = {
        "create": TimeEntryCreateSerializer,
        "partial_update": TimeEntryUpdateSerializer,
        "adjust": TimeEntryAdjustSerializer,
    }

    def get_queryset(self):
        return (
            selectors.time_entries_visible_to(self.request.user)
            .select_related("person", "project", "decided_by", "adjusts")
            .order_by("-date", "-id")
        )

    def create(self, request, *args, **kwargs):
        def handler() -> Response:
            data = parse(self)
            entry = timesheets.time_entry_create(
                actor=request.user,
                project=data["project"],
                date=data["date"],
                hours=data["hours"],
                description=data["description"],
                labour_category=data.get("labour_category", ""),
                billable=data.get("billable", True),
            )
            return self._respond(entry, status.HTTP_201_CREATED)

        return idempotent(request, handler)

    def partial_update(self, request, *args, **kwargs):
        entry = self.get_object()
        data = parse(self, partial=True)
        entry = timesheets.time_entry_update(actor=request.user, entry=entry, data=data)
        return self._respond(entry)

    def perform_destroy(self, instance: TimeEntry) -> None:
        timesheets.time_entry_delete(actor=self.request.user, entry=instance)

    @extend_schema(
        summary="Correct approved or billed time with an adjustment",
        description="A new draft entry of the same project, day and category with the (positive or negative) "
        "hours; the original never changes. Submitted and approved like any entry; exempt from month locks.",
        request=TimeEntryAdjustSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: TimeEntrySerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def adjust(self, request, *args, **kwargs):
        def handler() -> Response:
            original = self.get_object()
            data = parse(self)
            entry = timesheets.time_entry_adjust(
                actor=request.user, original=original, hours=data["hours"], description=data["description"]
            )
            return self._respond(entry, status.HTTP_201_CREATED)

        return idempotent(request, handler)


@extend_schema_view(
    list=extend_schema(
        summary="List expenses",
        description="Visible like time entries. Filter with project, person, status, category, date_from, "
        "date_to, week.",
    ),
    retrieve=extend_schema(summary="An expense", responses={200: ExpenseSerializer, **READ_ERRORS}),
    create=extend_schema(
        summary="Log an expense (a draft of your own)",
        description="JSON, or multipart/form-data with a `receipt` (PDF, JPEG or PNG of at most 5 MB; the "
        "extension, the declared type and the content must agree). In the project's currency; the markup is "
        "taken from the project's expenses rule now.",
        request=ExpenseCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: ExpenseSerializer, **WRITE_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a draft or rejected expense of your own",
        description="JSON, or multipart/form-data with a new `receipt`.",
        request=ExpenseUpdateSerializer,
        responses={200: ExpenseSerializer, **WRITE_ERRORS},
    ),
    destroy=extend_schema(
        summary="Delete a draft or rejected expense of your own", responses={204: None, **DELETE_ERRORS}
    ),
)
@extend_schema(tags=["time and expenses"])
class ExpenseViewSet(_EntryViewSet):
    """Money spent for a project, with its receipt: the same life cycle as time."""

    queryset = Expense.objects.none()
    filterset_class = ExpenseFilter
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    read_serializer = ExpenseSerializer
    serializer_class = ExpenseSerializer
    write_serializers = {"create": ExpenseCreateSerializer, "partial_update": ExpenseUpdateSerializer}

    def get_queryset(self):
        return (
            selectors.expenses_visible_to(self.request.user)
            .select_related("person", "project", "decided_by")
            .order_by("-date", "-id")
        )

    def create(self, request, *args, **kwargs):
        def handler() -> Response:
            data = parse(self)
            expense = timesheets.expense_create(
                actor=request.user,
                project=data["project"],
                date=data["date"],
                category=data["category"],
                amount=data["amount"],
                currency=data.get("currency", ""),
                description=data["description"],
                billable=data.get("billable", True),
                receipt=data.get("receipt"),
            )
            return self._respond(expense, status.HTTP_201_CREATED)

        return idempotent(request, handler)

    def partial_update(self, request, *args, **kwargs):
        expense = self.get_object()
        data = parse(self, partial=True)
        if data.get("receipt", False) is None:
            data.pop("receipt")  # an empty receipt field keeps the receipt there is
        expense = timesheets.expense_update(actor=request.user, expense=expense, data=data)
        return self._respond(expense)

    def perform_destroy(self, instance: Expense) -> None:
        timesheets.expense_delete(actor=self.request.user, expense=instance)

    @extend_schema(
        summary="Download the receipt",
        description="As an attachment, for whoever may see the expense.",
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The receipt."),
            **READ_ERRORS,
        },
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def receipt(self, request, *args, **kwargs):
        expense = self.get_object()
        if not expense.receipt:
            raise Http404("This expense has no receipt.")
        suffix = PurePosixPath(expense.receipt.name).suffix.lower()
        filename = PurePosixPath(expense.receipt_filename).name or f"receipt{suffix}"
        content_type = {".pdf": "PDF", ".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}.get(suffix)
        return stored_file_response(
            expense.receipt,
            filename=filename,
            content_type=CANONICAL_CONTENT_TYPES.get(content_type or "", "application/octet-stream"),
            missing="The receipt file is missing.",
        )


# --- the weekly timesheet ----------------------------------------------------------------------------------


class _LogsTime(_Needs):
    """POST only: a GET answers 405 to those who may submit and 403 to everybody else."""

    read = write = ("projects.add_timeentry",)


class TimesheetSubmitView(generics.GenericAPIView):
    """Submit one's own week: every draft and rejected time entry and expense dated in it."""

    permission_classes = [_LogsTime]
    parser_classes = [JSONParser]
    serializer_class = TimesheetSubmitSerializer
    queryset = TimeEntry.objects.none()

    @extend_schema(
        tags=["time and expenses"],
        operation_id="timesheets_submit",
        summary="Submit your week",
        description="week_start is the Monday of the ISO week. Answers how many entries were submitted (0 when "
        "nothing was left). 409 when a day of the week lies in a locked month.",
        request=TimesheetSubmitSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: TimesheetSubmitResultSerializer, **WRITE_ERRORS},
    )
    def post(self, request):
        def handler() -> Response:
            week_start = parse(self)["week_start"]
            count = timesheets.timesheet_submit(actor=request.user, week_start=week_start)
            body = {"week_start": week_start, "week_end": week_start + dt.timedelta(days=6), "submitted": count}
            return Response(TimesheetSubmitResultSerializer(body).data)

        return idempotent(request, handler)


# --- approvals ----------------------------------------------------------------------------------------------


class _ApprovalPermissions(permissions.BasePermission):
    """Deciding needs ``approve_timeentry`` (project managers, for their projects, and admins); auditors also
    read the queue (a view with ``auditors_read = True``); everybody else is refused."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if is_read_only(user):
            return (
                request.method in permissions.SAFE_METHODS
                and getattr(view, "auditors_read", False)
                and user.has_perm("projects.view_timeentry")
                and user.has_perm("projects.view_expense")
            )
        return user.has_perm("projects.approve_timeentry")


class ApprovalQueueView(generics.GenericAPIView):
    permission_classes = [_ApprovalPermissions]
    auditors_read = True
    serializer_class = ApprovalQueueSerializer
    queryset = TimeEntry.objects.none()
    pagination_class = None
    filter_backends = []

    @extend_schema(
        tags=["approvals"],
        operation_id="approvals_list",
        summary="Submitted time and expenses waiting for your decision",
        description="Of the projects you manage (admins: all; auditors read all). Filter with person "
        "(username), project (public ID) and week (any day of it). An unknown person or project gives an "
        "empty queue.",
        parameters=[ApprovalQueueQuerySerializer],
        responses={
            200: ApprovalQueueSerializer,
            400: OpenApiResponse(ApiErrorSerializer, description="A filter is not valid."),
            403: OpenApiResponse(ApiErrorSerializer, description="Your role does not approve time."),
        },
    )
    def get(self, request):
        query = ApprovalQueueQuerySerializer(data=request.query_params)
        if not query.is_valid():
            errors = flat_errors(query.errors)
            key = next(iter(errors))
            raise ValidationFailed(f"{key}: {errors[key][0]}", errors=errors)
        wanted = query.validated_data
        person = project = None
        if wanted.get("person"):
            person = get_user_model().objects.filter(username=wanted["person"]).first()
        if wanted.get("project"):
            project = selectors.projects_visible_to(request.user).filter(public_id=wanted["project"]).first()
        limit, offset = wanted["limit"], wanted["offset"]
        if (wanted.get("person") and person is None) or (wanted.get("project") and project is None):
            queue = selectors.ApprovalQueue(time_entries=[], expenses=[])
        else:
            queue = selectors.approval_queue(
                user=request.user, person=person, project=project, week=wanted.get("week"), limit=limit, offset=offset
            )

        def page(at: int) -> str:
            return replace_query_param(replace_query_param(request.build_absolute_uri(), "offset", at), "limit", limit)

        more = offset + limit < max(queue.time_total, queue.expense_total)
        body = {
            "count": queue.total,
            "time_entries_count": queue.time_total,
            "expenses_count": queue.expense_total,
            "next": page(offset + limit) if more else None,
            "previous": page(max(offset - limit, 0)) if offset else None,
            "time_entries": queue.time_entries,
            "expenses": queue.expenses,
        }
        return Response(ApprovalQueueSerializer(body, context=self.get_serializer_context()).data)


_ENTRY_KINDS = (
    ("time_entries", "time entry", selectors.time_entries_visible_to),
    ("expenses", "expense", selectors.expenses_visible_to),
)


def _named_entries(user, data) -> list:
    """The entries the body names, among those ``user`` can see. IDs that name nothing visible are refused
    together, each under its flat key (``time_entries.2``), so the caller learns which ones."""
    found: list = []
    errors: dict[str, list[str]] = {}
    unknown: list[str] = []
    for key, noun, visible in _ENTRY_KINDS:
        wanted = list(dict.fromkeys(data.get(key) or []))
        rows = {row.public_id: row for row in visible(user).filter(public_id__in=wanted).only("pk", "public_id")}
        for index, public_id in enumerate(data.get(key) or []):
            if public_id not in rows:
                errors[f"{key}.{index}"] = [f"No {noun} {public_id} is visible to you."]
                unknown.append(str(public_id))
        found.extend(rows.values())
    if errors:
        raise ValidationFailed(
            f"These IDs name no time entry or expense you can decide: {', '.join(unknown)}.", errors=errors
        )
    return found


class _DecisionView(generics.GenericAPIView):
    permission_classes = [_ApprovalPermissions]
    parser_classes = [JSONParser]
    queryset = TimeEntry.objects.none()
    decision = EntryStatus.APPROVED

    def decide(self, user, entries, data) -> int:
        raise NotImplementedError

    def post(self, request):
        def handler() -> Response:
            data = parse(self)
            entries = _named_entries(request.user, data)
            count = self.decide(request.user, entries, data)
            body = {
                "status": self.decision,
                "count": count,
                "time_entries": [e.public_id for e in entries if isinstance(e, TimeEntry)],
                "expenses": [e.public_id for e in entries if isinstance(e, Expense)],
            }
            return Response(ApprovalResultSerializer(body).data)

        return idempotent(request, handler)


class ApprovalApproveView(_DecisionView):
    serializer_class = ApprovalDecisionSerializer
    decision = EntryStatus.APPROVED

    def decide(self, user, entries, data) -> int:
        return timesheets.time_entries_approve(actor=user, entries=entries)

    @extend_schema(
        tags=["approvals"],
        operation_id="approvals_approve",
        summary="Approve submitted time entries and expenses",
        description="All or nothing. IDs you cannot see answer 400 naming them (time_entries.0 …); entries of a "
        "project you do not manage answer 403; entries that are not submitted answer 409.",
        request=ApprovalDecisionSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: ApprovalResultSerializer, **WRITE_ERRORS},
    )
    def post(self, request):
        return super().post(request)


class ApprovalRejectView(_DecisionView):
    serializer_class = ApprovalRejectSerializer
    decision = EntryStatus.REJECTED

    def decide(self, user, entries, data) -> int:
        return timesheets.time_entries_reject(actor=user, entries=entries, reason=data["reason"])

    @extend_schema(
        tags=["approvals"],
        operation_id="approvals_reject",
        summary="Send submitted time entries and expenses back with a reason",
        description="The reason is required (400 under reason) and is shown to each person, who edits the "
        "entries and submits them again. Refusals as for approving.",
        request=ApprovalRejectSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: ApprovalResultSerializer, **WRITE_ERRORS},
    )
    def post(self, request):
        return super().post(request)


# --- locked periods ---------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Locked months", description="Newest first. Nothing dated in them changes."),
    create=extend_schema(
        summary="Lock a month (finance)",
        description='{"month": "2026-10"} or any date in it. 409 when it is locked already.',
        request=LockedPeriodCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: LockedPeriodSerializer, **WRITE_ERRORS},
    ),
)
@extend_schema(tags=["time and expenses"])
class LockedPeriodViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = LockedPeriodSerializer
    permission_classes = [RolePermissions]
    queryset = LockedPeriod.objects.none()
    filter_backends = []
    lookup_value_regex = UUID_PATTERN

    def get_queryset(self):
        return LockedPeriod.objects.select_related("locked_by").order_by("-month")

    def get_serializer_class(self):
        return LockedPeriodCreateSerializer if self.action == "create" else LockedPeriodSerializer

    def create(self, request, *args, **kwargs):
        def handler() -> Response:
            period = timesheets.period_lock(actor=request.user, month=parse(self)["month"])
            period = self.get_queryset().get(pk=period.pk)
            return Response(LockedPeriodSerializer(period).data, status=status.HTTP_201_CREATED)

        return idempotent(request, handler)


# --- a project's team ---------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="The team of a project", parameters=[PROJECT_ID]),
    retrieve=extend_schema(
        summary="A team member", parameters=[PROJECT_ID], responses={200: ProjectMemberSerializer, **READ_ERRORS}
    ),
    create=extend_schema(
        summary="Put a person on the team",
        description="The project's manager (or an admin). The person holds a role that logs time; the labour "
        "category is on the project's rate card.",
        request=ProjectMemberCreateSerializer,
        parameters=[PROJECT_ID, IDEMPOTENCY_KEY],
        responses={201: ProjectMemberSerializer, **WRITE_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a member's labour category",
        request=ProjectMemberUpdateSerializer,
        parameters=[PROJECT_ID],
        responses={200: ProjectMemberSerializer, **WRITE_ERRORS},
    ),
    destroy=extend_schema(
        summary="Take a person off the team",
        description="They log nothing more on the project; what they logged stays.",
        parameters=[PROJECT_ID],
        responses={204: None, **WRITE_ERRORS},
    ),
)
@extend_schema(tags=["projects"])
class ProjectMemberViewSet(
    ApiViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Who may log time and expenses on a project. The model permission is checked before the project is
    looked up: a role without it answers 403 whatever the project; a project outside one's scope 404."""

    serializer_class = ProjectMemberSerializer
    permission_classes = [ChildPermissions]
    queryset = ProjectMember.objects.none()
    filter_backends = []
    lookup_value_regex = UUID_PATTERN

    def project(self) -> Project:
        if not hasattr(self, "_project"):
            try:
                public_id = uuid.UUID(str(self.kwargs["project_id"]))
            except ValueError:
                raise Http404 from None
            self._project = selectors.access_project(user=self.request.user, public_id=public_id)
        return self._project

    def get_queryset(self):
        return ProjectMember.objects.filter(project=self.project()).select_related("user").order_by("user__username")

    def get_object(self) -> ProjectMember:
        return get_object_or_404(self.get_queryset(), public_id=lookup_public_id(self))

    def get_serializer_class(self):
        if self.action == "create":
            return ProjectMemberCreateSerializer
        if self.action == "partial_update":
            return ProjectMemberUpdateSerializer
        return ProjectMemberSerializer

    def _respond(self, member: ProjectMember, status_code: int = status.HTTP_200_OK) -> Response:
        member = self.get_queryset().get(pk=member.pk)
        return Response(ProjectMemberSerializer(member).data, status=status_code)

    def create(self, request, *args, **kwargs):
        def handler() -> Response:
            data = parse(self)
            member = members.project_member_add(
                actor=request.user,
                project=self.project(),
                user=data["user"],
                labour_category=data.get("labour_category", ""),
            )
            return self._respond(member, status.HTTP_201_CREATED)

        return idempotent(request, handler)

    def partial_update(self, request, *args, **kwargs):
        member = self.get_object()
        data = parse(self, partial=True)
        if "labour_category" in data:
            member = members.project_member_update(
                actor=request.user, member=member, labour_category=data["labour_category"]
            )
        return self._respond(member)

    def perform_destroy(self, instance: ProjectMember) -> None:
        members.project_member_remove(actor=self.request.user, member=instance)


# --- wiring -------------------------------------------------------------------------------------------------


def register(router: SimpleRouter) -> None:
    """Register this module's viewsets on the v1 router."""
    router.register("time-entries", TimeEntryViewSet, basename="time-entry")
    router.register("expenses", ExpenseViewSet, basename="expense")
    router.register("locked-periods", LockedPeriodViewSet, basename="locked-period")
    router.register(
        rf"projects/(?P<project_id>{UUID_PATTERN})/members", ProjectMemberViewSet, basename="project-member"
    )


urlpatterns = [
    path("timesheets/submit/", TimesheetSubmitView.as_view(), name="timesheet-submit"),
    path("approvals/", ApprovalQueueView.as_view(), name="approval-list"),
    path("approvals/approve/", ApprovalApproveView.as_view(), name="approval-approve"),
    path("approvals/reject/", ApprovalRejectView.as_view(), name="approval-reject"),
]
