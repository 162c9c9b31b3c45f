"""Pages of the sales pipeline: deals, the board, quotes with their lines, milestones, PDF and attachments.

Thin like the rest of the app's pages: parse, check access through the selectors (outside one's scope → 404),
call one service, render. State changes are POST only; htmx swaps the board after a move and refreshes the
quote page's tax panel as the lines change.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language

from backbone.downloads import stored_file_response
from backbone.errors import DomainError, ValidationFailed
from backbone.money import MoneyError, format_money
from backbone.views import Guarded
from tax.categories import TaxCategory

from . import forms as f
from .filters import DealFilter
from .models import Deal, PipelineStage, Quote
from .selectors import (
    access_deal,
    access_quote,
    access_quote_attachment,
    deal_can_create,
    deal_can_win,
    deal_edit_allowed,
    deal_list,
    deal_quotes,
    open_stages,
    pipeline_board,
    products_visible_to,
    quote_actions,
    stage_by_outcome,
)
from .services import (
    deal_create,
    deal_move_stage,
    deal_update,
    quote_accept,
    quote_attachment_add,
    quote_attachment_remove,
    quote_create,
    quote_draft_lines,
    quote_new_version,
    quote_send,
    quote_tax_preview,
    quote_update,
)
from .views import _is_filtered, _list_response, _paginate

# The projects app's page that wins a deal and creates its project; it may not be wired yet.
DEAL_WIN_URL_NAME = "projects:deal-win"


def _htmx(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def _money_text(amount: Decimal, currency: str) -> str:
    try:
        return format_money(amount, currency, locale=(get_language() or "en").replace("-", "_"))
    except (MoneyError, ValueError):
        return f"{amount} {currency}"


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return target
    return fallback


def deal_win_url(deal: Deal) -> str | None:
    """The projects app's "Mark won" page for ``deal``, or None while that page does not exist."""
    try:
        return reverse(DEAL_WIN_URL_NAME, kwargs={"public_id": deal.public_id})
    except NoReverseMatch:
        return None


def tax_display(result, currency: str) -> dict[str, Any]:
    """A ``TaxResult`` as the quote pages print it."""
    categories = dict(TaxCategory.choices)
    return {
        "breakdown": [
            {
                "category": categories.get(row.category, row.category),
                "rate": format(row.rate.normalize(), "f"),
                "taxable": _money_text(row.taxable_amount, currency),
                "tax": _money_text(row.tax_amount, currency),
                "exemption_reason": row.exemption_reason,
            }
            for row in result.breakdown
        ],
        "legal_notes": list(result.legal_notes),
        "warnings": list(result.warnings),
        "place_of_supply": result.place_of_supply,
        "net": _money_text(result.net_amount, currency),
        "tax": _money_text(result.tax_amount, currency),
        "gross": _money_text(result.gross_amount, currency),
    }


# --- deals --------------------------------------------------------------------------------------------


class DealListView(Guarded):
    permission_required = ("customers.view_deal",)

    def get(self, request):
        filterset = DealFilter(request.GET, queryset=deal_list(user=request.user))
        page_obj = _paginate(request, filterset.qs)
        context = {
            "filter": filterset,
            "page_obj": page_obj,
            "deals": page_obj.object_list,
            "is_filtered": _is_filtered(request),
            "can_create": deal_can_create(user=request.user),
            "current_ordering": request.GET.get("ordering", ""),
        }
        return _list_response(request, "customers/deal_list.html", "customers/partials/deal_table.html", context)


def _board_context(request: HttpRequest, *, notice: str = "", notice_level: str = "success") -> dict[str, Any]:
    board = pipeline_board(user=request.user)
    for column in board.columns:
        for deal in column.deals:
            deal.can_move = deal_edit_allowed(user=request.user, deal=deal)
    return {
        "board": board,
        "has_deals": any(column.deals for column in board.columns),
        "notice": notice,
        "notice_level": notice_level,
        "lost_stage": stage_by_outcome("lost"),
        "can_create": deal_can_create(user=request.user),
    }


class PipelineView(Guarded):
    """The pipeline board: a column per stage with its count, value and weighted value."""

    permission_required = ("customers.view_deal",)

    def get(self, request):
        context = _board_context(request)
        template = "customers/partials/pipeline_board.html" if _htmx(request) else "customers/pipeline.html"
        return render(request, template, context)


