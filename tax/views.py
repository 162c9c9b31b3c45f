"""Pages of the tax app: the rate table and each jurisdiction's rates, adding a rate, trying a tax decision,
and the stored evidence of calculations.

Thin on purpose: parse the request, check access through the selectors, call one service, render. Every
view declares the model permissions it needs (signed out → login, missing permission → 403); auditors are
refused on pages that change data. The display helpers (``rate_text``, ``money_text``, ``_result_display``)
only turn values into what a page prints: rates without trailing zeros, money by locale, rules explained.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import get_language
from django_countries import countries

from backbone.errors import DomainError
from backbone.money import MoneyError, format_money
from backbone.roles import is_read_only
from backbone.views import Guarded
from tax.categories import TaxCategory
from tax.context import LineKind, TaxContext, TaxResult
from tax.rates import RATE_KINDS, clean_rate, load_rate_file
from tax.rules import RULES
from tax.selectors import (
    access_calculation,
    access_jurisdiction,
    calculations_visible_to,
    rate_data_version,
    rate_table,
    rates_of,
)
from tax.services import tax_preview, tax_rate_create

from . import forms as f
from .models import TaxRate

PAGE_SIZE = 25
KIND_LABELS = dict(RATE_KINDS)
KIND_ORDER = {kind: index for index, (kind, _) in enumerate(RATE_KINDS)}
CATEGORY_LABELS = {category.value: category.label for category in TaxCategory}
LINE_KIND_LABELS = dict(LineKind.CHOICES)


def _can_add_rate(user) -> bool:
    return user.has_perm("tax.add_taxrate") and not is_read_only(user)


def _htmx_partial(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


# --- display helpers -----------------------------------------------------------------------------------


def rate_text(rate: Decimal) -> str:
    """19.000 → "19", 25.500 → "25.5"."""
    return str(clean_rate(rate))


def money_text(amount: Decimal | str, currency: str) -> str:
    try:
        return format_money(amount, currency, locale=(get_language() or "en").replace("-", "_"))
    except (MoneyError, ValueError, InvalidOperation):
        return f"{amount} {currency}"


def country_text(code: str) -> str:
    if not code:
        return ""
    name = countries.name(code)
    return f"{code} — {name}" if name else code


@cache
def rate_sources() -> dict[str, Any]:
    """What the shipped rate data file says about itself: its description and the sources its rows cite."""
    try:
        data = load_rate_file()
    except (OSError, ValueError):
        return {"version": "", "as_of": "", "description": "", "sources": {}}
    return {
        "version": data.get("version", ""),
        "as_of": data.get("as_of", ""),
        "description": data.get("description", ""),
        "sources": {item["id"]: item for item in data.get("sources", []) if "id" in item},
    }


@dataclass(frozen=True)
class RateCell:
    kind: str
    label: str
    rate: TaxRate | None

    @property
    def text(self) -> str:
        return rate_text(self.rate.rate) if self.rate else ""


def _changes_text(changes: list[TaxRate], year: int) -> list[str]:
    """What changed in ``year``, e.g. "Standard 24 % from 2025-07-01"; a rate that ends in the year without a
    successor of its kind the next day reads "… ends on …"."""
    starts = {(rate.kind, rate.valid_from) for rate in changes}
    texts = []
    for rate in sorted(changes, key=lambda r: (r.valid_from, KIND_ORDER.get(r.kind, 99))):
        label = f"{KIND_LABELS.get(rate.kind, rate.kind)} {rate_text(rate.rate)} %"
        starts_in_year = rate.valid_from.year == year
        ends_in_year = rate.valid_to is not None and rate.valid_to.year == year
        successor = rate.valid_to is not None and (rate.kind, rate.valid_to + dt.timedelta(days=1)) in starts
        if starts_in_year and ends_in_year:
            texts.append(f"{label} from {rate.valid_from} to {rate.valid_to}")
        elif starts_in_year:
            texts.append(f"{label} from {rate.valid_from}")
        elif ends_in_year and not successor:
            texts.append(f"{label} ends on {rate.valid_to}")
    return texts


def _result_display(result: TaxResult, *, descriptions: dict[str, str] | None = None) -> dict[str, Any]:
    """A ``TaxResult`` as the preview and the evidence pages print it."""
    currency = result.currency
    descriptions = descriptions or {}
    lines = [
        {
            "id": line.line_id,
            "description": descriptions.get(line.line_id, ""),
            "kind": LINE_KIND_LABELS.get(line.kind, line.kind),
            "net": money_text(line.net_amount, currency),
            "category": line.category,
            "category_label": CATEGORY_LABELS.get(line.category, line.category),
            "rate": rate_text(line.rate),
            "place_of_supply": country_text(line.place_of_supply),
            "rule": line.rule,
            "rule_text": RULES.get(line.rule, ""),
            "exemption_reason_code": line.exemption_reason_code,
            "exemption_reason": line.exemption_reason,
        }
        for line in result.lines
    ]
    breakdown = [
        {
            "category": row.category,
            "category_label": CATEGORY_LABELS.get(row.category, row.category),
            "rate": rate_text(row.rate),
            "taxable": money_text(row.taxable_amount, currency),
            "tax": money_text(row.tax_amount, currency),
            "exemption_reason_code": row.exemption_reason_code,
            "exemption_reason": row.exemption_reason,
        }
        for row in result.breakdown
    ]
    return {
        "currency": currency,
        "lines": lines,
        "breakdown": breakdown,
        "net": money_text(result.net_amount, currency),
        "tax": money_text(result.tax_amount, currency),
        "gross": money_text(result.gross_amount, currency),
        "place_of_supply": country_text(result.place_of_supply),
        "legal_notes": list(result.legal_notes),
        "warnings": list(result.warnings),
        "rules": [(rule, RULES.get(rule, "")) for rule in result.rules_fired],
        "engine": result.engine,
        "engine_version": result.engine_version,
        "rate_data_version": result.rate_data_version,
    }


# --- rates -----------------------------------------------------------------------------------------------


class RateTableView(Guarded):
    """Every jurisdiction with the rate of each kind in force on a day; two queries whatever the rows."""

    permission_required = ("tax.view_taxrate",)

    def get(self, request):
        today = timezone.localdate()
        form = f.RateTableFilterForm(request.GET or None)
        on, country, eu_only, problems = today, None, False, []
        if form.is_bound:
            form.is_valid()
            if "on" in form.errors:
                problems.append(
                    f"“{request.GET.get('on')}” is not a date (YYYY-MM-DD); showing the rates in force today, {today}."
                )
            on = form.cleaned_data.get("on") or today
            if "country" in form.errors:
                problems.append(f"No jurisdiction “{request.GET.get('country')}” is known; showing every country.")
            country = form.cleaned_data.get("country")
            eu_only = bool(form.cleaned_data.get("eu_only"))
        code = country.country if country else ""
        shown = f.RateTableFilterForm(initial={"on": on, "country": code, "eu_only": eu_only})
        rows = [
            {
                "jurisdiction": row.jurisdiction,
                "cells": [RateCell(kind, label, row.rates.get(kind)) for kind, label in RATE_KINDS],
                "changes": _changes_text(row.changes, on.year),
            }
            for row in rate_table(on=on, country=code, eu_only=eu_only)
        ]
        context = {
            "form": shown,
            "rows": rows,
            "kinds": RATE_KINDS,
            "on": on,
            "is_today": on == today,
            "is_filtered": bool(country or eu_only),
            "problems": problems,
            "rate_data_version": rate_data_version(),
            "data_file": rate_sources(),
            "can_add": _can_add_rate(request.user),
            "can_view_evidence": request.user.has_perm("tax.view_taxcalculation"),
        }
        template = "tax/partials/rate_table.html" if _htmx_partial(request) else "tax/rate_table.html"
        response = render(request, template, context)
        patch_vary_headers(response, ("HX-Request",))
        return response


def _cited_source(rate: TaxRate, sources: dict[str, dict]) -> dict | None:
    """The data file's source a shipped rate cites: its reference reads "<file> <version> / <source id>"."""
    if rate.source != TaxRate.Source.DATA_FILE:
        return None
    return sources.get(rate.source_reference.rsplit(" / ", 1)[-1].strip())


