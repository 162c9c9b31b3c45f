"""Disputes: a customer's objection to an issued invoice, raised from the client portal or recorded by finance
(a phone call, an email), shown on the invoice for finance and resolved or rejected by finance with the
answer given. Collections pauses reminders while an invoice has an open dispute (``invoice_has_open_dispute``,
``open_dispute_exists`` for whole lists).

**One open dispute per invoice.** A second raise while one is open does not open another: its message is
added to the open dispute, dated and signed with who sent it and their reason, and finance is told again.
The client sees one conversation on the portal and finance resolves it once; after it is resolved or
rejected, the next raise opens a new dispute. Raises of one invoice are serialised by a lock on the invoice
row (``FOR NO KEY UPDATE``, like credit notes: the issued row itself is never written), so two at the same
moment cannot open two.

**What can be disputed.** Issued invoices (not credit notes: they ask for no payment), as long as something
is still owed after their issued credit notes.

Finance (``billing.add_dispute``) records disputes received by other means, and those with
``billing.resolve_dispute`` (finance, admins) resolve them with a resolution text. Auditors change nothing.
Each change is kept in the history with the acting person (the client, who has no account, is named in the
reason). Nothing is rate-limited.

Plain ``transaction.atomic`` like ``billing.issuing``, so that the API can store its ``Idempotency-Key`` record
in the same transaction.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Case, Exists, OuterRef, QuerySet, Value, When
from django.http import Http404
from django.utils import timezone

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.history import stamp
from backbone.links import object_url
from backbone.roles import Role, require_writer
from backbone.services import notify

from .credit_notes import invoice_balance
from .models import Dispute, Invoice
from .selectors import invoices_visible_to

MESSAGE_MAX = 5000  # one message, in characters
THREAD_MAX = 20000  # a dispute's messages added together
RESOLUTION_MAX = 5000
INVOICE_URL = "billing.invoice"
OUTCOMES = (Dispute.Status.RESOLVED, Dispute.Status.REJECTED)


# --- reads ------------------------------------------------------------------------------------------------


def open_dispute(invoice: Invoice) -> Dispute | None:
    """The invoice's open dispute, if it has one (there is at most one). One query."""
    return Dispute.objects.filter(invoice=invoice, status=Dispute.Status.OPEN).order_by("-created_at", "-id").first()


def invoice_has_open_dispute(invoice: Invoice) -> bool:
    """Whether collections should hold its reminders. One query."""
    return Dispute.objects.filter(invoice=invoice, status=Dispute.Status.OPEN).exists()


def open_dispute_exists(outer: str = "pk") -> Exists:
    """``Exists`` of an open dispute of the invoice ``OuterRef(outer)``, to annotate or filter whole lists in
    the same query: ``Invoice.objects.annotate(has_open_dispute=open_dispute_exists())``."""
    return Exists(Dispute.objects.filter(invoice=OuterRef(outer), status=Dispute.Status.OPEN))


def disputes_of(invoice: Invoice) -> QuerySet[Dispute]:
    """Every dispute of the invoice, open ones first, then newest first, with who resolved them."""
    still_open = Case(When(status=Dispute.Status.OPEN, then=Value(0)), default=Value(1))
    return (
        Dispute.objects.filter(invoice=invoice).select_related("resolved_by").order_by(still_open, "-created_at", "-id")
    )