class DealStageView(Guarded):
    """POST only: move a deal to another stage (from the board, swapped by htmx, or from the deal's page)."""

    permission_required = ("customers.change_deal",)
    writes = True

    def post(self, request, public_id):
        deal = access_deal(user=request.user, public_id=public_id, for_edit=True)
        form = f.DealStageForm(request.POST)
        notice, level = "", "success"
        if not form.is_valid():
            notice, level = "Choose the stage to move the deal to.", "danger"
        else:
            try:
                deal = deal_move_stage(
                    user=request.user,
                    deal=deal,
                    stage=form.cleaned_data["stage"],
                    lost_reason=form.cleaned_data["lost_reason"],
                    probability=form.cleaned_data["probability"],
                )
            except DomainError as exc:
                notice, level = exc.message, "danger"
            else:
                notice = f"{deal.number} {deal.title} is now in {deal.stage.name}."
        if _htmx(request):
            return render(
                request,
                "customers/partials/pipeline_board.html",
                _board_context(request, notice=notice, notice_level=level),
            )
        (messages.success if level == "success" else messages.error)(request, notice)
        return redirect(_safe_next(request, reverse("customers:deal-detail", args=[deal.public_id])))


class DealFormMixin:
    def render_form(self, request, *, form, deal=None, status=200, summary=""):
        context = {"form": form, "deal": deal, "error_summary": summary}
        return render(request, "customers/deal_form.html", context, status=status)


class DealCreateView(DealFormMixin, Guarded):
    permission_required = ("customers.add_deal",)
    writes = True

    def get(self, request):
        initial = {}
        if request.GET.get("customer"):
            initial["customer"] = request.GET["customer"]
        return self.render_form(request, form=f.DealForm(user=request.user, initial=initial))

    def post(self, request):
        form = f.DealForm(request.POST, user=request.user)
        if not form.is_valid():
            return self.render_form(request, form=form, status=400, summary="The deal was not saved.")
        try:
            deal = deal_create(user=request.user, data=form.service_data())
        except DomainError as exc:
            f.apply_domain_errors(exc, form)
            return self.render_form(request, form=form, status=exc.status_code, summary=exc.message)
        messages.success(request, f"Deal {deal.number} {deal.title} was opened in {deal.stage.name}.")
        return redirect("customers:deal-detail", public_id=deal.public_id)


class DealEditView(DealFormMixin, Guarded):
    permission_required = ("customers.change_deal",)
    writes = True

    def get(self, request, public_id):
        deal = access_deal(user=request.user, public_id=public_id, for_edit=True)
        return self.render_form(request, form=f.DealForm(user=request.user, instance=deal), deal=deal)

    def post(self, request, public_id):
        deal = access_deal(user=request.user, public_id=public_id, for_edit=True)
        form = f.DealForm(request.POST, user=request.user, instance=deal)
        if not form.is_valid():
            return self.render_form(request, form=form, deal=deal, status=400, summary="The deal was not saved.")
        try:
            deal = deal_update(
                user=request.user, deal=deal, data=form.service_data(), reason=form.cleaned_data.get("reason", "")
            )
        except DomainError as exc:
            f.apply_domain_errors(exc, form)
            return self.render_form(request, form=form, deal=deal, status=exc.status_code, summary=exc.message)
        messages.success(request, f"Deal {deal.number} was saved.")
        return redirect("customers:deal-detail", public_id=deal.public_id)


def _quote_total(quote: Quote) -> Decimal:
    return sum((line.net_amount for line in quote.lines.all()), Decimal("0"))


