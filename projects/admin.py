"""Admin of projects and contracts: history-aware, auditor-proof, and careful with what the contract governs.

Everyday work happens on the app's pages, through the services. Here an admin may fix a project's name,
purchase order or alert thresholds, or hand it to another manager (the manager's object permissions follow).
What the contract governs is read-only: the dates, currency and the plan rows mirror the newest contract
version, which only an approved change order replaces. Projects are created by winning a deal or through
the project pages, never here (version 1 must exist from the start). Contract versions, change orders and
alerts are read-only for everyone: they are records of what happened.
"""

from __future__ import annotations

from django.contrib import admin
from guardian.admin import ReinforcedGuardedModelAdminMixin
from guardian.shortcuts import assign_perm, remove_perm

from backbone.admin import ReadOnlyAdminMixin, TrackedAdmin, TrackedTabularInline

from .models import (
    BillingRule,
    BudgetAlert,
    BudgetLine,
    ChangeOrder,
    ContractVersion,
    Milestone,
    Project,
    RateCardEntry,
)

PUBLIC_FIELDS = ("public_id", "created_at", "updated_at")


class _MirrorInline(ReadOnlyAdminMixin, TrackedTabularInline):
    """Rows that mirror the contract: shown, never edited here."""

    can_delete = False


class RateCardInline(_MirrorInline):
    model = RateCardEntry
    fields = readonly_fields = ("labour_category", "rate", "currency", "effective_from", "contract_version")


class BudgetLineInline(_MirrorInline):
    model = BudgetLine
    fields = readonly_fields = ("key", "kind", "labour_category", "description", "hours", "rate", "amount")


class MilestoneInline(_MirrorInline):
    model = Milestone
    fields = readonly_fields = ("key", "name", "planned_date", "baseline_date", "amount", "status")


class BillingRuleInline(_MirrorInline):
    model = BillingRule
    fields = readonly_fields = ("model", "retainer_amount", "markup_percent")


@admin.register(Project)
class ProjectAdmin(ReinforcedGuardedModelAdminMixin, TrackedAdmin):
    list_display = ("number", "name", "customer", "project_manager", "status", "planned_start", "planned_end")
    list_display_links = ("number", "name")
    list_filter = ("status", "currency", "legal_entity")
    search_fields = ("number", "name", "customer__display_name", "customer__number", "=public_id")
    list_select_related = ("customer", "project_manager")
    autocomplete_fields = ("project_manager",)
    readonly_fields = (
        "number",
        "customer",
        "legal_entity",
        "deal",
        "status",
        "currency",
        "language",
        "planned_start",
        "planned_end",
        "payment_terms_days",
        *PUBLIC_FIELDS,
    )
    fields = (
        "number",
        "name",
        "customer",
        "legal_entity",
        "deal",
        "project_manager",
        "status",
        "currency",
        "language",
        ("planned_start", "planned_end"),
        "po_number",
        "po_required",
        "portal_required",
        "payment_terms_days",
        "alert_thresholds",
        *PUBLIC_FIELDS,
    )
    inlines = (RateCardInline, BudgetLineInline, MilestoneInline, BillingRuleInline)

    def has_add_permission(self, request, *args, **kwargs) -> bool:
        return False

    def has_delete_permission(self, request, *args, **kwargs) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        previous = Project.objects.filter(pk=obj.pk).select_related("project_manager").first() if change else None
        super().save_model(request, obj, form, change)
        if previous is not None and previous.project_manager_id != obj.project_manager_id:
            old = previous.project_manager
            remove_perm("projects.change_project", old, obj)
            if not Project.objects.filter(project_manager=old, customer=obj.customer).exists():
                remove_perm("customers.view_customer", old, obj.customer)
        assign_perm("projects.change_project", obj.project_manager, obj)
        assign_perm("customers.view_customer", obj.project_manager, obj.customer)


@admin.register(ContractVersion)
class ContractVersionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("project", "number", "effective_from", "source", "change_order", "created_by", "created_at")
    list_filter = ("source",)
    search_fields = ("project__number", "project__name", "sha256", "=public_id")
    list_select_related = ("project", "change_order", "created_by")
    readonly_fields = (
        "project",
        "number",
        "effective_from",
        "source",
        "quote",
        "change_order",
        "terms",
        "sha256",
        "created_by",
        *PUBLIC_FIELDS,
    )


@admin.register(ChangeOrder)
class ChangeOrderAdmin(ReadOnlyAdminMixin, TrackedAdmin):
    list_display = ("number", "title", "project", "status", "budget_delta_amount", "touches_billing_terms")
    list_display_links = ("number", "title")
    list_filter = ("status", "touches_billing_terms")
    search_fields = ("number", "title", "project__number", "=public_id")
    list_select_related = ("project",)
    readonly_fields = (
        "number",
        "project",
        "title",
        "reason",
        "changes",
        "effective_from",
        "status",
        "customer_accepted_by",
        "customer_accepted_on",
        "customer_acceptance_file",
        "customer_acceptance_filename",
        "budget_delta_amount",
        "touches_billing_terms",
        "proposed_by",
        "submitted_at",
        "decided_by",
        "decided_at",
        "rejection_reason",
        *PUBLIC_FIELDS,
    )


@admin.register(BudgetAlert)
class BudgetAlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("project", "kind", "key", "message", "created_at")
    list_filter = ("kind",)
    search_fields = ("project__number", "key", "message")
    list_select_related = ("project",)
    readonly_fields = (
        "project",
        "kind",
        "key",
        "threshold_percent",
        "milestone",
        "message",
        "actual_amount",
        "budget_amount",
        *PUBLIC_FIELDS,
    )
