"""REST API of projects, contract versions, change orders and the deal-won handoff (``/api/v1/``).

Thin like the pages: a serializer parses, a service writes (and checks every rule and permission), a selector
reads. Objects are addressed by public ID; a project outside a person's scope answers 404, and so do its
nested rows. POSTs honour ``Idempotency-Key``.
"""

from __future__ import annotations

import uuid

from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from backbone.api import (
    IDEMPOTENCY_KEY,
    READ_ERRORS,
    WRITE_ERRORS,
    ActionPermissions,
    ApiErrorSerializer,
    ApiViewMixin,
    RolePermissions,
    idempotent,
    lookup_public_id,
    parse,
)
from backbone.errors import ValidationFailed
from backbone.roles import is_read_only
from customers.models import Deal, Quote

from . import milestones as milestone_services
from . import selectors, services
from .models import BillingRule, BudgetLine, ChangeOrder, ContractVersion, Milestone, Project, RateCardEntry
from .serializers import (
    BillingRuleSerializer,
    BudgetAlertSerializer,
    BudgetLineSerializer,
    BudgetSummarySerializer,
    ChangeOrderRejectSerializer,
    ChangeOrderSerializer,
    ContractVersionSerializer,
    DealWinSerializer,
    MilestoneAcceptSerializer,
    MilestoneSerializer,
    MilestoneWithdrawSerializer,
    ProjectCreateSerializer,
    ProjectSerializer,
    ProjectStatusSerializer,
    ProjectWinSerializer,
    RateCardEntrySerializer,
    VersionDiffSerializer,
)


def _project_response(project: Project, *, request, status_code: int = status.HTTP_200_OK, **extra) -> Response:
    project = selectors.project_list(user=request.user).get(pk=project.pk)
    serializer = ProjectWinSerializer if extra else ProjectSerializer
    for name, value in extra.items():
        setattr(project, name, value)
    return Response(serializer(project, context={"request": request}).data, status=status_code)


# --- projects -----------------------------------------------------------------------------------------


class ProjectFilter(filters.FilterSet):
    q = filters.CharFilter(method="search", label="Search number or name")
    customer = filters.UUIDFilter(field_name="customer__public_id", label="Customer ID")
    project_manager = filters.CharFilter(field_name="project_manager__username", label="Project manager (username)")

    class Meta:
        model = Project
        fields = ["q", "status", "customer", "project_manager", "currency"]

    def search(self, queryset, name, value):
        value = (value or "").strip()
        if not value:
            return queryset
        return queryset.filter(Q(number__icontains=value) | Q(name__icontains=value))


class ProjectPermissions(ActionPermissions):
    NEEDS = {
        "set_status": ("projects.change_project",),
        "budget": ("projects.view_project", "projects.view_budgetline"),
        "alerts": ("projects.view_project", "projects.view_budgetalert"),
    }


