"""Customers (the canonical record), their addresses, registrations and contacts; our legal entities; the
catalog of products and services."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django_countries.fields import CountryField
from simple_history.models import HistoricalRecords

from backbone.models import PublicModel
from backbone.money import CURRENCY_CHOICES
from tax.categories import PRODUCT_TAX_CATEGORIES, TaxCategory
from tax.context import SupplyKind
from tax.vatex import VATEX, exemption_codes_for_category_e

hex_colour = RegexValidator(r"^#[0-9A-Fa-f]{6}$", "A brand colour is a hex colour such as #1F6FEB.")


class Language(models.TextChoices):
    EN = "en", "English"
    DE = "de", "Deutsch"
    FR = "fr", "Français"


class AddressFields(models.Model):
    line1 = models.CharField("street and number", max_length=200)
    line2 = models.CharField("address line 2", max_length=200, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    city = models.CharField(max_length=100)
    region = models.CharField("region or state", max_length=100, blank=True)
    country = CountryField()

    class Meta:
        abstract = True

    def address_lines(self) -> list[str]:
        city_line = " ".join(part for part in (self.postal_code, self.city) if part)
        return [line for line in (self.line1, self.line2, city_line, self.region, self.country.name) if line]


# --- our legal entities -------------------------------------------------------------------------------


class LegalEntity(PublicModel, AddressFields):
    """One of our own companies that bills customers (multi-entity billing)."""

    legal_name = models.CharField(max_length=200, unique=True)
    short_name = models.CharField(max_length=60, help_text="Shown in lists and menus, e.g. 'Studio GmbH'.")
    default_currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="EUR")
    email = models.EmailField(blank=True)
    website = models.URLField(blank=True)
    company_register = models.CharField(
        max_length=120, blank=True, help_text="Register court and number, e.g. 'Amtsgericht Berlin HRB 12345'."
    )
    logo = models.ImageField(upload_to="legal_entities/logos/", blank=True)
    brand_colour = models.CharField(max_length=7, default="#1F6FEB", validators=[hex_colour])
    invoice_prefix = models.CharField(
        max_length=10,
        validators=[RegexValidator(r"^[A-Z0-9]{1,10}$", "Use 1–10 capital letters or digits.")],
        help_text="Series prefix of invoice numbers, e.g. 'DE' gives DE-2026-000001.",
    )
    invoice_number_padding = models.PositiveSmallIntegerField(
        default=6, validators=[MinValueValidator(3), MaxValueValidator(10)]
    )
    invoice_numbers_restart_yearly = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "legal entities"
        ordering = ["short_name"]
        constraints = [models.UniqueConstraint(fields=["invoice_prefix"], name="legal_entity_unique_invoice_prefix")]

    def __str__(self) -> str:
        return self.short_name


class LegalEntityRegistration(PublicModel):
    class Kind(models.TextChoices):
        VAT = "vat", "VAT number"
        TAX_NUMBER = "tax_number", "Tax number"

    legal_entity = models.ForeignKey(LegalEntity, on_delete=models.CASCADE, related_name="registrations")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.VAT)
    country = CountryField()
    number = models.CharField(max_length=40)
    is_oss_registered = models.BooleanField(
        "registered for OSS", default=False, help_text="Registered for the EU One-Stop Shop (B2C e-services)."
    )
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["legal_entity", "kind", "country"], name="legal_entity_registration_unique")
        ]

    def __str__(self) -> str:
        return self.number


class BankAccount(PublicModel):
    legal_entity = models.ForeignKey(LegalEntity, on_delete=models.CASCADE, related_name="bank_accounts")
    bank_name = models.CharField(max_length=120)
    account_holder = models.CharField(max_length=200)
    iban = models.CharField("IBAN", max_length=34)
    bic = models.CharField("BIC", max_length=11)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="EUR")
    is_default = models.BooleanField(default=False, help_text="Printed on invoices in this currency.")
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["legal_entity", "iban"], name="bank_account_unique_iban"),
            models.UniqueConstraint(
                fields=["legal_entity", "currency"], condition=Q(is_default=True), name="bank_account_one_default"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bank_name} {self.iban[-4:]}"


# --- customers ----------------------------------------------------------------------------------------


class Customer(PublicModel):
    """The canonical customer record every project and invoice points at."""

    class Status(models.TextChoices):
        PROSPECT = "prospect", "Prospect"
        ACTIVE = "active", "Active"
        ON_HOLD = "on_hold", "On hold"
        ARCHIVED = "archived", "Archived"

    # The one transition table of the customer lifecycle; only customer_set_status moves along it.
    TRANSITIONS = {
        Status.PROSPECT: {Status.ACTIVE, Status.ARCHIVED},
        Status.ACTIVE: {Status.ON_HOLD, Status.ARCHIVED},
        Status.ON_HOLD: {Status.ACTIVE, Status.ARCHIVED},
        Status.ARCHIVED: {Status.ACTIVE},
    }

    class Kind(models.TextChoices):
        BUSINESS = "business", "Business"
        CONSUMER = "consumer", "Consumer"

    class DeliveryChannel(models.TextChoices):
        EMAIL = "email", "Email with PDF"
        PORTAL = "portal", "Customer's invoice portal"
        EINVOICE = "einvoice", "E-invoice (Peppol / XRechnung)"
        POST = "post", "Post"

    class Consolidation(models.TextChoices):
        PER_PROJECT = "per_project", "One invoice per project"
        PER_CUSTOMER = "per_customer", "One invoice per customer"
        PER_PURCHASE_ORDER = "per_purchase_order", "One invoice per purchase order"

    number = models.CharField(max_length=20, unique=True, editable=False)
    legal_name = models.CharField(max_length=200)
    display_name = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.BUSINESS)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROSPECT, db_index=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_customers",
        help_text="The sales rep who owns the account.",
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="subsidiaries",
        help_text="Group parent, for group or consolidated billing.",
    )
    billing_entity = models.ForeignKey(
        LegalEntity,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="customers",
        help_text="Which of our legal entities bills this customer by default.",
    )
    default_currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="EUR")
    payment_terms_days = models.PositiveSmallIntegerField(
        "payment terms (net days)", default=30, validators=[MaxValueValidator(365)]
    )
    early_discount_percent = models.DecimalField(
        "early-payment discount %",
        max_digits=5,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    early_discount_days = models.PositiveSmallIntegerField("early-payment discount within days", default=0)
    invoice_language = models.CharField(max_length=2, choices=Language.choices, default=Language.EN)
    delivery_channel = models.CharField(max_length=10, choices=DeliveryChannel.choices, default=DeliveryChannel.EMAIL)
    consolidation = models.CharField(max_length=20, choices=Consolidation.choices, default=Consolidation.PER_PROJECT)
    purchase_order_required = models.BooleanField(default=False)
    einvoice_endpoint = models.CharField(
        "e-invoice endpoint",
        max_length=100,
        blank=True,
        help_text="Peppol participant ID (scheme:identifier, e.g. 0088:5790000435951) or Leitweg-ID.",
    )
    notes = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["display_name"]
        permissions = [("change_customer_billing", "Can change the billing fields of a customer")]
        constraints = [
            models.CheckConstraint(
                condition=Q(early_discount_percent__gte=0) & Q(early_discount_percent__lte=100),
                name="customer_early_discount_percent_range",
            ),
        ]
        indexes = [models.Index(fields=["legal_name"]), models.Index(fields=["owner", "status"])]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.number})" if self.number else self.display_name

    def can_transition_to(self, status: str) -> bool:
        return status in self.TRANSITIONS.get(self.Status(self.status), set())


class Address(PublicModel, AddressFields):
    class Kind(models.TextChoices):
        BILLING = "billing", "Billing"
        SHIPPING = "shipping", "Delivery"
        OTHER = "other", "Other"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="addresses")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.BILLING)
    label = models.CharField(max_length=80, blank=True, help_text="e.g. 'Accounts payable, Dublin office'.")
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "addresses"
        ordering = ["kind", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"], condition=Q(kind="billing"), name="address_one_billing_per_customer"
            ),
        ]

    def __str__(self) -> str:
        return ", ".join(self.address_lines()[:3])


class TaxRegistration(PublicModel):
    """A customer's VAT (or similar) registration, stored normalised after python-stdnum validated it."""

    class Kind(models.TextChoices):
        VAT = "vat", "VAT number"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="registrations")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.VAT)
    country = CountryField()
    number = models.CharField(max_length=40, help_text="Normalised: country prefix and digits, no spaces.")
    validated_at = models.DateTimeField(null=True, blank=True, help_text="When the format and checksum passed.")
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "kind", "country"], name="tax_registration_one_per_country"),
        ]

    def __str__(self) -> str:
        return self.number


