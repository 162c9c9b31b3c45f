"""Plain forms for the customer, contact, catalog and legal entity pages.

Forms only parse input into Python values; every rule lives in ``customers.services``. A view builds the
service's dicts with ``*_data()`` helpers here and, when the service refuses, hands the flat error keys back
with ``apply_domain_errors`` so each message lands next to its input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django_countries.fields import CountryField

from backbone.errors import DomainError
from backbone.money import CURRENCY_CHOICES
from backbone.roles import Role, has_role
from tax.categories import PRODUCT_TAX_CATEGORIES, TaxCategory
from tax.context import SupplyKind
from tax.vatex import exemption_codes_for_category_e

from .models import (
    Address,
    BillingModel,
    Contact,
    Customer,
    ExemptionCertificate,
    Language,
    LegalEntity,
    LegalEntityRegistration,
    Product,
    QuoteAttachment,
    UnitCode,
)
from .selectors import customers_visible_to, legal_entities_visible_to, sales_reps
from .services import BILLING_FIELDS, CORE_FIELDS, LINE_FIELDS, MILESTONE_FIELDS

COUNTRY_BLANK = "Choose a country"


def country_field(**kwargs) -> forms.Field:
    """django-countries' own form field: a select whose names stay lazy (translated at render time)."""
    label = kwargs.pop("label", "Country")
    field = CountryField(blank_label=COUNTRY_BLANK).formfield(label=label, **kwargs)
    return field


class OwnerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.get_full_name() or obj.get_username()


# --- customers ----------------------------------------------------------------------------------------


class CustomerForm(forms.Form):
    """The customer's own fields. Which of them appear depends on the editor's scope (see ``__init__``)."""

    legal_name = forms.CharField(max_length=200, help_text="As registered, printed on invoices.")
    display_name = forms.CharField(
        max_length=120, required=False, help_text="Shown in lists; the legal name when left empty."
    )
    kind = forms.ChoiceField(choices=Customer.Kind.choices, initial=Customer.Kind.BUSINESS)
    status = forms.ChoiceField(
        label="Starts as",
        choices=[(Customer.Status.PROSPECT, "Prospect"), (Customer.Status.ACTIVE, "Active")],
        initial=Customer.Status.PROSPECT,
    )
    owner = OwnerChoiceField(
        queryset=None,
        required=False,
        to_field_name="username",
        empty_label="(no owner)",
        help_text="The sales rep who owns the account.",
    )
    parent = forms.ModelChoiceField(
        queryset=None,
        required=False,
        to_field_name="public_id",
        empty_label="(none)",
        label="Group parent",
        help_text="For group or consolidated billing.",
    )
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    billing_entity = forms.ModelChoiceField(
        queryset=None,
        required=False,
        to_field_name="public_id",
        empty_label="(default)",
        label="Billed by",
        help_text="Which of our legal entities bills this customer by default.",
    )
    default_currency = forms.ChoiceField(choices=CURRENCY_CHOICES, initial="EUR", label="Currency")
    payment_terms_days = forms.IntegerField(label="Payment terms (net days)", min_value=0, max_value=365, initial=30)
    early_discount_percent = forms.DecimalField(
        label="Early-payment discount %",
        min_value=0,
        max_value=100,
        max_digits=5,
        decimal_places=2,
        initial=0,
        required=False,
    )
    early_discount_days = forms.IntegerField(
        label="Discount applies within (days)", min_value=0, max_value=365, initial=0, required=False
    )
    invoice_language = forms.ChoiceField(choices=Language.choices, initial=Language.EN)
    delivery_channel = forms.ChoiceField(choices=Customer.DeliveryChannel.choices, label="Invoice delivery")
    consolidation = forms.ChoiceField(choices=Customer.Consolidation.choices, label="Invoice consolidation")
    purchase_order_required = forms.BooleanField(required=False, label="Purchase order number required on invoices")
    einvoice_endpoint = forms.CharField(
        max_length=100,
        required=False,
        label="E-invoice endpoint",
        help_text="Peppol participant ID (scheme:identifier, e.g. 0088:5790000435951) or Leitweg-ID.",
    )
    reason = forms.CharField(
        max_length=200,
        required=False,
        label="Reason for the change",
        help_text="Recorded in the history, e.g. 'New billing address from their AP team'.",
    )

    def __init__(self, *args, user, scope: str = "all", instance: Customer | None = None, **kwargs) -> None:
        self.user = user
        self.scope = scope
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = customer_initial(instance)
        super().__init__(*args, **kwargs)
        is_admin = user.is_superuser or has_role(user, Role.ADMIN)
        if instance is not None:
            del self.fields["status"]  # statuses change through the lifecycle buttons only
        else:
            del self.fields["reason"]
        if scope == "billing":
            for name in CORE_FIELDS:
                self.fields.pop(name, None)
        else:
            if is_admin:
                # Sales reps, plus the current owner even if no longer one, so the page can be saved as is.
                owners = Q(pk__in=sales_reps().values("pk"))
                if instance is not None and instance.owner_id:
                    owners |= Q(pk=instance.owner_id)
                self.fields["owner"].queryset = (
                    get_user_model().objects.filter(owners).order_by("first_name", "last_name", "username")
                )
            else:
                del self.fields["owner"]  # a sales rep owns what they create; admins hand accounts over
            parents = customers_visible_to(user).order_by("display_name")
            if instance is not None:
                parents = parents.exclude(pk=instance.pk)
            self.fields["parent"].queryset = parents
        self.fields["billing_entity"].queryset = legal_entities_visible_to(user).order_by("short_name")

    def core_field_names(self) -> list[str]:
        return [name for name in CORE_FIELDS if name in self.fields]

    def billing_field_names(self) -> list[str]:
        return [name for name in BILLING_FIELDS if name in self.fields]

    def service_data(self) -> dict[str, Any]:
        """The cleaned values for ``customer_create``/``customer_update``: only the fields on the page."""
        data = {}
        for name in (*CORE_FIELDS, *BILLING_FIELDS, "status"):
            if name not in self.fields:
                continue
            value = self.cleaned_data.get(name)
            if name in ("early_discount_percent", "early_discount_days") and value is None:
                value = 0
            data[name] = value
        return data