class DealDetailView(Guarded):
    permission_required = ("customers.view_deal",)

    def get(self, request, public_id):
        deal = access_deal(user=request.user, public_id=public_id)
        quotes = list(deal_quotes(deal=deal)) if request.user.has_perm("customers.view_quote") else []
        for quote in quotes:
            quote.net_total = _quote_total(quote)
        can_edit = deal_edit_allowed(user=request.user, deal=deal)
        is_open = deal.stage.outcome == PipelineStage.Outcome.OPEN
        open_quote = next((q for q in quotes if q.status in (Quote.Status.DRAFT, Quote.Status.ACCEPTED)), None)
        can_win = deal_can_win(user=request.user, deal=deal, quotes=quotes)
        context = {
            "deal": deal,
            "quotes": quotes,
            "can_edit": can_edit,
            "is_open": is_open,
            "weighted": deal.amount * deal.probability / 100,
            "can_add_quote": can_edit
            and is_open
            and open_quote is None
            and request.user.has_perm("customers.add_quote"),
            "blocking_quote": open_quote,
            "can_win": can_win,
            "win_url": deal_win_url(deal) if can_win else None,
            "accepted_quote": next((q for q in quotes if q.status == Quote.Status.ACCEPTED), None),
            "stages": open_stages() if can_edit else [],
            "lost_stage": stage_by_outcome("lost") if can_edit else None,
            "show_attachments": request.user.has_perm("customers.view_quoteattachment"),
        }
        return render(request, "customers/deal_detail.html", context)


# --- quotes -------------------------------------------------------------------------------------------


def _quote_formsets(request, *, lines=None, milestones=None, blank: bool = False):
    """The line and milestone formsets: bound on POST, pre-filled from a quote's rows otherwise."""
    products = products_visible_to(request.user).filter(is_active=True).order_by("code")
    line_set = f.quote_line_formset(extra=1 if blank else 0)
    milestone_set = f.quote_milestone_formset(extra=1 if blank else 0)
    if request.method == "POST":
        return {
            "lines": line_set(request.POST, prefix="lines", products=products),
            "milestones": milestone_set(request.POST, prefix="milestones"),
        }
    return {
        "lines": line_set(prefix="lines", products=products, initial=f.quote_line_initial(lines or [])),
        "milestones": milestone_set(prefix="milestones", initial=f.quote_milestone_initial(milestones or [])),
    }


def _catalog_for_prefill(user) -> dict[str, dict[str, str]]:
    """What picking a product fills in on a line (read by the page's script)."""
    return {
        str(p.public_id): {
            "name": p.name,
            "unit": p.unit,
            "price": format(p.default_price_amount.normalize(), "f") if p.default_price_amount else "",
            "tax_category": p.default_tax_category,
            "currency": p.currency,
            "supply_kind": "goods" if p.kind == "goods" else "general_service",
            "billing_model": "expenses" if p.kind == "expense" else "",
        }
        for p in products_visible_to(user).filter(is_active=True)
    }


class QuoteFormMixin:
    def render_form(self, request, *, form, formsets, deal, quote=None, status=200, summary=""):
        context = {
            "form": form,
            "formsets": formsets,
            "deal": deal,
            "quote": quote,
            "error_summary": summary,
            "catalog": _catalog_for_prefill(request.user),
        }
        return render(request, "customers/quote_form.html", context, status=status)

    def submit(self, request, *, form, formsets, deal, quote=None):
        if not all([form.is_valid(), *(fs.is_valid() for fs in formsets.values())]):
            return self.render_form(
                request,
                form=form,
                formsets=formsets,
                deal=deal,
                quote=quote,
                status=400,
                summary="The quote was not saved. Please correct the fields marked below.",
            )
        sent = {prefix: fs.rows() for prefix, fs in formsets.items()}
        rows = {prefix: pair[0] for prefix, pair in sent.items()}
        try:
            if quote is None:
                quote = quote_create(user=request.user, deal=deal, data=form.service_data(), **rows)
                messages.success(request, f"Quote v{quote.version} of {deal.number} was saved as a draft.")
            else:
                quote = quote_update(
                    user=request.user,
                    quote=quote,
                    data=form.service_data(),
                    reason=form.cleaned_data.get("reason", ""),
                    **rows,
                )
                messages.success(request, f"Quote v{quote.version} was saved.")
        except DomainError as exc:
            f.apply_domain_errors(exc, form, {prefix: (formsets[prefix], pair[1]) for prefix, pair in sent.items()})
            return self.render_form(
                request,
                form=form,
                formsets=formsets,
                deal=deal,
                quote=quote,
                status=exc.status_code,
                summary=exc.message,
            )
        return redirect("customers:quote-detail", public_id=quote.public_id)