def exemption_certificate_upload_to(instance: ExemptionCertificate, filename: str) -> str:
    """A random name under the customer's folder: the uploader's file name is neither trusted nor kept."""
    suffix = PurePosixPath(filename).suffix.lower()
    return f"exemption_certificates/{instance.customer.public_id}/{uuid.uuid4().hex}{suffix}"


class ExemptionCertificate(PublicModel):
    """A customer's certificate that exempts our supplies to it from VAT (an international organisation,
    a diplomatic mission, a charity...). The tax engine applies it on the tax point dates it covers."""

    class Validity(models.TextChoices):
        VALID = "valid", "Valid"
        EXPIRED = "expired", "Expired"
        NOT_YET_VALID = "not_yet_valid", "Not yet valid"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="exemption_certificates")
    reference = models.CharField("certificate number", max_length=100)
    reason_code = models.CharField(
        "exemption reason code", max_length=30, choices=exemption_codes_for_category_e, help_text="A VATEX code."
    )
    reason = models.CharField(
        "exemption reason text",
        max_length=300,
        blank=True,
        help_text="Printed on invoices next to the code; the code's own text when left empty.",
    )
    country = CountryField(
        blank=True, help_text="The country where it exempts; empty: wherever the place of supply is."
    )
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True, help_text="Last day of validity (inclusive); empty: open-ended.")
    document = models.FileField(
        upload_to=exemption_certificate_upload_to, blank=True, max_length=200, help_text="PDF, JPEG or PNG."
    )
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["-valid_from", "reference"]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=F("valid_from")),
                name="exemption_certificate_valid_to_not_before_valid_from",
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def reason_text(self) -> str:
        """What an invoice prints: the free text, else the code's own text."""
        return self.reason or VATEX.get(self.reason_code, "")

    def validity_on(self, day: dt.date) -> str:
        if day < self.valid_from:
            return self.Validity.NOT_YET_VALID
        if self.valid_to is not None and day > self.valid_to:
            return self.Validity.EXPIRED
        return self.Validity.VALID


