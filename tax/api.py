"""REST API of the tax app (``/api/v1/tax/``): rates, jurisdictions, stored evidence and the tax preview.

The preview is what quotes and invoice drafts call: it runs the configured engine on a context and stores
nothing. Evidence is stored by the documents that issue (``tax.services.tax_calculation_record``).
"""

from __future__ import annotations

import datetime as dt

from django.http import Http404
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

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
from backbone.errors import ValidationFailed
from backbone.roles import is_read_only
from tax import selectors, services
from tax.context import TaxContext
from tax.models import Jurisdiction, TaxCalculation, TaxRate
from tax.serializers import (
    JurisdictionSerializer,
    TaxCalculationSerializer,
    TaxContextSerializer,
    TaxRateSerializer,
    TaxResultSerializer,
)


@extend_schema(tags=["tax"])
class JurisdictionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Countries with VAT rates, each with every rate it has had (validity dates inclusive)."""

    serializer_class = JurisdictionSerializer
    permission_classes = [RolePermissions]
    lookup_field = "country"
    lookup_url_kwarg = "country"
    queryset = Jurisdiction.objects.none()

    def get_queryset(self):
        return Jurisdiction.objects.prefetch_related("rates__jurisdiction", "rates__created_by").order_by("country")

    def get_object(self):
        try:
            return self.get_queryset().get(country=str(self.kwargs["country"]).upper())
        except Jurisdiction.DoesNotExist:
            raise Http404 from None


class TaxRateFilter(filters.FilterSet):
    country = filters.CharFilter(field_name="jurisdiction__country", method="filter_country")
    kind = filters.ChoiceFilter(choices=TaxRate._meta.get_field("kind").choices)
    on = filters.DateFilter(method="filter_on", label="In force on (YYYY-MM-DD)")

    class Meta:
        model = TaxRate
        fields = ["country", "kind", "source"]

    def filter_country(self, queryset, name, value):
        return queryset.filter(jurisdiction__country=value.upper())

    def filter_on(self, queryset, name, value: dt.date):
        return queryset.filter(valid_from__lte=value).exclude(valid_to__lt=value)


@extend_schema_view(
    retrieve=extend_schema(responses={200: TaxRateSerializer, **READ_ERRORS}),
    create=extend_schema(
        parameters=[IDEMPOTENCY_KEY],
        responses={201: TaxRateSerializer, **WRITE_ERRORS},
        description="Add a rate with its validity window. A rate starting while an open-ended rate of the same "
        "kind is in force closes that rate the day before; any other overlap answers 409.",
    ),
)
@extend_schema(tags=["tax"])
class TaxRateViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """VAT rates with validity windows: filter by country, kind, source or the day they are in force."""

    serializer_class = TaxRateSerializer
    filterset_class = TaxRateFilter
    permission_classes = [RolePermissions]
    queryset = TaxRate.objects.none()

    def get_queryset(self):
        return TaxRate.objects.select_related("jurisdiction", "created_by").order_by(
            "jurisdiction__country", "kind", "valid_from"
        )

    def get_object(self):
        try:
            return self.get_queryset().get(public_id=lookup_public_id(self))
        except TaxRate.DoesNotExist:
            raise Http404 from None

    def create(self, request, *args, **kwargs):
        def handler() -> Response:
            data = parse(self)
            rate = services.tax_rate_create(
                actor=request.user,
                country=data["jurisdiction"]["country"],
                kind=data["kind"],
                rate=data["rate"],
                valid_from=data["valid_from"],
                valid_to=data.get("valid_to"),
                source_reference=data.get("source_reference", ""),
                note=data.get("note", ""),
            )
            return Response(self.get_serializer(rate).data, status=status.HTTP_201_CREATED)

        return idempotent(request, handler)


@extend_schema_view(retrieve=extend_schema(responses={200: TaxCalculationSerializer, **READ_ERRORS}))
@extend_schema(tags=["tax"])
class TaxCalculationViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Stored evidence of tax decisions: input context, engine and rate versions, rules fired, result, SHA-256."""

    serializer_class = TaxCalculationSerializer
    permission_classes = [RolePermissions]
    filter_backends = []
    queryset = TaxCalculation.objects.none()

    def get_queryset(self):
        return selectors.calculations_visible_to(user=self.request.user)

    def get_object(self):
        return selectors.access_calculation(user=self.request.user, public_id=lookup_public_id(self))


class CanPreviewTax(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return user.has_perm("tax.preview_tax") and not is_read_only(user)


_PREVIEW_EXAMPLE = {
    "seller": {"country": "DE"},
    "buyer": {"country": "FR", "is_business": True, "registrations": [{"country": "FR", "number": "FR40303265045"}]},
    "lines": [{"id": "1", "description": "Consulting, March", "net_amount": "1200.00", "category": "S"}],
    "tax_point": "2026-03-31",
    "currency": "EUR",
}


class TaxPreviewView(APIView):
    """Tax of a document that is not issued yet: categories, rates, breakdown, legal notes and the rules fired."""

    permission_classes = [CanPreviewTax]
    parser_classes = [JSONParser]

    @extend_schema(
        tags=["tax"],
        operation_id="tax_preview",
        request=TaxContextSerializer,
        responses={
            200: TaxResultSerializer,
            400: OpenApiResponse(ApiErrorSerializer, description="The context is incomplete or invalid."),
            403: OpenApiResponse(ApiErrorSerializer, description="Your role may not preview tax."),
        },
        examples=[OpenApiExample("B2B service DE → FR (reverse charge)", value=_PREVIEW_EXAMPLE, request_only=True)],
    )
    def post(self, request):
        serializer = TaxContextSerializer(data=request.data)
        if not serializer.is_valid():
            errors = flat_errors(serializer.errors)
            key, messages = next(iter(errors.items()))
            raise ValidationFailed(f"{key}: {messages[0]}", errors=errors)
        context = TaxContext.from_dict(serializer.validated_data)
        result = services.tax_preview(context=context)
        return Response({**result.to_dict(), "context_sha256": context.sha256()})