class JurisdictionDetailView(Guarded):
    """Every rate of one jurisdiction over time, with where it comes from."""

    permission_required = ("tax.view_taxrate",)

    def get(self, request, country):
        jurisdiction = access_jurisdiction(country=country)
        today = timezone.localdate()
        sources = rate_sources()["sources"]
        rates = sorted(rates_of(jurisdiction=jurisdiction), key=lambda r: (KIND_ORDER.get(r.kind, 99), r.valid_from))
        rows = [
            {
                "rate": rate,
                "kind": KIND_LABELS.get(rate.kind, rate.kind),
                "text": rate_text(rate.rate),
                "in_force": rate.valid_from <= today and (rate.valid_to is None or today <= rate.valid_to),
                "future": rate.valid_from > today,
                "source": _cited_source(rate, sources),
            }
            for rate in rates
        ]
        standard = [rate for rate in rates if rate.kind == "standard"]
        chart = []
        for rate in standard:
            chart.append({"x": rate.valid_from.isoformat(), "y": rate_text(rate.rate)})
        if standard:
            last = standard[-1]
            end = last.valid_to or max(today, last.valid_from + dt.timedelta(days=365))
            chart.append({"x": end.isoformat(), "y": rate_text(last.rate)})
        context = {
            "jurisdiction": jurisdiction,
            "rows": rows,
            "in_force": [row for row in rows if row["in_force"]],
            "chart": chart,
            "chart_summary": ", ".join(f"{rate_text(r.rate)} % from {r.valid_from}" for r in standard),
            "today": today,
            "rate_data_version": rate_data_version(),
            "can_add": _can_add_rate(request.user),
        }
        return render(request, "tax/jurisdiction_detail.html", context)