class QuoteCreateView(QuoteFormMixin, Guarded):
    permission_required = ("customers.add_quote",)
    writes = True

    def get(self, request, public_id):
        deal = access_deal(user=request.user, public_id=public_id, for_edit=True)
        customer = deal.customer
        form = f.QuoteForm(
            initial={
                "currency": deal.currency,
                "valid_until": timezone.localdate() + dt.timedelta(days=30),
                "payment_terms_days": customer.payment_terms_days,
                "po_required": customer.purchase_order_required,
                "portal_required": customer.delivery_channel == customer.DeliveryChannel.PORTAL,
                "retainer_amount": 0,
                "expense_markup_percent": 0,
            }
        )
        return self.render_form(request, form=form, formsets=_quote_formsets(request, blank=True), deal=deal)

    def post(self, request, public_id):
        deal = access_deal(user=request.user, public_id=public_id, for_edit=True)
        form = f.QuoteForm(request.POST)
        return self.submit(request, form=form, formsets=_quote_formsets(request, blank=True), deal=deal)


class QuoteEditView(QuoteFormMixin, Guarded):
    permission_required = ("customers.change_quote",)
    writes = True

    def _quote(self, request, public_id) -> Quote:
        return access_quote(user=request.user, public_id=public_id, for_edit=True)

    def get(self, request, public_id):
        quote = self._quote(request, public_id)
        if not quote.is_editable:
            messages.info(
                request, f"Quote v{quote.version} is {quote.get_status_display().lower()}: only drafts change."
            )
            return redirect("customers:quote-detail", public_id=quote.public_id)
        formsets = _quote_formsets(request, lines=quote.lines.all(), milestones=quote.milestones.all())
        form = f.QuoteForm(instance=quote, editing=True)
        return self.render_form(request, form=form, formsets=formsets, deal=quote.deal, quote=quote)

    def post(self, request, public_id):
        quote = self._quote(request, public_id)
        form = f.QuoteForm(request.POST, editing=True)
        return self.submit(request, form=form, formsets=_quote_formsets(request), deal=quote.deal, quote=quote)


class QuoteTaxPreviewView(Guarded):
    """POST only (htmx): the tax of the quote form as it stands, for the live panel; nothing is saved."""

    permission_any = ("customers.add_quote", "customers.change_quote")
    writes = True

    def post(self, request, public_id):
        deal = access_deal(user=request.user, public_id=public_id, for_edit=True)
        form = f.QuoteForm(request.POST)
        form.is_valid()
        lines = f.quote_line_formset(extra=0)(
            request.POST, prefix="lines", products=products_visible_to(request.user).filter(is_active=True)
        )
        context: dict[str, Any] = {"problem": "", "problems": [], "result": None}
        if not lines.is_valid():
            context["problem"] = "Some lines cannot be read yet; correct the marked fields."
            return render(request, "customers/partials/quote_tax_panel.html", context)
        data = form.cleaned_data
        currency = data.get("currency") or deal.currency
        draft = Quote(
            deal=deal,
            currency=currency,
            planned_start=data.get("planned_start"),
            retainer_amount=data.get("retainer_amount") or Decimal("0"),
            expense_markup_percent=data.get("expense_markup_percent") or Decimal("0"),
        )
        rows, _forms = lines.rows()
        try:
            built = quote_draft_lines(quote=draft, lines=rows)
            result = quote_tax_preview(quote=draft, lines=built)
        except ValidationFailed as exc:
            context["problem"] = exc.message
            context["problems"] = [m for messages_ in exc.errors.values() for m in messages_][:6]
        else:
            context["result"] = tax_display(result, currency)
            context["tax_point"] = draft.planned_start or timezone.localdate()
            context["skipped"] = len(rows) - len(built)
        return render(request, "customers/partials/quote_tax_panel.html", context)


class QuoteDetailView(Guarded):
    permission_required = ("customers.view_quote",)

    def get(self, request, public_id):
        quote = access_quote(user=request.user, public_id=public_id)
        lines = list(quote.lines.select_related("product"))
        tax, tax_problem = None, ""
        try:
            tax = tax_display(quote_tax_preview(quote=quote, lines=lines), quote.currency) if lines else None
        except ValidationFailed as exc:
            tax_problem = exc.message
        actions = quote_actions(user=request.user, quote=quote)
        can_win = deal_can_win(user=request.user, deal=quote.deal)
        context = {
            "quote": quote,
            "deal": quote.deal,
            "lines": lines,
            "milestones": list(quote.milestones.all()),
            "attachments": (
                list(quote.attachments.select_related("uploaded_by"))
                if request.user.has_perm("customers.view_quoteattachment")
                else None
            ),
            "net_total": sum((line.net_amount for line in lines), Decimal("0")),
            "tax": tax,
            "tax_problem": tax_problem,
            "actions": actions,
            "accept_form": f.QuoteAcceptForm(),
            "attachment_form": f.QuoteAttachmentForm(),
            "versions": list(quote.deal.quotes.order_by("-version").only("public_id", "version", "status")),
            "expired": quote.valid_until < timezone.localdate(),
            "win_url": deal_win_url(quote.deal) if can_win else None,
            "can_win": can_win,
        }
        return render(request, "customers/quote_detail.html", context)


