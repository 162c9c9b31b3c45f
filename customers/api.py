"""REST API of customers, contacts, the catalog and our legal entities (``/api/v1/``).

Thin like the pages: a serializer parses, a service writes (and checks every rule and permission), a selector
reads. Objects are addressed by public ID (``id`` in JSON); objects outside a person's scope answer 404.
Errors are JSON with one message per field under flat keys (``addresses.1.country``), whether a serializer
or a service found them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from backbone.api import (
    IDEMPOTENCY_KEY,
    READ_ERRORS,
    WRITE_ERRORS,
    ApiViewMixin,
    RolePermissions,
    idempotent,
    lookup_public_id,
    parse,
)
from backbone.errors import Conflict, ValidationFailed
from backbone.models import ExternalId
from backbone.roles import is_read_only
from backbone.services import external_id_lookup

from . import selectors, services
from .filters import CustomerFilter, ProductFilter
from .models import Address, Contact, Customer, LegalEntity, Product, TaxRegistration
from .serializers import (
    ContactSerializer,
    CustomerSerializer,
    CustomerStatusSerializer,
    LegalEntitySerializer,
    ProductSerializer,
)

# --- customers ----------------------------------------------------------------------------------------

NESTED = ("addresses", "registrations", "contacts")


class CustomerPermissions(RolePermissions):
    """Finance edits the billing fields of every customer without holding ``change_customer``, so edits
    need either permission; the service then decides which fields may change (403 with the names)."""

    EDIT = ("customers.change_customer", "customers.change_customer_billing")
    NEEDS = {
        "update": EDIT,
        "partial_update": EDIT,
        "set_status": EDIT,
        "upsert_by_external_id": ("customers.add_customer", *EDIT),
    }

    def has_permission(self, request, view) -> bool:
        needed = self.NEEDS.get(getattr(view, "action", None))
        if needed is None:
            return super().has_permission(request, view)
        user = request.user
        if not (user and user.is_authenticated) or is_read_only(user):
            return False
        return any(user.has_perm(perm) for perm in needed)


def attach_external_ids(customers: Iterable[Customer]) -> None:
    """One query for the external IDs of a whole page (the serializer reads ``_api_external_ids``)."""
    customers = list(customers)
    if not customers:
        return
    by_object: dict[int, list[ExternalId]] = {}
    links = ExternalId.objects.filter(
        content_type=ContentType.objects.get_for_model(Customer), object_id__in=[c.pk for c in customers]
    ).order_by("system")
    for link in links:
        by_object.setdefault(link.object_id, []).append(link)
    for customer in customers:
        customer._api_external_ids = by_object.get(customer.pk, [])


# How an upstream system's nested rows (which carry no IDs of ours) find the row they describe.
_NATURAL_KEYS = {
    "addresses": lambda row: (
        str(row.get("kind") or Address.Kind.BILLING),
        str(row.get("label") or "").strip().lower(),
    ),
    "registrations": lambda row: (
        str(row.get("kind") or TaxRegistration.Kind.VAT),
        str(row.get("country") or "").strip().upper(),
    ),
    "contacts": lambda row: (str(row.get("email") or "").strip().lower(),),
}
_NESTED_FIELDS = {
    "addresses": (Address, services.ADDRESS_FIELDS),
    "registrations": (TaxRegistration, services.REGISTRATION_FIELDS),
    "contacts": (Contact, services.CONTACT_FIELDS),
}


def _comparable(model, field: str, value: Any) -> Any:
    if field == "country":
        return str(value or "").strip().upper()
    if field == "email":
        return str(value or "").strip().lower()
    if field == "number":
        return "".join(ch for ch in str(value or "").upper() if ch.isalnum())
    if isinstance(value, str):
        return value.strip()
    return value


def _row_unchanged(model, fields, row: Mapping[str, Any], current) -> bool:
    for field in fields:
        given = row[field] if field in row else model._meta.get_field(field).get_default()
        stored = getattr(current, field)
        if field == "number":  # stored normalised, with its country prefix (EL for Greece)
            given, stored = _comparable(model, field, given), _comparable(model, field, stored)
            if not (stored == given or (stored.endswith(given) and len(stored) - len(given) == 2)):
                return False
        elif _comparable(model, field, given) != _comparable(model, field, stored):
            return False
    return True


def match_upstream_rows(customer: Customer, data: dict[str, Any]) -> None:
    """Make an upstream sync idempotent: nested rows without an ``id`` take the ID of the existing row with
    the same natural key (address kind and label, registration kind and country, contact email), and a list
    that would change nothing is dropped, so a repeated sync creates no rows and no history."""
    for key in NESTED:
        rows = data.get(key)
        if rows is None:
            continue
        model, fields = _NESTED_FIELDS[key]
        natural_key = _NATURAL_KEYS[key]
        current = list(getattr(customer, key).all())
        by_id = {child.public_id: child for child in current}
        free = {}
        for child in current:
            values = {f: str(getattr(child, f)) for f in fields}
            free.setdefault(natural_key(values), []).append(child)
        matched = []
        for row in rows:
            if row.get("public_id") is None and free.get(natural_key(row)):
                row["public_id"] = free[natural_key(row)].pop(0).public_id
            matched.append(by_id.get(row.get("public_id")))
        unchanged = len(rows) == len(current) and all(
            child is not None and _row_unchanged(model, fields, row, child)
            for row, child in zip(rows, matched, strict=True)
        )
        if unchanged and len({child.pk for child in matched}) == len(current):
            data.pop(key)


def _customer_response(customer: Customer, *, request, status_code: int = status.HTTP_200_OK) -> Response:
    # Re-read with the details: the service's instance does not carry fresh nested rows.
    customer = selectors.customer_with_details(Customer.objects.filter(pk=customer.pk)).get()
    attach_external_ids([customer])
    return Response(CustomerSerializer(customer, context={"request": request}).data, status=status_code)


@extend_schema_view(
    list=extend_schema(
        summary="List customers",
        description="Filter with q, status, owner, country, kind; "
        "sort with ordering (name, number, status, created, updated; '-' for descending).",
    ),
    retrieve=extend_schema(summary="A customer", responses={200: CustomerSerializer, **READ_ERRORS}),
    create=extend_schema(
        summary="Create a customer",
        parameters=[IDEMPOTENCY_KEY],
        responses={201: CustomerSerializer, **WRITE_ERRORS},
    ),
    update=extend_schema(summary="Replace a customer", responses={200: CustomerSerializer, **WRITE_ERRORS}),
    partial_update=extend_schema(summary="Change a customer", responses={200: CustomerSerializer, **WRITE_ERRORS}),
)
@extend_schema(tags=["customers"])
class CustomerViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Customers with nested addresses, tax registrations and contacts. Not deleted: archived by status."""

    serializer_class = CustomerSerializer
    permission_classes = [CustomerPermissions]
    filterset_class = CustomerFilter
    queryset = Customer.objects.none()  # the model for permissions and the schema; rows come from get_queryset

    def get_queryset(self):
        return selectors.customer_with_details(selectors.customers_visible_to(self.request.user))

    def get_object(self) -> Customer:
        customer = selectors.access_customer(user=self.request.user, public_id=lookup_public_id(self))
        attach_external_ids([customer])
        return customer

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        attach_external_ids(page or [])
        return page

    def create(self, request, *args, **kwargs):
        def handler() -> Response:
            customer = self._create(parse(self))
            return _customer_response(customer, request=request, status_code=status.HTTP_201_CREATED)

        return idempotent(request, handler)

    def update(self, request, *args, **kwargs):
        customer = self.get_object()
        data = parse(self, instance=customer, partial=kwargs.get("partial", False))
        return _customer_response(self._update(customer, data), request=request)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    @extend_schema(
        summary="Move a customer along its lifecycle",
        description="prospect → active → on hold / archived (archiving needs a reason); archived → active.",
        request=CustomerStatusSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: CustomerSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="status", serializer_class=CustomerStatusSerializer)
    def set_status(self, request, *args, **kwargs):
        def handler() -> Response:
            customer = self.get_object()
            data = parse(self)
            customer = services.customer_set_status(
                user=request.user, customer=customer, status=data["status"], reason=data.get("reason", "")
            )
            return _customer_response(customer, request=request)

        return idempotent(request, handler)

    @extend_schema(
        operation_id="customers_upsert_by_external_id",
        summary="Create or update a customer by an upstream system's ID",
        description="Creates the customer and links the external ID if no customer has it yet (201), else "
        "updates that customer (200). Nested lists present in the body replace the current rows; rows "
        "without an id are matched by natural key (address kind and label, registration kind and country, "
        "contact email), so sending the same body again changes and creates nothing. The status is taken "
        "on create only; later it changes through POST …/status/.",
        parameters=[
            OpenApiParameter("system", OpenApiTypes.STR, OpenApiParameter.PATH, description="e.g. hubspot"),
            OpenApiParameter("external_id", OpenApiTypes.STR, OpenApiParameter.PATH),
        ],
        request=CustomerSerializer,
        responses={200: CustomerSerializer, 201: CustomerSerializer, **WRITE_ERRORS},
    )
    @action(detail=False, methods=["put"], url_path=r"by-external-id/(?P<system>[^/]+)/(?P<external_id>[^/]+)")
    def upsert_by_external_id(self, request, system: str, external_id: str):
        link = {"system": system, "external_id": external_id}
        existing = external_id_lookup(model=Customer, system=system, external_id=external_id)
        data = parse(self)
        if existing is None:
            body_links = [item for item in data.get("external_ids") or [] if dict(item) != link]
            try:
                customer = self._create({**data, "external_ids": [link, *body_links]})
            except Conflict:
                # A concurrent sync of the same upstream record won the race: update its customer instead.
                existing = external_id_lookup(model=Customer, system=system, external_id=external_id)
                if existing is None:
                    raise
            else:
                return _customer_response(customer, request=request, status_code=status.HTTP_201_CREATED)
        customer = selectors.access_customer(user=request.user, public_id=existing.public_id)
        match_upstream_rows(customer, data)
        return _customer_response(self._update(customer, data), request=request)

    def _create(self, data: dict[str, Any]) -> Customer:
        data = dict(data)
        nested = {key: data.pop(key, None) or [] for key in NESTED}
        links, reason = data.pop("external_ids", None) or [], data.pop("reason", "")
        return services.customer_create(user=self.request.user, data=data, external_ids=links, reason=reason, **nested)

    @transaction.atomic
    def _update(self, customer: Customer, data: dict[str, Any]) -> Customer:
        data = dict(data)
        new_status = data.pop("status", None)
        if new_status and new_status != customer.status:
            raise ValidationFailed(
                "The status changes through POST /api/v1/customers/{id}/status/, which checks the transition.",
                field="status",
            )
        links, reason = data.pop("external_ids", None) or [], data.pop("reason", "")
        nested = {key: data.pop(key, None) for key in NESTED}
        customer = services.customer_update(
            user=self.request.user, customer=customer, data=data, reason=reason, **nested
        )
        for link in links:
            services.customer_link_external_id(user=self.request.user, customer=customer, **link)
        return customer


