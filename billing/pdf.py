"""The invoice (and the credit note) as a PDF: what it prints (``invoice_pdf_context``) and the rendering
with WeasyPrint (``render_invoice_pdf``).

Rendered once after issue by the queue task ``billing.tasks.invoice_pdf_render`` and stored as an
``InvoiceDocument`` with its SHA-256, never in a request and never again: the issued invoice is immutable,
and so is its PDF. A draft can be rendered too (a preview: master data, no number, no payment QR code).

What is printed comes from the invoice itself: seller and buyer from the snapshots frozen at issue (the
legal entity's logo and brand colour too), the lines in the project's own words, the stored tax breakdown
and legal notes, the totals, and the payment instructions (the bank account of the seller snapshot, the ISO
11649 creditor reference and, for a payable EUR invoice, an EPC QR code for a SEPA credit transfer) with the
link to the client portal, where the client pays or disputes it (``billing.portal``). Labels
are in the invoice's language (en, de, fr: ``LABELS``); money, numbers, percentages and dates are formatted
by Babel in that locale.

WeasyPrint stays warm: it is imported on the first render of a process, and its font configuration and the
static stylesheet (``billing/pdf/invoice.css``, parsed once) are reused by every later render of that process
(a queue worker renders many invoices without starting anything new). Only the brand colour and the page
label vary per invoice, in a few lines of ``<style>`` in the template.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import logging
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from django.core.files.storage import default_storage
from django.template.loader import get_template, render_to_string
from segno.helpers import make_epc_qr

from backbone.money import MoneyError, format_money
from customers.models import BankAccount, Language

from . import portal
from .models import Invoice, InvoiceLine
from .selectors import invoice_lines, invoice_parties

logger = logging.getLogger(__name__)

TEMPLATE = "billing/pdf/invoice.html"
STYLESHEET = "billing/pdf/invoice.css"

# --- words ---------------------------------------------------------------------------------------------------

# Every fixed word the PDF prints, per invoice language. Placeholders ({amount}, {date}, {reference}) are
# filled in by ``invoice_pdf_context``; the keys are the same in every language (a test checks it).
LABELS: dict[str, dict[str, str]] = {
    "en": {
        "invoice": "Invoice",
        "credit_note": "Credit note",
        "draft": "Draft",
        "draft_notice": "Draft: not a valid invoice. The number is given at issue.",
        "from": "From",
        "bill_to": "Bill to",
        "number": "Number",
        "issue_date": "Issue date",
        "due_date": "Due date",
        "period": "Service period",
        "po_number": "Your PO number",
        "customer_number": "Customer number",
        "reference": "Payment reference",
        "credited_invoice": "Credits invoice",
        "credit_explanation": "Reason for this credit note",
        "position": "#",
        "description": "Description",
        "quantity": "Quantity",
        "unit_price": "Unit price",
        "net": "Net",
        "vat": "VAT",
        "vat_breakdown": "VAT breakdown",
        "category": "Category",
        "rate": "Rate",
        "taxable": "Taxable amount",
        "net_total": "Net total",
        "tax_total": "VAT",
        "gross_total": "Total due",
        "gross_total_credit": "Total credited",
        "notes": "Notes",
        "payment": "Payment",
        "pay_by": "Please transfer {amount} by {date} to the account below.",
        "pay_reference": "Please quote the reference {reference} with your payment.",
        "credit_settlement": "The amount of {amount} is set off against open invoices or refunded to you.",
        "account_holder": "Account holder",
        "bank": "Bank",
        "iban": "IBAN",
        "bic": "BIC",
        "qr_caption": "Scan with your banking app to pay by SEPA credit transfer.",
        "portal": "Pay or dispute online:",
        "portal_view": "View online:",
        "page": "Page",
        "of": "of",
        "appendix": "Detail appendix",
        "appendix_intro": "The items billed on each line of {number}.",
        "date": "Date",
        "person": "Person",
        "amount": "Amount",
        "vat_id": "VAT ID",
        "tax_number": "Tax number",
        "register": "Register",
        "email": "Email",
    },
    "de": {
        "invoice": "Rechnung",
        "credit_note": "Gutschrift",
        "draft": "Entwurf",
        "draft_notice": "Entwurf: keine gültige Rechnung. Die Nummer wird bei Ausstellung vergeben.",
        "from": "Rechnungssteller",
        "bill_to": "Rechnungsempfänger",
        "number": "Nummer",
        "issue_date": "Rechnungsdatum",
        "due_date": "Fällig am",
        "period": "Leistungszeitraum",
        "po_number": "Ihre Bestellnummer",
        "customer_number": "Kundennummer",
        "reference": "Zahlungsreferenz",
        "credited_invoice": "Zur Rechnung",
        "credit_explanation": "Grund der Gutschrift",
        "position": "Pos.",
        "description": "Beschreibung",
        "quantity": "Menge",
        "unit_price": "Einzelpreis",
        "net": "Netto",
        "vat": "USt.",
        "vat_breakdown": "Umsatzsteuer",
        "category": "Kategorie",
        "rate": "Satz",
        "taxable": "Netto",
        "net_total": "Summe netto",
        "tax_total": "Umsatzsteuer",
        "gross_total": "Zu zahlen",
        "gross_total_credit": "Gutschriftsbetrag",
        "notes": "Hinweise",
        "payment": "Zahlung",
        "pay_by": "Bitte überweisen Sie {amount} bis zum {date} auf das unten genannte Konto.",
        "pay_reference": "Bitte geben Sie bei der Zahlung die Referenz {reference} an.",
        "credit_settlement": "Der Betrag von {amount} wird mit offenen Rechnungen verrechnet oder Ihnen erstattet.",
        "account_holder": "Kontoinhaber",
        "bank": "Bank",
        "iban": "IBAN",
        "bic": "BIC",
        "qr_caption": "Mit Ihrer Banking-App scannen und per SEPA-Überweisung bezahlen.",
        "portal": "Online bezahlen oder beanstanden:",
        "portal_view": "Online ansehen:",
        "page": "Seite",
        "of": "von",
        "appendix": "Anlage: Einzelnachweis",
        "appendix_intro": "Die abgerechneten Einzelposten jeder Position von {number}.",
        "date": "Datum",
        "person": "Person",
        "amount": "Betrag",
        "vat_id": "USt-IdNr.",
        "tax_number": "Steuernummer",
        "register": "Handelsregister",
        "email": "E-Mail",
    },
    "fr": {
        "invoice": "Facture",
        "credit_note": "Avoir",
        "draft": "Brouillon",
        "draft_notice": "Brouillon : ce n'est pas une facture. Le numéro est attribué à l'émission.",
        "from": "Émetteur",
        "bill_to": "Facturé à",
        "number": "Numéro",
        "issue_date": "Date de facture",
        "due_date": "Date d'échéance",
        "period": "Période de prestation",
        "po_number": "Votre bon de commande",
        "customer_number": "N° client",
        "reference": "Référence de paiement",
        "credited_invoice": "Avoir sur la facture",
        "credit_explanation": "Motif de l'avoir",
        "position": "N°",
        "description": "Désignation",
        "quantity": "Quantité",
        "unit_price": "Prix unitaire",
        "net": "Montant HT",
        "vat": "TVA",
        "vat_breakdown": "Récapitulatif de la TVA",
        "category": "Catégorie",
        "rate": "Taux",
        "taxable": "Base HT",
        "net_total": "Total HT",
        "tax_total": "TVA",
        "gross_total": "Total TTC à payer",
        "gross_total_credit": "Total de l'avoir",
        "notes": "Remarques",
        "payment": "Paiement",
        "pay_by": "Merci de virer {amount} au plus tard le {date} sur le compte ci-dessous.",
        "pay_reference": "Merci d'indiquer la référence {reference} avec votre paiement.",
        "credit_settlement": "Le montant de {amount} est imputé sur vos factures ouvertes ou vous est remboursé.",
        "account_holder": "Titulaire du compte",
        "bank": "Banque",
        "iban": "IBAN",
        "bic": "BIC",
        "qr_caption": "Scannez avec votre application bancaire pour payer par virement SEPA.",
        "portal": "Payer ou contester en ligne :",
        "portal_view": "Consulter en ligne :",
        "page": "Page",
        "of": "sur",
        "appendix": "Annexe : détail des prestations",
        "appendix_intro": "Le détail de chaque ligne de {number}.",
        "date": "Date",
        "person": "Personne",
        "amount": "Montant",
        "vat_id": "N° TVA",
        "tax_number": "N° fiscal",
        "register": "Registre",
        "email": "E-mail",
    },
}

# UN/ECE Recommendation 20 unit codes as printed after a quantity.
UNIT_LABELS: dict[str, dict[str, str]] = {
    "en": {"HUR": "h", "DAY": "days", "MON": "months", "C62": "unit", "H87": "pcs"},
    "de": {"HUR": "Std.", "DAY": "Tage", "MON": "Monate", "C62": "Einh.", "H87": "Stk."},
    "fr": {"HUR": "h", "DAY": "jours", "MON": "mois", "C62": "unité", "H87": "pcs"},
}

# UNCL5305 VAT categories (tax.categories.TaxCategory) in words.
CATEGORY_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "S": "Standard rate",
        "AA": "Reduced rate",
        "Z": "Zero rated",
        "E": "Exempt",
        "AE": "Reverse charge",
        "K": "Intra-Community supply",
        "G": "Export",
        "O": "Not subject to VAT",
    },
    "de": {
        "S": "Regelsatz",
        "AA": "Ermäßigter Satz",
        "Z": "Nullsatz",
        "E": "Steuerfrei",
        "AE": "Steuerschuldnerschaft des Leistungsempfängers",
        "K": "Innergemeinschaftliche Lieferung",
        "G": "Ausfuhrlieferung",
        "O": "Nicht steuerbar",
    },
    "fr": {
        "S": "Taux normal",
        "AA": "Taux réduit",
        "Z": "Taux zéro",
        "E": "Exonéré",
        "AE": "Autoliquidation",
        "K": "Livraison intracommunautaire",
        "G": "Exportation",
        "O": "Hors champ de la TVA",
    },
}

# The tax engine's fixed legal notes (``tax.rules``, stored in English on the invoice) in the invoice's
# language. A note not listed here is printed as stored.
_NOTE_TRANSLATIONS: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (
        re.compile(
            r"Reverse charge: the recipient is liable for the VAT \(Art\. 196, Council Directive 2006/112/EC\)\."
        ),
        {
            "de": "Steuerschuldnerschaft des Leistungsempfängers (Reverse Charge, Art. 196 der Richtlinie "
            "2006/112/EG): Die Umsatzsteuer schuldet der Leistungsempfänger.",
            "fr": "Autoliquidation : la TVA est due par le preneur (art. 196 de la directive 2006/112/CE).",
        },
    ),
    (
        re.compile(r"Exempt intra-Community supply of goods \(Art\. 138, Council Directive 2006/112/EC\)\."),
        {
            "de": "Steuerfreie innergemeinschaftliche Lieferung (Art. 138 der Richtlinie 2006/112/EG).",
            "fr": "Exonération de TVA, livraison intracommunautaire de biens (art. 138 de la directive 2006/112/CE).",
        },
    ),
    (
        re.compile(r"Exempt export of goods outside the EU \(Art\. 146, Council Directive 2006/112/EC\)\."),
        {
            "de": "Steuerfreie Ausfuhrlieferung (Art. 146 der Richtlinie 2006/112/EG).",
            "fr": "Exonération de TVA, exportation hors de l'UE (art. 146 de la directive 2006/112/CE).",
        },
    ),
    (
        re.compile(r"Not subject to EU VAT: the place of supply is (?P<country>[A-Z]{2}), outside the EU\."),
        {
            "de": "Nicht der Umsatzsteuer der EU unterliegend: Der Leistungsort ist {country}, außerhalb der EU.",
            "fr": "Non soumis à la TVA de l'UE : le lieu de la prestation est {country}, hors de l'UE.",
        },
    ),
]

_HEX_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_DEFAULT_COLOUR = "#1F6FEB"
_LOGO_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg"}
_LOGO_MAX_BYTES = 1024 * 1024
_EPC_MAX_AMOUNT = Decimal("999999999.99")  # EPC069-12: EUR 0.01 to 999,999,999.99


def _language(invoice: Invoice) -> str:
    return invoice.language if invoice.language in LABELS else Language.EN


# --- formatting ----------------------------------------------------------------------------------------------


def _money(amount: Decimal, currency: str, locale: str) -> str:
    if amount == 0:
        amount = abs(amount)  # a credit note's "-0.00" tax is printed as 0.00
    try:
        return format_money(amount, currency, locale=locale)
    except (MoneyError, ValueError):
        return f"{amount} {currency}"


def _unit_price(amount: Decimal, currency: str, locale: str) -> str:
    """A unit price keeps up to its four stored decimals (12.3456) but shows at least the currency's two."""
    value = Decimal(amount).normalize()
    if value.as_tuple().exponent > -2:
        value = value.quantize(Decimal("0.01"))
    try:
        return format_currency(value, currency, locale=locale, decimal_quantization=False)
    except (ValueError, KeyError):
        return f"{value} {currency}"


