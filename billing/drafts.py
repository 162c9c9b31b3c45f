"""Editing and reviewing draft invoices: finance edits, project managers comment.

**What finance edits on a draft.** The header (PO number, printed notes, payment terms, grouping, detail
appendix), each line's client-facing description (and phase), manual lines (a catalog product or free text)
and discounts. The work on a draft is not edited: the quantities and prices of lines that bill source items
(time, expenses, milestones, retainer months) come from those items, and such lines are never deleted
(remove work by discarding the draft and running again). Grouping rebuilds the item-backed lines, rolled up
by labour category and rate (the run's own roll-up, ``billing.services``) or one line per entry, and keeps
the manual lines, and each line's custom description and phase where the line bills the same items as
before.

**Only drafts.** Issued invoices never change; approved ones are sent back to draft first
(``billing.issuing.invoice_return_to_draft``). A draft with a first approval waiting for the second one is
still a draft: editing it clears that approval (the amount approved is no longer the amount of the lines),
and the history says "approval cleared by edit".

**Every edit** runs under the invoice's row lock, recomputes the percent discounts, numbers the lines 1..n,
refigures the tax through the engine (``billing.pricing.invoice_refigure``: the preview and totals) and
writes the invoice's history with the reason. A refusal (``backbone.errors``) names the field at fault and
leaves nothing half-saved. Blocks are plain ``transaction.atomic`` like ``billing.issuing``, so the API can
store its ``Idempotency-Key`` record in the same transaction.

**Discounts** are lines of kind discount with a negative net (the tax context passes them to the engine as
allowances, EN 16931 BG-20, in the VAT category they reduce). An amount discount is quantity 1 at minus the
amount. A percent discount is stored as quantity = the percentage with unit ``P1`` (UN/ECE Rec 20: percent)
at minus one hundredth of the net it applies to, so the percentage stays known: it is computed on the net
of the non-discount lines of its VAT category, rounded half up to the currency's minor unit
(``backbone.money.quantize``), and computed again whenever those lines change. On a draft whose lines are in
several VAT categories a percent discount becomes one discount line per category.

**Comments.** Project managers comment on the drafts of their projects (the selectors scope them), finance on
any draft; a project manager's comment notifies finance. Comments are never edited.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.history import stamp
from backbone.links import object_url
from backbone.money import MoneyError, format_money, minor_units, quantize, to_decimal
from backbone.roles import Role, has_role, is_read_only
from backbone.services import notify
from customers.models import Product, UnitCode
from tax.categories import PRODUCT_TAX_CATEGORIES

from . import selectors
from .lock_objects import invoice_for_update
from .models import Invoice, InvoiceComment, InvoiceItem, InvoiceLine
from .pricing import invoice_refigure

# The run's roll-up (kept in one place). They are private names of billing.services for now; see the
# report of this module's author for the refactor that makes them public.
from .services import _Item, _lines, _TimeGroup

PERCENT_UNIT = "P1"  # UN/ECE Recommendation 20: percent
MAX_DESCRIPTION = 1000
MAX_PHASE = InvoiceLine._meta.get_field("phase").max_length
MAX_PO = Invoice._meta.get_field("po_number").max_length
MAX_NOTES = 4000
MAX_COMMENT = 4000
MAX_TERMS_DAYS = 365
MAX_QUANTITY = Decimal("100000000000000")  # 18 digits, 4 after the point
PRODUCT_CATEGORIES = dict(PRODUCT_TAX_CATEGORIES)
CATEGORY_LINES = {"S": "standard-rated", "AA": "reduced-rate", "Z": "zero-rated", "E": "exempt"}
UNITS = dict(UnitCode.choices)
ITEM_KINDS = frozenset({"time", "adjustment", "expense", "milestone", "retainer"})
EDITABLE_KINDS = (InvoiceLine.Kind.MANUAL, InvoiceLine.Kind.DISCOUNT)
INVOICE_URL = "billing.invoice"

HEADER_LABELS = {
    "po_number": "PO number",
    "notes": "notes",
    "payment_terms_days": "payment terms",
    "grouping": "grouping",
    "detail_appendix": "detail appendix",
}


# --- guards -------------------------------------------------------------------------------------------


def _require_editor(actor, *permissions: str) -> None:
    if not getattr(actor, "is_authenticated", False):
        raise NotPermitted("Sign in to edit drafts.")
    if is_read_only(actor):
        raise NotPermitted("Auditors can view everything but change nothing.")
    if not all(actor.has_perm(perm) for perm in ("billing.change_invoice", *permissions)):
        raise NotPermitted("Only finance edits draft invoices; project managers review them and leave comments.")


def edit_refusal(invoice: Invoice) -> str | None:
    """Why ``invoice`` cannot be edited (None: it is a draft). The pages offer the editor from it; the
    services refuse with it."""
    if invoice.status == Invoice.Status.DRAFT:
        return None
    if invoice.status == Invoice.Status.ISSUED:
        return f"{invoice.number} is issued: it never changes (correct it with a credit note)."
    if invoice.status == Invoice.Status.APPROVED:
        return f"{invoice} is approved: return it to draft to edit it (its approvals are withdrawn then)."
    return f"{invoice} was discarded: it is kept for the record and never edited."


def _locked_draft(invoice: Invoice) -> Invoice:
    locked = invoice_for_update(pk=invoice.pk)
    refusal = edit_refusal(locked)
    if refusal:
        raise TransitionNotAllowed(refusal, field="status")
    return locked


def _refuse_credit_note(invoice: Invoice, what: str) -> None:
    if invoice.kind == Invoice.Kind.CREDIT_NOTE:
        raise TransitionNotAllowed(
            f"A credit note's lines are the lines it credits; it does not {what}. Discard it and create another "
            "credit note instead.",
            field="kind",
        )


class _Errors:
    """Messages per field, raised together as one ``ValidationFailed``."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def raise_if_any(self, lead: str) -> None:
        if self.errors:
            first = next(iter(self.errors.values()))[0]
            raise ValidationFailed(f"{lead}: {first}", errors=self.errors)