class QuoteTransitionView(Guarded):
    """POST only: one lifecycle step of a quote, then back to its page with the outcome as a message."""

    writes = True

    def act(self, request, quote: Quote) -> tuple[Quote, str]:
        raise NotImplementedError

    def post(self, request, public_id):
        quote = access_quote(user=request.user, public_id=public_id, for_edit=True)
        try:
            quote, message = self.act(request, quote)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, message)
        return redirect("customers:quote-detail", public_id=quote.public_id)


class QuoteSendView(QuoteTransitionView):
    permission_required = ("customers.change_quote",)

    def act(self, request, quote):
        quote = quote_send(user=request.user, quote=quote)
        return quote, f"Quote v{quote.version} is sent; its PDF is being prepared and will be kept as sent."


class QuoteAcceptView(QuoteTransitionView):
    permission_required = ("customers.change_quote",)

    def act(self, request, quote):
        form = f.QuoteAcceptForm(request.POST)
        signatory = form.cleaned_data["customer_signatory"] if form.is_valid() else ""
        quote = quote_accept(user=request.user, quote=quote, customer_signatory=signatory)
        return quote, f"Quote v{quote.version} is accepted. Mark the deal won to start its project."


class QuoteNewVersionView(QuoteTransitionView):
    permission_required = ("customers.add_quote",)

    def act(self, request, quote):
        copy = quote_new_version(user=request.user, quote=quote)
        return copy, f"Version {copy.version} was created as a draft from version {quote.version}."


class QuotePdfView(Guarded):
    """The stored PDF, exactly as sent. 404 while there is none (a draft, or the task has not run yet)."""

    permission_required = ("customers.view_quote",)

    def get(self, request, public_id):
        quote = access_quote(user=request.user, public_id=public_id)
        if not quote.pdf:
            raise Http404("This quote has no PDF yet.")
        filename = f"{quote.deal.number}-v{quote.version}.pdf"
        return stored_file_response(
            quote.pdf, filename=filename, content_type="application/pdf", missing="The PDF file is missing."
        )


class QuoteAttachmentAddView(Guarded):
    permission_required = ("customers.add_quoteattachment",)
    writes = True

    def post(self, request, public_id):
        quote = access_quote(user=request.user, public_id=public_id, for_edit=True)
        form = f.QuoteAttachmentForm(request.POST, request.FILES)
        if not form.is_valid():
            problems = [m for field_errors in form.errors.values() for m in field_errors]
            messages.error(request, "The file was not attached. " + " ".join(problems))
        else:
            try:
                attachment = quote_attachment_add(
                    user=request.user, quote=quote, kind=form.cleaned_data["kind"], upload=form.cleaned_data["file"]
                )
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, f"{attachment.filename} was attached.")
        return redirect(reverse("customers:quote-detail", args=[quote.public_id]) + "#attachments")


class QuoteAttachmentDownloadView(Guarded):
    """An attachment, for whoever may see its quote; served through this view, never from the media URL."""

    permission_required = ("customers.view_quoteattachment",)

    def get(self, request, public_id):
        attachment = access_quote_attachment(user=request.user, public_id=public_id)
        return stored_file_response(attachment.file, filename=attachment.filename, content_type=attachment.content_type)


class QuoteAttachmentDeleteView(Guarded):
    permission_required = ("customers.delete_quoteattachment",)
    writes = True

    def post(self, request, public_id):
        attachment = access_quote_attachment(user=request.user, public_id=public_id, for_edit=True)
        quote, name = attachment.quote, attachment.filename
        try:
            quote_attachment_remove(user=request.user, attachment=attachment)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{name} was removed.")
        return redirect(reverse("customers:quote-detail", args=[quote.public_id]) + "#attachments")