def _number(value: Decimal, locale: str) -> str:
    """Quantities without trailing zeros, in the locale: 7.5000 → "7.5" (en), "7,5" (de)."""
    return format_decimal(Decimal(value), format="#,##0.####", locale=locale)


def _percent(rate: Any, locale: str) -> str:
    if rate in (None, ""):
        return ""
    try:
        value = Decimal(str(rate))
    except InvalidOperation:
        return str(rate)
    return format_percent(value / 100, locale=locale, decimal_quantization=False)


def _date(value: dt.date | None, locale: str) -> str:
    return format_date(value, "medium", locale=locale) if value else ""


def format_amount(amount: Decimal, currency: str, language: str) -> str:
    """Money as the PDF prints it in ``language`` (the client portal shows the same)."""
    return _money(amount, currency, language)


def format_day(value: dt.date | None, language: str) -> str:
    """A date as the PDF prints it in ``language`` (the client portal shows the same)."""
    return _date(value, language)


def _period(start: dt.date | None, end: dt.date | None, locale: str) -> str:
    if not start:
        return ""
    if not end or end == start:
        return _date(start, locale)
    return f"{_date(start, locale)} – {_date(end, locale)}"


def _country(code: str, locale: str) -> str:
    return Locale.parse(locale).territories.get(code, code) if code else ""