def _decimal(errors: _Errors, field: str, value: Any, *, label: str, places: int) -> Decimal | None:
    """``value`` as a Decimal with at most ``places`` decimals (None, with a message, when it is not)."""
    try:
        number = to_decimal(value)
    except MoneyError:
        errors.add(field, f"Enter the {label} as a number.")
        return None
    if not number.is_finite():
        errors.add(field, f"Enter the {label} as a number.")
        return None
    if abs(number) >= MAX_QUANTITY:
        errors.add(field, f"The {label} is too large.")
        return None
    if number != number.quantize(Decimal(1).scaleb(-places)):
        errors.add(field, f"The {label} has at most {places} decimal{'s' if places != 1 else ''}.")
        return None
    return number


def _text(errors: _Errors, field: str, value: Any, *, label: str, limit: int, required: bool = False) -> str:
    text = str(value or "").strip()
    if required and not text:
        errors.add(field, f"Enter the {label}.")
    elif len(text) > limit:
        errors.add(field, f"The {label} is at most {limit} characters long ({len(text)} given).")
    return text


def _category(errors: _Errors, field: str, value: Any) -> str:
    code = str(value or "").strip().upper()
    if code not in PRODUCT_CATEGORIES:
        errors.add(
            field,
            f"'{value}' is not a product tax category; use S (standard), AA (reduced), Z (zero) or E (exempt): "
            "reverse charge and the like are decided by the tax engine.",
        )
    return code


def _money(invoice: Invoice, amount: Decimal) -> str:
    return format_money(amount, invoice.currency)


# --- finishing an edit --------------------------------------------------------------------------------


def _ordered_lines(invoice: Invoice) -> list[InvoiceLine]:
    return list(InvoiceLine.objects.filter(invoice=invoice).order_by("position", "id"))


def _bases(lines: list[InvoiceLine]) -> dict[str, Decimal]:
    """The net of the non-discount lines per product tax category: what discounts reduce."""
    bases: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        if line.kind != InvoiceLine.Kind.DISCOUNT:
            bases[line.product_tax_category or "S"] += line.net_amount
    return bases


def _percent_net(base: Decimal, percent: Decimal, currency: str) -> Decimal:
    """Minus ``percent`` % of ``base``, rounded half up to the currency's minor unit (the shift by two places
    is exact)."""
    return -quantize((base * percent).scaleb(-2), currency)


def _percent_note(invoice: Invoice, base: Decimal, percent: Decimal, category: str) -> str:
    """What a percent discount is taken from, printed under it: "10 % of €6,000.00 (standard-rated lines)"."""
    return f"{percent.normalize():f} % of {_money(invoice, base)} ({CATEGORY_LINES.get(category, category)} lines)"