def customer_initial(customer: Customer) -> dict[str, Any]:
    initial = {name: getattr(customer, name) for name in (*CORE_FIELDS, *BILLING_FIELDS)}
    initial["owner"] = customer.owner.get_username() if customer.owner_id else None
    initial["parent"] = customer.parent.public_id if customer.parent_id else None
    initial["billing_entity"] = customer.billing_entity.public_id if customer.billing_entity_id else None
    return initial


class NestedRowForm(forms.Form):
    """A row of an inline formset; ``public_id`` ties it to an existing row when editing."""

    public_id = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def row_data(self, fields: Sequence[str]) -> dict[str, Any]:
        row = {name: self.cleaned_data.get(name) for name in fields}
        if self.cleaned_data.get("public_id"):
            row["public_id"] = str(self.cleaned_data["public_id"])
        for name, value in row.items():
            if value is None and isinstance(self.fields.get(name), forms.CharField):
                row[name] = ""
        return row


class AddressForm(NestedRowForm):
    kind = forms.ChoiceField(choices=Address.Kind.choices, initial=Address.Kind.BILLING)
    label = forms.CharField(max_length=80, required=False, help_text="e.g. 'Accounts payable, Dublin office'.")
    line1 = forms.CharField(max_length=200, label="Street and number")
    line2 = forms.CharField(max_length=200, required=False, label="Address line 2")
    postal_code = forms.CharField(max_length=20, required=False, label="Postal code")
    city = forms.CharField(max_length=100)
    region = forms.CharField(max_length=100, required=False, label="Region or state")
    country = country_field()

    FIELDS = ("kind", "label", "line1", "line2", "postal_code", "city", "region", "country")


class RegistrationForm(NestedRowForm):
    country = country_field()
    number = forms.CharField(
        max_length=40, label="VAT number", help_text="With or without the country prefix, e.g. DE123456788."
    )

    FIELDS = ("country", "number")


