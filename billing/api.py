"""REST API of invoice runs and invoices (``/api/v1/``).

Thin like the pages: a serializer parses, a service writes (and checks every rule and permission), a selector
reads. Runs and invoices are addressed by public ID; an invoice outside a person's scope answers 404. POSTs
honour ``Idempotency-Key``: starting a run twice with the same key starts one run.
"""

from __future__ import annotations

from django.db.models import Count, Q
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from backbone.api import (
    IDEMPOTENCY_KEY,
    READ_ERRORS,
    WRITE_ERRORS,
    ActionPermissions,
    ApiViewMixin,
    idempotent,
    lookup_public_id,
    parse,
)

from . import api_delivery, api_documents, api_drafts, api_portal, selectors, services
from .models import Invoice, InvoiceRun
from .serializers import (
    InvoiceDetailSerializer,
    InvoiceLineSerializer,
    InvoiceRunSerializer,
    InvoiceRunStartSerializer,
    InvoiceSerializer,
    ReasonSerializer,
    RunExceptionSerializer,
)

# --- runs ---------------------------------------------------------------------------------------------


class RunPermissions(ActionPermissions):
    NEEDS = {
        "create": ("billing.start_invoicerun",),
        "retry": ("billing.start_invoicerun",),
        "exceptions": ("billing.view_invoicerun", "billing.view_runexception"),
    }


class RunFilter(filters.FilterSet):
    legal_entity = filters.UUIDFilter(field_name="legal_entity__public_id", label="Legal entity ID")

    class Meta:
        model = InvoiceRun
        fields = ["status", "legal_entity"]


