"""Invoice API actions: Disputes raised on an invoice (the client portal's side is a page, not this API).

A mixin of ``billing.api.InvoiceViewSet``; ``NEEDS`` adds the permission each action needs to the viewset's
``InvoicePermissions``.

- ``GET  /api/v1/invoices/{id}/disputes/`` — the invoice's disputes, open ones first (project managers of its
  projects, finance, executives, auditors).
- ``POST /api/v1/invoices/{id}/disputes/`` — finance records a dispute received by phone or email (opens one,
  or adds to the open one); ``Idempotency-Key`` honoured.
- ``POST /api/v1/invoices/{id}/disputes/{dispute_id}/resolve/`` — finance closes an open dispute as resolved
  or rejected, with the resolution; ``Idempotency-Key`` honoured.

The services (``billing.disputes``) decide; their refusals answer 400/403/409 JSON.
"""

from __future__ import annotations

import uuid

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.settings import api_settings

from backbone.api import IDEMPOTENCY_KEY, READ_ERRORS, WRITE_ERRORS, flat_errors, idempotent, parse
from backbone.errors import ValidationFailed

from . import disputes as d
from .models import Dispute
from .serializers_portal import DisputeRecordSerializer, DisputeResolveSerializer, DisputeSerializer

NEEDS: dict[str, tuple[str, ...]] = {
    "disputes": ("billing.view_invoice", "billing.view_dispute"),
    "disputes_record": ("billing.view_invoice", "billing.add_dispute"),
    "dispute_resolve": ("billing.view_invoice", "billing.resolve_dispute"),
}

DISPUTE_ID = OpenApiParameter("dispute_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The dispute's ID.")


def _validated(serializer_class, data) -> dict:
    """``backbone.api.parse`` for an action whose route shares its serializer with another method."""
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        errors = flat_errors(serializer.errors)
        key, messages = next(iter(errors.items()))
        summary = messages[0] if key == api_settings.NON_FIELD_ERRORS_KEY else f"{key}: {messages[0]}"
        raise ValidationFailed(summary, errors=errors)
    return dict(serializer.validated_data)


class InvoicePortalActions:
    @extend_schema(
        summary="The disputes of an invoice",
        description="Raised by the client on the portal or recorded by finance; open ones first, then newest.",
        responses={200: DisputeSerializer(many=True), **READ_ERRORS},
    )
    @action(detail=True, methods=["get"], serializer_class=DisputeSerializer)
    def disputes(self, request, *args, **kwargs):
        invoice = self.get_object()
        page = self.paginate_queryset(d.disputes_of(invoice))
        return self.get_paginated_response(DisputeSerializer(page, many=True).data)

    @extend_schema(
        summary="Record a dispute the client raised by phone or email",
        description="Opens a dispute on an issued invoice, or adds the message to its open one (one open dispute "
        "per invoice); the rest of finance is notified. 409 for a draft, a credit note or an invoice credited in "
        "full.",
        request=DisputeRecordSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: DisputeSerializer, **WRITE_ERRORS},
    )
    @disputes.mapping.post
    def disputes_record(self, request, *args, **kwargs):
        def handler() -> Response:
            data = _validated(DisputeRecordSerializer, request.data)
            dispute = d.dispute_record(actor=request.user, invoice=self.get_object(), **data)
            return Response(
                DisputeSerializer(dispute, context=self.get_serializer_context()).data,
                status=status.HTTP_200_OK if dispute.added_to else status.HTTP_201_CREATED,
            )

        return idempotent(request, handler)

    @extend_schema(
        summary="Resolve or reject an open dispute",
        description="Closes the dispute with the outcome and the resolution the client is shown on the portal. 409 "
        "when it is closed already.",
        request=DisputeResolveSerializer,
        parameters=[DISPUTE_ID, IDEMPOTENCY_KEY],
        responses={200: DisputeSerializer, **WRITE_ERRORS},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"disputes/(?P<dispute_id>[^/.]+)/resolve",
        url_name="dispute-resolve",
        serializer_class=DisputeResolveSerializer,
    )
    def dispute_resolve(self, request, *args, dispute_id=None, **kwargs):
        def handler() -> Response:
            dispute = self._dispute(dispute_id)
            data = parse(self)
            closed = d.dispute_resolve(actor=request.user, dispute=dispute, **data)
            return Response(DisputeSerializer(closed, context=self.get_serializer_context()).data)

        return idempotent(request, handler)

    def _dispute(self, dispute_id) -> Dispute:
        """A dispute of the invoice in the URL (itself within the person's scope); else 404."""
        invoice = self.get_object()
        try:
            public_id = uuid.UUID(str(dispute_id))
        except ValueError:
            raise Http404 from None
        dispute = Dispute.objects.filter(invoice=invoice, public_id=public_id).select_related("invoice").first()
        if dispute is None:
            raise Http404("No such dispute on this invoice.")
        return dispute