class Contact(PublicModel):
    class Role(models.TextChoices):
        PRIMARY = "primary", "Primary"
        BILLING = "billing", "Billing"
        SECONDARY = "secondary", "Secondary"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contacts")
    first_name = models.CharField(max_length=80, blank=True)
    last_name = models.CharField(max_length=80)
    email = models.EmailField()
    phone = models.CharField(max_length=40, blank=True)
    job_title = models.CharField(max_length=120, blank=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.SECONDARY)
    receives_invoices = models.BooleanField(default=False)
    receives_reminders = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["last_name", "first_name"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "email"], name="contact_unique_email_per_customer"),
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


# --- catalog ------------------------------------------------------------------------------------------


class UnitCode(models.TextChoices):
    """Units of measure by UN/ECE Recommendation 20 (the codes EN 16931 invoices carry, BT-130)."""

    HOUR = "HUR", "HUR — hour"
    DAY = "DAY", "DAY — day"
    WEEK = "WEE", "WEE — week"
    MONTH = "MON", "MON — month"
    YEAR = "ANN", "ANN — year"
    ONE = "C62", "C62 — one (unit)"
    PIECE = "H87", "H87 — piece"
    LUMP_SUM = "LS", "LS — lump sum"
    KILOMETRE = "KMT", "KMT — kilometre"
    GIGABYTE = "E34", "E34 — gigabyte"


class Product(PublicModel):
    """A product or service in the catalog: how it is named to clients, priced, taxed and recognised."""

    class Kind(models.TextChoices):
        SERVICE = "service", "Service"
        GOODS = "goods", "Goods"
        EXPENSE = "expense", "Expense"
        FEE = "fee", "Fee"

    class PricingRule(models.TextChoices):
        FIXED = "fixed", "Fixed price per unit"
        RATE_CARD = "rate_card", "From the project's rate card"

    class RevenueRecognition(models.TextChoices):
        ON_ISSUE = "on_issue", "On invoice issue"
        ON_DELIVERY = "on_delivery", "On delivery / acceptance"
        RATABLY = "ratably", "Ratably over the service period"

    code = models.CharField(
        max_length=30,
        unique=True,
        validators=[RegexValidator(r"^[A-Z0-9][A-Z0-9._-]*$", "Use capital letters, digits, '.', '_' or '-'.")],
    )
    name = models.CharField("client-facing name", max_length=120)
    description = models.TextField("client-facing description", blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SERVICE)
    unit = models.CharField(max_length=3, choices=UnitCode.choices, default=UnitCode.HOUR)
    default_price_amount = models.DecimalField(
        "default unit price", max_digits=18, decimal_places=4, default=0, validators=[MinValueValidator(0)]
    )
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="EUR")
    pricing_rule = models.CharField(max_length=10, choices=PricingRule.choices, default=PricingRule.FIXED)
    revenue_account = models.CharField(
        "revenue GL account",
        max_length=20,
        validators=[RegexValidator(r"^[0-9A-Za-z.-]{2,20}$", "A GL account is 2–20 letters, digits, '.' or '-'.")],
    )
    default_tax_category = models.CharField(
        max_length=2,
        choices=PRODUCT_TAX_CATEGORIES,
        default=TaxCategory.STANDARD,
        help_text="What the product asks for; reverse charge, exports and the like are decided by the tax engine.",
    )
    revenue_recognition = models.CharField(
        max_length=12, choices=RevenueRecognition.choices, default=RevenueRecognition.ON_ISSUE
    )
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(default_price_amount__gte=0), name="product_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"