class ContactForm(NestedRowForm):
    first_name = forms.CharField(max_length=80, required=False)
    last_name = forms.CharField(max_length=80)
    email = forms.EmailField()
    phone = forms.CharField(max_length=40, required=False)
    job_title = forms.CharField(max_length=120, required=False)
    role = forms.ChoiceField(choices=Contact.Role.choices, initial=Contact.Role.SECONDARY)
    receives_invoices = forms.BooleanField(required=False)
    receives_reminders = forms.BooleanField(required=False, label="Receives payment reminders")
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    FIELDS = (
        "first_name",
        "last_name",
        "email",
        "phone",
        "job_title",
        "role",
        "receives_invoices",
        "receives_reminders",
        "is_active",
    )


class BaseRowFormSet(forms.BaseFormSet):
    """An inline formset whose kept rows become the service's list of dicts, in the order of ``sent``."""

    row_fields: Sequence[str] = ()

    def rows(self) -> tuple[list[dict[str, Any]], list[forms.Form]]:
        """The dicts to send and the forms they came from (same index), skipping deleted and blank rows."""
        rows, sent = [], []
        for index, form in enumerate(self.forms):
            if self.can_delete and self._should_delete_form(form):
                continue
            if index >= self.initial_form_count() and not form.has_changed():
                continue  # an extra row left blank
            rows.append(form.row_data(self.row_fields))
            sent.append(form)
        return rows, sent


def _formset(form, fields, *, extra: int, name: str):
    formset = forms.formset_factory(form, formset=BaseRowFormSet, extra=extra, can_delete=True)
    formset.row_fields = fields
    formset.verbose_name = name
    return formset


def address_formset(*, extra: int):
    return _formset(AddressForm, AddressForm.FIELDS, extra=extra, name="address")


def registration_formset(*, extra: int):
    return _formset(RegistrationForm, RegistrationForm.FIELDS, extra=extra, name="VAT registration")


def contact_formset(*, extra: int):
    return _formset(ContactForm, ContactForm.FIELDS, extra=extra, name="contact")


def address_initial(customer: Customer) -> list[dict[str, Any]]:
    return [
        {"public_id": a.public_id, **{f: getattr(a, f) for f in AddressForm.FIELDS}} for a in customer.addresses.all()
    ]


def registration_initial(customer: Customer) -> list[dict[str, Any]]:
    return [{"public_id": r.public_id, "country": r.country, "number": r.number} for r in customer.registrations.all()]


def contact_initial(customer: Customer) -> list[dict[str, Any]]:
    return [
        {"public_id": c.public_id, **{f: getattr(c, f) for f in ContactForm.FIELDS}} for c in customer.contacts.all()
    ]


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Customer.Status.choices)
    reason = forms.CharField(max_length=500, required=False)


class ExternalIdForm(forms.Form):
    system = forms.CharField(max_length=40, help_text="e.g. hubspot, xero")
    external_id = forms.CharField(max_length=200, label="External ID")


# --- tax exemption certificates -----------------------------------------------------------------------


