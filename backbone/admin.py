"""Admin of the shared kernel, and the admin building blocks every app uses.

Two rules hold across the whole admin:

* Auditors never change anything (ROLES.md), even when they also hold another role: every admin class
  and inline built from ``ReadOnlyForAuditorsMixin`` answers "no" to add, change and delete for them,
  on top of Django's own view-only handling of their ``view_*`` permissions.
* Changes made in the admin are history records like any other, with the acting user and a reason.

The audit chain, its head, idempotency records and number sequences are read-only for everyone; external
IDs may be added but never changed or removed (they are written once).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ObjectDoesNotExist
from django.urls import reverse
from django.utils.html import format_html
from rest_framework.authtoken.admin import TokenAdmin as DrfTokenAdmin
from rest_framework.authtoken.models import TokenProxy
from simple_history.admin import SimpleHistoryAdmin

from .history import set_reason
from .models import AuditChainHead, AuditEntry, ExternalId, IdempotencyRecord, NumberSequence, UserProfile
from .roles import is_read_only

ADMIN_REASON = {"add": "Created in the admin", "change": "Edited in the admin", "delete": "Deleted in the admin"}


class ReadOnlyForAuditorsMixin:
    """Auditors browse but never add, change or delete, whatever other role they also hold."""

    def has_add_permission(self, request, *args, **kwargs) -> bool:
        return not is_read_only(request.user) and super().has_add_permission(request, *args, **kwargs)

    def has_change_permission(self, request, *args, **kwargs) -> bool:
        return not is_read_only(request.user) and super().has_change_permission(request, *args, **kwargs)

    def has_delete_permission(self, request, *args, **kwargs) -> bool:
        return not is_read_only(request.user) and super().has_delete_permission(request, *args, **kwargs)


class ReadOnlyAdminMixin:
    """Nobody writes through the admin: rows are written by services (or the audit receiver) only."""

    def has_add_permission(self, request, *args, **kwargs) -> bool:
        return False

    def has_change_permission(self, request, *args, **kwargs) -> bool:
        return False

    def has_delete_permission(self, request, *args, **kwargs) -> bool:
        return False


class AdminReasonMixin:
    """Give every admin write a reason in its history record ("Edited in the admin"), inlines included."""

    def save_model(self, request, obj, form, change) -> None:
        if not getattr(obj, "_change_reason", None):
            set_reason(obj, ADMIN_REASON["change" if change else "add"])
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj) -> None:
        set_reason(obj, ADMIN_REASON["delete"])
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        # One by one, so that each history record carries the reason.
        for obj in queryset:
            self.delete_model(request, obj)

    def save_formset(self, request, form, formset, change) -> None:
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            set_reason(obj, ADMIN_REASON["delete"])
            obj.delete()
        for obj in instances:
            set_reason(obj, ADMIN_REASON["add" if obj.pk is None else "change"])
            obj.save()
        formset.save_m2m()


class TrackedAdmin(ReadOnlyForAuditorsMixin, AdminReasonMixin, SimpleHistoryAdmin):
    """The base of every business model's admin: history-aware, auditor-proof, with reasons."""


class TrackedTabularInline(ReadOnlyForAuditorsMixin, admin.TabularInline):
    extra = 0
    show_change_link = False


class TrackedStackedInline(ReadOnlyForAuditorsMixin, admin.StackedInline):
    extra = 0


# --- the audit chain and kernel tables ---------------------------------------------------------------


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "occurred_at", "action", "model_label", "object_repr", "user_display", "short_reason")
    list_display_links = ("id", "occurred_at")
    list_filter = ("action", "model_label", "occurred_at")
    search_fields = ("object_repr", "user_display", "reason", "=object_public_id", "=entry_hash")
    date_hierarchy = "occurred_at"
    list_select_related = ("user",)
    readonly_fields = ("history_page",)
    fieldsets = (
        (None, {"fields": ("history_page", "occurred_at", "action", "user", "user_display", "reason")}),
        (
            "Record",
            {
                "fields": (
                    "model_label",
                    "model_name",
                    "object_pk",
                    "object_public_id",
                    "object_repr",
                    "history_id",
                    "changed_fields",
                )
            },
        ),
        ("Chain", {"fields": ("prev_hash", "entry_hash")}),
    )

    @admin.display(description="reason")
    def short_reason(self, obj: AuditEntry) -> str:
        return (obj.reason[:60] + "…") if len(obj.reason) > 60 else obj.reason

    @admin.display(description="History page")
    def history_page(self, obj: AuditEntry) -> str:
        return format_html(
            '<a href="{}">Open with the field-by-field diff</a>', reverse("history-entry", args=[obj.pk])
        )