def _refresh_percent_discounts(invoice: Invoice, lines: list[InvoiceLine]) -> list[InvoiceLine]:
    """Recompute the percent discounts on the current net of their category; returns those that changed."""
    bases = _bases(lines)
    changed = []
    for line in lines:
        if line.kind != InvoiceLine.Kind.DISCOUNT or line.unit != PERCENT_UNIT:
            continue
        category = line.product_tax_category or "S"
        base = bases.get(category, Decimal(0))
        net = _percent_net(base, line.quantity, invoice.currency)
        unit_price = -base.scaleb(-2)
        note = _percent_note(invoice, base, line.quantity, category)
        if (net, unit_price, note) != (line.net_amount, line.unit_price, line.note):
            line.net_amount, line.unit_price, line.note = net, unit_price, note
            changed.append(line)
    return changed


def _check_discounts(invoice: Invoice, lines: list[InvoiceLine], *, field: str) -> None:
    """No VAT category may be discounted below zero."""
    bases = _bases(lines)
    discounts: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        if line.kind == InvoiceLine.Kind.DISCOUNT:
            discounts[line.product_tax_category or "S"] -= line.net_amount
    for category, discount in sorted(discounts.items()):
        base = bases.get(category, Decimal(0))
        if discount > base:
            raise ValidationFailed(
                f"The discounts on the {CATEGORY_LINES.get(category, category)} lines ({_money(invoice, discount)}) "
                f"would be more than those lines' net of {_money(invoice, base)}; change or delete a discount first.",
                field=field,
            )


def _finish(
    invoice: Invoice,
    *,
    actor,
    reason: str,
    lines: list[InvoiceLine] | None = None,
    fields: tuple[str, ...] | list[str] = (),
    field: str = "lines",
) -> Invoice:
    """Discounts, positions 1..n, the tax preview and totals, the first approval cleared, the history."""
    lines = _ordered_lines(invoice) if lines is None else lines
    changed = {line.pk: line for line in _refresh_percent_discounts(invoice, lines)}
    _check_discounts(invoice, lines, field=field)
    for position, line in enumerate(lines, start=1):
        if line.position != position:
            line.position = position
            changed[line.pk] = line
    if changed:
        InvoiceLine.objects.bulk_update(list(changed.values()), ["position", "unit_price", "net_amount", "note"])
    invoice_refigure(invoice, lines)
    update = {"net_total", "tax_total", "gross_total", "tax_breakdown", "legal_notes", "updated_at", *fields}
    if invoice.approved_by_id is not None or invoice.second_approved_by_id is not None:
        invoice.approved_by = invoice.approved_at = invoice.second_approved_by = invoice.second_approved_at = None
        update |= {"approved_by", "approved_at", "second_approved_by", "second_approved_at"}
        reason = f"{reason}; approval cleared by edit"
    stamp(invoice, actor=actor, reason=reason).save(update_fields=sorted(update))
    return invoice


# --- header ---------------------------------------------------------------------------------------------


@transaction.atomic
def invoice_update_header(
    *,
    actor,
    invoice: Invoice,
    po_number: str | None = None,
    notes: str | None = None,
    payment_terms_days: int | None = None,
    grouping: str | None = None,
    detail_appendix: bool | None = None,
) -> Invoice:
    """Change the draft's header; ``None`` leaves a field as it is, and a call that changes nothing writes
    nothing (a retry is harmless). A new grouping rebuilds the lines (``lines_regroup``)."""
    _require_editor(actor)
    invoice = _locked_draft(invoice)
    errors = _Errors()
    given: dict[str, Any] = {}
    if po_number is not None:
        given["po_number"] = _text(errors, "po_number", po_number, label="purchase order number", limit=MAX_PO)
    if notes is not None:
        given["notes"] = _text(errors, "notes", notes, label="notes", limit=MAX_NOTES)
    if payment_terms_days is not None:
        try:
            days = int(str(payment_terms_days).strip())
        except ValueError:
            errors.add("payment_terms_days", "Enter the payment terms as a whole number of days.")
        else:
            if not 0 <= days <= MAX_TERMS_DAYS:
                errors.add("payment_terms_days", f"Payment terms are 0 to {MAX_TERMS_DAYS} days ({days} given).")
            given["payment_terms_days"] = days
    if grouping is not None:
        if grouping not in Invoice.Grouping.values:
            errors.add("grouping", f"'{grouping}' is not a grouping; use {' or '.join(Invoice.Grouping.values)}.")
        given["grouping"] = grouping
    if detail_appendix is not None:
        if not isinstance(detail_appendix, bool):
            errors.add("detail_appendix", "Say true or false: print the underlying entries or not.")
        given["detail_appendix"] = detail_appendix
    errors.raise_if_any("The draft was not changed")
    changed = [name for name, value in given.items() if getattr(invoice, name) != value]
    if not changed:
        return invoice
    lines = None
    if "grouping" in changed:
        _require_editor(actor, "billing.add_invoiceline", "billing.change_invoiceline", "billing.delete_invoiceline")
        _refuse_credit_note(invoice, "regroup its lines")
        lines = _regroup(invoice, given["grouping"])
    for name in changed:
        setattr(invoice, name, given[name])
    reason = "Draft edited: " + ", ".join(HEADER_LABELS[name] for name in changed)
    if "grouping" in changed:
        reason += f" ({invoice.get_grouping_display().lower()})"
    return _finish(invoice, actor=actor, reason=reason, lines=lines, fields=changed)


