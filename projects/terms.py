"""The contract terms JSON: what a contract version freezes, how change orders amend it, and what changed.

``ContractVersion.terms`` is the complete frozen offer, in one canonical JSON form (Decimals as strings with
a fixed number of places, dates ISO), so that its SHA-256 (``terms_sha256``) is stable::

    {"schema": 1,
     "project": {name, currency, language, planned_start, planned_end, po_number, po_required, portal_required,
                 payment_terms_days},
     "customer": {public_id, number, legal_name}, "legal_entity": {public_id, legal_name},
     "quote": {public_id, deal_number, version, valid_until, terms, customer_signatory, accepted_at} | null,
     "lines": [{key, description, phase, billing_model, labour_category, quantity, unit, unit_price,
                discount_percent, net_amount, tax_category, supply_kind, product_code}],
     "tax": TaxResult.to_dict() of the quote lines at the win | null,
     "rate_card": [{labour_category, rate, currency, effective_from}],
     "budget": [{key, kind, labour_category, description, hours, rate, amount}],
     "milestones": [{key, name, phase, planned_date, baseline_date, amount, acceptance_criteria}],
     "billing_rules": [{model, retainer_amount, markup_percent}],
     "attachments": [{public_id, kind, filename, sha256, size, content_type}]}

Keys are stable across versions: budget lines ``labour:<category>`` (time & materials), ``fixed:<slug>``
(fixed-fee scope), ``expenses:<slug>``, ``retainer:<slug>``, ``other:<slug>`` (non-labour added later);
milestones ``milestone:<n>``. The milestone amounts of a project with fixed-fee scope (``fixed:`` lines) add
up to the fixed fee, always.

Nothing here touches the database: the services read the models, call these functions and write the rows.
Every refusal is a ``ValidationFailed`` with flat keys (``changes.2.rate``, ``lines.0.labour_category``).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils.text import slugify

from backbone.errors import ValidationFailed
from backbone.money import format_money, minor_units, quantize
from customers.models import BillingModel, UnitCode
from tax.context import canonical_json

SCHEMA_VERSION = 1

BUDGET_KINDS = ("labour", "non_labour")
BILLING_MODELS = tuple(BillingModel.values)
# Operations that change what the customer is charged per unit or how: finance approves them.
BILLING_TERM_OPS = frozenset({"rate.set", "billing_rule.set", "billing_rule.remove"})
OPS: dict[str, tuple[str, ...]] = {
    # op → the fields it takes (besides "op")
    "budget_line.add": ("kind", "labour_category", "description", "hours", "rate", "amount", "fixed_fee"),
    "budget_line.change": ("key", "kind", "labour_category", "description", "hours", "rate", "amount"),
    "budget_line.remove": ("key",),
    "rate.set": ("labour_category", "rate", "effective_from"),
    "milestone.add": ("name", "phase", "planned_date", "amount", "acceptance_criteria"),
    "milestone.move": ("key", "planned_date"),
    "milestone.change": ("key", "name", "phase", "planned_date", "amount", "acceptance_criteria"),
    "milestone.remove": ("key",),
    "end_date.set": ("planned_end",),
    "billing_rule.set": ("model", "retainer_amount", "markup_percent"),
    "billing_rule.remove": ("model",),
}
KEY_MAX = 40  # BudgetLine.key and Milestone.key
_SLUG_MAX = 28  # leaves room for the prefix and a "-NN" suffix within KEY_MAX

HOURS_PLACES = 2
RATE_PLACES = 4
PERCENT_PLACES = 2
PERCENT_MAX = Decimal("9999.99")  # BillingRule.markup_percent: max_digits=6, decimal_places=2


# --- canonical form and digest ------------------------------------------------------------------------


def terms_sha256(terms: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, compact, UTF-8), as ``tax.context.canonical_json`` writes it."""
    return hashlib.sha256(canonical_json(terms).encode()).hexdigest()


def fixed(value: Decimal, places: int) -> str:
    """A Decimal as a string with exactly ``places`` decimals (the one textual form, so digests are stable)."""
    return format(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP), "f")


def money_str(value: Decimal, currency: str) -> str:
    return format(quantize(value, currency), "f")