def _iban_groups(iban: str) -> str:
    compact = iban.replace(" ", "")
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def translated_note(note: str, language: str) -> str:
    """A legal note of the tax engine in ``language`` (as stored when there is no translation)."""
    for pattern, texts in _NOTE_TRANSLATIONS:
        found = pattern.fullmatch(note.strip())
        if found and language in texts:
            return texts[language].format(**found.groupdict())
    return note


# --- parties -------------------------------------------------------------------------------------------------

_PARTY_LABEL_KEYS = {
    "VAT ID": "vat_id",
    "Tax number": "tax_number",
    "Register": "register",
    "Customer number": "customer_number",
    "Email": "email",
}


def _party_from_snapshot(snapshot: dict[str, Any], labels: dict[str, str], locale: str) -> dict[str, Any]:
    """A frozen seller or buyer (``billing.issuing.seller_snapshot``/``buyer_snapshot``) as printed, the
    country named in the invoice's language."""
    address = snapshot.get("address") if isinstance(snapshot.get("address"), dict) else None
    if address:
        city_line = " ".join(str(address.get(k) or "") for k in ("postal_code", "city")).strip()
        country = _country(str(address.get("country") or ""), locale) or address.get("country_name")
        parts = (address.get("line1"), address.get("line2"), city_line, address.get("region"), country)
        lines = [str(part) for part in parts if part]
    else:
        lines = [str(line) for line in snapshot.get("address_lines") or [] if line]
    identifiers: list[tuple[str, str]] = []
    vat_ids = [
        str(r["number"])
        for r in snapshot.get("registrations") or []
        if isinstance(r, dict) and r.get("number") and r.get("kind", "vat") == "vat"
    ]
    for number in dict.fromkeys(vat_ids):
        identifiers.append((labels["vat_id"], number))
    for key, label in (("tax_number", "tax_number"), ("company_register", "register")):
        if snapshot.get(key):
            identifiers.append((labels[label], str(snapshot[key])))
    return {
        "name": str(snapshot.get("legal_name") or snapshot.get("name") or ""),
        "lines": lines,
        "identifiers": identifiers,
        "number": str(snapshot.get("number") or ""),
        "email": str(snapshot.get("email") or ""),
        "website": str(snapshot.get("website") or ""),
    }