# --- lines ----------------------------------------------------------------------------------------------


def _lock_line(invoice: Invoice, line: InvoiceLine) -> InvoiceLine:
    found = InvoiceLine.objects.select_for_update(of=("self",)).filter(pk=line.pk, invoice=invoice).first()
    if found is None:
        raise ValidationFailed(f"That line is not on {invoice}.", field="line")
    return found


def _item_count(line: InvoiceLine) -> int:
    return InvoiceItem.objects.filter(line=line).count()


def _work_message(line: InvoiceLine, count: int) -> str:
    return (
        f"Line {line.position} bills {count} item{'s' if count != 1 else ''} of work (time, expenses, milestones, "
        "retainer months): its quantity and price come from them and are not edited."
    )


def _manual_amounts(
    errors: _Errors,
    invoice: Invoice,
    *,
    product: Product | None,
    quantity: Any,
    unit: Any,
    unit_price: Any,
    product_tax_category: Any,
) -> tuple[Decimal | None, str, Decimal | None, str]:
    """Quantity, unit, unit price and product tax category of a manual line, defaults from the product."""
    if quantity in (None, ""):
        quantity = Decimal(1)
    number = _decimal(errors, "quantity", quantity, label="quantity", places=4)
    if number is not None and number <= 0:
        errors.add("quantity", "The quantity is more than zero (a reduction is a discount).")
    unit = str(unit or (product.unit if product else "") or UnitCode.ONE).strip().upper()
    if unit not in UNITS:
        errors.add("unit", f"'{unit}' is not a unit; use a UN/ECE Recommendation 20 code such as HUR, DAY or C62.")
    price = None
    if unit_price in (None, ""):
        if product is None:
            errors.add("unit_price", "Enter the unit price.")
        elif product.currency != invoice.currency:
            errors.add(
                "unit_price",
                f"{product.code} is priced in {product.currency}; enter the unit price in {invoice.currency}.",
            )
        elif product.pricing_rule != Product.PricingRule.FIXED:
            errors.add("unit_price", f"{product.code} is priced from the project's rate card; enter the unit price.")
        else:
            price = product.default_price_amount
    else:
        price = _decimal(errors, "unit_price", unit_price, label="unit price", places=4)
        if price is not None and price < 0:
            errors.add("unit_price", "The unit price is zero or more (a reduction is a discount).")
            price = None
    category = product_tax_category or (product.default_tax_category if product else "") or "S"
    category = _category(errors, "product_tax_category", category)
    return number, unit, price, category


