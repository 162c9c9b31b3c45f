"""Filters shared by the customer and catalog list pages and their API endpoints (django-filter)."""

from __future__ import annotations

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q
from django_countries import countries
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from .models import Address, Contact, Customer, Deal, PipelineStage, Product, TaxRegistration


class CustomerFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    status = django_filters.MultipleChoiceFilter(choices=Customer.Status.choices)
    owner = django_filters.ModelChoiceFilter(
        queryset=get_user_model().objects.filter(groups__name="sales").distinct(),
        to_field_name="username",
        label="Owner",
    )
    country = django_filters.ChoiceFilter(choices=list(countries), method="billing_country", label="Billing country")
    ordering = django_filters.OrderingFilter(
        fields=(
            ("display_name", "name"),
            ("number", "number"),
            ("status", "status"),
            ("created_at", "created"),
            ("updated_at", "updated"),
        ),
        field_labels={"display_name": "Name", "number": "Number", "created_at": "Created", "updated_at": "Updated"},
    )

    class Meta:
        model = Customer
        fields = ["q", "status", "owner", "country", "kind"]

    def search(self, queryset, name, value):
        value = (value or "").strip()
        if not value:
            return queryset
        compact = "".join(ch for ch in value if ch.isalnum())
        registrations = TaxRegistration.objects.filter(customer=OuterRef("pk"), number__icontains=compact or value)
        contacts = Contact.objects.filter(customer=OuterRef("pk"), email__icontains=value)
        return queryset.filter(
            Q(display_name__icontains=value)
            | Q(legal_name__icontains=value)
            | Q(number__icontains=value)
            | Exists(registrations)
            | Exists(contacts)
        )

    def billing_country(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(
            Exists(Address.objects.filter(customer=OuterRef("pk"), kind=Address.Kind.BILLING, country=value))
        )


class ProductFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    ordering = django_filters.OrderingFilter(
        fields=(("code", "code"), ("name", "name"), ("default_price_amount", "price"))
    )

    class Meta:
        model = Product
        fields = ["q", "kind", "unit", "pricing_rule", "is_active", "currency"]

    def search(self, queryset, name, value):
        value = (value or "").strip()
        if not value:
            return queryset
        return queryset.filter(Q(code__icontains=value) | Q(name__icontains=value) | Q(description__icontains=value))


@extend_schema_field(OpenApiTypes.STR)
class StageCodeFilter(django_filters.ModelMultipleChoiceFilter):
    """Deals in any of the given stages, by stage code (``?stage=proposal&stage=negotiation``)."""


class DealFilter(django_filters.FilterSet):
    """The deal list's filters (page and API): search, stage, outcome, owner, customer; sortable."""

    q = django_filters.CharFilter(method="search", label="Search")
    stage = StageCodeFilter(
        field_name="stage__code", queryset=PipelineStage.objects.all(), to_field_name="code", label="Stage"
    )
    outcome = django_filters.ChoiceFilter(
        field_name="stage__outcome", choices=PipelineStage.Outcome.choices, label="Open, won or lost"
    )
    owner = django_filters.ModelChoiceFilter(
        queryset=get_user_model().objects.filter(groups__name="sales").distinct(),
        to_field_name="username",
        label="Owner",
    )
    customer = django_filters.UUIDFilter(field_name="customer__public_id", label="Customer ID")
    ordering = django_filters.OrderingFilter(
        fields=(
            ("number", "number"),
            ("title", "title"),
            ("customer__display_name", "customer"),
            ("stage__position", "stage"),
            ("amount", "amount"),
            ("probability", "probability"),
            ("expected_close_date", "close"),
            ("updated_at", "updated"),
        ),
    )

    class Meta:
        model = Deal
        fields = ["q", "stage", "outcome", "owner", "customer", "currency"]

    def search(self, queryset, name, value):
        value = (value or "").strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(title__icontains=value)
            | Q(number__icontains=value)
            | Q(customer__display_name__icontains=value)
            | Q(customer__legal_name__icontains=value)
        )
