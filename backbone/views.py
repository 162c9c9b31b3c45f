"""Sign-in, the History area (every change across the system, from the audit chain) and a person's
notifications."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.generic import ListView, TemplateView

from . import selectors
from .forms import HistoryFilterForm
from .history import audit_chain_verify, entry_digest, entry_payload
from .links import object_url
from .models import Notification
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


# --- notifications ------------------------------------------------------------------------------------

NOTIFICATIONS_PAGE_SIZE = 25


class NotificationListView(Guarded):
    """The signed-in person's own notifications, newest first; ``?show=unread`` narrows to the unread."""

    def get(self, request):
        mine = Notification.objects.filter(user=request.user)
        unread_only = request.GET.get("show") == "unread"
        shown = mine.filter(read_at__isnull=True) if unread_only else mine
        page_obj = Paginator(shown.order_by("-created_at", "-id"), NOTIFICATIONS_PAGE_SIZE).get_page(
            request.GET.get("page")
        )
        context = {
            "page_obj": page_obj,
            "notifications": page_obj.object_list,
            "unread_only": unread_only,
            "unread_total": mine.filter(read_at__isnull=True).count(),
            "can_mark_read": not is_read_only(request.user),
        }
        return render(request, "backbone/notification_list.html", context)


class NotificationReadView(Guarded):
    """POST only: mark one notification (``notification``: its id) or all of them (``all``) read.

    Only the person's own notifications are touched; another person's id answers 404. With ``open``, the
    person is sent on to the page the notification points at (a local path only). Auditors change nothing,
    not even this: the page shows them no buttons and the view refuses them.
    """

    http_method_names = ["post"]
    writes = True

    def post(self, request):
        mine = Notification.objects.filter(user=request.user)
        now = timezone.now()
        if request.POST.get("all"):
            marked = mine.filter(read_at__isnull=True).update(read_at=now)
            if marked:
                messages.success(request, f"{marked} notification{'s' if marked != 1 else ''} marked as read.")
            else:
                messages.info(request, "You have no unread notifications.")
            return redirect("notifications")
        pk = request.POST.get("notification", "")
        notification = get_object_or_404(mine, pk=pk if pk.isdigit() else None)
        if notification.read_at is None:
            notification.read_at = now
            notification.save(update_fields=["read_at"])
        target = notification.url
        if request.POST.get("open") and target and _is_local(request, target):
            return redirect(target)
        return redirect(_back_to(request))


def _is_local(request, url: str) -> bool:
    return url.startswith("/") and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )


def _back_to(request) -> str:
    """Where to return after marking read: the list page the person came from (its filter and page kept)."""
    back = request.POST.get("next", "")
    list_path = reverse("notifications")
    if back.startswith(list_path) and _is_local(request, back):
        return back
    return list_path