class ExemptionCertificateForm(forms.Form):
    """A customer's exemption certificate. ``change_reason`` is the why of the history record; ``reason``
    is the exemption text printed on invoices."""

    reference = forms.CharField(max_length=100, label="Certificate number")
    reason_code = forms.ChoiceField(
        choices=(),
        label="Exemption reason (VATEX code)",
        help_text="The legal basis the certificate grants, e.g. VATEX-EU-151-1B for international bodies.",
    )
    reason = forms.CharField(
        max_length=300,
        required=False,
        label="Exemption text on invoices",
        help_text="Leave empty to print the code's own text.",
    )
    country = country_field(
        required=False,
        label="Exempts in",
        help_text="The country whose VAT it exempts from; leave empty for wherever the place of supply is.",
    )
    valid_from = forms.DateField(label="Valid from", widget=forms.DateInput(attrs={"type": "date"}))
    valid_to = forms.DateField(
        label="Valid until",
        required=False,
        help_text="Last day of validity, inclusive; leave empty when it does not expire.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    document = forms.FileField(
        required=False,
        label="Scan of the certificate",
        help_text="PDF, JPEG or PNG, at most 5 MB.",
        widget=forms.FileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"}),
    )
    remove_document = forms.BooleanField(required=False, label="Remove the current document")
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, label="Internal note")
    change_reason = forms.CharField(
        max_length=200,
        required=False,
        label="Reason for the change",
        help_text="Recorded in the history, e.g. 'Renewed certificate received'.",
    )

    FIELDS = ("reference", "reason_code", "reason", "country", "valid_from", "valid_to", "note")

    def __init__(self, *args, instance: ExemptionCertificate | None = None, **kwargs) -> None:
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {name: getattr(instance, name) for name in self.FIELDS}
        super().__init__(*args, **kwargs)
        self.fields["reason_code"].choices = [("", "Choose a code"), *exemption_codes_for_category_e()]
        if instance is None or not instance.document:
            del self.fields["remove_document"]

    def service_data(self) -> dict[str, Any]:
        data = {name: self.cleaned_data.get(name) for name in self.FIELDS}
        for name in ("reference", "reason", "country", "note"):
            data[name] = data[name] or ""
        uploaded = self.files.get(self.add_prefix("document"))
        if uploaded is not None:
            data["document"] = self.cleaned_data["document"]
        elif self.cleaned_data.get("remove_document"):
            data["document"] = ""
        return data


# --- catalog ------------------------------------------------------------------------------------------


