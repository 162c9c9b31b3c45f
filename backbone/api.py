"""The API's shared machinery: permissions, pagination, error bodies and Idempotency-Key handling."""

from __future__ import annotations

import hashlib
import json
import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from rest_framework import exceptions, permissions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from .errors import DomainError
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