@transaction.atomic
def line_add_manual(
    *,
    actor,
    invoice: Invoice,
    product: Product | None = None,
    description: str = "",
    quantity: Any = None,
    unit: str = "",
    unit_price: Any = None,
    product_tax_category: str = "",
) -> InvoiceLine:
    """Add a manual line before the discounts: a catalog product (its client-facing name, unit, price and
    tax category are the defaults) or a described line with its own quantity, unit and price."""
    _require_editor(actor, "billing.add_invoiceline")
    invoice = _locked_draft(invoice)
    _refuse_credit_note(invoice, "take manual lines")
    errors = _Errors()
    if product is not None and not isinstance(product, Product):
        errors.add("product", "Choose a product of the catalog.")
        product = None
    elif product is not None and not product.is_active:
        errors.add("product", f"{product} is retired from the catalog; choose an active product.")
    description = _text(
        errors,
        "description",
        description or (product.name if product else ""),
        label="description (or choose a catalog product)",
        limit=MAX_DESCRIPTION,
        required=True,
    )
    number, unit, price, category = _manual_amounts(
        errors,
        invoice,
        product=product,
        quantity=quantity,
        unit=unit,
        unit_price=unit_price,
        product_tax_category=product_tax_category,
    )
    errors.raise_if_any("The line was not added")
    net = quantize(number * price, invoice.currency)
    lines = _ordered_lines(invoice)
    at = next((index for index, line in enumerate(lines) if line.kind == InvoiceLine.Kind.DISCOUNT), len(lines))
    line = InvoiceLine(
        invoice=invoice,
        position=at + 1,
        kind=InvoiceLine.Kind.MANUAL,
        project=invoice.project,
        description=description,
        quantity=number,
        unit=unit,
        unit_price=price,
        net_amount=net,
        product_tax_category=category,
        tax_category=category,
    )
    source = f" ({product.code})" if product is not None else ""
    stamp(line, actor=actor, reason=f"Manual line added{source}").save()
    lines.insert(at, line)
    _finish(invoice, actor=actor, reason=f"Line added: {description[:80]}{source}, {_money(invoice, net)}", lines=lines)
    line.invoice = invoice
    return line


@transaction.atomic
def line_add_discount(
    *,
    actor,
    invoice: Invoice,
    description: str = "",
    percent: Any = None,
    amount: Any = None,
    product_tax_category: str = "",
) -> list[InvoiceLine]:
    """Add a discount, as a percentage of the lines' net or as an amount; returns its line(s) (a percentage
    on lines of several VAT categories gives one line per category, ``product_tax_category`` narrows it)."""
    _require_editor(actor, "billing.add_invoiceline")
    invoice = _locked_draft(invoice)
    _refuse_credit_note(invoice, "take discounts")
    errors = _Errors()
    description = _text(errors, "description", description, label="description", limit=MAX_DESCRIPTION)
    has_percent, has_amount = percent not in (None, ""), amount not in (None, "")
    value = None
    if has_percent == has_amount:
        errors.add(
            "percent" if has_percent else "amount",
            "Give the discount either as a percentage or as an amount, not both."
            if has_percent
            else "Give the discount as a percentage or as an amount.",
        )
    elif has_percent:
        value = _decimal(errors, "percent", percent, label="percentage", places=2)
        if value is not None and not Decimal(0) < value <= Decimal(100):
            errors.add("percent", "A percentage is more than 0 and at most 100.")
    else:
        value = _decimal(errors, "amount", amount, label="amount", places=minor_units(invoice.currency))
        if value is not None and value <= 0:
            errors.add("amount", "The discount is an amount more than zero (it is subtracted).")
    chosen = _category(errors, "product_tax_category", product_tax_category) if product_tax_category else ""
    errors.raise_if_any("The discount was not added")

    lines = _ordered_lines(invoice)
    bases = {category: base for category, base in _bases(lines).items() if base > 0}
    if chosen:
        if chosen not in bases:
            raise ValidationFailed(
                f"No {CATEGORY_LINES[chosen]} lines with a net above zero to discount.", field="product_tax_category"
            )
        categories = [chosen]
    elif not bases:
        raise ValidationFailed("There are no lines with a net above zero to discount.", field="lines")
    elif has_amount and len(bases) > 1:
        raise ValidationFailed(
            f"The lines are in several VAT categories ({', '.join(sorted(bases))}); choose the one the discount "
            "reduces.",
            field="product_tax_category",
        )
    else:
        categories = sorted(bases)
    added = []
    for category in categories:
        if has_percent:
            percent_text = f"{value.normalize():f}"
            label = description or f"Discount {percent_text} %"
            if len(categories) > 1:
                label = f"{label} ({CATEGORY_LINES[category]} lines)"
            quantity, unit, unit_price = value, PERCENT_UNIT, -bases[category].scaleb(-2)
            net = _percent_net(bases[category], value, invoice.currency)
            note = _percent_note(invoice, bases[category], value, category)
        else:
            label = description or "Discount"
            quantity, unit, unit_price, net, note = Decimal(1), UnitCode.ONE, -value, -value, ""
        line = InvoiceLine(
            invoice=invoice,
            position=len(lines) + 1,
            kind=InvoiceLine.Kind.DISCOUNT,
            project=invoice.project,
            description=label,
            quantity=quantity,
            unit=unit,
            unit_price=unit_price,
            net_amount=net,
            note=note,
            product_tax_category=category,
            tax_category=category,
        )
        stamp(line, actor=actor, reason="Discount added").save()
        lines.append(line)
        added.append(line)
    total = -sum((line.net_amount for line in added), Decimal(0))
    what = f"{value.normalize():f} %" if has_percent else _money(invoice, value)
    _finish(
        invoice,
        actor=actor,
        reason=f"Discount added: {what} ({_money(invoice, total)})",
        lines=lines,
        field="amount" if has_amount else "percent",
    )
    for line in added:
        line.invoice = invoice
    return added