def access_dispute(*, user, public_id) -> Dispute:
    """The dispute with ``public_id`` if ``user`` may see its invoice and disputes; else 404."""
    if not getattr(user, "is_authenticated", False) or not user.has_perm("billing.view_dispute"):
        raise Http404("No such dispute.")
    try:
        return (
            Dispute.objects.select_related("invoice", "resolved_by")
            .filter(invoice__in=invoices_visible_to(user))
            .get(public_id=public_id)
        )
    except (Dispute.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such dispute.") from exc


def dispute_refusal(invoice: Invoice) -> str | None:
    """Why ``invoice`` cannot be disputed (kind and status only), or None."""
    if invoice.kind != Invoice.Kind.INVOICE:
        return f"{invoice} is a credit note; it asks for no payment, so there is nothing to dispute."
    if invoice.status != Invoice.Status.ISSUED:
        return f"{invoice} is not issued; only issued invoices can be disputed."
    return None


# --- guards -----------------------------------------------------------------------------------------------


def _name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else "someone"


def _first(errors: dict[str, list[str]]) -> str:
    return next(iter(errors.values()))[0]


def _finance_people():
    """Whom a dispute is news for: the finance team (as the projects app tells them of accepted milestones)."""
    return get_user_model().objects.filter(is_active=True, groups__name=Role.FINANCE).distinct().order_by("pk")


def _clean(
    *, reason: Any, message: Any, contact_name: Any, contact_email: Any, source: Any, contact_required: bool
) -> dict[str, str]:
    errors: dict[str, list[str]] = {}
    reason = str(reason or "").strip()
    message = str(message or "").strip()
    contact_name = " ".join(str(contact_name or "").split())
    contact_email = str(contact_email or "").strip()
    source = str(source or "").strip()
    if reason not in Dispute.Reason.values:
        errors["reason"] = ["Choose what is wrong with the invoice." if not reason else f"'{reason}' is no reason."]
    if not message:
        errors["message"] = ["Say what is wrong, so that finance can look into it."]
    elif len(message) > MESSAGE_MAX:
        errors["message"] = [f"At most {MESSAGE_MAX:,} characters."]
    if len(contact_name) > 150:
        errors["contact_name"] = ["At most 150 characters."]
    elif contact_required and not contact_name:
        errors["contact_name"] = ["Give your name, so that we know whom to answer."]
    if contact_email:
        try:
            validate_email(contact_email)
        except ValidationError:
            errors["contact_email"] = [f"'{contact_email}' is not an email address."]
        else:
            if len(contact_email) > 254:
                errors["contact_email"] = ["At most 254 characters."]
    elif contact_required:
        errors["contact_email"] = ["Give your email address, so that we can answer you."]
    if source not in Dispute.Source.values:
        errors["source"] = [f"'{source}' is no source; use one of {', '.join(Dispute.Source.values)}."]
    if errors:
        raise ValidationFailed(f"The dispute was not recorded: {_first(errors)}", errors=errors)
    return {
        "reason": reason,
        "message": message,
        "contact_name": contact_name,
        "contact_email": contact_email,
        "source": source,
    }


def _locked_disputable(invoice: Invoice) -> Invoice:
    locked = (
        Invoice.objects.select_for_update(of=("self",), no_key=True)
        .select_related("legal_entity", "customer")
        .get(pk=invoice.pk)
    )
    refusal = dispute_refusal(locked)
    if refusal:
        raise TransitionNotAllowed(refusal, field="invoice")
    balance = invoice_balance(locked)
    if balance["remaining_amount"] <= 0:
        raise Conflict(
            f"{locked} is credited in full; nothing is owed on it any more, so there is nothing to dispute.",
            field="invoice",
        )
    return locked


# --- writes -----------------------------------------------------------------------------------------------


@transaction.atomic
def dispute_raise(
    *,
    invoice: Invoice,
    reason: str,
    message: str,
    contact_name: str = "",
    contact_email: str = "",
    source: str = Dispute.Source.PORTAL,
    actor=None,
) -> Dispute:
    """A dispute of ``invoice``: a new one, or the open one with this message added (see the module's
    docstring). From the portal (``source`` portal, no ``actor``) the client's name and email are required,
    so that finance can answer; finance recording one uses ``dispute_record``. Finance is notified.

    The returned dispute's ``added_to`` says whether the message went to an open dispute."""
    if source == Dispute.Source.FINANCE and actor is None:
        raise NotPermitted("Only finance records disputes received by phone or email; use dispute_record.")
    data = _clean(
        reason=reason,
        message=message,
        contact_name=contact_name,
        contact_email=contact_email,
        source=source,
        contact_required=source == Dispute.Source.PORTAL,
    )
    invoice = _locked_disputable(invoice)
    who = data["contact_name"] or (_name(actor) if actor is not None else "the client")
    via = Dispute.Source(data["source"]).label.lower()
    existing = Dispute.objects.select_for_update().filter(invoice=invoice, status=Dispute.Status.OPEN).first()
    if existing is None:
        dispute = Dispute(invoice=invoice, **data)
        stamp(dispute, actor=actor, reason=f"Dispute raised by {who} ({via}): {dispute.get_reason_display()}")
        dispute.save()
        dispute.added_to = False
        title = f"{invoice} is disputed: {dispute.get_reason_display()}"
    else:
        when = timezone.localtime().strftime("%Y-%m-%d %H:%M")
        reason_label = Dispute.Reason(data["reason"]).label
        addition = f"\n\n— {when}, {who} ({via}), {reason_label}:\n{data['message']}"
        if len(existing.message) + len(addition) > THREAD_MAX:
            raise ValidationFailed(
                "The dispute was not recorded: this dispute's messages are too long already; finance will be in "
                "touch with you.",
                field="message",
            )
        existing.message += addition
        fields = ["message", "updated_at"]
        for key in ("contact_name", "contact_email"):
            if data[key] and not getattr(existing, key):
                setattr(existing, key, data[key])
                fields.append(key)
        stamp(existing, actor=actor, reason=f"Added to by {who} ({via}): {reason_label}")
        existing.save(update_fields=fields)
        dispute = existing
        dispute.added_to = True
        title = f"More on the dispute of {invoice}: {reason_label}"
    excerpt = data["message"] if len(data["message"]) <= 300 else data["message"][:299].rstrip() + "…"
    contact = f" <{data['contact_email']}>" if data["contact_email"] else ""
    url = object_url(INVOICE_URL, invoice.public_id)
    notify(
        users=[person for person in _finance_people() if actor is None or person.pk != actor.pk],
        title=title,
        body=f"{who}{contact} ({via}): {excerpt}",
        url=f"{url}#disputes" if url else "",
    )
    return dispute


def dispute_record(
    *,
    actor,
    invoice: Invoice,
    reason: str,
    message: str,
    contact_name: str = "",
    contact_email: str = "",
) -> Dispute:
    """Finance records a dispute the client raised by phone, email or letter (the contact is optional). Like a
    raise from the portal it opens a dispute or adds to the open one, and the rest of finance is notified."""
    require_writer(actor)
    if not actor.has_perm("billing.add_dispute"):
        raise NotPermitted("Only finance records disputes; tell finance what the client said.")
    return dispute_raise(
        invoice=invoice,
        reason=reason,
        message=message,
        contact_name=contact_name,
        contact_email=contact_email,
        source=Dispute.Source.FINANCE,
        actor=actor,
    )


@transaction.atomic
def dispute_resolve(*, actor, dispute: Dispute, outcome: str, resolution: str) -> Dispute:
    """Close an open dispute as ``resolved`` (the client was right, or it was settled: a credit note, a
    corrected reference…) or ``rejected`` (the invoice stands), with the answer given to the client."""
    require_writer(actor)
    if not actor.has_perm("billing.resolve_dispute"):
        raise NotPermitted("Only finance resolves disputes.")
    errors: dict[str, list[str]] = {}
    outcome = str(outcome or "").strip()
    resolution = str(resolution or "").strip()
    if outcome not in OUTCOMES:
        errors["outcome"] = ["Choose resolved (settled) or rejected (the invoice stands)."]
    if not resolution:
        errors["resolution"] = ["Say how it was resolved or why it is rejected: the client is told so."]
    elif len(resolution) > RESOLUTION_MAX:
        errors["resolution"] = [f"At most {RESOLUTION_MAX:,} characters."]
    if errors:
        raise ValidationFailed(f"The dispute was not closed: {_first(errors)}", errors=errors)
    Invoice.objects.select_for_update(of=("self",), no_key=True).filter(pk=dispute.invoice_id).first()  # lock order
    locked = Dispute.objects.select_for_update().select_related("invoice").get(pk=dispute.pk)
    if locked.status != Dispute.Status.OPEN:
        raise TransitionNotAllowed(
            f"This dispute was {locked.get_status_display().lower()} already"
            f"{f' by {_name(locked.resolved_by)}' if locked.resolved_by_id else ''}; it cannot be closed again.",
            field="status",
        )
    locked.status = outcome
    locked.resolution = resolution
    locked.resolved_by = actor
    locked.resolved_at = timezone.now()
    stamp(locked, actor=actor, reason=f"Dispute {locked.get_status_display().lower()}: {resolution}")
    locked.save(update_fields=["status", "resolution", "resolved_by", "resolved_at", "updated_at"])
    return locked