@extend_schema_view(
    list=extend_schema(summary="List invoice runs", description="Newest first; filter by status, legal_entity."),
    retrieve=extend_schema(
        summary="An invoice run with its progress",
        description="Poll it while status is queued or running: progress_percent, projects_done/projects_total.",
        responses={200: InvoiceRunSerializer, **READ_ERRORS},
    ),
    create=extend_schema(
        summary="Start an invoice run",
        description="Finance. Bills the legal entity's approved, unbilled items dated up to period_end into draft "
        "invoices, in the queue; 409 while another run of the legal entity is queued or running.",
        request=InvoiceRunStartSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: InvoiceRunSerializer, **WRITE_ERRORS},
    ),
)
@extend_schema(tags=["invoice runs"])
class InvoiceRunViewSet(
    ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    serializer_class = InvoiceRunSerializer
    permission_classes = [RunPermissions]
    filterset_class = RunFilter
    queryset = InvoiceRun.objects.none()

    def get_queryset(self):
        return selectors.run_list(user=self.request.user).annotate(exceptions_count=Count("exceptions"))

    def get_serializer_class(self):
        return InvoiceRunStartSerializer if self.action == "create" else super().get_serializer_class()

    def get_object(self) -> InvoiceRun:
        return selectors.access_run(user=self.request.user, public_id=lookup_public_id(self))

    def _respond(self, run: InvoiceRun, status_code: int = status.HTTP_200_OK) -> Response:
        run = self.get_queryset().get(pk=run.pk)
        return Response(InvoiceRunSerializer(run, context=self.get_serializer_context()).data, status=status_code)

    def create(self, request, *args, **kwargs):
        def handler() -> Response:
            data = parse(self)
            run = services.invoice_run_start(
                actor=request.user,
                legal_entity=data["legal_entity"],
                period_start=data["period_start"],
                period_end=data["period_end"],
                trigger="api",
            )
            return self._respond(run, status.HTTP_201_CREATED)

        return idempotent(request, handler)

    @extend_schema(
        summary="Retry a failed or stuck run",
        description="Nothing already drafted is billed twice. 409 unless the run failed or made no progress "
        "for five minutes (a dead worker).",
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: InvoiceRunSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, *args, **kwargs):
        def handler() -> Response:
            return self._respond(services.invoice_run_retry(actor=request.user, run=self.get_object()))

        return idempotent(request, handler)

    @extend_schema(
        summary="What the run could not bill, and why",
        description="Finance's work queue: one row per item (or project) with the reason code and a message.",
        responses={200: RunExceptionSerializer(many=True), **READ_ERRORS},
    )
    @action(detail=True, methods=["get"], serializer_class=RunExceptionSerializer)
    def exceptions(self, request, *args, **kwargs):
        rows = selectors.run_exceptions(self.get_object())
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(RunExceptionSerializer(page, many=True).data)


# --- invoices -------------------------------------------------------------------------------------------


class InvoicePermissions(ActionPermissions):
    NEEDS = {
        "lines": ("billing.view_invoice", "billing.view_invoiceline"),
        "approve": ("billing.approve_invoice",),
        "return_to_draft": ("billing.view_invoice",),  # the service decides: approvers and editors
        "issue": ("billing.issue_invoice",),
        "discard": ("billing.change_invoice",),
        **api_drafts.NEEDS,
        **api_delivery.NEEDS,
        **api_documents.NEEDS,
        **api_portal.NEEDS,
    }


class InvoiceFilter(filters.FilterSet):
    q = filters.CharFilter(method="search", label="Search number or customer")
    customer = filters.UUIDFilter(field_name="customer__public_id", label="Customer ID")
    legal_entity = filters.UUIDFilter(field_name="legal_entity__public_id", label="Legal entity ID")
    project = filters.UUIDFilter(field_name="project__public_id", label="Project ID")
    run = filters.CharFilter(field_name="run__number", label="Run number")

    class Meta:
        model = Invoice
        fields = ["q", "status", "kind", "customer", "legal_entity", "project", "run", "currency"]

    def search(self, queryset, name, value):
        value = (value or "").strip()
        if not value:
            return queryset
        return queryset.filter(Q(number__icontains=value) | Q(customer__display_name__icontains=value))


@extend_schema_view(
    list=extend_schema(summary="List invoices", description="Filter with q, status, kind, customer, project, run."),
    retrieve=extend_schema(
        summary="An invoice with its lines", responses={200: InvoiceDetailSerializer, **READ_ERRORS}
    ),
)
@extend_schema(tags=["invoices"])
class InvoiceViewSet(
    api_drafts.InvoiceDraftsActions,
    api_delivery.InvoiceDeliveryActions,
    api_documents.InvoiceDocumentsActions,
    api_portal.InvoicePortalActions,
    ApiViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Draft → approved (maker-checker: above the approver's limit a second person approves) → issued (gapless
    number, frozen seller and buyer, tax evidence, the billed items marked billed). Issued invoices never
    change; corrections are credit notes."""

    serializer_class = InvoiceSerializer
    permission_classes = [InvoicePermissions]
    filterset_class = InvoiceFilter
    queryset = Invoice.objects.none()

    def get_queryset(self):
        return selectors.invoice_list(user=self.request.user).select_related(
            "created_by", "approved_by", "second_approved_by", "issued_by"
        )

    def get_serializer_class(self):
        return InvoiceDetailSerializer if self.action == "retrieve" else super().get_serializer_class()

    def get_object(self) -> Invoice:
        return selectors.access_invoice(user=self.request.user, public_id=lookup_public_id(self))

    def retrieve(self, request, *args, **kwargs):
        invoice = self.get_object()
        invoice._prefetched_objects_cache = {"lines": selectors.invoice_lines(invoice)}
        return Response(InvoiceDetailSerializer(invoice, context=self.get_serializer_context()).data)

    def _respond(self, invoice: Invoice) -> Response:
        invoice = self.get_queryset().get(pk=invoice.pk)
        return Response(InvoiceSerializer(invoice, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="The printed lines of an invoice", responses={200: InvoiceLineSerializer(many=True), **READ_ERRORS}
    )
    @action(detail=True, methods=["get"], serializer_class=InvoiceLineSerializer)
    def lines(self, request, *args, **kwargs):
        lines = selectors.invoice_lines(self.get_object())
        page = self.paginate_queryset(lines)
        return self.get_paginated_response(InvoiceLineSerializer(page, many=True).data)

    @extend_schema(
        summary="Approve a draft",
        description="Within your approval limit it becomes approved; above it your approval is the first and a "
        "second person (finance with a higher limit, an executive) approves. 403 names the limit and amount.",
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: InvoiceSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, *args, **kwargs):
        from . import issuing

        def handler() -> Response:
            return self._respond(issuing.invoice_approve(actor=request.user, invoice=self.get_object()))

        return idempotent(request, handler)

    @extend_schema(
        summary="Send an approved invoice back to draft",
        request=ReasonSerializer,
        responses={200: InvoiceSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="return-to-draft", serializer_class=ReasonSerializer)
    def return_to_draft(self, request, *args, **kwargs):
        from . import issuing

        data = parse(self)
        invoice = issuing.invoice_return_to_draft(actor=request.user, invoice=self.get_object(), reason=data["reason"])
        return self._respond(invoice)

    @extend_schema(
        summary="Issue an approved invoice",
        description="Takes the next gapless number, freezes seller and buyer, stores the tax evidence, computes "
        "the due date and marks the billed items billed, in one transaction. 409 when it is not approved.",
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: InvoiceSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def issue(self, request, *args, **kwargs):
        from . import issuing

        def handler() -> Response:
            return self._respond(issuing.invoice_issue(actor=request.user, invoice=self.get_object()))

        return idempotent(request, handler)

    @extend_schema(
        summary="Discard a draft or approved invoice",
        description="Its items are free for the next run. Issued invoices are never discarded (credit notes).",
        request=ReasonSerializer,
        responses={200: InvoiceSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], serializer_class=ReasonSerializer)
    def discard(self, request, *args, **kwargs):
        from . import issuing

        data = parse(self)
        return self._respond(
            issuing.invoice_discard(actor=request.user, invoice=self.get_object(), reason=data["reason"])
        )