# --- pipeline, deals and quotes -----------------------------------------------------------------------


class BillingModel(models.TextChoices):
    """How a quote line or phase is billed; the project's billing rules are frozen from these at the win."""

    TIME_AND_MATERIALS = "tm", "Time & materials (rate card)"
    FIXED_FEE = "fixed_fee", "Fixed fee, billed by milestones"
    RETAINER = "retainer", "Monthly retainer"
    EXPENSES = "expenses", "Rebillable expenses with markup"


class PipelineStage(PublicModel):
    """A configurable stage of the sales pipeline with its default win probability."""

    class Outcome(models.TextChoices):
        OPEN = "open", "Open"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    code = models.SlugField(max_length=30, unique=True)
    name = models.CharField(max_length=60)
    position = models.PositiveSmallIntegerField(default=0, help_text="Order on the pipeline board.")
    default_probability = models.PositiveSmallIntegerField(
        "default win probability %", default=0, validators=[MaxValueValidator(100)]
    )
    outcome = models.CharField(max_length=4, choices=Outcome.choices, default=Outcome.OPEN)
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(default_probability__lte=100), name="pipeline_stage_probability_range"),
        ]

    def __str__(self) -> str:
        return self.name


class Deal(PublicModel):
    """An opportunity with a customer. Won through the handoff service, which creates the project."""

    number = models.CharField(max_length=20, unique=True, editable=False)
    title = models.CharField(max_length=200)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="deals")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_deals", help_text="The sales rep."
    )
    legal_entity = models.ForeignKey(
        LegalEntity, on_delete=models.PROTECT, related_name="deals", help_text="Which of our companies delivers."
    )
    stage = models.ForeignKey(PipelineStage, on_delete=models.PROTECT, related_name="deals")
    probability = models.PositiveSmallIntegerField("win probability %", validators=[MaxValueValidator(100)])
    amount = models.DecimalField(max_digits=18, decimal_places=2, default=0, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="EUR")
    expected_close_date = models.DateField(null=True, blank=True)
    next_step = models.CharField(max_length=200, blank=True)
    lost_reason = models.CharField(max_length=300, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("win_deal", "Can mark a deal won, which creates its project")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="deal_amount_not_negative"),
            models.CheckConstraint(condition=Q(probability__lte=100), name="deal_probability_range"),
        ]
        indexes = [models.Index(fields=["owner", "stage"])]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"


def quote_pdf_path(instance: Quote, filename: str) -> str:
    return f"quotes/{instance.public_id}/pdf/{instance.deal.number}-v{instance.version}-{uuid.uuid4().hex[:8]}.pdf"


