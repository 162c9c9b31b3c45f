"""API representations of customers, contacts, the catalog and our legal entities.

Serializers only parse and present: types, choices and lengths. Every business rule (countries, VAT numbers,
IBANs, the one billing address, who may change what) is checked by the services, which report errors under
the same flat keys the API returns (``addresses.1.country``). Model-level validators (regexes, uniqueness)
are therefore left to the services too, so that one rule has one message.
"""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backbone.models import ExternalId
from backbone.money import CURRENCY_CHOICES

from .models import (
    Address,
    BankAccount,
    Contact,
    Customer,
    ExemptionCertificate,
    LegalEntity,
    LegalEntityRegistration,
    Product,
    TaxRegistration,
)
from .selectors import customers_visible_to, legal_entities_visible_to

COUNTRY_HELP = "ISO 3166-1 alpha-2 country code, e.g. DE, FR, GB."


@extend_schema_field(
    {"type": "string", "enum": [code for code, _ in CURRENCY_CHOICES], "description": "ISO 4217 currency code."},
    component_name="Currency",
)
class CurrencyField(serializers.ChoiceField):
    """One schema component for every currency field (``currency``, ``default_currency``)."""

    def __init__(self, **kwargs):
        kwargs["choices"] = CURRENCY_CHOICES
        super().__init__(**kwargs)


class ServiceModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer that leaves model validators (regexes, unique checks) to the services."""

    def build_standard_field(self, field_name, model_field):
        field_class, field_kwargs = super().build_standard_field(field_name, model_field)
        field_kwargs.pop("validators", None)
        if model_field.choices == CURRENCY_CHOICES:
            field_class = CurrencyField
            field_kwargs.pop("choices", None)
        return field_class, field_kwargs

    def get_validators(self):
        return []


class PublicIdRelatedField(serializers.SlugRelatedField):
    """A reference to another record by its public ID; the choices are what the requesting user may see.

    ``scope`` maps the user to the visible queryset (a ``*_visible_to`` selector); without a request (schema
    generation) the class-level queryset is used.
    """

    def __init__(self, *, scope=None, **kwargs):
        self.scope = scope
        super().__init__(slug_field="public_id", **kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        if self.scope is not None and request is not None:
            return self.scope(request.user)
        return super().get_queryset()

    def to_internal_value(self, data):
        try:
            public_id = uuid.UUID(str(data))
        except (TypeError, ValueError, AttributeError):
            self.fail("invalid")
        try:
            return self.get_queryset().get(public_id=public_id)
        except self.get_queryset().model.DoesNotExist:
            self.fail("does_not_exist", slug_name="id", value=str(data))


def _public_id_field(**kwargs) -> serializers.UUIDField:
    return serializers.UUIDField(source="public_id", **kwargs)


class CustomerExternalIdSerializer(serializers.Serializer):
    system = serializers.CharField(max_length=40, help_text="Upstream system slug, e.g. 'hubspot'.")
    external_id = serializers.CharField(max_length=200)


class ExternalIdsField(serializers.ListField):
    """A customer's external IDs. Read from ``_api_external_ids`` when the view attached them for a whole
    page (one query per page); written once and never changed."""

    child = CustomerExternalIdSerializer()

    def get_attribute(self, instance):
        links = getattr(instance, "_api_external_ids", None)
        if links is None:
            links = ExternalId.objects.filter(
                content_type=ContentType.objects.get_for_model(Customer), object_id=instance.pk
            ).order_by("system")
        return [{"system": link.system, "external_id": link.external_id} for link in links]


# --- customers ----------------------------------------------------------------------------------------


class AddressSerializer(ServiceModelSerializer):
    id = _public_id_field(required=False, help_text="Give it to change this address; leave it out to add one.")
    country = serializers.CharField(max_length=2, help_text=COUNTRY_HELP)

    class Meta:
        model = Address
        fields = ["id", "kind", "label", "line1", "line2", "postal_code", "city", "region", "country"]


class TaxRegistrationSerializer(ServiceModelSerializer):
    id = _public_id_field(required=False, help_text="Give it to change this registration; leave it out to add one.")
    country = serializers.CharField(max_length=2, help_text=COUNTRY_HELP)
    number = serializers.CharField(
        max_length=40, help_text="Validated and stored normalised (country prefix, no spaces)."
    )

    class Meta:
        model = TaxRegistration
        fields = ["id", "kind", "country", "number", "validated_at"]
        read_only_fields = ["validated_at"]


class CustomerContactSerializer(ServiceModelSerializer):
    id = _public_id_field(required=False, help_text="Give it to change this contact; leave it out to add one.")

    class Meta:
        model = Contact
        fields = [
            "id",
            "first_name",
            "last_name",
            "email",
            "phone",
            "job_title",
            "role",
            "receives_invoices",
            "receives_reminders",
            "is_active",
        ]


class ExemptionCertificateSerializer(ServiceModelSerializer):
    """Read-only here: certificates are kept on the customer page by finance."""

    id = _public_id_field(read_only=True)
    country = serializers.CharField(
        read_only=True, allow_blank=True, help_text="Where it exempts (ISO code); empty: wherever supplied."
    )
    reason_text = serializers.CharField(read_only=True, help_text="The text printed on invoices.")
    has_document = serializers.SerializerMethodField(help_text="Whether a scan of the certificate is on file.")

    class Meta:
        model = ExemptionCertificate
        fields = [
            "id",
            "reference",
            "reason_code",
            "reason",
            "reason_text",
            "country",
            "valid_from",
            "valid_to",
            "has_document",
        ]
        read_only_fields = fields

    def get_has_document(self, certificate: ExemptionCertificate) -> bool:
        return bool(certificate.document)


class CustomerSerializer(ServiceModelSerializer):
    """A customer with its addresses, tax registrations, contacts and external IDs.

    On update, a nested list that is present replaces the current rows: items with an ``id`` change that
    row, items without one are added, rows left out are deleted. A list that is absent is left alone.
    """

    id = _public_id_field(read_only=True)
    status = serializers.ChoiceField(
        choices=Customer.Status.choices,
        required=False,
        help_text="On create: prospect (default) or active. Later changes go through POST …/status/.",
    )
    display_name = serializers.CharField(
        max_length=120, required=False, allow_blank=True, help_text="Defaults to the legal name."
    )
    owner = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        required=False,
        allow_null=True,
        help_text="Username of the sales rep who owns the account; defaults to the creating sales rep.",
    )
    parent = PublicIdRelatedField(
        queryset=Customer.objects.all(),
        scope=customers_visible_to,
        required=False,
        allow_null=True,
        help_text="ID of the group parent customer.",
    )
    billing_entity = PublicIdRelatedField(
        queryset=LegalEntity.objects.all(),
        scope=legal_entities_visible_to,
        required=False,
        allow_null=True,
        help_text="ID of our legal entity that bills this customer by default.",
    )
    addresses = AddressSerializer(many=True, required=False, help_text="Exactly one of kind 'billing'.")
    registrations = TaxRegistrationSerializer(many=True, required=False)
    contacts = CustomerContactSerializer(many=True, required=False)
    exemption_certificates = ExemptionCertificateSerializer(
        many=True, read_only=True, help_text="Tax exemption certificates; read-only (kept on the customer page)."
    )
    external_ids = ExternalIdsField(
        required=False, help_text="Upstream IDs; linked once, never changed or moved to another customer."
    )
    reason = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=500, help_text="Why; kept in the history."
    )

    class Meta:
        model = Customer
        fields = [
            "id",
            "number",
            "legal_name",
            "display_name",
            "kind",
            "status",
            "owner",
            "parent",
            "billing_entity",
            "default_currency",
            "payment_terms_days",
            "early_discount_percent",
            "early_discount_days",
            "invoice_language",
            "delivery_channel",
            "consolidation",
            "purchase_order_required",
            "einvoice_endpoint",
            "notes",
            "addresses",
            "registrations",
            "contacts",
            "exemption_certificates",
            "external_ids",
            "reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["number", "created_at", "updated_at"]


class CustomerStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Customer.Status.choices)
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=500, help_text="Required when archiving."
    )


# --- contacts -----------------------------------------------------------------------------------------


class ContactSerializer(ServiceModelSerializer):
    id = _public_id_field(read_only=True)
    customer = PublicIdRelatedField(
        queryset=Customer.objects.all(),
        scope=customers_visible_to,
        required=False,
        help_text="ID of the customer: required on create, cannot change later.",
    )
    reason = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=500)

    def validate(self, attrs):
        if self.instance is None and attrs.get("customer") is None:
            raise serializers.ValidationError({"customer": ["Say which customer the contact belongs to."]})
        if self.instance is not None and attrs.get("customer") not in (None, self.instance.customer):
            raise serializers.ValidationError(
                {"customer": ["A contact stays with its customer; add a new contact to the other customer."]}
            )
        return attrs

    class Meta:
        model = Contact
        fields = [
            "id",
            "customer",
            "first_name",
            "last_name",
            "email",
            "phone",
            "job_title",
            "role",
            "receives_invoices",
            "receives_reminders",
            "is_active",
            "reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


# --- catalog ------------------------------------------------------------------------------------------


class ProductSerializer(ServiceModelSerializer):
    id = _public_id_field(read_only=True)
    reason = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=500)

    class Meta:
        model = Product
        fields = [
            "id",
            "code",
            "name",
            "description",
            "kind",
            "unit",
            "default_price_amount",
            "currency",
            "pricing_rule",
            "revenue_account",
            "default_tax_category",
            "revenue_recognition",
            "is_active",
            "reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {"code": {"help_text": "Capital letters, digits, '.', '_' or '-'; stored upper-case."}}


# --- our legal entities -------------------------------------------------------------------------------


class LegalEntityRegistrationSerializer(ServiceModelSerializer):
    id = _public_id_field(read_only=True)
    country = serializers.CharField(max_length=2, help_text=COUNTRY_HELP)

    class Meta:
        model = LegalEntityRegistration
        fields = ["id", "kind", "country", "number", "is_oss_registered"]


class BankAccountSerializer(ServiceModelSerializer):
    id = _public_id_field(read_only=True)
    # Longer than the stored forms: the service accepts spaces and stores the compact IBAN and BIC.
    iban = serializers.CharField(max_length=50, help_text="IBAN; spaces allowed, stored compact.")
    bic = serializers.CharField(max_length=20, help_text="BIC, 8 or 11 characters.")

    class Meta:
        model = BankAccount
        fields = ["id", "bank_name", "account_holder", "iban", "bic", "currency", "is_default"]


class LegalEntitySerializer(ServiceModelSerializer):
    """One of our billing companies. Nested lists, when present on update, replace the current rows."""

    id = _public_id_field(read_only=True)
    country = serializers.CharField(max_length=2, help_text=COUNTRY_HELP)
    logo = serializers.ImageField(read_only=True, help_text="Uploaded on the legal entity page.")
    registrations = LegalEntityRegistrationSerializer(many=True, required=False)
    bank_accounts = BankAccountSerializer(many=True, required=False)
    reason = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=500)

    class Meta:
        model = LegalEntity
        fields = [
            "id",
            "legal_name",
            "short_name",
            "line1",
            "line2",
            "postal_code",
            "city",
            "region",
            "country",
            "default_currency",
            "email",
            "website",
            "company_register",
            "logo",
            "brand_colour",
            "invoice_prefix",
            "invoice_number_padding",
            "invoice_numbers_restart_yearly",
            "is_active",
            "registrations",
            "bank_accounts",
            "reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