@transaction.atomic
def line_update(
    *,
    actor,
    line: InvoiceLine,
    description: str | None = None,
    phase: str | None = None,
    quantity: Any = None,
    unit_price: Any = None,
    product_tax_category: str | None = None,
) -> InvoiceLine:
    """Change a line's client-facing description and phase; on a manual line also its quantity, price and
    product tax category. ``None`` leaves a field as it is; a call that changes nothing writes nothing."""
    _require_editor(actor, "billing.change_invoiceline")
    invoice = _locked_draft(line.invoice)
    line = _lock_line(invoice, line)
    errors = _Errors()
    given: dict[str, Any] = {}
    if description is not None:
        given["description"] = _text(
            errors, "description", description, label="client-facing description", limit=MAX_DESCRIPTION, required=True
        )
    if phase is not None:
        given["phase"] = _text(errors, "phase", phase, label="phase", limit=MAX_PHASE)
    amounts = {"quantity": quantity, "unit_price": unit_price, "product_tax_category": product_tax_category}
    asked = {name: value for name, value in amounts.items() if value not in (None, "")}
    if asked and line.kind == InvoiceLine.Kind.DISCOUNT:
        for name in asked:
            errors.add(name, "A discount's amount is changed by deleting it and adding it again.")
    elif asked and line.kind != InvoiceLine.Kind.MANUAL:
        message = _work_message(line, _item_count(line)) + " Remove work by discarding the draft and re-running."
        for name in asked:
            errors.add(name, message)
    elif asked:
        number, _, price, category = _manual_amounts(
            errors,
            invoice,
            product=None,
            quantity=asked.get("quantity", line.quantity),
            unit=line.unit,
            unit_price=asked.get("unit_price", line.unit_price),
            product_tax_category=asked.get("product_tax_category", line.product_tax_category),
        )
        given.update(quantity=number, unit_price=price, product_tax_category=category)
    errors.raise_if_any(f"Line {line.position} was not changed")
    changed = [name for name, value in given.items() if getattr(line, name) != value]
    if not changed:
        line.invoice = invoice
        return line
    for name in changed:
        setattr(line, name, given[name])
    fields = set(changed)
    if {"quantity", "unit_price"} & fields:
        line.net_amount = quantize(line.quantity * line.unit_price, invoice.currency)
        fields.add("net_amount")
    what = ", ".join(name.replace("_", " ") for name in changed)
    stamp(line, actor=actor, reason=f"Line edited: {what}").save(update_fields=sorted(fields | {"updated_at"}))
    lines = [line if other.pk == line.pk else other for other in _ordered_lines(invoice)]
    _finish(invoice, actor=actor, reason=f"Line {line.position} edited: {what}", lines=lines)
    line.invoice = invoice
    return line


@transaction.atomic
def line_delete(*, actor, line: InvoiceLine) -> Invoice:
    """Delete a manual line or a discount. Lines of work are never deleted: remove work by discarding the
    draft and running again."""
    _require_editor(actor, "billing.delete_invoiceline")
    invoice = _locked_draft(line.invoice)
    line = _lock_line(invoice, line)
    if line.kind not in EDITABLE_KINDS:
        count = _item_count(line)
        raise Conflict(
            f"Line {line.position} bills {count} item{'s' if count != 1 else ''} of work (time, expenses, milestones, "
            "retainer months) and is not deleted. Remove work by discarding the draft and re-running.",
            field="line",
        )
    position, description = line.position, line.description
    stamp(line, actor=actor, reason=f"{line.get_kind_display()} line deleted").delete()
    _finish(invoice, actor=actor, reason=f"Line {position} deleted: {description[:80]}", field="line")
    return invoice


