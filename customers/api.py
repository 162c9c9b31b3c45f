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
from django.db.models import Prefetch, Q
from django.http import Http404
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from backbone.api import (
    IDEMPOTENCY_KEY,
    READ_ERRORS,
    WRITE_ERRORS,
    ActionPermissions,
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
from .filters import CustomerFilter, DealFilter, ProductFilter
from .models import Address, Contact, Customer, Deal, LegalEntity, Product, Quote, QuoteLine, TaxRegistration
from .serializers import (
    ContactSerializer,
    CustomerSerializer,
    CustomerStatusSerializer,
    DealSerializer,
    DealStageSerializer,
    LegalEntitySerializer,
    ProductSerializer,
    QuoteAcceptSerializer,
    QuoteAttachmentSerializer,
    QuoteSerializer,
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


# --- deals --------------------------------------------------------------------------------------------


class DealPermissions(ActionPermissions):
    NEEDS = {("stage", "POST"): ("customers.change_deal",)}


def _deal_response(view, deal: Deal, status_code: int = status.HTTP_200_OK) -> Response:
    deal = selectors.deal_list(user=view.request.user).get(pk=deal.pk)
    return Response(DealSerializer(deal, context=view.get_serializer_context()).data, status=status_code)


@extend_schema_view(
    list=extend_schema(
        summary="List deals",
        description="The deals you may see (sales: your own and those on your accounts). Filter with q, stage "
        "(repeatable), outcome, owner, customer, currency; sort with ordering (number, title, customer, stage, "
        "amount, probability, close, updated; '-' for descending).",
    ),
    retrieve=extend_schema(summary="A deal", responses={200: DealSerializer, **READ_ERRORS}),
    create=extend_schema(
        summary="Open a deal", parameters=[IDEMPOTENCY_KEY], responses={201: DealSerializer, **WRITE_ERRORS}
    ),
    update=extend_schema(summary="Replace a deal's fields", responses={200: DealSerializer, **WRITE_ERRORS}),
    partial_update=extend_schema(summary="Change a deal", responses={200: DealSerializer, **WRITE_ERRORS}),
)
@extend_schema(tags=["deals"])
class DealViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Deals of the sales pipeline. Not deleted: lost deals keep their reason. Won through the projects
    handoff (POST /api/v1/deals/{id}/win/), never by moving the stage."""

    serializer_class = DealSerializer
    permission_classes = [DealPermissions]
    filterset_class = DealFilter
    queryset = Deal.objects.none()

    def get_queryset(self):
        return selectors.deal_list(user=self.request.user)

    def get_object(self) -> Deal:
        for_edit = self.request.method not in ("GET", "HEAD", "OPTIONS")
        return selectors.access_deal(user=self.request.user, public_id=lookup_public_id(self), for_edit=for_edit)

    def create(self, request, *args, **kwargs):
        def handler() -> Response:
            data = parse(self)
            reason = data.pop("reason", "")
            deal = services.deal_create(user=request.user, data=data, reason=reason)
            return _deal_response(self, deal, status.HTTP_201_CREATED)

        return idempotent(request, handler)

    def update(self, request, *args, **kwargs):
        deal = self.get_object()
        data = parse(self, instance=deal, partial=kwargs.get("partial", False))
        reason = data.pop("reason", "")
        deal = services.deal_update(user=request.user, deal=deal, data=data, reason=reason)
        return _deal_response(self, deal)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    @extend_schema(
        summary="Move a deal to another stage",
        description="The win probability becomes the stage's default unless given. Moving to the lost stage "
        "needs lost_reason; the won stage is refused (409): a deal is won through POST …/win/, which creates "
        "its project.",
        request=DealStageSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: DealSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="stage", serializer_class=DealStageSerializer)
    def stage(self, request, *args, **kwargs):
        def handler() -> Response:
            deal = self.get_object()
            data = parse(self)
            deal = services.deal_move_stage(
                user=request.user,
                deal=deal,
                stage=data["stage"],
                lost_reason=data.get("lost_reason", ""),
                probability=data.get("probability"),
            )
            return _deal_response(self, deal)

        return idempotent(request, handler)


# --- quotes -------------------------------------------------------------------------------------------


class QuoteFilter(filters.FilterSet):
    deal = filters.UUIDFilter(field_name="deal__public_id", label="Deal ID")

    class Meta:
        model = Quote
        fields = ["deal", "status", "currency"]


class QuotePermissions(ActionPermissions):
    NEEDS = {
        ("send", "POST"): ("customers.change_quote",),
        ("accept", "POST"): ("customers.change_quote",),
        ("new_version", "POST"): ("customers.add_quote",),
        ("attachments", "GET"): ("customers.view_quote", "customers.view_quoteattachment"),
        ("attachments", "POST"): ("customers.add_quoteattachment",),
    }


def _quote_queryset(user):
    return (
        selectors.quotes_visible_to(user)
        .select_related("deal", "accepted_by")
        .prefetch_related(Prefetch("lines", queryset=QuoteLine.objects.select_related("product")), "milestones")
        .order_by("-created_at", "-pk")
    )


def _quote_response(view, quote: Quote, status_code: int = status.HTTP_200_OK) -> Response:
    quote = _quote_queryset(view.request.user).get(pk=quote.pk)
    return Response(QuoteSerializer(quote, context=view.get_serializer_context()).data, status=status_code)


@extend_schema_view(
    list=extend_schema(summary="List quotes", description="Quotes of the deals you may see; filter by deal, status."),
    retrieve=extend_schema(summary="A quote", responses={200: QuoteSerializer, **READ_ERRORS}),
    create=extend_schema(
        summary="Create a quote (a new draft version) for a deal",
        description="Lines and milestones are checked together; nothing is saved unless all of it is valid. "
        "Errors name each input with flat keys such as lines.2.unit_price or milestones.0.amount.",
        parameters=[IDEMPOTENCY_KEY],
        responses={201: QuoteSerializer, **WRITE_ERRORS},
    ),
    update=extend_schema(summary="Replace a draft", responses={200: QuoteSerializer, **WRITE_ERRORS}),
    partial_update=extend_schema(summary="Change a draft", responses={200: QuoteSerializer, **WRITE_ERRORS}),
)
@extend_schema(tags=["quotes"])
class QuoteViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Versions of the offer on a deal. Drafts change; sent, accepted, superseded and declined quotes do not."""

    serializer_class = QuoteSerializer
    permission_classes = [QuotePermissions]
    filterset_class = QuoteFilter
    queryset = Quote.objects.none()

    def get_queryset(self):
        return _quote_queryset(self.request.user)

    def get_object(self) -> Quote:
        for_edit = self.request.method not in ("GET", "HEAD", "OPTIONS")
        return selectors.access_quote(user=self.request.user, public_id=lookup_public_id(self), for_edit=for_edit)

    def create(self, request, *args, **kwargs):
        def handler() -> Response:
            data = parse(self)
            deal = data.pop("deal")
            if not selectors.deal_edit_allowed(user=request.user, deal=deal):
                raise Http404("No such deal.")
            quote = services.quote_create(
                user=request.user,
                deal=deal,
                lines=data.pop("lines", None) or [],
                milestones=data.pop("milestones", None) or [],
                reason=data.pop("reason", ""),
                data=data,
            )
            return _quote_response(self, quote, status.HTTP_201_CREATED)

        return idempotent(request, handler)

    def update(self, request, *args, **kwargs):
        quote = self.get_object()
        data = parse(self, instance=quote, partial=kwargs.get("partial", False))
        data.pop("deal", None)
        quote = services.quote_update(
            user=request.user,
            quote=quote,
            lines=data.pop("lines", None),
            milestones=data.pop("milestones", None),
            reason=data.pop("reason", ""),
            data=data,
        )
        return _quote_response(self, quote)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    def _transition(self, request, act) -> Response:
        def handler() -> Response:
            return _quote_response(self, act(self.get_object()))

        return idempotent(request, handler)

    @extend_schema(
        summary="Send a draft",
        description="Checks the whole quote again (validity date, lines, milestones, tax), supersedes the versions "
        "sent before, and renders the PDF once in the background.",
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: QuoteSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def send(self, request, *args, **kwargs):
        return self._transition(request, lambda quote: services.quote_send(user=request.user, quote=quote))

    @extend_schema(
        summary="Record the customer's acceptance",
        description="Sent or draft → accepted; one accepted quote per deal (409 for a second). Does not win the "
        "deal: POST /api/v1/deals/{id}/win/ does.",
        request=QuoteAcceptSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: QuoteSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], serializer_class=QuoteAcceptSerializer)
    def accept(self, request, *args, **kwargs):
        def act(quote: Quote) -> Quote:
            data = parse(self)
            return services.quote_accept(
                user=request.user, quote=quote, customer_signatory=data.get("customer_signatory", "")
            )

        return self._transition(request, act)

    @extend_schema(
        summary="Copy a quote into a new draft version",
        description="From a draft, sent or declined quote; the deal's drafts become superseded.",
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: QuoteSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="new-version")
    def new_version(self, request, *args, **kwargs):
        def handler() -> Response:
            copy = services.quote_new_version(user=request.user, quote=self.get_object())
            return _quote_response(self, copy, status.HTTP_201_CREATED)

        return idempotent(request, handler)

    @extend_schema(
        methods=["GET"],
        summary="A quote's attachments",
        request=None,
        responses={200: QuoteAttachmentSerializer(many=True), **READ_ERRORS},
    )
    @extend_schema(
        methods=["POST"],
        summary="Attach a document (multipart)",
        description="A PDF, JPEG, PNG, DOCX, XLSX or ODT file of at most 10 MB, to a draft, sent or accepted "
        "quote; the extension, the declared content type and the content must agree.",
        request={"multipart/form-data": QuoteAttachmentSerializer},
        parameters=[IDEMPOTENCY_KEY],
        responses={201: QuoteAttachmentSerializer, **WRITE_ERRORS},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        serializer_class=QuoteAttachmentSerializer,
        parser_classes=[MultiPartParser, FormParser],
        pagination_class=None,
        filter_backends=[],
    )
    def attachments(self, request, *args, **kwargs):
        if request.method == "GET":
            quote = self.get_object()
            rows = quote.attachments.select_related("uploaded_by")
            return Response(QuoteAttachmentSerializer(rows, many=True).data)

        def handler() -> Response:
            quote = self.get_object()
            data = parse(self)
            attachment = services.quote_attachment_add(
                user=request.user, quote=quote, kind=data["kind"], upload=data["file"]
            )
            return Response(QuoteAttachmentSerializer(attachment).data, status=status.HTTP_201_CREATED)

        return idempotent(request, handler)