@extend_schema_view(
    list=extend_schema(summary="List projects", description="Filter with q, status, customer, project_manager."),
    retrieve=extend_schema(summary="A project", responses={200: ProjectSerializer, **READ_ERRORS}),
    create=extend_schema(
        summary="Create a project by hand",
        description="Project managers (for themselves) and admins. The plan in the body becomes contract "
        "version 1 (source manual). Won deals make their projects through POST /api/v1/deals/{id}/win/.",
        request=ProjectCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: ProjectSerializer, **WRITE_ERRORS},
    ),
)
@extend_schema(tags=["projects"])
class ProjectViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Projects you can see: all for finance, executives, auditors and admins; your own as project manager;
    your customers' as sales rep."""

    serializer_class = ProjectSerializer
    permission_classes = [ProjectPermissions]
    filterset_class = ProjectFilter
    queryset = Project.objects.none()

    def get_queryset(self):
        return selectors.project_list(user=self.request.user)

    def get_object(self) -> Project:
        return selectors.access_project(user=self.request.user, public_id=lookup_public_id(self))

    def get_serializer_class(self):
        if self.action == "create":
            return ProjectCreateSerializer
        return super().get_serializer_class()

    def create(self, request, *args, **kwargs):
        def handler() -> Response:
            project = services.project_create(actor=request.user, data=parse(self))
            return _project_response(project, request=request, status_code=status.HTTP_201_CREATED)

        return idempotent(request, handler)

    @extend_schema(
        summary="Move a project along its lifecycle",
        description="planned → active → on hold ⇄ active → closed; on hold and closed need a reason.",
        request=ProjectStatusSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: ProjectSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="status", serializer_class=ProjectStatusSerializer)
    def set_status(self, request, *args, **kwargs):
        def handler() -> Response:
            project = self.get_object()
            data = parse(self)
            project = services.project_set_status(
                actor=request.user, project=project, status=data["status"], reason=data.get("reason", "")
            )
            return _project_response(project, request=request)

        return idempotent(request, handler)

    @extend_schema(
        summary="Budget: plan and actuals",
        description="Plan per labour category and per non-labour line. Actuals are 0 until time entry exists.",
        responses={200: BudgetSummarySerializer, **READ_ERRORS},
    )
    @action(detail=True, methods=["get"], url_path="budget", serializer_class=BudgetSummarySerializer)
    def budget(self, request, *args, **kwargs):
        summary = selectors.project_budget_summary(self.get_object())
        return Response(BudgetSummarySerializer(summary).data)

    @extend_schema(
        summary="Budget and schedule alerts of a project",
        responses={200: BudgetAlertSerializer(many=True), **READ_ERRORS},
    )
    @action(detail=True, methods=["get"], url_path="alerts", serializer_class=BudgetAlertSerializer)
    def alerts(self, request, *args, **kwargs):
        project = self.get_object()
        alerts = selectors.budget_alerts_of(user=request.user, project=project)
        page = self.paginate_queryset(alerts)
        return self.get_paginated_response(BudgetAlertSerializer(page, many=True).data)


# --- the plan and the contract, nested under a project ---------------------------------------------------

PROJECT_ID = OpenApiParameter("project_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Project ID")


class ChildPermissions(RolePermissions):
    """The model permission of the rows is checked before the project is looked up: a role without it is
    refused (403) whatever the project, and only then does a project outside one's scope answer 404."""

    def _queryset(self, view):
        return view.queryset


