"""Admin of customers, contacts, our legal entities and the catalog: history-aware and auditor-proof.

Everyday work happens on the app's own pages, through the services; the admin is for admins fixing data.
It still keeps the invariants the services keep: a new customer takes its ``CUST-`` number from the
gapless sequence, and the owner's object permission follows the ``owner`` field.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from guardian.admin import ReinforcedGuardedModelAdminMixin
from guardian.shortcuts import assign_perm, remove_perm

from backbone.admin import TrackedAdmin, TrackedStackedInline, TrackedTabularInline
from backbone.services import sequence_next

from .models import (
    Address,
    BankAccount,
    Contact,
    Customer,
    Deal,
    ExemptionCertificate,
    LegalEntity,
    LegalEntityRegistration,
    PipelineStage,
    Product,
    Quote,
    QuoteAttachment,
    QuoteLine,
    QuoteMilestone,
    TaxRegistration,
)
from .services import certificate_document_problem

PUBLIC_FIELDS = ("public_id", "created_at", "updated_at")


# --- customers ----------------------------------------------------------------------------------------


class AddressInline(TrackedStackedInline):
    model = Address
    fields = (("kind", "label"), ("line1", "line2"), ("postal_code", "city"), ("region", "country"))


class TaxRegistrationInline(TrackedTabularInline):
    model = TaxRegistration
    fields = ("kind", "country", "number", "validated_at")


class ContactInline(TrackedTabularInline):
    model = Contact
    fields = (
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


class ExemptionCertificateAdminForm(forms.ModelForm):
    """The admin keeps the services' rule for documents: PDF, JPEG or PNG by content and name, at most 5 MB."""

    class Meta:
        model = ExemptionCertificate
        fields = ("reference", "reason_code", "reason", "country", "valid_from", "valid_to", "document", "note")

    def clean_document(self):
        document = self.cleaned_data.get("document")
        if document and "document" in self.changed_data:
            problem = certificate_document_problem(document)
            if problem:
                raise forms.ValidationError(problem)
        return document


class ExemptionCertificateInline(TrackedStackedInline):
    model = ExemptionCertificate
    form = ExemptionCertificateAdminForm
    fields = (("reference", "reason_code"), "reason", ("country", "valid_from", "valid_to"), "document", "note")


@admin.register(Customer)
class CustomerAdmin(ReinforcedGuardedModelAdminMixin, TrackedAdmin):
    """Customers, with django-guardian's object-permission pages (which themselves require the guardian
    permissions, not just the right to change customers)."""

    list_display = (
        "number",
        "display_name",
        "legal_name",
        "status",
        "kind",
        "owner",
        "billing_entity",
        "default_currency",
    )
    list_display_links = ("number", "display_name")
    list_filter = ("status", "kind", "default_currency", "delivery_channel", "billing_entity")
    search_fields = ("number", "display_name", "legal_name", "=public_id", "contacts__email")
    list_select_related = ("owner", "billing_entity")
    autocomplete_fields = ("owner", "parent", "billing_entity")
    readonly_fields = ("number", *PUBLIC_FIELDS)
    inlines = (AddressInline, TaxRegistrationInline, ContactInline, ExemptionCertificateInline)
    fieldsets = (
        (None, {"fields": ("number", "legal_name", "display_name", "kind", "status", "owner", "parent", "notes")}),
        (
            "Billing",
            {
                "fields": (
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
                )
            },
        ),
        ("Identity", {"fields": PUBLIC_FIELDS, "classes": ("collapse",)}),
    )

    def save_formset(self, request, form, formset, change) -> None:
        if formset.model is ExemptionCertificate:
            for inline_form in formset.forms:
                if inline_form.instance.pk is None and inline_form.has_changed():
                    inline_form.instance.created_by = request.user
        super().save_formset(request, form, formset, change)

    def save_model(self, request, obj, form, change) -> None:
        old_owner = None
        if change:
            old_owner = Customer.objects.filter(pk=obj.pk).values_list("owner", flat=True).first()
        if not obj.number:
            obj.number = sequence_next(key="customer", prefix="CUST")
        super().save_model(request, obj, form, change)
        # The owner edits their account through a guardian object permission; keep it in step.
        if old_owner is not None and old_owner != obj.owner_id:
            previous = get_user_model().objects.filter(pk=old_owner).first()
            if previous is not None:
                remove_perm("customers.change_customer", previous, obj)
        if obj.owner_id is not None:
            assign_perm("customers.change_customer", obj.owner, obj)


@admin.register(Address)
class AddressAdmin(TrackedAdmin):
    list_display = ("customer", "kind", "label", "city", "country")
    list_filter = ("kind", "country")
    search_fields = ("customer__display_name", "customer__number", "line1", "city", "postal_code")
    list_select_related = ("customer",)
    autocomplete_fields = ("customer",)
    readonly_fields = PUBLIC_FIELDS


@admin.register(TaxRegistration)
class TaxRegistrationAdmin(TrackedAdmin):
    list_display = ("number", "customer", "kind", "country", "validated_at")
    list_filter = ("kind", "country")
    search_fields = ("number", "customer__display_name", "customer__number")
    list_select_related = ("customer",)
    autocomplete_fields = ("customer",)
    readonly_fields = PUBLIC_FIELDS


@admin.register(Contact)
class ContactAdmin(TrackedAdmin):
    list_display = ("full_name", "email", "customer", "role", "receives_invoices", "receives_reminders", "is_active")
    list_filter = ("role", "receives_invoices", "receives_reminders", "is_active")
    search_fields = ("first_name", "last_name", "email", "customer__display_name", "customer__number")
    list_select_related = ("customer",)
    autocomplete_fields = ("customer",)
    readonly_fields = PUBLIC_FIELDS