class ProductForm(forms.Form):
    code = forms.CharField(max_length=30, help_text="Capital letters, digits, '.', '_' or '-', e.g. CONS-SR.")
    name = forms.CharField(max_length=120, label="Client-facing name")
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, label="Client-facing description"
    )
    kind = forms.ChoiceField(choices=Product.Kind.choices, initial=Product.Kind.SERVICE)
    unit = forms.ChoiceField(choices=UnitCode.choices, initial=UnitCode.HOUR, label="Unit of measure")
    default_price_amount = forms.DecimalField(
        label="Default unit price", min_value=0, max_digits=18, decimal_places=4, initial=0
    )
    currency = forms.ChoiceField(choices=CURRENCY_CHOICES, initial="EUR")
    pricing_rule = forms.ChoiceField(choices=Product.PricingRule.choices, initial=Product.PricingRule.FIXED)
    revenue_account = forms.CharField(max_length=20, label="Revenue GL account", help_text="e.g. 8400")
    default_tax_category = forms.ChoiceField(
        choices=PRODUCT_TAX_CATEGORIES, initial=TaxCategory.STANDARD, label="Default tax category"
    )
    revenue_recognition = forms.ChoiceField(
        choices=Product.RevenueRecognition.choices, initial=Product.RevenueRecognition.ON_ISSUE
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active (offered on new quotes)")
    reason = forms.CharField(max_length=200, required=False, label="Reason for the change")

    FIELDS = (
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
    )

    def __init__(self, *args, instance: Product | None = None, **kwargs) -> None:
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {name: getattr(instance, name) for name in self.FIELDS}
        super().__init__(*args, **kwargs)
        if instance is None:
            del self.fields["reason"]

    def service_data(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(name) for name in self.FIELDS}


# --- our legal entities -------------------------------------------------------------------------------


class LegalEntityForm(forms.Form):
    legal_name = forms.CharField(max_length=200)
    short_name = forms.CharField(max_length=60, help_text="Shown in lists and menus, e.g. 'Studio GmbH'.")
    line1 = forms.CharField(max_length=200, label="Street and number")
    line2 = forms.CharField(max_length=200, required=False, label="Address line 2")
    postal_code = forms.CharField(max_length=20, required=False)
    city = forms.CharField(max_length=100)
    region = forms.CharField(max_length=100, required=False, label="Region or state")
    country = country_field()
    default_currency = forms.ChoiceField(choices=CURRENCY_CHOICES, initial="EUR")
    email = forms.EmailField(required=False, help_text="Sender and reply-to address of invoices.")
    website = forms.URLField(required=False, assume_scheme="https")
    company_register = forms.CharField(
        max_length=120,
        required=False,
        help_text="Register court and number, e.g. 'Amtsgericht Berlin HRB 12345'.",
    )
    logo = forms.ImageField(
        required=False,
        help_text="PNG or JPEG, at most 1 MB; printed on invoices.",
        widget=forms.FileInput(attrs={"accept": "image/png,image/jpeg"}),
    )
    remove_logo = forms.BooleanField(required=False, label="Remove the current logo")
    brand_colour = forms.RegexField(
        regex=r"^#[0-9A-Fa-f]{6}$",
        initial="#1F6FEB",
        label="Brand colour",
        error_messages={"invalid": "A brand colour is a hex colour such as #1F6FEB."},
        widget=forms.TextInput(attrs={"type": "color"}),
    )
    invoice_prefix = forms.CharField(
        max_length=10, help_text="Series prefix of invoice numbers, e.g. 'DE' gives DE-2026-000001."
    )
    invoice_number_padding = forms.IntegerField(
        min_value=3, max_value=10, initial=6, label="Digits in the invoice number"
    )
    invoice_numbers_restart_yearly = forms.BooleanField(
        required=False, initial=True, label="Invoice numbers restart every year"
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active (bills customers)")
    reason = forms.CharField(max_length=200, required=False, label="Reason for the change")

    FIELDS = (
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
        "brand_colour",
        "invoice_prefix",
        "invoice_number_padding",
        "invoice_numbers_restart_yearly",
        "is_active",
    )

    def __init__(self, *args, instance: LegalEntity | None = None, **kwargs) -> None:
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {name: getattr(instance, name) for name in self.FIELDS}
        super().__init__(*args, **kwargs)
        if instance is None:
            del self.fields["reason"]
        if instance is None or not instance.logo:
            del self.fields["remove_logo"]

    def service_data(self) -> dict[str, Any]:
        data = {name: self.cleaned_data.get(name) for name in self.FIELDS}
        for name, field in self.fields.items():
            if name in data and data[name] is None and isinstance(field, forms.CharField):
                data[name] = ""
        uploaded = self.files.get(self.add_prefix("logo"))
        if uploaded is not None:
            data["logo"] = self.cleaned_data["logo"]  # request.FILES["logo"], checked to be an image
        elif self.cleaned_data.get("remove_logo"):
            data["logo"] = ""
        return data


class EntityRegistrationForm(NestedRowForm):
    kind = forms.ChoiceField(choices=LegalEntityRegistration.Kind.choices, initial=LegalEntityRegistration.Kind.VAT)
    country = country_field()
    number = forms.CharField(max_length=40)
    is_oss_registered = forms.BooleanField(
        required=False, label="Registered for OSS", help_text="EU One-Stop Shop (B2C e-services)."
    )

    FIELDS = ("kind", "country", "number", "is_oss_registered")


class BankAccountForm(NestedRowForm):
    bank_name = forms.CharField(max_length=120)
    account_holder = forms.CharField(max_length=200)
    iban = forms.CharField(max_length=42, label="IBAN")
    bic = forms.CharField(max_length=11, label="BIC")
    currency = forms.ChoiceField(choices=CURRENCY_CHOICES, initial="EUR")
    is_default = forms.BooleanField(required=False, label="Default for this currency")

    FIELDS = ("bank_name", "account_holder", "iban", "bic", "currency", "is_default")


def entity_registration_formset(*, extra: int):
    return _formset(EntityRegistrationForm, EntityRegistrationForm.FIELDS, extra=extra, name="registration")


def bank_account_formset(*, extra: int):
    return _formset(BankAccountForm, BankAccountForm.FIELDS, extra=extra, name="bank account")


def entity_registration_initial(entity: LegalEntity) -> list[dict[str, Any]]:
    return [{f: getattr(r, f) for f in EntityRegistrationForm.FIELDS} for r in entity.registrations.all()]


def bank_account_initial(entity: LegalEntity) -> list[dict[str, Any]]:
    return [{f: getattr(b, f) for f in BankAccountForm.FIELDS} for b in entity.bank_accounts.all()]


# --- mapping service errors back onto the forms -------------------------------------------------------


def apply_domain_errors(
    exc: DomainError, form: forms.Form, nested: Mapping[str, tuple[forms.BaseFormSet, Sequence[forms.Form]]] = ()
) -> None:
    """Put each of the service's flat error keys on the input it names.

    ``nested`` maps a list key (``"addresses"``) to its formset and the forms whose rows were sent, in the
    order sent, so ``addresses.1.country`` reaches the second *sent* form even after deleted or blank rows
    were dropped. A list-level key becomes a formset error; anything unknown a form-wide error.
    """
    nested = dict(nested or {})
    placed = False
    for key, messages in (exc.errors or {}).items():
        for message in messages if isinstance(messages, list | tuple) else [messages]:
            _place_error(key, str(message), form, nested)
            placed = True
    if not placed:
        form.add_error(None, exc.message)


def _place_error(key: str, message: str, form: forms.Form, nested) -> None:
    head, _, rest = key.partition(".")
    if head in nested:
        formset, sent = nested[head]
        index, _, field = rest.partition(".")
        if index.isdigit() and int(index) < len(sent):
            _add_error(sent[int(index)], field.split(".")[0], message)
        else:
            formset.non_form_errors().append(message)
        return
    _add_error(form, key, message)


def _add_error(form: forms.Form, field: str, message: str) -> None:
    """The field's error when the form shows that field, else an error of the whole form."""
    if field in form.fields and not form.fields[field].widget.is_hidden:
        form.add_error(field, message)
    else:
        form.add_error(None, message)


# --- deals and quotes ---------------------------------------------------------------------------------


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"})


class DealForm(forms.Form):
    """A deal's own fields. The stage is chosen on creation only; later it moves on the pipeline."""

    title = forms.CharField(max_length=200, help_text="What the customer buys, e.g. 'Checkout redesign 2026'.")
    customer = forms.ModelChoiceField(queryset=None, to_field_name="public_id", empty_label="Choose a customer")
    owner = OwnerChoiceField(queryset=None, required=False, to_field_name="username", empty_label="(me)")
    legal_entity = forms.ModelChoiceField(
        queryset=None,
        required=False,
        to_field_name="public_id",
        empty_label="(the customer's billing entity)",
        label="Delivered by",
        help_text="Which of our companies delivers and bills the work.",
    )
    stage = forms.ModelChoiceField(
        queryset=None, required=False, to_field_name="code", empty_label="(first stage)", label="Starts in stage"
    )
    probability = forms.IntegerField(
        label="Win probability %",
        min_value=0,
        max_value=100,
        required=False,
        help_text="Leave empty to take the stage's default.",
    )
    amount = forms.DecimalField(
        label="Expected value", min_value=0, max_digits=18, decimal_places=2, required=False, initial=0
    )
    currency = forms.ChoiceField(
        choices=[("", "(the customer's currency)"), *CURRENCY_CHOICES], required=False, label="Currency"
    )
    expected_close_date = forms.DateField(required=False, widget=_date_input())
    next_step = forms.CharField(max_length=200, required=False, help_text="e.g. 'Workshop with their CTO on 12 May'.")
    reason = forms.CharField(max_length=200, required=False, label="Reason for the change")

    FIELDS = (
        "title",
        "customer",
        "owner",
        "legal_entity",
        "stage",
        "probability",
        "amount",
        "currency",
        "expected_close_date",
        "next_step",
    )

    def __init__(self, *args, user, instance=None, **kwargs) -> None:
        from .models import PipelineStage

        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "title": instance.title,
                "customer": instance.customer.public_id,
                "owner": instance.owner.get_username(),
                "legal_entity": instance.legal_entity.public_id,
                "probability": instance.probability,
                "amount": instance.amount,
                "currency": instance.currency,
                "expected_close_date": instance.expected_close_date,
                "next_step": instance.next_step,
            }
        super().__init__(*args, **kwargs)
        customers = customers_visible_to(user).exclude(status=Customer.Status.ARCHIVED)
        if instance is not None:
            customers = customers_visible_to(user).filter(Q(pk=instance.customer_id) | ~Q(status="archived"))
        self.fields["customer"].queryset = customers.order_by("display_name")
        self.fields["legal_entity"].queryset = legal_entities_visible_to(user).filter(is_active=True)
        if user.is_superuser or has_role(user, Role.ADMIN):
            owners = Q(pk__in=sales_reps().values("pk"))
            if instance is not None:
                owners |= Q(pk=instance.owner_id)
            self.fields["owner"].queryset = (
                get_user_model().objects.filter(owners).order_by("first_name", "last_name", "username")
            )
        else:
            del self.fields["owner"]
        if instance is None:
            del self.fields["reason"]
            self.fields["stage"].queryset = PipelineStage.objects.filter(is_active=True, outcome="open")
        else:
            del self.fields["stage"]
            self.fields["currency"].choices = CURRENCY_CHOICES
            self.fields["currency"].required = True
            self.fields["probability"].help_text = "Moving the deal to another stage resets it to that stage's default."

    def service_data(self) -> dict[str, Any]:
        data = {}
        for name in self.FIELDS:
            if name in self.fields:
                value = self.cleaned_data.get(name)
                if self.instance is None and value in (None, ""):
                    continue
                data[name] = "" if value is None and name == "next_step" else value
        return data


class DealStageForm(forms.Form):
    stage = forms.CharField(max_length=30)
    lost_reason = forms.CharField(max_length=300, required=False, label="Why was it lost?")
    probability = forms.IntegerField(min_value=0, max_value=100, required=False)
    next = forms.CharField(required=False, widget=forms.HiddenInput)


class QuoteForm(forms.Form):
    currency = forms.ChoiceField(choices=CURRENCY_CHOICES)
    valid_until = forms.DateField(widget=_date_input(), label="Offer valid until")
    payment_terms_days = forms.IntegerField(label="Payment terms (net days)", min_value=0, max_value=365)
    planned_start = forms.DateField(
        required=False, widget=_date_input(), help_text="Also the tax point of the preview."
    )
    planned_end = forms.DateField(required=False, widget=_date_input())
    po_number = forms.CharField(max_length=60, required=False, label="Customer's PO number")
    po_required = forms.BooleanField(required=False, label="PO number required on invoices")
    portal_required = forms.BooleanField(required=False, label="Invoices go through the customer's portal")
    retainer_amount = forms.DecimalField(
        label="Monthly retainer",
        min_value=0,
        max_digits=18,
        decimal_places=2,
        required=False,
        help_text="Needed when a line is billed as a retainer.",
    )
    expense_markup_percent = forms.DecimalField(
        label="Markup on rebillable expenses %",
        min_value=0,
        max_value=100,
        max_digits=6,
        decimal_places=2,
        required=False,
        help_text="Added to expense lines' nets.",
    )
    terms = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False, label="Terms and notes")
    reason = forms.CharField(max_length=200, required=False, label="Reason for the change")

    FIELDS = (
        "currency",
        "valid_until",
        "payment_terms_days",
        "planned_start",
        "planned_end",
        "po_number",
        "po_required",
        "portal_required",
        "retainer_amount",
        "expense_markup_percent",
        "terms",
    )

    def __init__(self, *args, instance=None, editing: bool = False, **kwargs) -> None:
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {name: getattr(instance, name) for name in self.FIELDS}
        super().__init__(*args, **kwargs)
        if not editing:
            del self.fields["reason"]

    def service_data(self) -> dict[str, Any]:
        data = {name: self.cleaned_data.get(name) for name in self.FIELDS}
        for name in ("po_number", "terms"):
            data[name] = data[name] or ""
        for name in ("retainer_amount", "expense_markup_percent"):
            if data[name] is None:
                data[name] = 0
        return data