class _ProjectChildViewSet(ApiViewMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Rows of one project, readable by whoever sees the project and holds the row's view permission."""

    permission_classes = [ChildPermissions]
    filter_backends = []
    related_name = ""
    ordering: tuple[str, ...] = ()

    def project(self) -> Project:
        if not hasattr(self, "_project"):
            try:
                public_id = uuid.UUID(str(self.kwargs["project_id"]))
            except ValueError:
                raise Http404 from None
            self._project = selectors.access_project(user=self.request.user, public_id=public_id)
        return self._project

    def get_queryset(self):
        return self.queryset.model.objects.filter(project=self.project()).order_by(*self.ordering)


@extend_schema_view(list=extend_schema(summary="Rate card of a project", parameters=[PROJECT_ID]))
@extend_schema(tags=["projects"])
class RateCardViewSet(_ProjectChildViewSet):
    """Every rate of the project with the day it starts; earlier rates stay (they price earlier work)."""

    serializer_class = RateCardEntrySerializer
    queryset = RateCardEntry.objects.none()
    ordering = ("labour_category", "effective_from")

    def get_queryset(self):
        return super().get_queryset().select_related("contract_version")


@extend_schema_view(list=extend_schema(summary="Budget lines of a project", parameters=[PROJECT_ID]))
@extend_schema(tags=["projects"])
class BudgetLineViewSet(_ProjectChildViewSet):
    serializer_class = BudgetLineSerializer
    queryset = BudgetLine.objects.none()
    ordering = ("kind", "id")


class MilestonePermissions(ChildPermissions):
    """Recording acceptance needs ``accept_milestone`` (the project manager of the project and admins; the
    service narrows it to the project)."""

    NEEDS = {"accept": ("projects.accept_milestone",), "withdraw": ("projects.accept_milestone",)}

    def has_permission(self, request, view) -> bool:
        needed = self.NEEDS.get(getattr(view, "action", None))
        if needed is None:
            return super().has_permission(request, view)
        user = request.user
        if not (user and user.is_authenticated) or is_read_only(user):
            return False
        return all(user.has_perm(perm) for perm in needed)


@extend_schema_view(
    list=extend_schema(summary="Milestones of a project", parameters=[PROJECT_ID]),
    retrieve=extend_schema(
        summary="A milestone with its acceptance", parameters=[PROJECT_ID], responses={200: MilestoneSerializer}
    ),
)
@extend_schema(tags=["projects"])
class MilestoneViewSet(mixins.RetrieveModelMixin, _ProjectChildViewSet):
    """A milestone is accepted by the client (recorded by the project manager) and then billed; an accepted
    milestone with an amount is billable from its acceptance date."""

    serializer_class = MilestoneSerializer
    queryset = Milestone.objects.none()
    ordering = ("planned_date", "position", "id")
    permission_classes = [MilestonePermissions]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        return super().get_queryset().select_related("acceptance_recorded_by")

    def get_object(self) -> Milestone:
        return get_object_or_404(self.get_queryset(), public_id=lookup_public_id(self))

    @extend_schema(
        summary="Record the client's acceptance of a milestone",
        description="JSON, or multipart with the signed `document`. 409 when it is already accepted or billed.",
        parameters=[PROJECT_ID, IDEMPOTENCY_KEY],
        request={"application/json": MilestoneAcceptSerializer, "multipart/form-data": MilestoneAcceptSerializer},
        responses={200: MilestoneSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="accept", serializer_class=MilestoneAcceptSerializer)
    def accept(self, request, *args, **kwargs):
        def handler() -> Response:
            milestone = self.get_object()
            data = parse(self)
            milestone = milestone_services.milestone_accept(
                actor=request.user,
                milestone=milestone,
                accepted_by_name=data["accepted_by_name"],
                accepted_on=data["accepted_on"],
                note=data.get("note", ""),
                document=data.get("document"),
            )
            return Response(MilestoneSerializer(self.get_queryset().get(pk=milestone.pk)).data)

        return idempotent(request, handler)

    @extend_schema(
        summary="Withdraw a mistaken acceptance (unbilled milestones only)",
        parameters=[PROJECT_ID],
        request=MilestoneWithdrawSerializer,
        responses={200: MilestoneSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="withdraw", serializer_class=MilestoneWithdrawSerializer)
    def withdraw(self, request, *args, **kwargs):
        milestone = self.get_object()
        data = parse(self)
        milestone = milestone_services.milestone_acceptance_withdraw(
            actor=request.user, milestone=milestone, reason=data["reason"]
        )
        return Response(MilestoneSerializer(self.get_queryset().get(pk=milestone.pk)).data)


@extend_schema_view(list=extend_schema(summary="Billing rules of a project", parameters=[PROJECT_ID]))
@extend_schema(tags=["projects"])
class BillingRuleViewSet(_ProjectChildViewSet):
    serializer_class = BillingRuleSerializer
    queryset = BillingRule.objects.none()
    ordering = ("model",)


@extend_schema_view(
    list=extend_schema(summary="Contract versions of a project", parameters=[PROJECT_ID]),
    retrieve=extend_schema(
        summary="A contract version with its frozen terms",
        parameters=[PROJECT_ID],
        responses={200: ContractVersionSerializer, **READ_ERRORS},
    ),
)
@extend_schema(tags=["projects"])
class ContractVersionViewSet(mixins.RetrieveModelMixin, _ProjectChildViewSet):
    """Version 1 is the accepted quote (or the plan entered by hand); each approved change order adds one."""

    serializer_class = ContractVersionSerializer
    queryset = ContractVersion.objects.none()
    ordering = ("number",)

    def get_queryset(self):
        return super().get_queryset().select_related("quote", "change_order", "created_by")

    def get_object(self) -> ContractVersion:
        return get_object_or_404(self.get_queryset(), public_id=lookup_public_id(self))

    @extend_schema(
        summary="What this version changed against the one before",
        parameters=[PROJECT_ID],
        responses={200: VersionDiffSerializer, **READ_ERRORS},
    )
    @action(detail=True, methods=["get"], url_path="diff", serializer_class=VersionDiffSerializer)
    def diff(self, request, *args, **kwargs):
        version = self.get_object()
        previous = selectors.version_previous(version)
        rows = [] if previous is None else selectors.version_diff(previous, version)
        body = {"number": version.number, "previous": previous.number if previous else None, "changes": rows}
        return Response(VersionDiffSerializer(body).data)


# --- change orders ------------------------------------------------------------------------------------


class ChangeOrderFilter(filters.FilterSet):
    project = filters.UUIDFilter(field_name="project__public_id", label="Project ID")

    class Meta:
        model = ChangeOrder
        fields = ["project", "status", "touches_billing_terms"]


class ChangeOrderPermissions(ActionPermissions):
    NEEDS = {
        "create": ("projects.add_changeorder",),
        "update": ("projects.change_changeorder",),
        "partial_update": ("projects.change_changeorder",),
        "submit": ("projects.change_changeorder",),
        "approve": ("projects.approve_changeorder",),
        "reject": ("projects.approve_changeorder",),
    }


CO_FIELDS = ("title", "reason", "effective_from", "changes", "customer_accepted_by", "customer_accepted_on")


@extend_schema_view(
    list=extend_schema(summary="List change orders", description="Of the projects you can see."),
    retrieve=extend_schema(summary="A change order", responses={200: ChangeOrderSerializer, **READ_ERRORS}),
    create=extend_schema(
        summary="Propose a change order (draft)",
        description="The operations are checked against the newest contract version; errors name them "
        "(changes.2.rate). The customer's acceptance (who, when) must be recorded before submission.",
        parameters=[IDEMPOTENCY_KEY],
        responses={201: ChangeOrderSerializer, **WRITE_ERRORS},
    ),
    update=extend_schema(summary="Replace a draft", responses={200: ChangeOrderSerializer, **WRITE_ERRORS}),
    partial_update=extend_schema(summary="Change a draft", responses={200: ChangeOrderSerializer, **WRITE_ERRORS}),
)
@extend_schema(tags=["change orders"])
class ChangeOrderViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Structured amendments: draft → submitted → approved (a new contract version) or rejected (a reason).

    Approval matrix: the project manager approves their project's change orders that leave billing terms
    alone, within their limit; finance approves changes of rates and billing rules within theirs;
    executives and admins above; nobody approves their own change order above their own limit.
    The acceptance file is uploaded on the change order's page (the API takes JSON).
    """

    serializer_class = ChangeOrderSerializer
    permission_classes = [ChangeOrderPermissions]
    filterset_class = ChangeOrderFilter
    queryset = ChangeOrder.objects.none()

    def get_queryset(self):
        return selectors.change_order_list(user=self.request.user)

    def get_object(self) -> ChangeOrder:
        return selectors.access_change_order(user=self.request.user, public_id=lookup_public_id(self))

    def _respond(self, co: ChangeOrder, status_code: int = status.HTTP_200_OK) -> Response:
        co = selectors.change_order_list(user=self.request.user).get(pk=co.pk)
        return Response(ChangeOrderSerializer(co, context=self.get_serializer_context()).data, status=status_code)

    def create(self, request, *args, **kwargs):
        def handler() -> Response:
            data = parse(self)
            co = services.change_order_create(
                actor=request.user,
                project=data["project"],
                title=data.get("title", ""),
                reason=data.get("reason", ""),
                effective_from=data.get("effective_from"),
                changes=data.get("changes") if data.get("changes") is not None else [],
                customer_accepted_by=data.get("customer_accepted_by", ""),
                customer_accepted_on=data.get("customer_accepted_on"),
            )
            return self._respond(co, status.HTTP_201_CREATED)

        return idempotent(request, handler)

    def update(self, request, *args, **kwargs):
        co = self.get_object()
        data = parse(self, instance=co, partial=kwargs.get("partial", False))
        co = services.change_order_update(
            actor=request.user, change_order=co, data={k: data[k] for k in CO_FIELDS if k in data}
        )
        return self._respond(co)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    @extend_schema(
        summary="Submit a draft for approval",
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: ChangeOrderSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def submit(self, request, *args, **kwargs):
        def handler() -> Response:
            co = services.change_order_submit(actor=request.user, change_order=self.get_object())
            return self._respond(co)

        return idempotent(request, handler)

    @extend_schema(
        summary="Approve: the next contract version",
        description="Answers the change order with resulting_version set. 403 names the limit and amount when "
        "the approval matrix refuses.",
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: ChangeOrderSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, *args, **kwargs):
        def handler() -> Response:
            co = self.get_object()
            services.change_order_approve(actor=request.user, change_order=co)
            return self._respond(co)

        return idempotent(request, handler)

    @extend_schema(
        summary="Reject with a reason",
        request=ChangeOrderRejectSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: ChangeOrderSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], serializer_class=ChangeOrderRejectSerializer)
    def reject(self, request, *args, **kwargs):
        def handler() -> Response:
            co = self.get_object()
            data = parse(self)
            co = services.change_order_reject(actor=request.user, change_order=co, reason=data["reason"])
            return self._respond(co)

        return idempotent(request, handler)


# --- the handoff --------------------------------------------------------------------------------------


class CanWinDeals(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return user.has_perm("customers.win_deal") and not is_read_only(user)


class DealWinView(generics.GenericAPIView):
    """Mark a deal won: its project, contract version 1 and plan, from the accepted quote."""

    permission_classes = [CanWinDeals]
    parser_classes = [JSONParser]
    serializer_class = DealWinSerializer
    queryset = Deal.objects.none()

    @extend_schema(
        tags=["projects"],
        operation_id="deals_win",
        summary="Win a deal: create its project",
        description="Idempotent: the first call answers 201 with the new project; any later call for the same "
        "deal answers 200 with the same project and created=false, changing nothing. The quote is the one "
        "named, else the deal's accepted quote, else its latest sent one (which is accepted now). Only the "
        "deal's owner (or an admin) wins it; other deals answer 404.",
        request=DealWinSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: ProjectWinSerializer,
            200: ProjectWinSerializer,
            400: OpenApiResponse(ApiErrorSerializer, description="Invalid input; messages per field."),
            403: OpenApiResponse(ApiErrorSerializer, description="Your role may not win deals."),
            404: OpenApiResponse(ApiErrorSerializer, description="No such deal, or not yours."),
            409: OpenApiResponse(ApiErrorSerializer, description="The deal is lost, or the quote cannot be accepted."),
        },
    )
    def post(self, request, id):
        deal = Deal.objects.select_related("stage").filter(public_id=id).first()
        if deal is None or selectors.deal_win_refusal(user=request.user, deal=deal) is not None:
            raise Http404("No such deal.")

        def handler() -> Response:
            data = parse(self)
            quote = None
            if data.get("quote"):
                quote = Quote.objects.filter(deal=deal, public_id=data["quote"]).first()
                if quote is None:
                    raise ValidationFailed("The quote is not one of this deal's quotes.", field="quote")
            project, created = services.deal_win(
                actor=request.user,
                deal=deal,
                quote=quote,
                project_manager=data["project_manager"],
                name=data.get("name") or "",
                planned_start=data.get("planned_start"),
                planned_end=data.get("planned_end"),
            )
            code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
            return _project_response(project, request=request, status_code=code, created=created)

        return idempotent(request, handler)