def _date_str(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def _day(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def slug_key(prefix: str, text: str, taken: Iterable[str], *, fallback: str = "line") -> str:
    """``prefix:slug`` made unique among ``taken`` with ``-2``, ``-3``… and kept within ``KEY_MAX``."""
    base = slugify(text)[:_SLUG_MAX].strip("-") or fallback
    taken = set(taken)
    key, n = f"{prefix}:{base}", 2
    while key in taken:
        key, n = f"{prefix}:{base}-{n}", n + 1
    return key[:KEY_MAX]


# --- reading input --------------------------------------------------------------------------------------


class _Reader:
    """Cleans user input into the canonical form; collects messages under flat keys."""

    def __init__(self, currency: str) -> None:
        self.currency = currency
        self.errors: dict[str, list[str]] = {}

    def error(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    def raise_if_any(self, summary: str) -> None:
        if self.errors:
            key, messages = next(iter(self.errors.items()))
            count = sum(len(m) for m in self.errors.values())
            more = f" (and {count - 1} more problem{'s' if count > 2 else ''})" if count > 1 else ""
            raise ValidationFailed(f"{summary} {key}: {messages[0]}{more}".strip(), errors=self.errors)

    def decimal(
        self,
        row: Mapping[str, Any],
        field: str,
        key: str,
        *,
        places: int,
        required: bool = True,
        minimum: Decimal | None = Decimal("0"),
        maximum: Decimal | None = None,
        label: str = "",
    ) -> Decimal | None:
        label = label or field.replace("_", " ")
        value = row.get(field)
        if value is None or value == "":
            if required:
                self.error(key, f"Enter the {label}.")
            return None
        if isinstance(value, (bool, float)):
            self.error(key, f'Give the {label} as a decimal string such as "150.00", not as a JSON float.')
            return None
        try:
            number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            self.error(key, f"'{value}' is not a number.")
            return None
        if not number.is_finite():
            self.error(key, f"'{value}' is not a number.")
            return None
        if minimum is not None and number < minimum:
            self.error(key, f"The {label} cannot be below {minimum}.")
            return None
        if maximum is not None and number > maximum:
            self.error(key, f"The {label} cannot be above {maximum}.")
            return None
        if -number.as_tuple().exponent > places and number != number.quantize(Decimal(1).scaleb(-places)):
            self.error(key, f"The {label} has at most {places} decimal places.")
            return None
        if abs(number) >= Decimal(10) ** 16:
            self.error(key, f"The {label} is too large.")
            return None
        return number.quantize(Decimal(1).scaleb(-places))

    def amount(self, row, field, key, *, required: bool = True, label: str = "") -> Decimal | None:
        return self.decimal(row, field, key, places=minor_units(self.currency), required=required, label=label)

    def date(self, row: Mapping[str, Any], field: str, key: str, *, required: bool = True) -> dt.date | None:
        value = row.get(field)
        if value in (None, ""):
            if required:
                self.error(key, f"Enter the {field.replace('_', ' ')} (YYYY-MM-DD).")
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            self.error(key, f"'{value}' is not a date; use YYYY-MM-DD.")
            return None

    def text(
        self, row: Mapping[str, Any], field: str, key: str, *, max_length: int, required: bool = False, label: str = ""
    ) -> str:
        value = row.get(field)
        text = "" if value is None else str(value).strip()
        if required and not text:
            self.error(key, f"Enter the {label or field.replace('_', ' ')}.")
        elif len(text) > max_length:
            self.error(key, f"At most {max_length} characters ({len(text)} given).")
        return text

    def fields(self, row: Mapping[str, Any], allowed: Iterable[str], at: str) -> None:
        for name in row:
            if name != "op" and name not in allowed:
                self.error(f"{at}.{name}", f"Unknown field '{name}'; this change takes {', '.join(allowed)}.")


# --- building the terms ----------------------------------------------------------------------------------


def project_terms(project: Any) -> dict[str, Any]:
    """The ``project`` part, from a Project instance (saved or not)."""
    return {
        "name": project.name,
        "currency": project.currency,
        "language": project.language,
        "planned_start": _date_str(project.planned_start),
        "planned_end": _date_str(project.planned_end),
        "po_number": project.po_number,
        "po_required": bool(project.po_required),
        "portal_required": bool(project.portal_required),
        "payment_terms_days": int(project.payment_terms_days),
    }


def _skeleton(project: Any, *, customer: Any, legal_entity: Any) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "project": project_terms(project),
        "customer": {
            "public_id": str(customer.public_id),
            "number": customer.number,
            "legal_name": customer.legal_name,
        },
        "legal_entity": {"public_id": str(legal_entity.public_id), "legal_name": legal_entity.legal_name},
        "quote": None,
        "lines": [],
        "tax": None,
        "rate_card": [],
        "budget": [],
        "milestones": [],
        "billing_rules": [],
        "attachments": [],
    }


def quote_line_rate(line: Any) -> Decimal:
    """The hourly rate a time & materials line sells: its unit price less its discount (4 places, half up)."""
    discount = Decimal(line.discount_percent or 0)
    rate = Decimal(line.unit_price) * (Decimal(100) - discount) / Decimal(100)
    return rate.quantize(Decimal(1).scaleb(-RATE_PLACES), rounding=ROUND_HALF_UP)


_LINE_PREFIX = {
    BillingModel.TIME_AND_MATERIALS: "labour",
    BillingModel.FIXED_FEE: "fixed",
    BillingModel.EXPENSES: "expenses",
    BillingModel.RETAINER: "retainer",
}


def quote_terms(
    *,
    project: Any,
    quote: Any,
    lines: Sequence[Any],
    milestones: Sequence[Any],
    attachments: Sequence[Any],
    tax: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Version 1 from the accepted quote: prices, discounts, tax treatment, terms and attachments, frozen.

    Time & materials lines give the rate card (one rate per labour category, from the project's planned
    start) and labour budget lines (hours = quantity); fixed-fee lines give budget lines (labour when they
    name a labour category) and the quote's milestones carry the fee; expenses and retainer lines give
    budget lines too, so that the budget is the whole value sold. Billing rules follow the billing models
    of the lines (retainer: the quote's monthly retainer; expenses: its markup).
    """
    deal = quote.deal
    currency = project.currency
    terms = _skeleton(project, customer=deal.customer, legal_entity=deal.legal_entity)
    reader = _Reader(currency)
    start, end = project.planned_start, project.planned_end
    terms["quote"] = {
        "public_id": str(quote.public_id),
        "deal_number": deal.number,
        "version": quote.version,
        "valid_until": _date_str(quote.valid_until),
        "terms": quote.terms,
        "customer_signatory": quote.customer_signatory,
        "accepted_at": quote.accepted_at.isoformat() if quote.accepted_at else None,
    }
    rates: dict[str, tuple[Decimal, int]] = {}
    keys: list[str] = []
    models_used: set[str] = set()
    for index, line in enumerate(lines):
        at = f"lines.{index}"
        model = line.billing_model
        models_used.add(model)
        category = (line.labour_category or "").strip()
        net = Decimal(line.net_amount)
        budget: dict[str, Any] = {"labour_category": category, "hours": None, "rate": None}
        if model == BillingModel.TIME_AND_MATERIALS:
            if not category:
                reader.error(
                    f"{at}.labour_category",
                    f"Line {index + 1} ('{line.description}') is time & materials but names no labour category; "
                    "the rate card needs one.",
                )
            if line.unit != UnitCode.HOUR:
                reader.error(
                    f"{at}.unit",
                    f"Line {index + 1} ('{line.description}') is time & materials priced per {line.unit}; "
                    "rate cards are hourly, so price it per hour (HUR).",
                )
            rate = quote_line_rate(line)
            seen = rates.get(category.lower())
            if category and seen is not None and seen[0] != rate:
                reader.error(
                    f"{at}.unit_price",
                    f"{category} is sold at {fixed(seen[0], RATE_PLACES)} on line {seen[1] + 1} and at "
                    f"{fixed(rate, RATE_PLACES)} here; a labour category has one rate.",
                )
            elif category and seen is None:
                rates[category.lower()] = (rate, index)
                terms["rate_card"].append(
                    {
                        "labour_category": category,
                        "rate": fixed(rate, RATE_PLACES),
                        "currency": currency,
                        "effective_from": _date_str(start),
                    }
                )
            budget.update(kind="labour", hours=fixed(Decimal(line.quantity), HOURS_PLACES), rate=rate)
            text = category or line.description
        elif model in (BillingModel.FIXED_FEE, BillingModel.RETAINER):
            budget["kind"] = "labour" if category else "non_labour"
            if category and line.unit == UnitCode.HOUR:
                budget["hours"] = fixed(Decimal(line.quantity), HOURS_PLACES)
            text = category or line.description
        else:  # expenses
            budget.update(kind="non_labour", labour_category="")
            text = line.description
        key = slug_key(_LINE_PREFIX[BillingModel(model)], text, keys, fallback=f"line-{index + 1}")
        keys.append(key)
        terms["lines"].append(
            {
                "key": key,
                "description": line.description,
                "phase": line.phase,
                "billing_model": model,
                "labour_category": category,
                "quantity": fixed(Decimal(line.quantity), 4),
                "unit": line.unit,
                "unit_price": fixed(Decimal(line.unit_price), 4),
                "discount_percent": fixed(Decimal(line.discount_percent or 0), PERCENT_PLACES),
                "net_amount": money_str(net, currency),
                "tax_category": line.tax_category,
                "supply_kind": line.supply_kind,
                "product_code": line.product.code if line.product_id else "",
            }
        )
        terms["budget"].append(
            {
                "key": key,
                "kind": budget["kind"],
                "labour_category": budget["labour_category"],
                "description": line.description[:200],
                "hours": budget["hours"],
                "rate": fixed(budget["rate"], RATE_PLACES) if budget["rate"] is not None else None,
                "amount": money_str(net, currency),
            }
        )
    for index, milestone in enumerate(milestones):
        planned = milestone.planned_date
        if start and planned < start:
            reader.error(
                "planned_start",
                f"Milestone '{milestone.name}' is planned for {planned.isoformat()}, before the planned start.",
            )
        if end and planned > end:
            reader.error(
                "planned_end",
                f"Milestone '{milestone.name}' is planned for {planned.isoformat()}, after the planned end.",
            )
        terms["milestones"].append(
            {
                "key": f"milestone:{index + 1}",
                "name": milestone.name,
                "phase": milestone.phase,
                "planned_date": planned.isoformat(),
                "baseline_date": planned.isoformat(),
                "amount": money_str(Decimal(milestone.amount), currency),
                "acceptance_criteria": milestone.acceptance_criteria,
            }
        )
    for model in BILLING_MODELS:
        if model not in models_used:
            continue
        rule = {"model": model, "retainer_amount": money_str(Decimal(0), currency), "markup_percent": "0.00"}
        if model == BillingModel.RETAINER:
            if not quote.retainer_amount or Decimal(quote.retainer_amount) <= 0:
                reader.error("quote", "The quote has retainer lines but no monthly retainer amount.")
            rule["retainer_amount"] = money_str(Decimal(quote.retainer_amount or 0), currency)
        if model == BillingModel.EXPENSES:
            rule["markup_percent"] = fixed(Decimal(quote.expense_markup_percent or 0), PERCENT_PLACES)
        terms["billing_rules"].append(rule)
    terms["attachments"] = [
        {
            "public_id": str(a.public_id),
            "kind": a.kind,
            "filename": a.filename,
            "sha256": a.sha256,
            "size": a.size,
            "content_type": a.content_type,
        }
        for a in attachments
    ]
    terms["tax"] = canonical(tax) if tax is not None else None
    problem = fixed_fee_problem(terms)
    if problem:
        reader.error("quote", problem)
    reader.raise_if_any("The quote cannot be frozen into a contract:")
    return canonical(terms)


def manual_terms(
    *,
    project: Any,
    customer: Any,
    legal_entity: Any,
    rate_card: Sequence[Mapping[str, Any]],
    budget: Sequence[Mapping[str, Any]],
    milestones: Sequence[Mapping[str, Any]],
    billing_rules: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Version 1 of a project created by hand: the same shape, built through the change-order cleaners so
    that one rule has one message (errors under ``rate_card.0.rate``, ``budget.1.amount``…)."""
    terms = _skeleton(project, customer=customer, legal_entity=legal_entity)
    reader = _Reader(project.currency)
    if not isinstance(rate_card, Sequence) or isinstance(rate_card, str):
        rate_card = []
    applier = _Applier(terms, reader, effective_from=project.planned_start, accepted=frozenset())
    for index, row in enumerate(rate_card):
        row = dict(row)
        row.setdefault("effective_from", project.planned_start)
        applier.apply_row("rate.set", row, f"rate_card.{index}")
    for index, row in enumerate(budget):
        applier.apply_row("budget_line.add", dict(row), f"budget.{index}")
    for index, row in enumerate(milestones):
        applier.apply_row("milestone.add", dict(row), f"milestones.{index}")
    for index, row in enumerate(billing_rules):
        applier.apply_row("billing_rule.set", dict(row), f"billing_rules.{index}")
    if not billing_rules:
        reader.error("billing_rules", "Add at least one billing rule: how is the project billed?")
    applier.finish(plan_key="milestones")
    reader.raise_if_any("The project was not saved.")
    return canonical(terms)


def canonical(data: Any) -> Any:
    """The plain JSON form (Decimals and dates as strings) that is stored and digested."""
    return json.loads(canonical_json(data))


# --- reading the terms -----------------------------------------------------------------------------------


def budget_total(terms: Mapping[str, Any]) -> Decimal:
    return sum((Decimal(line["amount"]) for line in terms.get("budget", [])), Decimal(0))


def fixed_fee_total(terms: Mapping[str, Any]) -> Decimal | None:
    """The fixed fee: the sum of the ``fixed:`` budget lines, or None when the project has no fixed-fee scope."""
    lines = [line for line in terms.get("budget", []) if line["key"].startswith("fixed:")]
    if not lines:
        return None
    return sum((Decimal(line["amount"]) for line in lines), Decimal(0))


def milestones_total(terms: Mapping[str, Any]) -> Decimal:
    return sum((Decimal(m["amount"]) for m in terms.get("milestones", [])), Decimal(0))


def fixed_fee_problem(terms: Mapping[str, Any]) -> str | None:
    fee = fixed_fee_total(terms)
    if fee is None:
        return None
    planned = milestones_total(terms)
    if planned == fee:
        return None
    currency = terms["project"]["currency"]
    return (
        f"The milestones add up to {format_money(planned, currency)} but the fixed fee is "
        f"{format_money(fee, currency)}; the milestone amounts must carry the fixed fee exactly."
    )


def rate_in_terms(terms: Mapping[str, Any], *, labour_category: str, day: dt.date) -> Decimal | None:
    """The rate of ``labour_category`` on ``day`` in these terms: the entry with the greatest
    ``effective_from`` on or before the day (labour categories compare case-insensitively)."""
    wanted = labour_category.strip().lower()
    best: tuple[dt.date, Decimal] | None = None
    for entry in terms.get("rate_card", []):
        if entry["labour_category"].strip().lower() != wanted:
            continue
        start = dt.date.fromisoformat(entry["effective_from"])
        if start <= day and (best is None or start > best[0]):
            best = (start, Decimal(entry["rate"]))
    return best[1] if best else None


def touches_billing_terms(changes: Iterable[Mapping[str, Any]]) -> bool:
    return any(isinstance(c, Mapping) and c.get("op") in BILLING_TERM_OPS for c in changes)


def slipped_milestones(older: Mapping[str, Any], newer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Milestones of ``newer`` whose planned date changed from ``older`` and now lies after their baseline."""
    before = {m["key"]: m for m in older.get("milestones", [])}
    slipped = []
    for milestone in newer.get("milestones", []):
        previous = before.get(milestone["key"])
        if previous is None or previous["planned_date"] == milestone["planned_date"]:
            continue
        if milestone["planned_date"] > milestone["baseline_date"]:
            slipped.append(milestone)
    return slipped


# --- change orders: validate and apply ---------------------------------------------------------------------


def apply_changes(
    terms: Mapping[str, Any],
    changes: Any,
    *,
    effective_from: dt.date,
    accepted_milestones: Iterable[str] = (),
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Apply change-order operations to ``terms``; returns (the new terms, the cleaned operations).

    ``terms`` is not modified. Every operation is checked against the terms as the operations before it left
    them; the end state is checked as a whole (milestones within the project's dates, the milestone plan
    adding up to the fixed fee, at least one billing rule). ``accepted_milestones`` are keys of milestones
    the customer accepted: they can no longer move, change or go.
    """
    new = copy.deepcopy(dict(terms))
    reader = _Reader(new["project"]["currency"])
    if not isinstance(changes, list):
        reader.error("changes", "The changes are a list of operations, each an object with an 'op'.")
        reader.raise_if_any("The change order is not valid:")
    applier = _Applier(new, reader, effective_from=effective_from, accepted=frozenset(accepted_milestones))
    for index, change in enumerate(changes):
        at = f"changes.{index}"
        if not isinstance(change, Mapping):
            reader.error(at, "Each change is an object with an 'op'.")
            continue
        op = change.get("op")
        if op not in OPS:
            reader.error(f"{at}.op", f"'{op}' is not a change; use one of {', '.join(OPS)}.")
            continue
        reader.fields(change, OPS[op], at)
        applier.apply_row(op, dict(change), at)
    applier.finish(plan_key="changes")
    reader.raise_if_any("The change order is not valid:")
    return canonical(new), canonical(applier.cleaned)


class _Applier:
    """Applies cleaned rows to terms in place, remembering which input touched what for end-state messages."""

    def __init__(self, terms: dict[str, Any], reader: _Reader, *, effective_from: dt.date, accepted: frozenset[str]):
        self.terms = terms
        self.reader = reader
        self.currency = terms["project"]["currency"]
        self.effective_from = effective_from
        self.accepted = accepted
        self.cleaned: list[dict[str, Any]] = []
        self.milestone_source: dict[str, str] = {}  # milestone key → input path that last set its date
        self.new_rates: list[tuple[str, dt.date]] = []  # (input path, effective_from) of rates added
        self.end_source: str | None = None

    # helpers
    def _find(self, area: str, key: Any, at: str, what: str) -> dict[str, Any] | None:
        for item in self.terms[area]:
            if item["key"] == key:
                return item
        self.reader.error(f"{at}.key", f"There is no {what} '{key}' in the current terms.")
        return None

    def _not_accepted(self, milestone: Mapping[str, Any], at: str, verb: str) -> bool:
        if milestone["key"] in self.accepted:
            self.reader.error(
                f"{at}.key", f"Milestone '{milestone['name']}' was accepted by the customer; it cannot be {verb}."
            )
            return False
        return True

    def apply_row(self, op: str, row: dict[str, Any], at: str) -> None:
        getattr(self, "_" + op.replace(".", "_"))(row, at)

    # budget lines
    def _budget_values(self, row: Mapping[str, Any], at: str, base: Mapping[str, Any] | None) -> dict | None:
        r = self.reader
        errors_before = sum(len(m) for m in r.errors.values())
        merged = {**(base or {}), **{k: v for k, v in row.items() if k != "op"}}
        kind = merged.get("kind") or ("labour" if merged.get("labour_category") else "")
        if kind not in BUDGET_KINDS:
            r.error(f"{at}.kind", "Choose the kind: labour or non_labour.")
        category = r.text(merged, "labour_category", f"{at}.labour_category", max_length=80)
        if kind == "labour" and not category:
            r.error(f"{at}.labour_category", "A labour budget line names its labour category.")
        if kind == "non_labour" and category:
            r.error(f"{at}.labour_category", "A non-labour budget line has no labour category.")
        description = r.text(merged, "description", f"{at}.description", max_length=200) or category
        if not description:
            r.error(f"{at}.description", "Describe the budget line.")
        hours = r.decimal(merged, "hours", f"{at}.hours", places=HOURS_PLACES, required=False)
        rate = r.decimal(merged, "rate", f"{at}.rate", places=RATE_PLACES, required=False)
        amount_given = "amount" in row and row.get("amount") not in (None, "")
        derived = "hours" in row or "rate" in row or base is None
        amount = r.amount(merged, "amount", f"{at}.amount", required=False)
        if hours is not None and rate is not None and derived:
            computed = quantize(hours * rate, self.currency)
            if not amount_given:
                amount = computed
            elif amount is not None and amount != computed:
                r.error(
                    f"{at}.amount",
                    f"{fixed(hours, HOURS_PLACES)} h × {fixed(rate, RATE_PLACES)} = "
                    f"{money_str(computed, self.currency)}, "
                    f"not {money_str(amount, self.currency)}; leave the amount out to have it computed.",
                )
        if amount is None and not any(k.startswith(f"{at}.amount") for k in r.errors):
            r.error(f"{at}.amount", "Enter the amount, or the hours and the rate.")
        if sum(len(m) for m in r.errors.values()) > errors_before:
            return None
        return {
            "kind": kind,
            "labour_category": category,
            "description": description,
            "hours": fixed(hours, HOURS_PLACES) if hours is not None else None,
            "rate": fixed(rate, RATE_PLACES) if rate is not None else None,
            "amount": money_str(amount, self.currency),
        }

    def _budget_line_add(self, row: dict[str, Any], at: str) -> None:
        fixed_fee = row.pop("fixed_fee", False)
        if fixed_fee not in (True, False, None, "true", "false"):
            self.reader.error(f"{at}.fixed_fee", "Say true or false.")
        values = self._budget_values(row, at, None)
        if values is None:
            return
        taken = [line["key"] for line in self.terms["budget"]]
        prefix = "fixed" if fixed_fee in (True, "true") else "labour" if values["kind"] == "labour" else "other"
        text = values["labour_category"] if prefix == "labour" else values["description"]
        key = slug_key(prefix, text, taken)
        self.terms["budget"].append({"key": key, **values})
        self.cleaned.append({"op": "budget_line.add", **values, **({"fixed_fee": True} if prefix == "fixed" else {})})

    def _budget_line_change(self, row: dict[str, Any], at: str) -> None:
        line = self._find("budget", row.get("key"), at, "budget line")
        if line is None:
            return
        changes = {k: v for k, v in row.items() if k not in ("op", "key")}
        if not changes:
            self.reader.error(at, f"Say what changes on budget line '{line['key']}'.")
            return
        values = self._budget_values(changes, at, {k: v for k, v in line.items() if k != "key"})
        if values is None:
            return
        line.update(values)
        shown = {k: values[k] for k in values if k in changes or k == "amount"}
        self.cleaned.append({"op": "budget_line.change", "key": line["key"], **shown})

    def _budget_line_remove(self, row: dict[str, Any], at: str) -> None:
        line = self._find("budget", row.get("key"), at, "budget line")
        if line is None:
            return
        self.terms["budget"].remove(line)
        self.cleaned.append({"op": "budget_line.remove", "key": line["key"]})

    # rates
    def _rate_set(self, row: dict[str, Any], at: str) -> None:
        r = self.reader
        category = r.text(row, "labour_category", f"{at}.labour_category", max_length=80, required=True)
        rate = r.decimal(row, "rate", f"{at}.rate", places=RATE_PLACES)
        start = r.date(row, "effective_from", f"{at}.effective_from")
        if not category or rate is None or start is None:
            return
        if start < self.effective_from:
            r.error(
                f"{at}.effective_from",
                f"The rate cannot start on {start.isoformat()}, before the change order takes effect "
                f"({self.effective_from.isoformat()}); rates are never rewritten backwards.",
            )
            return
        same = [e for e in self.terms["rate_card"] if e["labour_category"].strip().lower() == category.lower()]
        latest = max((e["effective_from"] for e in same), default=None)
        if latest is not None and start.isoformat() <= latest:
            r.error(
                f"{at}.effective_from",
                f"{category} already has a rate from {latest}; a new rate starts after it (earlier rates stay "
                "in the card and are never rewritten).",
            )
            return
        if same:
            category = same[0]["labour_category"]  # keep the card's spelling
        entry = {
            "labour_category": category,
            "rate": fixed(rate, RATE_PLACES),
            "currency": self.currency,
            "effective_from": start.isoformat(),
        }
        self.terms["rate_card"].append(entry)
        self.new_rates.append((at, start))
        self.cleaned.append({"op": "rate.set", **{k: entry[k] for k in ("labour_category", "rate", "effective_from")}})

    # milestones
    def _milestone_values(self, row: Mapping[str, Any], at: str, *, partial: bool) -> dict[str, Any] | None:
        r = self.reader
        errors_before = sum(len(m) for m in r.errors.values())
        values: dict[str, Any] = {}
        if not partial or "name" in row:
            values["name"] = r.text(row, "name", f"{at}.name", max_length=120, required=True)
        if not partial or "phase" in row:
            values["phase"] = r.text(row, "phase", f"{at}.phase", max_length=120)
        if not partial or "planned_date" in row:
            day = r.date(row, "planned_date", f"{at}.planned_date")
            values["planned_date"] = day.isoformat() if day else None
        if not partial or "amount" in row:
            amount = r.amount(row, "amount", f"{at}.amount", required=False)
            values["amount"] = money_str(amount or Decimal(0), self.currency)
        if not partial or "acceptance_criteria" in row:
            values["acceptance_criteria"] = r.text(
                row, "acceptance_criteria", f"{at}.acceptance_criteria", max_length=5000
            )
        if sum(len(m) for m in r.errors.values()) > errors_before:
            return None
        return values

    def _milestone_add(self, row: dict[str, Any], at: str) -> None:
        values = self._milestone_values(row, at, partial=False)
        if values is None:
            return
        numbers = [int(m["key"].split(":")[1]) for m in self.terms["milestones"] if m["key"].split(":")[-1].isdigit()]
        key = f"milestone:{max(numbers, default=0) + 1}"
        milestone = {
            "key": key,
            "name": values["name"],
            "phase": values["phase"],
            "planned_date": values["planned_date"],
            "baseline_date": values["planned_date"],
            "amount": values["amount"],
            "acceptance_criteria": values["acceptance_criteria"],
        }
        self.terms["milestones"].append(milestone)
        self.milestone_source[key] = f"{at}.planned_date"
        self.cleaned.append({"op": "milestone.add", **values})

    def _milestone_move(self, row: dict[str, Any], at: str) -> None:
        milestone = self._find("milestones", row.get("key"), at, "milestone")
        day = self.reader.date(row, "planned_date", f"{at}.planned_date")
        if milestone is None or day is None or not self._not_accepted(milestone, at, "moved"):
            return
        milestone["planned_date"] = day.isoformat()
        self.milestone_source[milestone["key"]] = f"{at}.planned_date"
        self.cleaned.append({"op": "milestone.move", "key": milestone["key"], "planned_date": day.isoformat()})

    def _milestone_change(self, row: dict[str, Any], at: str) -> None:
        milestone = self._find("milestones", row.get("key"), at, "milestone")
        if milestone is None:
            return
        values = self._milestone_values({k: v for k, v in row.items() if k not in ("op", "key")}, at, partial=True)
        if values is None or not self._not_accepted(milestone, at, "changed"):
            return
        if not values:
            self.reader.error(at, f"Say what changes on milestone '{milestone['key']}'.")
            return
        milestone.update(values)
        if "planned_date" in values:
            self.milestone_source[milestone["key"]] = f"{at}.planned_date"
        self.cleaned.append({"op": "milestone.change", "key": milestone["key"], **values})

    def _milestone_remove(self, row: dict[str, Any], at: str) -> None:
        milestone = self._find("milestones", row.get("key"), at, "milestone")
        if milestone is None or not self._not_accepted(milestone, at, "removed"):
            return
        self.terms["milestones"].remove(milestone)
        self.cleaned.append({"op": "milestone.remove", "key": milestone["key"]})

    # schedule
    def _end_date_set(self, row: dict[str, Any], at: str) -> None:
        day = self.reader.date(row, "planned_end", f"{at}.planned_end")
        if day is None:
            return
        self.terms["project"]["planned_end"] = day.isoformat()
        self.end_source = f"{at}.planned_end"
        self.cleaned.append({"op": "end_date.set", "planned_end": day.isoformat()})

    # billing rules
    def _billing_rule_set(self, row: dict[str, Any], at: str) -> None:
        r = self.reader
        model = row.get("model")
        if model not in BILLING_MODELS:
            r.error(f"{at}.model", f"'{model}' is not a billing model; use one of {', '.join(BILLING_MODELS)}.")
            return
        retainer = r.amount(row, "retainer_amount", f"{at}.retainer_amount", required=False) or Decimal(0)
        markup = r.decimal(
            row, "markup_percent", f"{at}.markup_percent", places=PERCENT_PLACES, required=False, maximum=PERCENT_MAX
        ) or Decimal(0)
        if model == BillingModel.RETAINER and retainer <= 0:
            r.error(f"{at}.retainer_amount", "A retainer rule needs the monthly retainer amount.")
            return
        if model != BillingModel.RETAINER and retainer:
            r.error(f"{at}.retainer_amount", "Only a retainer rule has a retainer amount.")
            return
        if model != BillingModel.EXPENSES and markup:
            r.error(f"{at}.markup_percent", "Only an expenses rule has a markup.")
            return
        rule = {
            "model": model,
            "retainer_amount": money_str(retainer, self.currency),
            "markup_percent": fixed(markup, 2),
        }
        rules = self.terms["billing_rules"]
        existing = next((item for item in rules if item["model"] == model), None)
        if existing is not None:
            existing.update(rule)
        else:
            rules.append(rule)
            rules.sort(key=lambda item: BILLING_MODELS.index(item["model"]))
        self.cleaned.append({"op": "billing_rule.set", **rule})

    def _billing_rule_remove(self, row: dict[str, Any], at: str) -> None:
        model = row.get("model")
        rules = self.terms["billing_rules"]
        existing = next((item for item in rules if item["model"] == model), None)
        if existing is None:
            self.reader.error(f"{at}.model", f"The project has no '{model}' billing rule.")
            return
        rules.remove(existing)
        self.cleaned.append({"op": "billing_rule.remove", "model": model})

    # the end state
    def finish(self, *, plan_key: str) -> None:
        r, project = self.reader, self.terms["project"]
        start, end = _day(project["planned_start"]), _day(project["planned_end"])
        if start and end and end < start:
            r.error(self.end_source or "planned_end", f"The planned end {end} is before the planned start {start}.")
            return
        if self.end_source and end and end < self.effective_from:
            r.error(
                self.end_source, f"The new end date {end} is before the change takes effect ({self.effective_from})."
            )
        for milestone in self.terms["milestones"]:
            day = _day(milestone["planned_date"])
            if day is None or start is None or end is None:
                continue
            if not start <= day <= end:
                where = self.milestone_source.get(milestone["key"]) or self.end_source or plan_key
                r.error(
                    where,
                    f"Milestone '{milestone['name']}' on {day} lies outside the project ({start} to {end}).",
                )
        for at, day in self.new_rates:
            if end is not None and day > end:
                r.error(f"{at}.effective_from", f"The rate would start on {day}, after the project ends ({end}).")
        problem = fixed_fee_problem(self.terms)
        if problem:
            r.error(plan_key, problem)
        if plan_key == "changes" and not self.terms["billing_rules"]:
            r.error(plan_key, "The project would have no billing rule left; set another before removing the last.")


# --- what changed between two versions -------------------------------------------------------------------


def _terms_of(version_or_terms: Any) -> Mapping[str, Any]:
    return getattr(version_or_terms, "terms", version_or_terms)


def _money(value: str | None, currency: str) -> str:
    return format_money(Decimal(value), currency) if value not in (None, "") else "—"


def _budget_text(line: Mapping[str, Any], currency: str) -> str:
    amount = _money(line["amount"], currency)
    if line.get("hours") and line.get("rate"):
        rate = _money(line["rate"], currency)
        return f"{line['description']}: {Decimal(line['hours']).normalize():f} h × {rate} = {amount}"
    if line.get("hours"):
        return f"{line['description']}: {Decimal(line['hours']).normalize():f} h, {amount}"
    return f"{line['description']}: {amount}"


def _row(area: str, change: str, key: str, text: str) -> dict[str, str]:
    return {"area": area, "change": change, "key": key, "text": text}


def version_diff(older: Any, newer: Any) -> list[dict[str, str]]:
    """What changed from ``older`` to ``newer`` (ContractVersions or terms dicts), as rows a person reads:
    ``{"area", "change", "key", "text"}`` — budget lines added, removed and changed with their amounts,
    rates added, milestones added, moved, changed and removed, the end date, billing rules."""
    old, new = _terms_of(older), _terms_of(newer)
    currency = new["project"]["currency"]
    rows: list[dict[str, str]] = []

    end_old, end_new = old["project"]["planned_end"], new["project"]["planned_end"]
    if end_old != end_new:
        rows.append(_row("schedule", "changed", "planned_end", f"End date moved from {end_old} to {end_new}."))

    before = {line["key"]: line for line in old.get("budget", [])}
    after = {line["key"]: line for line in new.get("budget", [])}
    for key, line in after.items():
        if key not in before:
            rows.append(_row("budget", "added", key, f"Budget line added — {_budget_text(line, currency)}."))
        elif line != before[key]:
            parts = []
            for field, label in (("description", "description"), ("labour_category", "labour category")):
                if line[field] != before[key][field]:
                    parts.append(f"{label} '{before[key][field]}' → '{line[field]}'")
            if line["hours"] != before[key]["hours"]:
                parts.append(f"hours {before[key]['hours'] or '—'} → {line['hours'] or '—'}")
            if line["rate"] != before[key]["rate"]:
                parts.append(f"rate {_money(before[key]['rate'], currency)} → {_money(line['rate'], currency)}")
            if line["amount"] != before[key]["amount"]:
                parts.append(f"amount {_money(before[key]['amount'], currency)} → {_money(line['amount'], currency)}")
            if line["kind"] != before[key]["kind"]:
                parts.append(f"kind {before[key]['kind']} → {line['kind']}")
            rows.append(_row("budget", "changed", key, f"Budget line '{line['description']}': {'; '.join(parts)}."))
    for key, line in before.items():
        if key not in after:
            rows.append(_row("budget", "removed", key, f"Budget line removed — {_budget_text(line, currency)}."))
    total_old, total_new = budget_total(old), budget_total(new)
    if total_old != total_new:
        rows.append(
            _row(
                "budget",
                "total",
                "budget",
                f"Total budget {format_money(total_old, currency)} → {format_money(total_new, currency)} "
                f"({'+' if total_new > total_old else ''}{format_money(total_new - total_old, currency)}).",
            )
        )

    old_rates = {(e["labour_category"], e["effective_from"]) for e in old.get("rate_card", [])}
    for entry in new.get("rate_card", []):
        if (entry["labour_category"], entry["effective_from"]) in old_rates:
            continue
        day = dt.date.fromisoformat(entry["effective_from"])
        previous = rate_in_terms(old, labour_category=entry["labour_category"], day=day)
        was = f" (was {format_money(previous, currency)})" if previous is not None else " (a new category)"
        rows.append(
            _row(
                "rate_card",
                "added",
                f"rate:{slugify(entry['labour_category'])}:{entry['effective_from']}",
                f"Rate for {entry['labour_category']}: {format_money(Decimal(entry['rate']), currency)} per hour "
                f"from {entry['effective_from']}{was}.",
            )
        )

    before = {m["key"]: m for m in old.get("milestones", [])}
    after = {m["key"]: m for m in new.get("milestones", [])}
    for key, m in after.items():
        if key not in before:
            rows.append(
                _row(
                    "milestones",
                    "added",
                    key,
                    f"Milestone added — '{m['name']}' on {m['planned_date']}, {_money(m['amount'], currency)}.",
                )
            )
            continue
        was = before[key]
        if m["planned_date"] != was["planned_date"]:
            late = " (after its baseline)" if m["planned_date"] > m["baseline_date"] else ""
            rows.append(
                _row(
                    "milestones",
                    "moved",
                    key,
                    f"Milestone '{m['name']}' moved from {was['planned_date']} to {m['planned_date']}{late}.",
                )
            )
        parts = []
        for field in ("name", "phase", "acceptance_criteria"):
            if m[field] != was[field]:
                parts.append(f"{field.replace('_', ' ')} changed")
        if m["amount"] != was["amount"]:
            parts.append(f"amount {_money(was['amount'], currency)} → {_money(m['amount'], currency)}")
        if parts:
            rows.append(_row("milestones", "changed", key, f"Milestone '{m['name']}': {'; '.join(parts)}."))
    for key, m in before.items():
        if key not in after:
            rows.append(
                _row(
                    "milestones",
                    "removed",
                    key,
                    f"Milestone removed — '{m['name']}' on {m['planned_date']}, {_money(m['amount'], currency)}.",
                )
            )

    before = {rule["model"]: rule for rule in old.get("billing_rules", [])}
    after = {rule["model"]: rule for rule in new.get("billing_rules", [])}
    labels = dict(BillingModel.choices)
    for model, rule in after.items():
        detail = _rule_text(rule, currency)
        if model not in before:
            rows.append(_row("billing_rules", "added", model, f"Billing rule added — {labels[model]}{detail}."))
        elif rule != before[model]:
            rows.append(
                _row(
                    "billing_rules",
                    "changed",
                    model,
                    f"Billing rule {labels[model]}: {_rule_text(before[model], currency).lstrip(', ') or '—'} → "
                    f"{detail.lstrip(', ') or '—'}.",
                )
            )
    for model in before:
        if model not in after:
            rows.append(_row("billing_rules", "removed", model, f"Billing rule removed — {labels[model]}."))
    return rows


def _rule_text(rule: Mapping[str, Any], currency: str) -> str:
    if rule["model"] == BillingModel.RETAINER:
        return f", {format_money(Decimal(rule['retainer_amount']), currency)} a month"
    if rule["model"] == BillingModel.EXPENSES:
        return f", markup {Decimal(rule['markup_percent']).normalize():f} %"
    return ""