def _party_from_master(party, labels: dict[str, str]) -> dict[str, Any]:
    """A draft's party (``billing.selectors.Party`` from the master data), its labels translated."""
    identifiers, number, email = [], "", ""
    for label, value in party.identifiers:
        if label == "Customer number":
            number = value
        elif label == "Email":
            email = value
        else:
            identifiers.append((labels.get(_PARTY_LABEL_KEYS.get(label, ""), label), value))
    return {"name": party.name, "lines": party.lines, "identifiers": identifiers, "number": number, "email": email}


def _draft_bank_account(invoice: Invoice) -> dict[str, str]:
    """The account issuing would print (``billing.issuing._bank_account_for``'s choice), for a preview."""
    accounts = list(BankAccount.objects.filter(legal_entity=invoice.legal_entity_id).order_by("pk"))
    ranked = sorted(accounts, key=lambda a: (a.currency != invoice.currency, not a.is_default, a.pk))
    if not ranked:
        return {}
    account = ranked[0]
    return {
        "bank_name": account.bank_name,
        "account_holder": account.account_holder,
        "iban": account.iban,
        "bic": account.bic,
    }


# --- branding ------------------------------------------------------------------------------------------------


def _logo_data_uri(name: str) -> str:
    """The logo inlined as a data URI (WeasyPrint fetches nothing over the network or from media URLs)."""
    if not name:
        return ""
    try:
        with default_storage.open(name, "rb") as handle:
            data = handle.read(_LOGO_MAX_BYTES + 1)
    except (FileNotFoundError, OSError, ValueError):
        logger.warning("The logo %s of an invoice PDF could not be read; the PDF is printed without it.", name)
        return ""
    if len(data) > _LOGO_MAX_BYTES:
        return ""
    mime = next((kind for magic, kind in _LOGO_TYPES.items() if data.startswith(magic)), "")
    return f"data:{mime};base64,{base64.b64encode(data).decode()}" if mime else ""


