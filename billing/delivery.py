"""Sending an issued invoice or credit note by email, with its PDF attached, through the Outbox.

``invoice_send`` checks what can be sent (issued, its PDF stored), to whom (the customer's active contacts
who receive invoices unless finance names the addresses), writes the subject and the body in the invoice's
language (en, de, fr) with the number, the amount due, the due date and the portal link, and hands the message
to ``backbone.outbox.message_queue``: stored with the PDF as an attachment (a reference to the stored file and
its SHA-256, not a copy), sent in the queue after commit, retried with backoff when the mail server fails.

The invoice itself is not touched (an issued invoice is immutable, down to a database trigger): what was sent,
when, to whom and how each attempt went lives in the Outbox, found by the invoice's public ID.

Sending again on purpose is allowed and makes another message; a repeated request (the same Idempotency-Key in
the API, the same form token on the page) makes one.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from babel.dates import format_date
from django.urls import reverse

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.models import OutboundMessage
from backbone.money import MoneyError, format_money
from backbone.outbox import AttachmentFile, clean_addresses, message_queue, messages_about
from backbone.roles import is_read_only
from customers.models import Contact, Language

from .credit_notes import invoice_balance
from .models import Invoice, InvoiceDocument
from .portal import portal_url

SEND_PERMISSION = "billing.send_invoice"
MESSAGE_MAX_LENGTH = 2000
TOPICS = {Invoice.Kind.INVOICE: "invoice", Invoice.Kind.CREDIT_NOTE: "credit_note"}

# The words of the email per invoice language; placeholders are filled by ``invoice_email``.
WORDS: dict[str, dict[str, str]] = {
    "en": {
        "subject_invoice": "Invoice {number} from {seller}",
        "subject_credit_note": "Credit note {number} from {seller}",
        "greeting": "Hello,",
        "intro_invoice": "Please find attached our invoice {number} of {issue_date}.",
        "intro_credit_note": "Please find attached our credit note {number} of {issue_date}{credits}.",
        "credits": ", which credits invoice {credited}",
        "amount_due": "Amount due: {amount}",
        "amount_credited": "Amount credited: {amount}",
        "due_date": "Due date: {date}",
        "reference": "Payment reference: {reference}",
        "portal_invoice": "View, pay or dispute it online: {url}",
        "portal_credit_note": "View it online: {url}",
        "closing": "Kind regards,",
    },
    "de": {
        "subject_invoice": "Rechnung {number} von {seller}",
        "subject_credit_note": "Gutschrift {number} von {seller}",
        "greeting": "Guten Tag,",
        "intro_invoice": "anbei erhalten Sie unsere Rechnung {number} vom {issue_date}.",
        "intro_credit_note": "anbei erhalten Sie unsere Gutschrift {number} vom {issue_date}{credits}.",
        "credits": " zur Rechnung {credited}",
        "amount_due": "Offener Betrag: {amount}",
        "amount_credited": "Gutgeschriebener Betrag: {amount}",
        "due_date": "Fällig am: {date}",
        "reference": "Zahlungsreferenz: {reference}",
        "portal_invoice": "Online ansehen, bezahlen oder beanstanden: {url}",
        "portal_credit_note": "Online ansehen: {url}",
        "closing": "Mit freundlichen Grüßen",
    },
    "fr": {
        "subject_invoice": "Facture {number} de {seller}",
        "subject_credit_note": "Avoir {number} de {seller}",
        "greeting": "Bonjour,",
        "intro_invoice": "Veuillez trouver ci-joint notre facture {number} du {issue_date}.",
        "intro_credit_note": "Veuillez trouver ci-joint notre avoir {number} du {issue_date}{credits}.",
        "credits": ", qui porte sur la facture {credited}",
        "amount_due": "Montant dû : {amount}",
        "amount_credited": "Montant crédité : {amount}",
        "due_date": "Échéance : {date}",
        "reference": "Référence de paiement : {reference}",
        "portal_invoice": "Consulter, payer ou contester en ligne : {url}",
        "portal_credit_note": "Consulter en ligne : {url}",
        "closing": "Cordialement,",
    },
}


# --- guards and reads -----------------------------------------------------------------------------------------


def may_send(user) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and not is_read_only(user) and user.has_perm(SEND_PERMISSION)


def invoice_pdf(invoice: Invoice) -> InvoiceDocument | None:
    return InvoiceDocument.objects.filter(invoice=invoice, kind=InvoiceDocument.Kind.PDF).first()


def send_refusal(invoice: Invoice, document: InvoiceDocument | None) -> str | None:
    """Why ``invoice`` cannot be sent now (None: it can). ``document``: its stored PDF, if any."""
    kind = invoice.get_kind_display().lower()
    if invoice.status != Invoice.Status.ISSUED:
        return (
            f"Only an issued {kind} can be sent; this one is {invoice.get_status_display().lower()}. "
            "Approve and issue it first."
            if invoice.status in (Invoice.Status.DRAFT, Invoice.Status.APPROVED)
            else f"A discarded {kind} is never sent."
        )
    if document is None:
        return "The PDF is still being rendered; send it in a moment, once the PDF can be downloaded."
    return None


def invoice_recipients(invoice: Invoice) -> list[str]:
    """The customer's active contacts who receive invoices, by name: one query."""
    return list(
        Contact.objects.filter(customer_id=invoice.customer_id, is_active=True, receives_invoices=True)
        .order_by("last_name", "first_name", "pk")
        .values_list("email", flat=True)
    )