# --- contacts -----------------------------------------------------------------------------------------


class ContactFilter(filters.FilterSet):
    customer = filters.UUIDFilter(field_name="customer__public_id", label="Customer ID")
    q = filters.CharFilter(method="search", label="Search")

    class Meta:
        model = Contact
        fields = ["customer", "q", "role", "is_active", "receives_invoices"]

    def search(self, queryset, name, value):
        value = (value or "").strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(last_name__icontains=value) | Q(first_name__icontains=value) | Q(email__icontains=value)
        )


@extend_schema_view(
    retrieve=extend_schema(responses={200: ContactSerializer, **READ_ERRORS}),
    create=extend_schema(parameters=[IDEMPOTENCY_KEY], responses={201: ContactSerializer, **WRITE_ERRORS}),
    update=extend_schema(responses={200: ContactSerializer, **WRITE_ERRORS}),
    partial_update=extend_schema(responses={200: ContactSerializer, **WRITE_ERRORS}),
    destroy=extend_schema(responses={204: None, **WRITE_ERRORS}),
)
@extend_schema(tags=["contacts"])
class ContactViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Contacts of the customers you can see; changed by whoever may edit their customer."""

    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    queryset = Contact.objects.none()

    def get_queryset(self):
        return selectors.contacts_visible_to(self.request.user).select_related("customer")

    def get_object(self) -> Contact:
        return selectors.access_contact(user=self.request.user, public_id=lookup_public_id(self))

    def create(self, request, *args, **kwargs):
        def handler() -> Response:
            data = parse(self)
            customer, reason = data.pop("customer"), data.pop("reason", "")
            contact = services.contact_create(user=request.user, customer=customer, data=data, reason=reason)
            return Response(self.get_serializer(contact).data, status=status.HTTP_201_CREATED)

        return idempotent(request, handler)

    def update(self, request, *args, **kwargs):
        contact = self.get_object()
        data = parse(self, instance=contact, partial=kwargs.get("partial", False))
        data.pop("customer", None)  # the serializer refused a different one
        reason = data.pop("reason", "")
        contact = services.contact_update(user=request.user, contact=contact, data=data, reason=reason)
        return Response(self.get_serializer(contact).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    def destroy(self, request, *args, **kwargs):
        services.contact_delete(user=request.user, contact=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- catalog ------------------------------------------------------------------------------------------


@extend_schema_view(
    retrieve=extend_schema(responses={200: ProductSerializer, **READ_ERRORS}),
    create=extend_schema(parameters=[IDEMPOTENCY_KEY], responses={201: ProductSerializer, **WRITE_ERRORS}),
    update=extend_schema(responses={200: ProductSerializer, **WRITE_ERRORS}),
    partial_update=extend_schema(responses={200: ProductSerializer, **WRITE_ERRORS}),
)
@extend_schema(tags=["products"])
class ProductViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The catalog of products and services. Not deleted: retired with is_active=false."""

    serializer_class = ProductSerializer
    filterset_class = ProductFilter
    queryset = Product.objects.none()

    def get_queryset(self):
        return selectors.products_visible_to(self.request.user)

    def get_object(self):
        return selectors.access_product(user=self.request.user, public_id=lookup_public_id(self))

    def create(self, request, *args, **kwargs):
        def handler() -> Response:
            data = parse(self)
            reason = data.pop("reason", "")
            product = services.product_create(user=request.user, data=data, reason=reason)
            return Response(self.get_serializer(product).data, status=status.HTTP_201_CREATED)

        return idempotent(request, handler)

    def update(self, request, *args, **kwargs):
        product = self.get_object()
        data = parse(self, instance=product, partial=kwargs.get("partial", False))
        reason = data.pop("reason", "")
        product = services.product_update(user=request.user, product=product, data=data, reason=reason)
        return Response(self.get_serializer(product).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)


