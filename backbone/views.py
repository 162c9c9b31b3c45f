"""Sign-in, the History area (every change across the system, from the audit chain) and a person's
notifications."""

from __future__ import annotations

from django import forms
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

from . import outbox, selectors
from .errors import DomainError
from .forms import HistoryFilterForm
from .history import audit_chain_verify, entry_digest, entry_payload
from .links import object_url
from .models import Notification, OutboundMessage
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


# --- the Outbox -----------------------------------------------------------------------------------------------

OUTBOX_PAGE_SIZE = 25


class OutboxFilterForm(forms.Form):
    """The Outbox's filters; an unknown value is an error shown next to its input, never a 500."""

    q = forms.CharField(label="Search", max_length=200, required=False)
    status = forms.ChoiceField(label="Status", required=False)
    topic = forms.ChoiceField(label="About", required=False)

    def __init__(self, *args, topics: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", "Any status"), *OutboundMessage.Status.choices]
        self.fields["topic"].choices = [("", "Anything"), *[(t, outbox.topic_label(t)) for t in topics]]
        self.fields["q"].widget.attrs.update(
            {"class": "form-control", "placeholder": "Subject, recipient or number", "autocomplete": "off"}
        )
        for name in ("status", "topic"):
            self.fields[name].widget.attrs["class"] = "form-select"

    def filters(self) -> dict[str, str]:
        if not self.is_bound or not self.is_valid():
            return {}
        return {key: self.cleaned_data[key] or "" for key in ("q", "status", "topic")}


class OutboxListView(Guarded):
    """Every message the product sent or is sending, newest first, filterable by status and topic: recipients,
    subject, status, attempts, attachments (name, size, SHA-256) and a link to what it is about. A constant
    number of queries per page."""

    permission_required = (outbox.VIEW_PERMISSION,)

    def get(self, request):
        bound = any(request.GET.get(key) for key in ("q", "status", "topic"))
        form = OutboxFilterForm(request.GET if bound else None, topics=outbox.outbox_topics())
        messages_ = outbox.outbox_messages(user=request.user, **form.filters())
        page_obj = outbox.paginate(messages_, request.GET.get("page"), per_page=OUTBOX_PAGE_SIZE)
        for message in page_obj.object_list:
            message.topic_label = outbox.topic_label(message.topic)
        context = {
            "page_obj": page_obj,
            "outbox_messages": page_obj.object_list,
            "filter_form": form,
            "is_filtered": bound,
        }
        return render(request, "backbone/outbox_list.html", context)


class OutboxDetailView(Guarded):
    """One message as it was sent: headers, body, attachments with their SHA-256, and every attempt."""

    permission_required = (outbox.VIEW_PERMISSION,)

    def get(self, request, public_id):
        return _outbox_detail(request, outbox.outbox_message_get(user=request.user, public_id=public_id))


def _outbox_detail(request, message, *, error: DomainError | None = None, status: int = 200):
    message.topic_label = outbox.topic_label(message.topic)
    context = {
        "message": message,
        "attempts": list(message.delivery_attempts.all()),
        "attachments": list(message.attachments.all()),
        "can_resend": outbox.can_resend(user=request.user, message=message),
        "error": error,
    }
    return render(request, "backbone/outbox_detail.html", context, status=status)


class OutboxResendView(Guarded):
    """POST only: "Send again" of a failed message (``backbone.outbox.message_resend``); its refusal is shown on
    the message's page with its status code."""

    permission_required = (outbox.VIEW_PERMISSION, outbox.RESEND_PERMISSION)
    writes = True
    http_method_names = ["post"]

    def post(self, request, public_id):
        message = outbox.outbox_message_get(user=request.user, public_id=public_id)
        try:
            outbox.message_resend(actor=request.user, message=message)
        except DomainError as exc:
            fresh = outbox.outbox_message_get(user=request.user, public_id=public_id)
            return _outbox_detail(request, fresh, error=exc, status=exc.status_code)
        messages.success(request, "The message is queued again for a new series of attempts.")
        return redirect("outbox-detail", public_id=message.public_id)
