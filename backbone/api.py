"""The API's shared machinery: permissions, pagination, error bodies and Idempotency-Key handling."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.settings import api_settings

from .errors import DomainError, ValidationFailed
from .models import IdempotencyRecord
from .roles import is_read_only

logger = logging.getLogger(__name__)


class Pagination(PageNumberPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 200


class RolePermissions(permissions.DjangoModelPermissions):
    """Deny by default: every method needs the role's model permission, reads included.

    Object scope (a sales rep's own accounts) is narrowed by each view's queryset, through the app's
    ``access_*``/``*_visible_to`` selectors, so objects outside a person's scope answer 404.
    """

    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        if request.user and request.method not in permissions.SAFE_METHODS and is_read_only(request.user):
            return False
        return super().has_permission(request, view)


class ActionPermissions(RolePermissions):
    """Deny by default, with the model permissions each action needs where the HTTP method says too little
    (approving is a POST, yet needs ``approve_invoice``, not ``add_invoice``). ``NEEDS`` is keyed by the
    action's name, or by ``(action, method)`` where one action answers several methods (a GET list and a POST
    add); the pair wins. Actions missing from ``NEEDS`` fall back to the method's model permission."""

    NEEDS: dict[str | tuple[str, str], tuple[str, ...]] = {}

    def has_permission(self, request, view) -> bool:
        action = getattr(view, "action", None) or ""
        needed = self.NEEDS.get((action, request.method), self.NEEDS.get(action))
        if needed is None:
            return super().has_permission(request, view)
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method not in permissions.SAFE_METHODS and is_read_only(user):
            return False
        return all(user.has_perm(perm) for perm in needed)


