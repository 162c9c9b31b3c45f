"""Sign-in and the History area: every change across the system, from the audit chain."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.shortcuts import redirect
from django.views import View
from django.views.generic import ListView, TemplateView

from . import selectors
from .forms import HistoryFilterForm
from .history import audit_chain_verify, entry_digest, entry_payload
from .links import object_url
from .roles import Role, is_read_only

# The demo people seed_demo creates, one per role (ROLES.md).
DEMO_LOGINS = [
    ("sales", Role.SALES.label),
    ("pm", Role.PROJECT_MANAGER.label),
    ("consultant", Role.CONSULTANT.label),
    ("finance", Role.FINANCE.label),
    ("executive", Role.EXECUTIVE.label),
    ("auditor", Role.AUDITOR.label),
    ("admin", Role.ADMIN.label),
]

AUDIT_PERMISSION = "backbone.view_auditentry"


class Guarded(PermissionRequiredMixin, View):
    """Deny by default. ``permission_required``: all of them; ``permission_any``: at least one of them;
    ``writes``: the page changes data, so auditors (read-only everywhere) are refused."""

    permission_required: tuple[str, ...] = ()
    permission_any: tuple[str, ...] = ()
    writes = False

    def has_permission(self) -> bool:
        user = self.request.user
        if not user.is_authenticated:
            return False
        if self.writes and is_read_only(user):
            return False
        if self.permission_any and not any(user.has_perm(perm) for perm in self.permission_any):
            return False
        return user.has_perms(self.get_permission_required())


class SignInView(auth_views.LoginView):
    """Django's LoginView; in demo mode the page also lists the demo logins and their shared password."""

    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        password = getattr(settings, "DEMO_PASSWORD", "") or ""
        show = bool(getattr(settings, "DEMO_MODE", False) and password)
        context["demo_logins"] = DEMO_LOGINS if show else []
        context["demo_password"] = password if show else ""
        return context


class HistoryListView(PermissionRequiredMixin, ListView):
    """All audit entries, newest first, filterable; signed out → sign-in page, no permission → 403."""

    permission_required = AUDIT_PERMISSION
    template_name = "backbone/auditentry_list.html"
    context_object_name = "entries"
    paginate_by = 25

    def get_queryset(self):
        self.filter_form = HistoryFilterForm(self.request.GET or None)
        filters = self.filter_form.filters() if self.request.GET else {}
        return selectors.audit_entry_list(**filters)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        for entry in context["entries"]:
            entry.object_url = object_url(entry.model_label, entry.object_public_id) if entry.action != "-" else None
            entry.changed_labels = [selectors.field_label(entry.model_label, name) for name in entry.changed_fields]
        context["filter_form"] = self.filter_form
        context["is_filtered"] = any(value for key, value in self.request.GET.items() if key != "page")
        return context


class HistoryEntryView(PermissionRequiredMixin, TemplateView):
    """One audit entry: what changed field by field, and the hashes that chain it to its predecessor."""

    permission_required = AUDIT_PERMISSION
    template_name = "backbone/auditentry_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        entry = selectors.audit_entry_get(pk=kwargs["pk"])
        found = selectors.history_record_for(entry)
        item = selectors.history_items([found])[0] if found else None
        context.update(
            entry=entry,
            item=item,
            object_url=object_url(entry.model_label, entry.object_public_id) if entry.action != "-" else None,
            hash_matches=entry_digest(prev_hash=entry.prev_hash, payload=entry_payload(entry)) == entry.entry_hash,
            changed_labels=[selectors.field_label(entry.model_label, name) for name in entry.changed_fields],
        )
        return context


class HistoryVerifyView(PermissionRequiredMixin, View):
    """Walk the whole audit chain and report the outcome as a message (POST: it may take a while)."""

    permission_required = AUDIT_PERMISSION
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        intact, checked, broken = audit_chain_verify()
        if intact:
            messages.success(request, f"The audit chain is intact: {checked} entries checked, none altered or missing.")
        elif broken is not None:
            messages.error(
                request,
                f"The audit chain is broken at entry #{broken.pk} ({broken}): it was altered, or an entry before it "
                f"was removed. {checked} entries before it are intact.",
            )
        else:
            messages.error(
                request,
                f"The audit chain is broken: its head does not match the last of the {checked} entries "
                "(entries were removed from the end).",
            )
        return redirect("history")
