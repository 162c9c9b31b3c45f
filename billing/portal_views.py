"""The client portal (no login: a signed, expiring link opens one issued invoice) and, inside the app, the panel
of an invoice's disputes and portal link for finance.

**The portal** (``billing:portal``, ``billing:portal-pdf``, ``billing:portal-dispute``) shows the invoice as
the client sees it, in the invoice's language with the PDF's words (``billing.pdf``: the same seller, lines,
VAT breakdown, totals and payment instructions, with the EPC QR code for what is still due), its status in
words and the amount due after credit notes; the client downloads the stored PDF and raises a dispute. It
needs no account: whoever holds the link may see that one invoice and nothing else (the token names it; no
other ID is read from the request). An expired link answers 410, a tampered one 404, each with a page saying
which and nothing about any invoice. Every response is private: not cached, not indexed, and the link never
sent on to another site as a referrer (see ``REFERRER_POLICY``). Each opening, download and dispute is
recorded as a ``PortalVisit``. The base template stands alone (no app navigation), branded with the seller's
name, logo and colour, served from ``static/`` only.

**The panel** on the invoice's page (``disputes_panel_context``, ``billing/partials/disputes_panel.html``)
lists the disputes for those who may see them (project managers of the invoice's projects, finance,
executives, auditors), with a resolve form for those who may resolve them and a "Record a dispute" form for
finance, and gives finance and admins the portal link to copy, with its expiry date. Its forms post to
``billing:dispute-resolve`` and ``billing:dispute-record``, thin views over ``billing.disputes``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Count, Max, Q
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.views import View

from backbone.errors import DomainError
from backbone.roles import is_read_only
from backbone.views import Guarded

from . import disputes as d
from . import pdf, portal
from . import selectors as s
from .credit_notes import invoice_balance
from .models import Dispute, Invoice, InvoiceDocument, PortalVisit

# --- words --------------------------------------------------------------------------------------------------

# The portal's own words per invoice language, on top of the PDF's (``billing.pdf.LABELS``); the keys are the
# same in every language (a test checks it). Placeholders ({date}, {reason}, {number}) are filled in here.
PORTAL_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "skip": "Skip to content",
        "status": "Status",
        "status_due": "Due on {date}",
        "status_overdue": "Overdue since {date}",
        "status_credited": "Credited",
        "status_credit_note": "Issued on {date}",
        "amount_due": "Amount due",
        "amount_due_note": "After credit notes. If you have paid already, thank you: there is nothing more to do.",
        "credited": "Credited",
        "credit_note_amount": "Amount credited",
        "nothing_to_pay": "Nothing to pay: this invoice is credited in full.",
        "download_pdf": "Download PDF",
        "pdf_preparing": "The PDF is being prepared; try again in a few minutes.",
        "pdf_pending_title": "The PDF is being prepared",
        "pdf_pending_text": "The PDF of {number} is not ready yet. Please try again in a few minutes; the invoice "
        "itself is on its page.",
        "back": "Back to the invoice",
        "dispute_heading": "Something wrong? Raise a dispute",
        "dispute_add_heading": "Add to your dispute",
        "dispute_intro": "Tell us what is wrong with this invoice. Our finance team looks into it and answers you "
        "by email.",
        "dispute_add_intro": "Your dispute is open; what you send now is added to it.",
        "reason": "What is wrong",
        "message": "Your message",
        "message_help": "At most 5,000 characters.",
        "contact_name": "Your name",
        "contact_email": "Your email address",
        "choose": "Choose…",
        "send": "Send",
        "form_errors": "Please correct the marked fields.",
        "not_sent": "It was not sent:",
        "dispute_open": "Disputed since {date}: {reason}. Our finance team is looking into it and will answer you "
        "by email.",
        "dispute_resolved": "Your dispute of {date} was resolved:",
        "dispute_rejected": "Your dispute of {date} was reviewed; the invoice stands:",
        "dispute_sent": "Thank you. Your dispute was sent to our finance team; we will answer you by email.",
        "dispute_added": "Thank you. Your message was added to your open dispute.",
        "link_valid_until": "This link works until {date}.",
        "expired_title": "This link has expired",
        "expired_text": "For your security, invoice links work for a limited time. Ask us for a new link; the "
        "invoice itself is unchanged.",
        "invalid_title": "This link is not valid",
        "invalid_text": "Check that the link was copied whole, or ask us for a new one.",
    },
    "de": {
        "skip": "Zum Inhalt springen",
        "status": "Status",
        "status_due": "Fällig am {date}",
        "status_overdue": "Überfällig seit {date}",
        "status_credited": "Gutgeschrieben",
        "status_credit_note": "Ausgestellt am {date}",
        "amount_due": "Offener Betrag",
        "amount_due_note": "Nach Gutschriften. Falls Sie schon bezahlt haben, vielen Dank: Es ist nichts weiter zu "
        "tun.",
        "credited": "Gutgeschrieben",
        "credit_note_amount": "Gutschriftsbetrag",
        "nothing_to_pay": "Nichts zu zahlen: Diese Rechnung ist vollständig gutgeschrieben.",
        "download_pdf": "PDF herunterladen",
        "pdf_preparing": "Das PDF wird gerade erstellt; bitte versuchen Sie es in ein paar Minuten erneut.",
        "pdf_pending_title": "Das PDF wird erstellt",
        "pdf_pending_text": "Das PDF zu {number} ist noch nicht fertig. Bitte versuchen Sie es in ein paar Minuten "
        "erneut; die Rechnung selbst sehen Sie auf ihrer Seite.",
        "back": "Zurück zur Rechnung",
        "dispute_heading": "Stimmt etwas nicht? Rechnung beanstanden",
        "dispute_add_heading": "Ihre Beanstandung ergänzen",
        "dispute_intro": "Sagen Sie uns, was an dieser Rechnung nicht stimmt. Unsere Buchhaltung prüft es und "
        "antwortet Ihnen per E-Mail.",
        "dispute_add_intro": "Ihre Beanstandung ist offen; was Sie jetzt senden, wird ihr hinzugefügt.",
        "reason": "Was stimmt nicht",
        "message": "Ihre Nachricht",
        "message_help": "Höchstens 5.000 Zeichen.",
        "contact_name": "Ihr Name",
        "contact_email": "Ihre E-Mail-Adresse",
        "choose": "Bitte wählen…",
        "send": "Senden",
        "form_errors": "Bitte korrigieren Sie die markierten Felder.",
        "not_sent": "Nicht gesendet:",
        "dispute_open": "Beanstandet seit {date}: {reason}. Unsere Buchhaltung prüft es und antwortet Ihnen per "
        "E-Mail.",
        "dispute_resolved": "Ihre Beanstandung vom {date} wurde erledigt:",
        "dispute_rejected": "Ihre Beanstandung vom {date} wurde geprüft; die Rechnung bleibt bestehen:",
        "dispute_sent": "Vielen Dank. Ihre Beanstandung ist bei unserer Buchhaltung eingegangen; wir antworten "
        "Ihnen per E-Mail.",
        "dispute_added": "Vielen Dank. Ihre Nachricht wurde Ihrer offenen Beanstandung hinzugefügt.",
        "link_valid_until": "Dieser Link gilt bis zum {date}.",
        "expired_title": "Dieser Link ist abgelaufen",
        "expired_text": "Zu Ihrer Sicherheit gelten Rechnungslinks nur eine begrenzte Zeit. Bitten Sie uns um einen "
        "neuen Link; die Rechnung selbst ist unverändert.",
        "invalid_title": "Dieser Link ist ungültig",
        "invalid_text": "Prüfen Sie, ob der Link vollständig kopiert wurde, oder bitten Sie uns um einen neuen.",
    },
    "fr": {
        "skip": "Aller au contenu",
        "status": "Statut",
        "status_due": "Échéance le {date}",
        "status_overdue": "En retard depuis le {date}",
        "status_credited": "Créditée par avoir",
        "status_credit_note": "Émis le {date}",
        "amount_due": "Montant dû",
        "amount_due_note": "Après déduction des avoirs. Si vous avez déjà payé, merci : vous n'avez rien d'autre à "
        "faire.",
        "credited": "Avoirs",
        "credit_note_amount": "Montant de l'avoir",
        "nothing_to_pay": "Rien à payer : cette facture est entièrement créditée par avoir.",
        "download_pdf": "Télécharger le PDF",
        "pdf_preparing": "Le PDF est en cours de préparation ; réessayez dans quelques minutes.",
        "pdf_pending_title": "Le PDF est en préparation",
        "pdf_pending_text": "Le PDF de {number} n'est pas encore prêt. Réessayez dans quelques minutes ; la facture "
        "elle-même est visible sur sa page.",
        "back": "Retour à la facture",
        "dispute_heading": "Un problème ? Contester la facture",
        "dispute_add_heading": "Compléter votre contestation",
        "dispute_intro": "Dites-nous ce qui ne va pas dans cette facture. Notre service comptable l'examine et vous "
        "répond par e-mail.",
        "dispute_add_intro": "Votre contestation est ouverte ; ce que vous envoyez maintenant y est ajouté.",
        "reason": "Ce qui ne va pas",
        "message": "Votre message",
        "message_help": "5 000 caractères au maximum.",
        "contact_name": "Votre nom",
        "contact_email": "Votre adresse e-mail",
        "choose": "Choisissez…",
        "send": "Envoyer",
        "form_errors": "Veuillez corriger les champs signalés.",
        "not_sent": "Non envoyé :",
        "dispute_open": "Contestée depuis le {date} : {reason}. Notre service comptable l'examine et vous répondra "
        "par e-mail.",
        "dispute_resolved": "Votre contestation du {date} a été traitée :",
        "dispute_rejected": "Votre contestation du {date} a été examinée ; la facture est maintenue :",
        "dispute_sent": "Merci. Votre contestation a été transmise à notre service comptable ; nous vous répondrons "
        "par e-mail.",
        "dispute_added": "Merci. Votre message a été ajouté à votre contestation en cours.",
        "link_valid_until": "Ce lien est valable jusqu'au {date}.",
        "expired_title": "Ce lien a expiré",
        "expired_text": "Pour votre sécurité, les liens de facture sont valables pour une durée limitée. "
        "Demandez-nous un nouveau lien ; la facture elle-même n'a pas changé.",
        "invalid_title": "Ce lien n'est pas valide",
        "invalid_text": "Vérifiez que le lien a été copié en entier, ou demandez-nous-en un nouveau.",
    },
}

# ``Dispute.Reason`` in the client's words.
REASON_LABELS: dict[str, dict[str, str]] = {
    "en": {value: str(label) for value, label in Dispute.Reason.choices},
    "de": {
        "amount": "Der Betrag stimmt nicht",
        "work_not_done": "Leistung nicht erbracht oder nicht abgenommen",
        "rate": "Falscher Satz oder Preis",
        "tax": "Falsche Umsatzsteuer",
        "duplicate": "Doppelt berechnet",
        "po": "Bestellnummer oder Referenz falsch",
        "other": "Sonstiges",
    },
    "fr": {
        "amount": "Le montant est erroné",
        "work_not_done": "Prestation non réalisée ou non réceptionnée",
        "rate": "Taux ou prix erroné",
        "tax": "TVA erronée",
        "duplicate": "Facturé deux fois",
        "po": "Bon de commande ou référence erroné",
        "other": "Autre",
    },
}

DEFAULT_LANGUAGE = "en"


def _language_of(invoice: Invoice) -> str:
    return invoice.language if invoice.language in PORTAL_LABELS else DEFAULT_LANGUAGE


def _request_language(request: HttpRequest) -> str:
    """For the pages that know no invoice (a bad link): the browser's language, when it is one of ours."""
    language = (getattr(request, "LANGUAGE_CODE", "") or "")[:2]
    return language if language in PORTAL_LABELS else DEFAULT_LANGUAGE