class TaxRateCreateView(Guarded):
    """Add a rate; an open rate of the same kind in force before it ends the day before (the service)."""

    permission_required = ("tax.add_taxrate",)
    writes = True
    template_name = "tax/rate_form.html"

    def get(self, request):
        country = (request.GET.get("country") or "").strip().upper()[:2]
        form = f.TaxRateForm(initial={"country": country} if country else None)
        return render(request, self.template_name, {"form": form})

    def post(self, request):
        form = f.TaxRateForm(request.POST)
        if not form.is_valid():
            return render(request, self.template_name, {"form": form}, status=400)
        data = form.service_data()
        jurisdiction = form.cleaned_data["country"]
        before = {rate.pk: rate.valid_to for rate in rates_of(jurisdiction=jurisdiction).filter(kind=data["kind"])}
        try:
            created = tax_rate_create(actor=request.user, **data)
        except DomainError as exc:
            f.apply_errors(exc.errors or {"__all__": [exc.message]}, form)
            context = {"form": form, "summary": exc.message}
            return render(request, self.template_name, context, status=exc.status_code)
        closed = [
            rate
            for rate in rates_of(jurisdiction=jurisdiction).filter(pk__in=before)
            if rate.valid_to != before[rate.pk]
        ]
        label = KIND_LABELS[created.kind].lower()
        window = f"from {created.valid_from}" + (f" to {created.valid_to}" if created.valid_to else "")
        message = f"{jurisdiction.name}: the {label} rate of {rate_text(created.rate)} % {window} was added."
        for rate in closed:
            message += (
                f" The previous {label} rate of {rate_text(rate.rate)} % (in force from {rate.valid_from}) "
                f"now ends on {rate.valid_to}, the day before."
            )
        messages.success(request, message)
        return redirect("tax:jurisdiction-detail", country=jurisdiction.country)


# --- preview ---------------------------------------------------------------------------------------------