# --- our legal entities -------------------------------------------------------------------------------


@extend_schema_view(
    retrieve=extend_schema(responses={200: LegalEntitySerializer, **READ_ERRORS}),
    create=extend_schema(parameters=[IDEMPOTENCY_KEY], responses={201: LegalEntitySerializer, **WRITE_ERRORS}),
    update=extend_schema(responses={200: LegalEntitySerializer, **WRITE_ERRORS}),
    partial_update=extend_schema(responses={200: LegalEntitySerializer, **WRITE_ERRORS}),
)
@extend_schema(tags=["legal entities"])
class LegalEntityViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Our own billing companies with their registrations and bank accounts (IBAN and BIC validated).

    Nested lists present on update replace the current rows (they get new IDs)."""

    serializer_class = LegalEntitySerializer
    filter_backends = []
    queryset = LegalEntity.objects.none()

    def get_queryset(self):
        return selectors.legal_entity_with_details(selectors.legal_entities_visible_to(self.request.user))

    def get_object(self):
        return selectors.access_legal_entity(user=self.request.user, public_id=lookup_public_id(self))

    def _respond(self, entity, status_code: int = status.HTTP_200_OK) -> Response:
        entity = selectors.legal_entity_with_details(type(entity).objects.filter(pk=entity.pk)).get()
        return Response(self.get_serializer(entity).data, status=status_code)

    def create(self, request, *args, **kwargs):
        def handler() -> Response:
            data = parse(self)
            entity = services.legal_entity_create(
                user=request.user,
                registrations=data.pop("registrations", None) or [],
                bank_accounts=data.pop("bank_accounts", None) or [],
                reason=data.pop("reason", ""),
                data=data,
            )
            return self._respond(entity, status.HTTP_201_CREATED)

        return idempotent(request, handler)

    def update(self, request, *args, **kwargs):
        entity = self.get_object()
        data = parse(self, instance=entity, partial=kwargs.get("partial", False))
        entity = services.legal_entity_update(
            user=request.user,
            entity=entity,
            registrations=data.pop("registrations", None),
            bank_accounts=data.pop("bank_accounts", None),
            reason=data.pop("reason", ""),
            data=data,
        )
        return self._respond(entity)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)