def messages_about_invoice(invoice: Invoice):
    """The Outbox messages about ``invoice``, newest first, with attachments and attempts (three queries)."""
    return messages_about(invoice.public_id)


# --- the email ------------------------------------------------------------------------------------------------


def _language(invoice: Invoice) -> str:
    return invoice.language if invoice.language in WORDS else Language.EN


def _money(amount: Decimal, currency: str, locale: str) -> str:
    try:
        return format_money(abs(amount) if amount == 0 else amount, currency, locale=locale)
    except (MoneyError, ValueError):
        return f"{amount} {currency}"


def _date(value: dt.date | None, locale: str) -> str:
    return format_date(value, "long", locale=locale) if value else ""


def _seller_name(invoice: Invoice) -> str:
    seller = invoice.seller or {}
    return seller.get("legal_name") or invoice.legal_entity.legal_name


def invoice_email(invoice: Invoice, *, message: str = "", link: str = "") -> dict[str, Any]:
    """The subject and the body of the email for an issued invoice or credit note, in its language: the
    number, the amount due (after issued credit notes; for a credit note the amount it credits), the due date,
    the payment reference and the portal link. ``message``: finance's own words, put after the greeting."""
    language = _language(invoice)
    words = WORDS[language]
    kind = "credit_note" if invoice.kind == Invoice.Kind.CREDIT_NOTE else "invoice"
    seller = _seller_name(invoice)
    number = invoice.number
    lines = [words["greeting"], ""]
    if message.strip():
        lines += [message.strip(), ""]
    if kind == "invoice":
        due = invoice_balance(invoice)["remaining_amount"]
        lines.append(words["intro_invoice"].format(number=number, issue_date=_date(invoice.issue_date, language)))
        lines.append("")
        lines.append(words["amount_due"].format(amount=_money(due, invoice.currency, language)))
        lines.append(words["due_date"].format(date=_date(invoice.due_date, language)))
        if invoice.creditor_reference:
            lines.append(words["reference"].format(reference=invoice.creditor_reference))
    else:
        credited = invoice.credited_invoice.number if invoice.credited_invoice_id else ""
        lines.append(
            words["intro_credit_note"].format(
                number=number,
                issue_date=_date(invoice.issue_date, language),
                credits=words["credits"].format(credited=credited) if credited else "",
            )
        )
        lines.append("")
        lines.append(words["amount_credited"].format(amount=_money(-invoice.gross_total, invoice.currency, language)))
    if link:
        lines += ["", words[f"portal_{kind}"].format(url=link)]
    lines += ["", words["closing"], seller]
    return {
        "subject": words[f"subject_{kind}"].format(number=number, seller=seller),
        "body": "\n".join(lines) + "\n",
        "language": language,
    }


# --- the service ----------------------------------------------------------------------------------------------


def invoice_send(
    *,
    actor,
    invoice: Invoice,
    to: list[str] | str | None = None,
    cc: list[str] | str | None = None,
    message: str | None = None,
) -> OutboundMessage:
    """Queue an issued invoice or credit note for sending by email with its PDF attached; returns the Outbox
    message. ``to`` defaults to the customer's active contacts who receive invoices; ``message`` is put in the
    body. Refuses (nothing stored) a draft, approved or discarded invoice, one whose PDF is not stored yet, a
    customer with no such contact when no address is given, and any invalid address.

    Plain ``transaction.atomic`` (in ``message_queue``): the API stores its Idempotency-Key record in the same
    transaction."""
    if not getattr(actor, "is_authenticated", False):
        raise NotPermitted("Sign in to send invoices.")
    if is_read_only(actor):
        raise NotPermitted("Auditors can view everything but change nothing.")
    if not actor.has_perm(SEND_PERMISSION):
        raise NotPermitted("Your role may not send invoices.")
    document = invoice_pdf(invoice)
    refusal = send_refusal(invoice, document)
    if refusal:
        raise (TransitionNotAllowed if invoice.status != Invoice.Status.ISSUED else Conflict)(refusal)
    message = (message or "").strip()
    if len(message) > MESSAGE_MAX_LENGTH:
        raise ValidationFailed(f"The message is too long: at most {MESSAGE_MAX_LENGTH} characters.", field="message")
    recipients = clean_addresses(to, field="to")
    copies = clean_addresses(cc, field="cc")
    if not recipients:
        recipients = invoice_recipients(invoice)
        if not recipients:
            raise ValidationFailed(
                f"{invoice.customer.display_name} has no active contact who receives invoices. Tick “Receives "
                "invoices” on a contact of the customer, or give the address to send to.",
                field="to",
            )
    email = invoice_email(invoice, message=message, link=portal_url(invoice))
    seller_email = (invoice.seller or {}).get("email") or invoice.legal_entity.email
    return message_queue(
        actor=actor,
        topic=TOPICS[invoice.kind],
        to=recipients,
        cc=copies,
        reply_to=[seller_email] if seller_email else [],
        subject=email["subject"],
        body=email["body"],
        attachments=[
            AttachmentFile(
                filename=document.filename,
                content_type="application/pdf",
                storage_name=document.file.name,
                size=document.size,
                sha256=document.sha256,
            )
        ],
        about_id=invoice.public_id,
        about_label=invoice.number,
        about_url=reverse("billing:invoice-detail", kwargs={"public_id": invoice.public_id}),
    )