class Quote(PublicModel):
    """One version of the offer on a deal. Drafts change; sent, accepted and superseded versions do not."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENT = "sent", "Sent"
        ACCEPTED = "accepted", "Accepted"
        SUPERSEDED = "superseded", "Superseded"
        DECLINED = "declined", "Declined"

    TRANSITIONS = {
        Status.DRAFT: {Status.SENT, Status.ACCEPTED, Status.SUPERSEDED},
        Status.SENT: {Status.ACCEPTED, Status.SUPERSEDED, Status.DECLINED},
        Status.ACCEPTED: set(),
        Status.SUPERSEDED: set(),
        Status.DECLINED: set(),
    }

    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="quotes")
    version = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="EUR")
    valid_until = models.DateField()
    payment_terms_days = models.PositiveSmallIntegerField(
        "payment terms (net days)", default=30, validators=[MaxValueValidator(365)]
    )
    po_number = models.CharField("purchase order number", max_length=60, blank=True)
    po_required = models.BooleanField("PO required on invoices", default=False)
    portal_required = models.BooleanField("invoice portal required", default=False)
    planned_start = models.DateField(null=True, blank=True)
    planned_end = models.DateField(null=True, blank=True)
    retainer_amount = models.DecimalField(
        "monthly retainer", max_digits=18, decimal_places=2, default=0, validators=[MinValueValidator(0)]
    )
    expense_markup_percent = models.DecimalField(
        "markup on rebillable expenses %", max_digits=6, decimal_places=2, default=0, validators=[MinValueValidator(0)]
    )
    terms = models.TextField("terms and notes", blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    customer_signatory = models.CharField("accepted on the customer's side by", max_length=120, blank=True)
    pdf = models.FileField(
        "quote PDF",
        upload_to=quote_pdf_path,
        blank=True,
        max_length=300,
        help_text="Rendered once when the quote is sent (or accepted as a draft); never rendered again.",
    )
    pdf_sha256 = models.CharField("SHA-256 of the PDF", max_length=64, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["deal", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["deal", "version"], name="quote_version_unique_per_deal"),
            models.UniqueConstraint(
                fields=["deal"], condition=Q(status="accepted"), name="quote_one_accepted_per_deal"
            ),
            models.CheckConstraint(
                condition=Q(planned_end__isnull=True)
                | Q(planned_start__isnull=True)
                | Q(planned_end__gte=F("planned_start")),
                name="quote_planned_dates_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.deal.number} v{self.version}"

    @property
    def is_editable(self) -> bool:
        return self.status == self.Status.DRAFT

    def can_transition_to(self, status: str) -> bool:
        return status in self.TRANSITIONS.get(self.Status(self.status), set())


class QuoteMilestone(PublicModel):
    """A phase or milestone of the offer: fixed-fee amounts are billed when it is accepted."""

    quote = models.ForeignKey(Quote, on_delete=models.CASCADE, related_name="milestones")
    position = models.PositiveSmallIntegerField(default=0)
    name = models.CharField(max_length=120)
    phase = models.CharField(max_length=120, blank=True, help_text="The phase it closes, as the client names it.")
    planned_date = models.DateField()
    amount = models.DecimalField(max_digits=18, decimal_places=2, default=0, validators=[MinValueValidator(0)])
    acceptance_criteria = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["quote", "position", "id"]

    def __str__(self) -> str:
        return self.name


class QuoteLine(PublicModel):
    """A priced line of the offer. For time & materials, ``labour_category`` and ``unit_price`` form the rate card."""

    quote = models.ForeignKey(Quote, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(default=0)
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    description = models.CharField(max_length=300)
    phase = models.CharField(max_length=120, blank=True)
    billing_model = models.CharField(
        max_length=10, choices=BillingModel.choices, default=BillingModel.TIME_AND_MATERIALS
    )
    labour_category = models.CharField(
        max_length=80, blank=True, help_text="Role for time & materials lines, e.g. 'Senior consultant'."
    )
    quantity = models.DecimalField(max_digits=18, decimal_places=4, validators=[MinValueValidator(0)])
    unit = models.CharField(max_length=3, choices=UnitCode.choices, default=UnitCode.HOUR)
    unit_price = models.DecimalField(max_digits=18, decimal_places=4, validators=[MinValueValidator(0)])
    discount_percent = models.DecimalField(
        "discount %",
        max_digits=5,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    tax_category = models.CharField(max_length=2, choices=PRODUCT_TAX_CATEGORIES, default=TaxCategory.STANDARD)
    supply_kind = models.CharField(
        max_length=20,
        choices=SupplyKind.CHOICES,
        default=SupplyKind.GENERAL_SERVICE,
    )
    net_amount = models.DecimalField(
        max_digits=18, decimal_places=2, default=0, help_text="quantity × unit price less discount, rounded once."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["quote", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(discount_percent__gte=0) & Q(discount_percent__lte=100), name="quote_line_discount_range"
            ),
        ]

    def __str__(self) -> str:
        return self.description


def quote_attachment_path(instance: QuoteAttachment, filename: str) -> str:
    suffix = PurePosixPath(filename).suffix.lower()
    return f"quotes/{instance.quote.public_id}/{uuid.uuid4().hex}{suffix}"


class QuoteAttachment(PublicModel):
    """A signed proposal, statement of work or purchase order, checked for type and size when uploaded."""

    class Kind(models.TextChoices):
        SIGNED_PROPOSAL = "signed_proposal", "Signed proposal"
        STATEMENT_OF_WORK = "sow", "Statement of work"
        PURCHASE_ORDER = "po", "Purchase order"
        OTHER = "other", "Other"

    quote = models.ForeignKey(Quote, on_delete=models.PROTECT, related_name="attachments")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.OTHER)
    file = models.FileField(upload_to=quote_attachment_path, max_length=300)
    filename = models.CharField(max_length=200, help_text="The name it was uploaded with.")
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["quote", "created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.filename}"