def _colour(value: Any) -> str:
    """The brand colour as CSS, only when it is a plain #RRGGBB (it is written into a stylesheet)."""
    return str(value) if isinstance(value, str) and _HEX_COLOUR.match(value) else _DEFAULT_COLOUR


# --- payment -------------------------------------------------------------------------------------------------


def epc_qr_data_uri(*, name: str, iban: str, bic: str, amount: Decimal, reference: str) -> str:
    """An EPC QR code (EPC069-12, "GiroCode": a SEPA credit transfer with the structured RF reference) as an
    SVG data URI; empty when the payment cannot be encoded (amount out of range, a missing IBAN…)."""
    if not (iban and reference and Decimal("0.01") <= amount <= _EPC_MAX_AMOUNT):
        return ""
    try:
        qr = make_epc_qr(
            name=name[:70], iban=iban.replace(" ", ""), amount=amount, reference=reference, bic=bic or None
        )
    except ValueError as exc:
        logger.warning("No EPC QR code for %s: %s", reference, exc)
        return ""
    return qr.svg_data_uri(scale=4, border=4)


def _payment(
    invoice: Invoice, seller: dict[str, Any], bank: dict[str, Any], labels: dict[str, str], locale: str
) -> dict[str, Any]:
    """What the payment section prints: the request to pay by the due date with the reference (a credit note:
    how it is settled), the seller's account and, for a payable EUR invoice, the EPC QR code."""
    gross = _money(abs(invoice.gross_total), invoice.currency, locale)
    issued = invoice.status == Invoice.Status.ISSUED
    is_credit = invoice.kind == Invoice.Kind.CREDIT_NOTE
    iban = str(bank.get("iban") or "")
    holder = str(bank.get("account_holder") or seller["name"])
    qr = ""
    if issued and not is_credit and invoice.currency == "EUR":
        qr = epc_qr_data_uri(
            name=holder,
            iban=iban,
            bic=str(bank.get("bic") or ""),
            amount=invoice.gross_total,
            reference=invoice.creditor_reference,
        )
    if is_credit:
        text = labels["credit_settlement"].format(amount=gross)
    elif invoice.due_date:
        text = labels["pay_by"].format(amount=gross, date=_date(invoice.due_date, locale))
    else:
        text = ""
    return {
        "text": text,
        "reference_text": (
            labels["pay_reference"].format(reference=invoice.creditor_reference)
            if invoice.creditor_reference and not is_credit
            else ""
        ),
        "account_holder": holder if iban else "",
        "bank_name": str(bank.get("bank_name") or ""),
        "iban": _iban_groups(iban) if iban else "",
        "bic": str(bank.get("bic") or ""),
        "qr": qr,
        "show_account": bool(iban) and not is_credit,
    }


