"""Pages of sending an issued invoice by email and of its delivery attempts: the invoice page's "Delivery" panel
(``delivery_panel_context``), "Send by email" (``InvoiceSendView``) and "Send again" of a failed message
(``MessageResendView``).

Thin like ``billing.views``: the invoice through ``billing.selectors.access_invoice`` (404 outside the person's
scope), one service (``billing.delivery.invoice_send``, ``backbone.outbox.message_resend``), its refusal shown
on the invoice's page with its status code, never a 500. The send form carries a one-time token: a form sent
twice (a double click, a reload of the POST) queues one message. Sending again on purpose (a new form) makes
another message.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse

from backbone import outbox
from backbone.errors import DomainError
from backbone.models import IdempotencyRecord, OutboundMessage
from backbone.views import Guarded

from . import delivery
from . import selectors as s
from .models import Invoice

FORM_PREFIX = "send"


class InvoiceSendForm(forms.Form):
    """Who gets the invoice and an optional note; the addresses are checked by the service."""

    to = forms.CharField(
        label="To",
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "autocomplete": "off"}),
        help_text="Email addresses separated by commas. Left empty: the customer's contacts who receive invoices.",
    )
    cc = forms.CharField(
        label="Cc", max_length=2000, required=False, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    message = forms.CharField(
        label="Message (optional)",
        max_length=delivery.MESSAGE_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Put before the standard text, which is written in the invoice's language.",
    )
    token = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)


def _detail_url(invoice: Invoice) -> str:
    return reverse("billing:invoice-detail", kwargs={"public_id": invoice.public_id})


def delivery_panel_context(*, user, invoice: Invoice) -> dict[str, Any] | None:
    """The invoice page's "Delivery" panel: the send form (finance, an issued invoice with its PDF; otherwise
    why it cannot be sent yet) and the messages about this invoice with each attempt and "Send again" on the
    failed ones. None (nothing shown) before issue, and for those who may neither send nor read the Outbox.
    A form with errors from a refused send travels on the invoice (``invoice.delivery_form``). Five queries."""
    if invoice.status != Invoice.Status.ISSUED:
        return None
    may_send = delivery.may_send(user)
    may_read = user.has_perm(outbox.VIEW_PERMISSION)
    if not (may_send or may_read):
        return None
    document = delivery.invoice_pdf(invoice)
    refusal = delivery.send_refusal(invoice, document)
    rows = [
        {
            "message": message,
            "attempts": list(message.delivery_attempts.all()),
            "attachments": list(message.attachments.all()),
            "outbox_url": reverse("outbox-detail", kwargs={"public_id": message.public_id}) if may_read else None,
            "resend_url": reverse(
                "billing:message-resend", kwargs={"public_id": invoice.public_id, "message_id": message.public_id}
            )
            if outbox.can_resend(user=user, message=message)
            else None,
        }
        for message in delivery.messages_about_invoice(invoice)
    ]
    form = None
    recipients: list[str] = []
    if may_send and refusal is None:
        form = getattr(invoice, "delivery_form", None)
        recipients = delivery.invoice_recipients(invoice)
        if form is None:
            form = InvoiceSendForm(prefix=FORM_PREFIX, initial={"to": ", ".join(recipients), "token": uuid.uuid4().hex})
    return {
        "invoice": invoice,
        "form": form,
        "send_url": reverse("billing:invoice-send", kwargs={"public_id": invoice.public_id}),
        "refusal": refusal if may_send else None,
        "has_contacts": bool(recipients),
        "rows": rows,
        "may_read_outbox": may_read,
        "outbox_url": f"{reverse('outbox')}?{urlencode({'q': invoice.number})}" if may_read else None,
    }


def _fingerprint(request) -> str:
    fields = {key: request.POST.get(f"{FORM_PREFIX}-{key}", "") for key in ("to", "cc", "message")}
    raw = f"POST {request.path}\n{json.dumps(fields, sort_keys=True)}"
    return hashlib.sha256(raw.encode()).hexdigest()


def _show_refusal(request, invoice: Invoice, form: InvoiceSendForm, exc: DomainError | None, status: int):
    from .views import _apply_domain_errors, _invoice_detail  # not at the top: the invoice page imports this module

    if exc is not None:
        _apply_domain_errors(form, exc)
    fresh = s.access_invoice(user=request.user, public_id=invoice.public_id)
    fresh.delivery_form = form  # the panel shows the form with its errors, as typed
    return _invoice_detail(request, fresh, error=exc, status=status)


class InvoiceSendView(Guarded):
    """POST only: queue the invoice for sending by email (``billing.delivery.invoice_send``), then back to the
    invoice's page, where the message and its attempts show in the Delivery panel."""

    permission_required = ("billing.view_invoice", delivery.SEND_PERMISSION)
    writes = True
    http_method_names = ["post"]

    def post(self, request, public_id):
        invoice = s.access_invoice(user=request.user, public_id=public_id)
        form = InvoiceSendForm(request.POST, prefix=FORM_PREFIX)
        if not form.is_valid():
            return _show_refusal(request, invoice, form, None, 400)
        token = form.cleaned_data["token"].strip()
        if token and IdempotencyRecord.objects.filter(user=request.user, key=f"page-send:{token}").exists():
            messages.info(request, f"{invoice} was already queued for sending with this form; nothing sent twice.")
            return redirect(_detail_url(invoice) + "#delivery")
        try:
            with transaction.atomic():
                message = delivery.invoice_send(
                    actor=request.user,
                    invoice=invoice,
                    to=form.cleaned_data["to"] or None,
                    cc=form.cleaned_data["cc"] or None,
                    message=form.cleaned_data["message"],
                )
                if token:
                    with transaction.atomic():
                        IdempotencyRecord.objects.create(
                            user=request.user,
                            key=f"page-send:{token}",
                            method="POST",
                            path=request.path[:500],
                            request_hash=_fingerprint(request),
                            status_code=302,
                            response_body={"message": str(message.public_id)},
                        )
        except DomainError as exc:
            return _show_refusal(request, invoice, form, exc, exc.status_code)
        except IntegrityError:
            # The same form was sent twice at the same moment: the other request queued the message.
            messages.info(request, f"{invoice} was already queued for sending with this form; nothing sent twice.")
            return redirect(_detail_url(invoice) + "#delivery")
        messages.success(
            request,
            f"{invoice} is queued for sending to {', '.join(message.to + message.cc)} with {invoice.number}.pdf; "
            "its delivery shows below and in the Outbox.",
        )
        return redirect(_detail_url(invoice) + "#delivery")


class MessageResendView(Guarded):
    """POST only: "Send again" of a failed message about this invoice (``backbone.outbox.message_resend``)."""

    permission_required = ("billing.view_invoice", outbox.RESEND_PERMISSION)
    writes = True
    http_method_names = ["post"]

    def post(self, request, public_id, message_id):
        invoice = s.access_invoice(user=request.user, public_id=public_id)
        message = OutboundMessage.objects.filter(about_id=invoice.public_id, public_id=message_id).first()
        if message is None:
            raise Http404("No such message about this invoice.")
        try:
            outbox.message_resend(actor=request.user, message=message)
        except DomainError as exc:
            from .views import _invoice_detail

            return _invoice_detail(request, invoice, error=exc, status=exc.status_code)
        messages.success(request, f"The message “{message.subject}” is queued again for a new series of attempts.")
        return redirect(_detail_url(invoice) + "#delivery")