def _flatten_detail(detail):
    if isinstance(detail, dict):
        return {key: _flatten_detail(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten_detail(item) for item in detail]
    return str(detail)


def _first_message(errors) -> str:
    if isinstance(errors, dict):
        for key, value in errors.items():
            inner = _first_message(value)
            if inner:
                return inner if key in ("non_field_errors", "__all__") else f"{key}: {inner}"
    if isinstance(errors, list):
        for item in errors:
            inner = _first_message(item)
            if inner:
                return inner
    if isinstance(errors, str):
        return errors
    return ""


def exception_handler(exc, context):
    """Every error is JSON: ``{"message": ..., "code": ..., "errors": {field: [messages]}}``; never a 500
    for a refusal the domain knows about."""
    # Imported here: rest_framework.views loads this module's permission class while it initialises.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DomainError):
        return Response({"message": exc.message, "code": exc.code, "errors": exc.errors}, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(
            {"message": _first_message(errors), "code": "invalid", "errors": errors},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, IntegrityError):
        logger.warning("Integrity error answered as 409: %s", exc)
        return Response(
            {
                "message": "The change conflicts with existing data (a duplicate or a missing reference).",
                "code": "conflict",
                "errors": {},
            },
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten_detail(exc.detail)
        if isinstance(errors, list):
            errors = {"non_field_errors": errors}
        response.data = {
            "message": _first_message(errors) or "The input is not valid.",
            "code": "invalid",
            "errors": errors,
        }
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        message = str(detail) if not isinstance(detail, (dict, list)) else _first_message(_flatten_detail(detail))
        response.data = {"message": message, "code": getattr(detail, "code", exc.default_code), "errors": {}}
    return response


def request_fingerprint(request) -> str:
    try:
        body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        body = request.body.decode("utf-8", "replace")
    raw = f"{request.method} {request.path}\n{body}"
    return hashlib.sha256(raw.encode()).hexdigest()


def idempotent(request, handler) -> Response:
    """Run ``handler`` once per (user, Idempotency-Key).

    Same key and body → the stored response again, nothing created twice. Same key, other body or path →
    409. The handler and the stored record commit together, so a crash leaves neither behind and a retry
    is safe. Only successful responses are stored: a refused request can be corrected and retried.
    """
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return handler()
    if len(key) > 255:
        raise DomainError("The Idempotency-Key header must be at most 255 characters.", field="Idempotency-Key")
    fingerprint = request_fingerprint(request)
    existing = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
    if existing is not None:
        if existing.request_hash != fingerprint:
            return Response(
                {
                    "message": "This Idempotency-Key was already used with a different request; use a new key.",
                    "code": "idempotency_key_reused",
                    "errors": {},
                },
                status=status.HTTP_409_CONFLICT,
            )
        return Response(existing.response_body, status=existing.status_code, headers={"Idempotent-Replayed": "true"})
    with transaction.atomic():
        response = handler()
        if 200 <= response.status_code < 300:
            try:
                with transaction.atomic():
                    IdempotencyRecord.objects.create(
                        user=request.user,
                        key=key,
                        method=request.method,
                        path=request.path[:500],
                        request_hash=fingerprint,
                        status_code=response.status_code,
                        response_body=response.data,
                    )
            except IntegrityError:
                # A concurrent request with the same key won the race: undo ours entirely.
                transaction.set_rollback(True)
                return Response(
                    {
                        "message": "Another request with this Idempotency-Key was processed at the same time; "
                        "retry to get its response.",
                        "code": "idempotency_key_in_use",
                        "errors": {},
                    },
                    status=status.HTTP_409_CONFLICT,
                )
    return response


class IdempotentCreateMixin:
    """Honour ``Idempotency-Key`` on POST for a viewset's create action."""

    def create(self, request, *args, **kwargs):
        return idempotent(request, lambda: super(IdempotentCreateMixin, self).create(request, *args, **kwargs))


# --- shared plumbing of every app's API -----------------------------------------------------------


class ApiErrorSerializer(serializers.Serializer):
    """The body of every error answer (backbone.api.exception_handler)."""

    message = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per field; nested inputs use flat keys such as 'addresses.1.country'.",
    )


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Retry-safe POST: the same key with the same body answers the first response again "
    "(header Idempotent-Replayed: true) and creates nothing; the same key with another body answers 409.",
)
_ERROR = ApiErrorSerializer
READ_ERRORS = {404: OpenApiResponse(_ERROR, description="Not found or outside your scope.")}
WRITE_ERRORS = {
    400: OpenApiResponse(_ERROR, description="Invalid input; messages per field."),
    403: OpenApiResponse(_ERROR, description="Your role may not do this."),
    **READ_ERRORS,
    409: OpenApiResponse(_ERROR, description="Conflicts with existing data or the record's state."),
}


def flat_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error structure → the services' flat keys (``addresses.1.country``)."""
    flat: dict[str, list[str]] = {}

    def walk(node: Any, key: str) -> None:
        if isinstance(node, Mapping):
            for name, value in node.items():
                name = str(name)
                walk(value, key if name == api_settings.NON_FIELD_ERRORS_KEY else f"{key}.{name}" if key else name)
        elif isinstance(node, list) and any(isinstance(item, Mapping | list) for item in node):
            for index, item in enumerate(node):
                if item:
                    walk(item, f"{key}.{index}")
        elif isinstance(node, list):
            flat.setdefault(key or api_settings.NON_FIELD_ERRORS_KEY, []).extend(str(item) for item in node)
        elif node:
            flat.setdefault(key or api_settings.NON_FIELD_ERRORS_KEY, []).append(str(node))

    walk(detail, prefix)
    return flat


def parse(view, *, instance=None, partial: bool = False) -> dict[str, Any]:
    """Validate the request body with the view's serializer; refuse with flat per-field errors."""
    serializer = view.get_serializer(instance, data=view.request.data, partial=partial)
    if not serializer.is_valid():
        errors = flat_errors(serializer.errors)
        key, messages = next(iter(errors.items()))
        summary = messages[0] if key == api_settings.NON_FIELD_ERRORS_KEY else f"{key}: {messages[0]}"
        raise ValidationFailed(summary, errors=errors)
    return dict(serializer.validated_data)


def lookup_public_id(view) -> uuid.UUID:
    """The public ID in the URL; anything that is not a UUID cannot name a record, so 404."""
    try:
        return uuid.UUID(str(view.kwargs[view.lookup_url_kwarg]))
    except ValueError:
        raise Http404 from None


class ApiViewMixin:
    """Records are addressed by public ID; bodies are JSON (nested lists do not fit form encoding)."""

    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    filter_backends = [filters.DjangoFilterBackend]
    parser_classes = [JSONParser]