# --- the document ------------------------------------------------------------------------------------------


def _line(line: InvoiceLine, currency: str, locale: str, units: dict[str, str], show_items: bool) -> dict[str, Any]:
    # A discount's net is stored negative and prints so; a percent discount (unit P1) prints its percentage
    # as the quantity and no unit price (its note names the amount it is a percentage of).
    percent = line.unit == "P1"
    meta = [part for part in (line.phase, line.labour_category) if part]
    period = _period(line.service_start, line.service_end, locale)
    if period:
        meta.append(period)
    items = []
    if show_items:
        for item in line.items.all():
            items.append(
                {
                    "date": _date(item.date, locale),
                    "person": item.person_name,
                    "description": item.description,
                    "quantity": f"{_number(item.quantity, locale)} {units.get(line.unit, line.unit)}",
                    "amount": _money(item.amount, currency, locale),
                }
            )
    return {
        "position": line.position,
        "description": line.description,
        "meta": " · ".join(meta),
        "note": line.note,
        "quantity": _percent(line.quantity, locale) if percent else _number(line.quantity, locale),
        "unit": "" if percent else units.get(line.unit, line.unit),
        "unit_price": "" if percent else _unit_price(line.unit_price, currency, locale),
        "net": _money(line.net_amount, currency, locale),
        "tax_category": line.tax_category,
        "tax_rate": _percent(line.tax_rate, locale),
        "items": items,
    }


def _portal_link(invoice: Invoice, given: str | None) -> str:
    """The client portal's link printed on the PDF: the given one, else a fresh link of an issued invoice (the
    PDF is rendered once, right after issue, so the link's validity runs from then); "" prints none."""
    if given is not None:
        return given
    return portal.portal_url(invoice) if portal.has_portal_link(invoice) else ""