class TaxPreviewView(Guarded):
    """Try a tax decision: nothing is stored. With htmx only the result panel is swapped (and the form too,
    out of band, when it shows or showed errors); without JavaScript the whole page is posted and rendered."""

    permission_required = ("tax.preview_tax",)

    def get(self, request):
        form = f.PreviewForm(today=timezone.localdate())
        lines = f.line_formset()(prefix="lines")
        return self._render(request, form=form, lines=lines)

    def post(self, request):
        form = f.PreviewForm(request.POST, today=timezone.localdate())
        lines = f.line_formset()(request.POST, prefix="lines")
        result, summary, problems = None, "", []
        if all([form.is_valid(), lines.is_valid()]):  # both, so every error shows at once
            rows, sent = lines.rows()
            try:
                context = TaxContext.from_dict(form.context_data(rows))
                answer = tax_preview(context=context)
            except DomainError as exc:
                errors = exc.errors or {"__all__": [exc.message]}
                form.apply_errors(errors, lines, sent)
                problems = [str(m) for messages_ in errors.values() for m in _as_list(messages_)]
                many = len(problems) > 1
                summary = f"The tax was not calculated: {len(problems)} problems to fix." if many else exc.message
            else:
                descriptions = {row["id"]: row["description"] for row in rows}
                result = _result_display(answer, descriptions=descriptions)
        else:
            summary = "The tax was not calculated. Please correct the fields marked below."
        return self._render(request, form=form, lines=lines, result=result, summary=summary, problems=problems)

    def _render(self, request, *, form, lines, result=None, summary="", problems=()) -> HttpResponse:
        has_errors = bool(form.errors or any(row.errors for row in lines.forms) or lines.all_errors())
        context = {
            "form": form,
            "lines": lines,
            "result": result,
            "summary": summary,
            "problems": list(problems) if len(problems) > 1 else [],
            "has_errors": has_errors,
            # The form is re-sent out of band when it must show errors or clear the ones it showed.
            "swap_form": has_errors or bool(request.POST.get("errors_shown")),
            "rate_data_version": rate_data_version(),
        }
        template = "tax/partials/preview_response.html" if _htmx_partial(request) else "tax/preview.html"
        response = render(request, template, context)
        patch_vary_headers(response, ("HX-Request",))
        return response


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


# --- evidence ------------------------------------------------------------------------------------------


class CalculationListView(Guarded):
    permission_required = ("tax.view_taxcalculation",)

    def get(self, request):
        queryset = calculations_visible_to(user=request.user).order_by("-created_at", "-id")
        page_obj = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
        for calculation in page_obj.object_list:
            calculation.net_text = money_text(calculation.net_amount, calculation.currency)
            calculation.tax_text = money_text(calculation.tax_amount, calculation.currency)
            calculation.place_text = country_text(calculation.place_of_supply)
        context = {"page_obj": page_obj, "calculations": page_obj.object_list}
        return render(request, "tax/calculation_list.html", context)


class CalculationDetailView(Guarded):
    permission_required = ("tax.view_taxcalculation",)

    def get(self, request, public_id):
        calculation = access_calculation(user=request.user, public_id=public_id)
        try:
            result = TaxResult.from_dict(calculation.result)
        except (KeyError, TypeError, ValueError, InvalidOperation):
            result = None  # stored by another engine in another shape: the raw JSON below still shows it
        lines = calculation.context.get("lines", []) if isinstance(calculation.context, dict) else []
        descriptions = {str(row.get("id")): row.get("description", "") for row in lines if isinstance(row, dict)}
        context = {
            "calculation": calculation,
            "result": _result_display(result, descriptions=descriptions) if result else None,
            "rules": [(rule, RULES.get(rule, "")) for rule in calculation.rules_fired],
            "context_json": json.dumps(calculation.context, indent=2, sort_keys=True, ensure_ascii=False),
            "result_json": json.dumps(calculation.result, indent=2, sort_keys=True, ensure_ascii=False),
            "net_text": money_text(calculation.net_amount, calculation.currency),
            "tax_text": money_text(calculation.tax_amount, calculation.currency),
            "place_text": country_text(calculation.place_of_supply),
        }
        return render(request, "tax/calculation_detail.html", context)