class RowForm(forms.Form):
    """A row of the quote's line and milestone formsets (replaced wholesale, so no row IDs)."""

    def row_data(self, fields: Sequence[str]) -> dict[str, Any]:
        row = {name: self.cleaned_data.get(name) for name in fields}
        for name, value in row.items():
            if value is None and isinstance(self.fields.get(name), forms.CharField):
                row[name] = ""
        return row


class QuoteLineForm(RowForm):
    product = forms.ModelChoiceField(
        queryset=Product.objects.none(), required=False, to_field_name="public_id", empty_label="(no product)"
    )
    description = forms.CharField(max_length=300, required=False)
    phase = forms.CharField(max_length=120, required=False)
    billing_model = forms.ChoiceField(choices=BillingModel.choices, initial=BillingModel.TIME_AND_MATERIALS)
    labour_category = forms.CharField(
        max_length=80, required=False, label="Labour category", help_text="Role on the rate card (T&M)."
    )
    quantity = forms.DecimalField(max_digits=18, decimal_places=4, required=False)
    unit = forms.ChoiceField(choices=UnitCode.choices, initial=UnitCode.HOUR)
    unit_price = forms.DecimalField(max_digits=18, decimal_places=4, required=False, label="Unit price")
    discount_percent = forms.DecimalField(max_digits=5, decimal_places=2, required=False, label="Discount %", initial=0)
    tax_category = forms.ChoiceField(choices=PRODUCT_TAX_CATEGORIES, initial=TaxCategory.STANDARD, label="Tax")
    supply_kind = forms.ChoiceField(choices=SupplyKind.CHOICES, initial=SupplyKind.GENERAL_SERVICE, label="Supply")

    FIELDS = LINE_FIELDS  # the quote services read and copy exactly these

    def __init__(self, *args, products=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if products is not None:
            self.fields["product"].queryset = products


class QuoteMilestoneForm(RowForm):
    name = forms.CharField(max_length=120, required=False)
    phase = forms.CharField(max_length=120, required=False)
    planned_date = forms.DateField(required=False, widget=_date_input(), label="Planned date")
    amount = forms.DecimalField(
        max_digits=18, decimal_places=2, required=False, help_text="For fixed-fee work; 0 for checkpoints."
    )
    acceptance_criteria = forms.CharField(max_length=1000, required=False, label="Accepted when")

    FIELDS = MILESTONE_FIELDS


class BaseQuoteRowFormSet(BaseRowFormSet):
    """Passes the catalog's queryset to every line form (one query for the select, shared by the rows)."""

    def __init__(self, *args, products=None, **kwargs) -> None:
        self.products = products
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index):
        kwargs = super().get_form_kwargs(index)
        if self.products is not None:
            kwargs["products"] = self.products
        return kwargs