# --- grouping -------------------------------------------------------------------------------------------


def _regroup(invoice: Invoice, grouping: str) -> list[InvoiceLine]:
    """Rebuild the item-backed lines for ``grouping`` through the run's roll-up (``billing.services._lines``);
    returns every line of the draft in its new order (the lines of work, project by project, then the manual
    lines and discounts as they were). A new line that bills the same items as an old one is that old line
    (its description, phase and public ID kept); the others are made anew and the old ones deleted."""
    lines = _ordered_lines(invoice)
    items = list(
        InvoiceItem.objects.filter(invoice=invoice)
        .select_related("project", "time_entry", "expense")
        .order_by("date", "pk")
    )
    by_line: dict[int, list[InvoiceItem]] = defaultdict(list)
    for item in items:
        by_line[item.line_id].append(item)
    position_of = {line.pk: index for index, line in enumerate(lines)}
    old_by_items = {frozenset(item.pk for item in by_line[line.pk]): line for line in lines if by_line.get(line.pk)}
    line_of = {line.pk: line for line in lines}
    others = [line for line in lines if not by_line.get(line.pk)]

    projects: dict[int, Any] = {}
    first_at: dict[int, int] = {}
    for item in items:
        projects.setdefault(item.project_id, item.project)
        first_at[item.project_id] = min(first_at.get(item.project_id, len(lines)), position_of.get(item.line_id, 0))
    rolled = grouping == Invoice.Grouping.ROLLED_UP
    ordered: list[InvoiceLine] = []
    created: list[tuple[InvoiceLine, list[InvoiceItem]]] = []
    placed = 0
    for project_id in sorted(projects, key=lambda pk: (first_at[pk], pk)):
        project = projects[project_id]
        groups: dict[tuple, _TimeGroup] = {}
        members: dict[int, list[InvoiceItem]] = defaultdict(list)  # id() of a group or _Item → its items
        plain: list[_Item] = []
        for item in (item for item in items if item.project_id == project_id):
            category = item.time_entry.labour_category if item.time_entry_id else ""
            if rolled and item.kind in ("time", "adjustment"):
                key = (item.kind, category, item.date, item.unit_price)
                group = groups.get(key)
                if group is None:
                    group = groups[key] = _TimeGroup(
                        kind=item.kind,
                        labour_category=category,
                        date=item.date,
                        hours=Decimal(0),
                        entries=0,
                        first_pk=item.time_entry_id,
                        rate=item.unit_price,
                    )
                group.hours += item.quantity
                group.entries += 1
                group.first_pk = min(group.first_pk, item.time_entry_id)
                members[id(group)].append(item)
                continue
            current = line_of.get(item.line_id)
            entry = _Item(
                kind=item.kind,
                date=item.date,
                description=item.description,
                quantity=item.quantity,
                unit_price=item.unit_price,
                amount=item.amount,
                entry=item,
                month=item.retainer_month,
                labour_category=category or (current.labour_category if current else ""),
                phase=current.phase if current else "",
                note=current.note if current else "",
                expense_category=item.expense.category if item.expense_id else "",
            )
            members[id(entry)].append(item)
            plain.append(entry)
        time_groups = sorted(groups.values(), key=lambda g: (g.date, g.first_pk))
        for spec in _lines(invoice, project, time_groups, plain, len(ordered)):
            billed = [item for group in spec.groups for item in members[id(group)]]
            if spec.item is not None:
                billed += members[id(spec.item)]
            placed += len(billed)
            old = old_by_items.get(frozenset(item.pk for item in billed))
            if old is not None:
                ordered.append(old)
                continue
            line = spec.line
            if line.kind in ("time", "adjustment"):
                line.unit = "HUR"
            ordered.append(line)
            created.append((line, billed))
    if placed != len(items):
        raise Conflict(f"{invoice}: regrouping placed {placed} of its {len(items)} items; nothing was changed.")
    InvoiceLine.objects.bulk_create([line for line, _ in created])
    moved = []
    for line, billed in created:
        for item in billed:
            item.line = line
            moved.append(item)
    InvoiceItem.objects.bulk_update(moved, ["line"], batch_size=1000)
    kept = {line.pk for line in ordered}
    doomed = [line.pk for line in lines if by_line.get(line.pk) and line.pk not in kept]
    if doomed:
        if InvoiceItem.objects.filter(line_id__in=doomed).exists():
            raise Conflict(f"{invoice}: an item was left on a line being replaced; nothing was changed.")
        InvoiceLine.objects.filter(pk__in=doomed).delete()
    return ordered + others