@admin.register(AuditChainHead)
class AuditChainHeadAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "length", "last_hash")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "user", "method", "path", "status_code", "key")
    list_filter = ("method", "status_code", "created_at")
    search_fields = ("key", "path", "user__username")
    list_select_related = ("user",)
    date_hierarchy = "created_at"


@admin.register(NumberSequence)
class NumberSequenceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: editing a counter would break gapless numbering."""

    list_display = ("key", "year", "prefix", "padding", "last_value")
    list_filter = ("key", "year")


class ExternalIdForm(forms.ModelForm):
    class Meta:
        model = ExternalId
        fields = ("system", "content_type", "object_id", "external_id")

    def clean_system(self) -> str:
        return (self.cleaned_data.get("system") or "").strip().lower()

    def clean_external_id(self) -> str:
        return (self.cleaned_data.get("external_id") or "").strip()

    def clean(self):
        cleaned = super().clean()
        content_type, object_id = cleaned.get("content_type"), cleaned.get("object_id")
        if content_type is not None and object_id is not None:
            try:
                content_type.get_object_for_this_type(pk=object_id)
            except (ObjectDoesNotExist, AttributeError):
                self.add_error("object_id", f"There is no {content_type.name} with this ID.")
        return cleaned


@admin.register(ExternalId)
class ExternalIdAdmin(ReadOnlyForAuditorsMixin, admin.ModelAdmin):
    """External IDs are written once: they may be added here, never changed or removed."""

    form = ExternalIdForm
    list_display = ("system", "external_id", "content_type", "object_id", "created_at", "created_by")
    list_filter = ("system", "content_type")
    search_fields = ("external_id", "system")
    list_select_related = ("content_type", "created_by")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(UserProfile)
class UserProfileAdmin(TrackedAdmin):
    list_display = ("user", "approval_limit_amount", "change_order_limit_amount")
    search_fields = ("user__username", "user__first_name", "user__last_name", "user__email")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)


# --- users, groups and API tokens --------------------------------------------------------------------


class UserProfileInline(TrackedStackedInline):
    model = UserProfile
    can_delete = False
    max_num = 1
    verbose_name = "approval limits"
    verbose_name_plural = "approval limits"
    fields = ("approval_limit_amount", "change_order_limit_amount")


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserAdmin(ReadOnlyForAuditorsMixin, AdminReasonMixin, SimpleHistoryAdmin, DjangoUserAdmin):
    """Django's user admin, with history (who granted which role, and when) and the approval limits."""

    inlines = (UserProfileInline,)
    list_display = ("username", "email", "first_name", "last_name", "role_list", "is_staff", "is_active")
    list_filter = ("groups", "is_staff", "is_superuser", "is_active")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="roles")
    def role_list(self, obj) -> str:
        return ", ".join(sorted(group.name for group in obj.groups.all())) or "—"


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(ReadOnlyForAuditorsMixin, DjangoGroupAdmin):
    pass


admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class TokenAdmin(ReadOnlyForAuditorsMixin, DrfTokenAdmin):
    """API tokens are credentials: the list shows only their last characters, never the whole key."""

    list_display = ("masked_key", "user", "created")

    def get_list_display_links(self, request, list_display):
        # A token's page shows the whole key in its title: read-only viewers get the list only.
        return None if is_read_only(request.user) else super().get_list_display_links(request, list_display)

    def has_view_permission(self, request, obj=None) -> bool:
        if obj is not None and is_read_only(request.user):
            return False
        return super().has_view_permission(request, obj)

    @admin.display(description="key")
    def masked_key(self, obj) -> str:
        return f"…{obj.key[-4:]}" if obj.key else "—"