def quote_line_formset(*, extra: int):
    formset = forms.formset_factory(QuoteLineForm, formset=BaseQuoteRowFormSet, extra=extra, can_delete=True)
    formset.row_fields = QuoteLineForm.FIELDS
    formset.verbose_name = "line"
    return formset


def quote_milestone_formset(*, extra: int):
    return _formset(QuoteMilestoneForm, QuoteMilestoneForm.FIELDS, extra=extra, name="milestone")


def _plain_number(value):
    """40.0000 → "40", 12.5000 → "12.5": stored decimals as a person would type them."""
    return format(value.normalize(), "f") if value is not None else None


def quote_line_initial(lines) -> list[dict[str, Any]]:
    numbers = ("quantity", "unit_price", "discount_percent")
    return [
        {
            **{name: getattr(line, name) for name in QuoteLineForm.FIELDS if name not in ("product", *numbers)},
            **{name: _plain_number(getattr(line, name)) for name in numbers},
            "product": line.product.public_id if line.product_id else None,
        }
        for line in lines
    ]


def quote_milestone_initial(milestones) -> list[dict[str, Any]]:
    return [{name: getattr(m, name) for name in QuoteMilestoneForm.FIELDS} for m in milestones]


class QuoteAcceptForm(forms.Form):
    customer_signatory = forms.CharField(
        max_length=120, required=False, label="Signed by", help_text="Who accepted on the customer's side."
    )


class QuoteAttachmentForm(forms.Form):
    kind = forms.ChoiceField(choices=QuoteAttachment.Kind.choices, initial=QuoteAttachment.Kind.SIGNED_PROPOSAL)
    file = forms.FileField(
        help_text="PDF, JPEG, PNG, DOCX, XLSX or ODT, at most 10 MB.",
        widget=forms.FileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png,.docx,.xlsx,.odt"}),
    )