def invoice_pdf_context(invoice: Invoice, *, portal_url: str | None = None) -> dict[str, Any]:
    """Everything the PDF prints, as plain strings in the invoice's language. ``portal_url``: the client
    portal's page of this invoice, printed near the payment instructions as "Pay or dispute online" (a credit
    note: "View online"); by default an issued invoice's own link, none for a draft; "" prints none."""
    language = _language(invoice)
    labels, units = LABELS[language], UNIT_LABELS[language]
    currency = invoice.currency
    issued = invoice.status == Invoice.Status.ISSUED and bool(invoice.seller or invoice.buyer)
    if issued:
        seller_snapshot, buyer_snapshot = invoice.seller or {}, invoice.buyer or {}
        seller = _party_from_snapshot(seller_snapshot, labels, language)
        buyer = _party_from_snapshot(buyer_snapshot, labels, language)
        bank = seller_snapshot.get("bank_account") if isinstance(seller_snapshot.get("bank_account"), dict) else {}
        colour, logo_name = seller_snapshot.get("brand_colour"), str(seller_snapshot.get("logo") or "")
    else:
        master_seller, master_buyer = invoice_parties(invoice)
        seller, buyer = _party_from_master(master_seller, labels), _party_from_master(master_buyer, labels)
        entity = invoice.legal_entity
        seller.update(email=entity.email, website=entity.website)
        bank = _draft_bank_account(invoice)
        colour, logo_name = entity.brand_colour, entity.logo.name or ""

    lines = invoice_lines(invoice)
    show_items = invoice.detail_appendix
    printed = [_line(line, currency, language, units, show_items) for line in lines]
    period_start = invoice.period_start or min((ln.service_start for ln in lines if ln.service_start), default=None)
    period_end = invoice.period_end or max((ln.service_end for ln in lines if ln.service_end), default=None)
    categories = CATEGORY_LABELS[language]
    breakdown = [
        {
            "category": row.get("category", ""),
            "category_label": categories.get(row.get("category", ""), row.get("category", "")),
            "rate": _percent(row.get("rate"), language),
            "taxable": _money(Decimal(str(row.get("taxable_amount") or 0)), currency, language),
            "tax": _money(Decimal(str(row.get("tax_amount") or 0)), currency, language),
            "exemption_reason": row.get("exemption_reason") or "",
        }
        for row in invoice.tax_breakdown or []
    ]
    is_credit = invoice.kind == Invoice.Kind.CREDIT_NOTE
    title = labels["credit_note"] if is_credit else labels["invoice"]
    credited = invoice.credited_invoice if invoice.credited_invoice_id else None
    return {
        "lang": language,
        "labels": labels,
        "title": title,
        "number": invoice.number,
        "is_draft": not issued,
        "is_credit_note": is_credit,
        "credited_number": credited.number if credited is not None else "",
        "credited_issue_date": _date(credited.issue_date, language) if credited is not None else "",
        "credit_explanation": invoice.credit_explanation if is_credit else "",
        "brand_colour": _colour(colour),
        "logo": _logo_data_uri(logo_name),
        "seller": seller,
        "buyer": buyer,
        "issue_date": _date(invoice.issue_date, language),
        "due_date": _date(invoice.due_date, language),
        "period": _period(period_start, period_end, language),
        "po_number": invoice.po_number,
        "creditor_reference": invoice.creditor_reference,
        "currency": currency,
        "lines": printed,
        # One VAT treatment for every line (the usual case) is stated once, in the breakdown; a column per line
        # only when the lines differ.
        "line_vat_column": len({(line.tax_category, line.tax_rate) for line in lines}) > 1,
        "show_appendix": show_items and any(line["items"] for line in printed),
        "show_person": any(item["person"] for line in printed for item in line["items"]),
        "breakdown": breakdown,
        "legal_notes": [translated_note(note, language) for note in invoice.legal_notes or []],
        "notes": invoice.notes,
        "totals": {
            "net": _money(invoice.net_total, currency, language),
            "tax": _money(invoice.tax_total, currency, language),
            "gross": _money(invoice.gross_total, currency, language),
            "gross_label": labels["gross_total_credit"] if is_credit else labels["gross_total"],
        },
        "payment": _payment(invoice, seller, bank, labels, language),
        "portal_url": _portal_link(invoice, portal_url),
        "portal_label": labels["portal_view"] if is_credit else labels["portal"],
        "appendix_intro": labels["appendix_intro"].format(number=invoice.number or labels["draft"]),
    }


def render_invoice_html(invoice: Invoice, *, portal_url: str | None = None) -> str:
    """The HTML WeasyPrint turns into the PDF (the static stylesheet is added at rendering)."""
    return render_to_string(TEMPLATE, invoice_pdf_context(invoice, portal_url=portal_url))


# --- rendering -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedPdf:
    data: bytes
    pages: int


@functools.cache
def _weasyprint():
    """WeasyPrint, its font configuration and the parsed static stylesheet: made on the first render of a
    process and reused by every later one (fonts are looked up once, the CSS is parsed once)."""
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    font_config = FontConfiguration()
    source = get_template(STYLESHEET).template.source  # read as is: a stylesheet, not a template
    stylesheet = CSS(string=source, font_config=font_config)
    return HTML, font_config, stylesheet


def renderer_name() -> str:
    import weasyprint

    return f"weasyprint {weasyprint.__version__}"


def render_invoice_document(invoice: Invoice, *, portal_url: str | None = None) -> RenderedPdf:
    """The PDF bytes of ``invoice`` and its number of pages."""
    html_class, font_config, stylesheet = _weasyprint()
    html = render_invoice_html(invoice, portal_url=portal_url)
    document = html_class(string=html, base_url=None).render(stylesheets=[stylesheet], font_config=font_config)
    return RenderedPdf(data=document.write_pdf(), pages=len(document.pages))


def render_invoice_pdf(invoice: Invoice, *, portal_url: str | None = None) -> bytes:
    """The PDF bytes of ``invoice`` (WeasyPrint; fonts, the logo and the QR code are local: nothing is
    fetched). Rendering does not store anything: ``billing.tasks.invoice_pdf_render`` does, once."""
    return render_invoice_document(invoice, portal_url=portal_url).data