def _on_colour(hex_colour: str) -> str:
    """Black or white, whichever reads better on the brand colour (WCAG relative luminance)."""
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#000000" if luminance > 0.179 else "#ffffff"


# The invoice page posts the dispute form to itself. Under "no-referrer" a browser sends ``Origin: null`` with
# that POST (Fetch: the Origin header follows the document's referrer policy), and Django's CSRF check rightly
# refuses it; "same-origin" keeps the link (the token) from every other site as well while our own POST says
# where it comes from. Every other portal answer (bad links, the PDF, redirects) sends no referrer at all.
REFERRER_POLICY = "no-referrer"
FORM_PAGE_REFERRER_POLICY = "same-origin"


def _private(response: HttpResponse, *, referrer_policy: str = REFERRER_POLICY) -> HttpResponse:
    """A portal response is for the holder of the link only: never stored by a cache, never indexed, and the
    link (the token) never sent on to another site as a referrer."""
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = referrer_policy
    return response


# --- the portal's form -------------------------------------------------------------------------------------


class PortalDisputeForm(forms.Form):
    """What the client says is wrong, with a name and an email address to answer. Labels in the invoice's
    language; Django's own messages ("This field is required.") come in it too, as the view validates and
    renders under that language."""

    reason = forms.ChoiceField()
    message = forms.CharField(max_length=d.MESSAGE_MAX, widget=forms.Textarea(attrs={"rows": 5}))
    contact_name = forms.CharField(max_length=150)
    contact_email = forms.EmailField(max_length=254)

    def __init__(self, *args, language: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        words = PORTAL_LABELS[language]
        reasons = REASON_LABELS[language]
        self.fields["reason"].choices = [("", words["choose"]), *((v, reasons[v]) for v in Dispute.Reason.values)]
        for name in ("reason", "message", "contact_name", "contact_email"):
            self.fields[name].label = words[name]
        self.fields["message"].help_text = words["message_help"]
        self.fields["contact_name"].widget.attrs["autocomplete"] = "name"
        self.fields["contact_email"].widget.attrs["autocomplete"] = "email"

    def apply_domain_error(self, exc: DomainError) -> None:
        placed = False
        for key, values in (exc.errors or {}).items():
            if key in self.fields:
                for message in values if isinstance(values, list | tuple) else [values]:
                    self.add_error(key, str(message))
                placed = True
        if not placed:
            self.add_error(None, exc.message)


# --- the portal's pages ------------------------------------------------------------------------------------


def _status(invoice: Invoice, *, remaining: Decimal, credited: bool, today: dt.date, language: str) -> dict:
    words = PORTAL_LABELS[language]
    if invoice.kind == Invoice.Kind.CREDIT_NOTE:
        return {
            "kind": "credit_note",
            "text": words["status_credit_note"].format(date=_day(invoice.issue_date, language)),
        }
    if remaining <= 0 and credited:
        return {"kind": "credited", "text": words["status_credited"]}
    if invoice.due_date and today > invoice.due_date:
        since = invoice.due_date + dt.timedelta(days=1)
        return {"kind": "overdue", "text": words["status_overdue"].format(date=_day(since, language))}
    return {"kind": "due", "text": words["status_due"].format(date=_day(invoice.due_date, language))}


def _day(value: dt.date | None, language: str) -> str:
    return pdf.format_day(value, language)


def _payment(invoice: Invoice, doc: dict[str, Any], *, remaining: Decimal, language: str) -> dict[str, Any]:
    """The PDF's payment instructions, for what is still due (a partly credited invoice asks for less)."""
    printed = doc["payment"]
    if invoice.kind == Invoice.Kind.CREDIT_NOTE:
        return {**printed, "show_account": False, "qr": ""}
    if remaining <= 0:
        return {"text": PORTAL_LABELS[language]["nothing_to_pay"], "show_account": False, "qr": ""}
    payment = dict(printed)
    amount = pdf.format_amount(remaining, invoice.currency, language)
    if invoice.due_date:
        payment["text"] = doc["labels"]["pay_by"].format(amount=amount, date=_day(invoice.due_date, language))
    if printed["qr"] and remaining != invoice.gross_total:
        payment["qr"] = pdf.epc_qr_data_uri(
            name=printed["account_holder"],
            iban=printed["iban"],
            bic=printed["bic"],
            amount=remaining,
            reference=invoice.creditor_reference,
        )
    return payment


def _dispute_state(invoice: Invoice, language: str) -> dict[str, Any]:
    """What the client is told of their disputes: the open one (reason and date: the thread itself holds
    finance's notes too, so it is not shown), else the answer to the last one closed."""
    words, reasons = PORTAL_LABELS[language], REASON_LABELS[language]
    latest = list(Dispute.objects.filter(invoice=invoice).order_by("-created_at", "-id")[:1])
    if not latest:
        return {"open": None, "closed": None}
    dispute = latest[0]
    since = _day(timezone.localtime(dispute.created_at).date(), language)
    if dispute.status == Dispute.Status.OPEN:
        text = words["dispute_open"].format(date=since, reason=reasons.get(dispute.reason, dispute.reason))
        return {"open": {"text": text}, "closed": None}
    key = "dispute_resolved" if dispute.status == Dispute.Status.RESOLVED else "dispute_rejected"
    return {"open": None, "closed": {"text": words[key].format(date=since), "resolution": dispute.resolution}}


def portal_page_context(invoice: Invoice, *, token: str, form: PortalDisputeForm | None = None) -> dict[str, Any]:
    """Everything the portal page shows, in the invoice's language."""
    language = _language_of(invoice)
    doc = pdf.invoice_pdf_context(invoice, portal_url="")
    words = {**doc["labels"], **PORTAL_LABELS[language]}
    is_invoice = invoice.kind == Invoice.Kind.INVOICE
    today = timezone.localdate()
    if is_invoice:
        balance = invoice_balance(invoice)
        remaining, credited_amount = balance["remaining_amount"], balance["credited_amount"]
    else:
        remaining, credited_amount = Decimal("0"), Decimal("0")
    disputable = is_invoice and remaining > 0
    disputes = _dispute_state(invoice, language) if is_invoice else {"open": None, "closed": None}
    if disputable and form is None:
        form = PortalDisputeForm(language=language)
    expires = timezone.localtime(portal.portal_expires_at(token)).date()
    return {
        "lang": language,
        "words": words,
        "doc": doc,
        "brand_colour": doc["brand_colour"],
        "brand_text_colour": _on_colour(doc["brand_colour"]),
        "brand_name": doc["seller"]["name"],
        "logo": doc["logo"],
        "is_invoice": is_invoice,
        "status": _status(invoice, remaining=remaining, credited=credited_amount > 0, today=today, language=language),
        "amount_due": pdf.format_amount(remaining, invoice.currency, language) if is_invoice else "",
        "credited": pdf.format_amount(-credited_amount, invoice.currency, language) if credited_amount else "",
        "credit_amount": pdf.format_amount(-invoice.gross_total, invoice.currency, language) if not is_invoice else "",
        "payment": _payment(invoice, doc, remaining=remaining, language=language),
        "has_pdf": InvoiceDocument.objects.filter(invoice=invoice, kind=InvoiceDocument.Kind.PDF).exists(),
        "disputes": disputes,
        "form": form if disputable else None,
        "link_valid_until": words["link_valid_until"].format(date=_day(expires, language)),
        "referrer_policy": FORM_PAGE_REFERRER_POLICY if disputable else REFERRER_POLICY,
        "page_url": reverse("billing:portal", kwargs={"token": token}),
        "pdf_url": reverse("billing:portal-pdf", kwargs={"token": token}),
        "dispute_url": reverse("billing:portal-dispute", kwargs={"token": token}),
    }


def _render_portal(request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    policy = context.setdefault("referrer_policy", REFERRER_POLICY)
    with translation.override(context["lang"]):  # Django's own words (form errors) in the page's language too
        return _private(render(request, template, context, status=status), referrer_policy=policy)


def _portal_page(
    request: HttpRequest, invoice: Invoice, *, token: str, form: PortalDisputeForm | None = None, status: int = 200
) -> HttpResponse:
    context = portal_page_context(invoice, token=token, form=form)
    return _render_portal(request, "billing/portal/invoice.html", context, status=status)


def _link_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    """An expired (410) or tampered (404) link: which of the two, and nothing about any invoice."""
    language = _request_language(request)
    words = PORTAL_LABELS[language]
    expired = isinstance(exc, portal.PortalLinkExpired)
    context = {
        "lang": language,
        "words": words,
        "brand_colour": pdf._DEFAULT_COLOUR,
        "brand_text_colour": _on_colour(pdf._DEFAULT_COLOUR),
        "title": words["expired_title" if expired else "invalid_title"],
        "text": words["expired_text" if expired else "invalid_text"],
        "expired": expired,
    }
    return _render_portal(request, "billing/portal/link_error.html", context, status=410 if expired else 404)


def _opened(request: HttpRequest, token: str) -> Invoice | HttpResponse:
    try:
        return portal.portal_invoice(token)
    except (portal.PortalLinkExpired, portal.PortalLinkInvalid) as exc:
        return _link_error(request, exc)


def _user_agent(request: HttpRequest) -> str:
    return request.headers.get("User-Agent", "")


class PortalView(View):
    """The invoice as the client sees it. No login: the token is the key."""

    http_method_names = ["get", "head"]

    def get(self, request, token):
        invoice = _opened(request, token)
        if isinstance(invoice, HttpResponse):
            return invoice
        portal.portal_visit_record(invoice=invoice, action=portal.VisitAction.VIEW, user_agent=_user_agent(request))
        return _portal_page(request, invoice, token=token)


class PortalPdfView(View):
    """The stored PDF, exactly as rendered after issue; until it is stored, a 404 page saying it is being
    prepared (it is never rendered here)."""

    http_method_names = ["get", "head"]

    def get(self, request, token):
        invoice = _opened(request, token)
        if isinstance(invoice, HttpResponse):
            return invoice
        document = InvoiceDocument.objects.filter(invoice=invoice, kind=InvoiceDocument.Kind.PDF).first()
        handle = None
        if document is not None:
            try:
                handle = document.file.open("rb")
            except FileNotFoundError:
                handle = None
        if handle is None:
            language = _language_of(invoice)
            words = PORTAL_LABELS[language]
            context = {
                "lang": language,
                "words": words,
                "brand_colour": pdf._colour((invoice.seller or {}).get("brand_colour")),
                "brand_name": (invoice.seller or {}).get("legal_name") or invoice.legal_entity.legal_name,
                "text": words["pdf_pending_text"].format(number=invoice.number),
                "page_url": reverse("billing:portal", kwargs={"token": token}),
            }
            context["brand_text_colour"] = _on_colour(context["brand_colour"])
            return _render_portal(request, "billing/portal/pdf_pending.html", context, status=404)
        portal.portal_visit_record(invoice=invoice, action=portal.VisitAction.DOWNLOAD, user_agent=_user_agent(request))
        response = FileResponse(handle, as_attachment=True, filename=document.filename, content_type="application/pdf")
        response["X-Content-Type-Options"] = "nosniff"
        return _private(response)


class PortalDisputeView(View):
    """POST only: the client's dispute (CSRF-checked like every form). Success: back to the page with a thank
    you; a form error: the page again with the messages, 400; a refusal of the service: its status."""

    http_method_names = ["post"]

    def post(self, request, token):
        invoice = _opened(request, token)
        if isinstance(invoice, HttpResponse):
            return invoice
        language = _language_of(invoice)
        form = PortalDisputeForm(request.POST, language=language)
        with translation.override(language):
            valid = form.is_valid()
        if not valid:
            return _portal_page(request, invoice, token=token, form=form, status=400)
        try:
            dispute = d.dispute_raise(invoice=invoice, source=Dispute.Source.PORTAL, **form.cleaned_data)
        except DomainError as exc:
            form.apply_domain_error(exc)
            return _portal_page(request, invoice, token=token, form=form, status=exc.status_code)
        portal.portal_visit_record(invoice=invoice, action=portal.VisitAction.DISPUTE, user_agent=_user_agent(request))
        words = PORTAL_LABELS[language]
        messages.success(request, words["dispute_added" if dispute.added_to else "dispute_sent"])
        page = reverse("billing:portal", kwargs={"token": token})
        return _private(redirect(f"{page}#dispute-status"))


# --- the panel on the invoice's page (finance) -------------------------------------------------------------


class DisputeRecordForm(forms.Form):
    """A dispute the client raised by phone, email or letter, as finance records it."""

    reason = forms.ChoiceField(
        label="What the client says is wrong", choices=[("", "Choose…"), *Dispute.Reason.choices]
    )
    message = forms.CharField(
        label="What they said",
        max_length=d.MESSAGE_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Their objection in their words; the client sees the reason and the date on the portal.",
    )
    contact_name = forms.CharField(label="Contact name", max_length=150, required=False)
    contact_email = forms.EmailField(label="Contact email", max_length=254, required=False)


class DisputeResolveForm(forms.Form):
    outcome = forms.ChoiceField(
        label="Outcome",
        choices=[
            (Dispute.Status.RESOLVED, "Resolved: the client was right or it was settled"),
            (Dispute.Status.REJECTED, "Rejected: the invoice stands"),
        ],
        widget=forms.RadioSelect,
    )
    resolution = forms.CharField(
        label="Resolution",
        max_length=d.RESOLUTION_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown to the client on the portal: what was done, or why the invoice stands.",
    )


def _apply_domain_error(form: forms.Form, exc: DomainError) -> None:
    for key, values in (exc.errors or {}).items():
        if key in form.fields:
            for message in values if isinstance(values, list | tuple) else [values]:
                form.add_error(key, str(message))


def _visits(invoice: Invoice) -> dict[str, Any]:
    """How often the client opened the link, downloaded the PDF and disputed, and when last: one query."""
    return PortalVisit.objects.filter(invoice=invoice).aggregate(
        views=Count("id", filter=Q(action=portal.VisitAction.VIEW)),
        downloads=Count("id", filter=Q(action=portal.VisitAction.DOWNLOAD)),
        last=Max("at"),
    )


def disputes_panel_context(*, user, invoice: Invoice) -> dict[str, Any] | None:
    """The invoice page's panel (``disputes_panel``): None shows nothing (a draft, or nothing the person may
    see). The resolve and record views hand back their refused forms on ``invoice._disputes_panel_forms``."""
    if invoice.status != Invoice.Status.ISSUED or not getattr(user, "is_authenticated", False):
        return None
    writer = not is_read_only(user)
    is_invoice = invoice.kind == Invoice.Kind.INVOICE
    may_view = is_invoice and user.has_perm("billing.view_dispute")
    may_link = writer and user.has_perm("billing.send_invoice")
    if not (may_view or may_link):
        return None
    handed: dict[str, Any] = getattr(invoice, "_disputes_panel_forms", None) or {}
    rows = []
    if may_view:
        may_resolve = writer and user.has_perm("billing.resolve_dispute")
        for dispute in d.disputes_of(invoice):
            form = None
            if may_resolve and dispute.status == Dispute.Status.OPEN:
                form = handed.get(("resolve", dispute.pk)) or DisputeResolveForm(prefix=f"resolve-{dispute.public_id}")
            rows.append(
                {
                    "dispute": dispute,
                    "resolve_form": form,
                    "resolve_url": reverse("billing:dispute-resolve", kwargs={"public_id": dispute.public_id}),
                }
            )
    record_form = None
    if may_view and writer and user.has_perm("billing.add_dispute") and d.dispute_refusal(invoice) is None:
        record_form = handed.get("record") or DisputeRecordForm(prefix="record")
    link = None
    if may_link:
        url, expires_at = portal.portal_link(invoice)
        link = {
            "url": url,
            "expires_at": expires_at,
            "visits": _visits(invoice) if user.has_perm("billing.view_portalvisit") else None,
        }
    return {
        "invoice": invoice,
        "can_view": may_view,
        "rows": rows,
        "open_count": sum(1 for row in rows if row["dispute"].status == Dispute.Status.OPEN),
        "record_form": record_form,
        "record_open": "record" in handed,
        "record_url": reverse("billing:dispute-record", kwargs={"public_id": invoice.public_id}),
        "link": link,
    }


def _detail_url(invoice: Invoice) -> str:
    return reverse("billing:invoice-detail", kwargs={"public_id": invoice.public_id}) + "#disputes"


def _refused(request: HttpRequest, public_id, exc: DomainError, handed: dict[str, Any]) -> HttpResponse:
    from .views import _invoice_detail  # not at the top: the invoice page imports this module for its panel

    fresh = s.access_invoice(user=request.user, public_id=public_id)  # the refused call changed nothing
    fresh._disputes_panel_forms = handed
    return _invoice_detail(request, fresh, error=exc, status=exc.status_code)


class DisputeRecordView(Guarded):
    """POST only: finance records a dispute received by phone or email on an issued invoice."""

    permission_required = ("billing.view_invoice", "billing.add_dispute")
    writes = True
    http_method_names = ["post"]

    def post(self, request, public_id):
        invoice = s.access_invoice(user=request.user, public_id=public_id)
        form = DisputeRecordForm(request.POST, prefix="record")
        if not form.is_valid():
            invoice._disputes_panel_forms = {"record": form}
            from .views import _invoice_detail

            return _invoice_detail(request, invoice, status=400)
        try:
            dispute = d.dispute_record(actor=request.user, invoice=invoice, **form.cleaned_data)
        except DomainError as exc:
            _apply_domain_error(form, exc)
            return _refused(request, public_id, exc, {"record": form})
        if dispute.added_to:
            messages.success(request, f"Added to the open dispute of {invoice}; the rest of finance is told.")
        else:
            messages.success(request, f"Dispute recorded on {invoice}; the rest of finance is told.")
        return redirect(_detail_url(invoice))


class DisputeResolveView(Guarded):
    """POST only: close an open dispute as resolved or rejected, with the resolution the client is shown."""

    permission_required = ("billing.view_invoice", "billing.resolve_dispute")
    writes = True
    http_method_names = ["post"]

    def post(self, request, public_id):
        dispute = d.access_dispute(user=request.user, public_id=public_id)
        invoice = dispute.invoice
        form = DisputeResolveForm(request.POST, prefix=f"resolve-{dispute.public_id}")
        if not form.is_valid():
            fresh = s.access_invoice(user=request.user, public_id=invoice.public_id)
            fresh._disputes_panel_forms = {("resolve", dispute.pk): form}
            from .views import _invoice_detail

            return _invoice_detail(request, fresh, status=400)
        try:
            closed = d.dispute_resolve(actor=request.user, dispute=dispute, **form.cleaned_data)
        except DomainError as exc:
            _apply_domain_error(form, exc)
            return _refused(request, invoice.public_id, exc, {("resolve", dispute.pk): form})
        messages.success(request, f"The dispute of {invoice} is {closed.get_status_display().lower()}.")
        return redirect(_detail_url(invoice))
