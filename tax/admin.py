"""Admin of jurisdictions, rates and tax evidence. Evidence is read-only for everyone; rates are history-tracked."""

from __future__ import annotations

from django.contrib import admin

from backbone.admin import ReadOnlyAdminMixin, TrackedAdmin

from .models import Jurisdiction, RateDataLoad, TaxCalculation, TaxRate


class TaxRateInline(admin.TabularInline):
    model = TaxRate
    fields = ("kind", "rate", "valid_from", "valid_to", "source", "source_reference", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Jurisdiction)
class JurisdictionAdmin(TrackedAdmin):
    list_display = ("country", "name", "currency", "in_eu")
    list_filter = ("in_eu",)
    search_fields = ("country", "name")
    inlines = [TaxRateInline]


@admin.register(TaxRate)
class TaxRateAdmin(ReadOnlyAdminMixin, TrackedAdmin):
    """Read-only here: rates are added on the Tax pages or through the API, where overlaps are refused."""

    list_display = ("jurisdiction", "kind", "rate", "valid_from", "valid_to", "source")
    list_filter = ("kind", "source", "jurisdiction__in_eu")
    search_fields = ("jurisdiction__country", "jurisdiction__name", "source_reference")
    readonly_fields = ("public_id", "source", "created_by", "created_at", "updated_at")


@admin.register(TaxCalculation)
class TaxCalculationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "purpose",
        "document_type",
        "document_ref",
        "place_of_supply",
        "tax_amount",
        "locked_at",
    )
    list_filter = ("purpose", "engine", "place_of_supply")
    search_fields = ("document_ref", "sha256")


@admin.register(RateDataLoad)
class RateDataLoadAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("version", "loaded_at", "summary")