@transaction.atomic
def lines_regroup(*, actor, invoice: Invoice, grouping: str) -> Invoice:
    """Rebuild the lines of work rolled up (labour category and rate, as a run makes them) or one line per
    entry. Manual lines and discounts stay; so do custom descriptions of lines that bill the same items."""
    _require_editor(actor, "billing.add_invoiceline", "billing.change_invoiceline", "billing.delete_invoiceline")
    invoice = _locked_draft(invoice)
    _refuse_credit_note(invoice, "regroup its lines")
    if grouping not in Invoice.Grouping.values:
        raise ValidationFailed(
            f"'{grouping}' is not a grouping; use {' or '.join(Invoice.Grouping.values)}.", field="grouping"
        )
    lines = _regroup(invoice, grouping)
    invoice.grouping = grouping
    items = sum(1 for line in lines if line.kind not in EDITABLE_KINDS)
    return _finish(
        invoice,
        actor=actor,
        reason=f"Regrouped: {invoice.get_grouping_display().lower()} ({items} line{'s' if items != 1 else ''} of work)",
        lines=lines,
        fields=["grouping"],
    )


# --- review comments ------------------------------------------------------------------------------------


def invoice_comments(invoice: Invoice) -> QuerySet[InvoiceComment]:
    """The review comments of an invoice, oldest first, with their authors: one query."""
    return InvoiceComment.objects.filter(invoice=invoice).select_related("author").order_by("created_at", "id")


def _comment_role_refusal(user) -> str | None:
    if not getattr(user, "is_authenticated", False):
        return "Sign in to comment."
    if is_read_only(user):
        return "Auditors can view everything but change nothing."
    if not user.has_perm("billing.add_invoicecomment"):
        return "Your role reads the review comments; project managers and finance write them."
    return None


def _comment_status_refusal(invoice: Invoice) -> str | None:
    if invoice.status == Invoice.Status.DRAFT:
        return None
    if invoice.status == Invoice.Status.APPROVED:
        return f"{invoice} is approved: the review is closed (return it to draft to reopen it)."
    return f"{invoice} is {invoice.get_status_display().lower()}: comments are taken while it is a draft."


def comment_refusal(*, user, invoice: Invoice) -> str | None:
    """Why ``user`` may not comment on ``invoice`` (which they can see) now; None: they may. The page offers
    the form from it; ``invoice_comment_add`` refuses with it."""
    return _comment_role_refusal(user) or _comment_status_refusal(invoice)


def _finance_people(*, besides) -> list:
    User = get_user_model()
    return list(
        User.objects.filter(is_active=True, groups__name=Role.FINANCE)
        .exclude(pk=getattr(besides, "pk", None))
        .distinct()
        .order_by("pk")
    )


@transaction.atomic
def invoice_comment_add(*, actor, invoice: Invoice, body: str) -> InvoiceComment:
    """A review comment on a draft: project managers on the drafts of their projects, finance on any. A
    project manager's comment notifies finance."""
    refusal = _comment_role_refusal(actor)
    if refusal:
        raise NotPermitted(refusal)
    if not selectors.invoices_visible_to(actor).filter(pk=invoice.pk).exists():
        raise NotPermitted("You review the drafts of your own projects only.")
    invoice = invoice_for_update(pk=invoice.pk)
    refusal = _comment_status_refusal(invoice)
    if refusal:
        raise TransitionNotAllowed(refusal, field="status")
    errors = _Errors()
    body = _text(errors, "body", body, label="comment", limit=MAX_COMMENT, required=True)
    errors.raise_if_any("The comment was not added")
    comment = InvoiceComment(invoice=invoice, author=actor, body=body)
    stamp(comment, actor=actor, reason="Review comment").save()
    if has_role(actor, Role.PROJECT_MANAGER) and not has_role(actor, Role.FINANCE):
        name = actor.get_full_name() or actor.get_username()
        notify(
            users=_finance_people(besides=actor),
            title=f"{name} commented on the draft for {invoice.customer.display_name}",
            body=body[:500],
            url=object_url(INVOICE_URL, invoice.public_id) or "",
        )
    return comment