# --- our legal entities -------------------------------------------------------------------------------


class LegalEntityRegistrationInline(TrackedTabularInline):
    model = LegalEntityRegistration
    fields = ("kind", "country", "number", "is_oss_registered")


class BankAccountInline(TrackedTabularInline):
    model = BankAccount
    fields = ("bank_name", "account_holder", "iban", "bic", "currency", "is_default")


@admin.register(LegalEntity)
class LegalEntityAdmin(TrackedAdmin):
    list_display = ("short_name", "legal_name", "country", "default_currency", "invoice_prefix", "is_active")
    list_filter = ("is_active", "country", "default_currency")
    search_fields = ("short_name", "legal_name", "invoice_prefix", "=public_id")
    readonly_fields = PUBLIC_FIELDS
    inlines = (LegalEntityRegistrationInline, BankAccountInline)
    fieldsets = (
        (None, {"fields": ("legal_name", "short_name", "default_currency", "is_active")}),
        ("Address", {"fields": ("line1", "line2", "postal_code", "city", "region", "country")}),
        ("Contact and register", {"fields": ("email", "website", "company_register")}),
        (
            "Invoices",
            {
                "fields": (
                    "logo",
                    "brand_colour",
                    "invoice_prefix",
                    "invoice_number_padding",
                    "invoice_numbers_restart_yearly",
                )
            },
        ),
        ("Identity", {"fields": PUBLIC_FIELDS, "classes": ("collapse",)}),
    )


@admin.register(LegalEntityRegistration)
class LegalEntityRegistrationAdmin(TrackedAdmin):
    list_display = ("number", "legal_entity", "kind", "country", "is_oss_registered")
    list_filter = ("kind", "country", "is_oss_registered")
    search_fields = ("number", "legal_entity__short_name")
    list_select_related = ("legal_entity",)
    readonly_fields = PUBLIC_FIELDS


@admin.register(BankAccount)
class BankAccountAdmin(TrackedAdmin):
    list_display = ("bank_name", "legal_entity", "iban", "bic", "currency", "is_default")
    list_filter = ("currency", "is_default")
    search_fields = ("bank_name", "iban", "bic", "legal_entity__short_name")
    list_select_related = ("legal_entity",)
    readonly_fields = PUBLIC_FIELDS


# --- catalog ------------------------------------------------------------------------------------------


@admin.register(Product)
class ProductAdmin(TrackedAdmin):
    list_display = (
        "code",
        "name",
        "kind",
        "unit",
        "default_price_amount",
        "currency",
        "default_tax_category",
        "is_active",
    )
    list_display_links = ("code", "name")
    list_filter = (
        "kind",
        "is_active",
        "unit",
        "currency",
        "default_tax_category",
        "pricing_rule",
        "revenue_recognition",
    )
    search_fields = ("code", "name", "description", "revenue_account", "=public_id")
    readonly_fields = PUBLIC_FIELDS


# --- pipeline, deals and quotes -------------------------------------------------------------------------


@admin.register(PipelineStage)
class PipelineStageAdmin(TrackedAdmin):
    """Admins configure the pipeline: names, order, default probabilities. One stage each is won and lost."""

    list_display = ("position", "name", "code", "default_probability", "outcome", "is_active")
    list_display_links = ("name",)
    list_editable = ("position",)
    list_filter = ("outcome", "is_active")
    readonly_fields = PUBLIC_FIELDS


class QuoteReadOnlyInline(TrackedTabularInline):
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class QuoteLineInline(QuoteReadOnlyInline):
    model = QuoteLine
    fields = (
        "position",
        "description",
        "billing_model",
        "labour_category",
        "quantity",
        "unit",
        "unit_price",
        "discount_percent",
        "tax_category",
        "net_amount",
    )
    readonly_fields = fields


class QuoteMilestoneInline(QuoteReadOnlyInline):
    model = QuoteMilestone
    fields = ("position", "name", "phase", "planned_date", "amount")
    readonly_fields = fields


class QuoteAttachmentInline(QuoteReadOnlyInline):
    model = QuoteAttachment
    fields = ("kind", "filename", "content_type", "size", "sha256", "uploaded_by", "created_at")
    readonly_fields = fields


@admin.register(Deal)
class DealAdmin(TrackedAdmin):
    """Deals are opened, moved and won on the pipeline pages (services keep numbers, stages and the handoff);
    the admin fixes typos and hands deals over."""

    list_display = ("number", "title", "customer", "owner", "stage", "probability", "amount", "currency")
    list_filter = ("stage", "currency")
    search_fields = ("number", "title", "customer__display_name", "=public_id")
    list_select_related = ("customer", "owner", "stage")
    autocomplete_fields = ("customer",)
    readonly_fields = ("number", "stage", "lost_reason", "closed_at", *PUBLIC_FIELDS)

    def has_add_permission(self, request) -> bool:
        return False  # a new deal takes its number from the gapless series: open it on the deals page


@admin.register(Quote)
class QuoteAdmin(TrackedAdmin):
    """Quotes are read here: drafts change on the quote page, and sent versions never change."""

    list_display = ("__str__", "status", "currency", "valid_until", "sent_at", "accepted_at")
    list_filter = ("status", "currency")
    search_fields = ("deal__number", "deal__title", "=public_id")
    list_select_related = ("deal",)
    inlines = [QuoteLineInline, QuoteMilestoneInline, QuoteAttachmentInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
