"""Every write of the sales pipeline: deals and their stages, quotes and their versions, lines, milestones and
attachments. ``customers.services`` re-exports these; callers import them from there.

As in the rest of the app, a service validates the whole input first and saves nothing unless all of it is
valid; errors come back under flat keys (``lines.2.unit_price``, ``milestones.0.amount``). Illegal moves of a
lifecycle raise ``TransitionNotAllowed``. Winning a deal is not here: the projects app's handoff wins it and
creates the project (it may call ``deal_close_won`` to move the deal itself).

Lock order: the deal row first, then its quotes (``lock_objects``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from decimal import Decimal, localcontext
from pathlib import PurePosixPath
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.history import stamp
from backbone.money import CURRENCY_CODES, MoneyError, quantize, to_decimal
from backbone.roles import Role, has_role, require_writer
from backbone.services import sequence_next
from tax.categories import PRODUCT_TAX_CATEGORIES
from tax.context import SupplyKind, TaxResult
from tax.services import tax_preview

from .lock_objects import deal_for_update, quote_for_update, quotes_of_deal_for_update
from .models import (
    BillingModel,
    Customer,
    Deal,
    PipelineStage,
    Product,
    Quote,
    QuoteAttachment,
    QuoteLine,
    QuoteMilestone,
    UnitCode,
)
from .selectors import customers_visible_to, deal_edit_allowed, stage_by_outcome
from .tax_parties import tax_context_for
from .uploads import CANONICAL_CONTENT_TYPES, document_format, file_problem
from .validation import _Errors, _full_clean

DEAL_FIELDS = (
    "title",
    "customer",
    "owner",
    "legal_entity",
    "stage",
    "probability",
    "amount",
    "currency",
    "expected_close_date",
    "next_step",
)
QUOTE_FIELDS = (
    "currency",
    "valid_until",
    "payment_terms_days",
    "po_number",
    "po_required",
    "portal_required",
    "planned_start",
    "planned_end",
    "retainer_amount",
    "expense_markup_percent",
    "terms",
)
LINE_FIELDS = (
    "product",
    "description",
    "phase",
    "billing_model",
    "labour_category",
    "quantity",
    "unit",
    "unit_price",
    "discount_percent",
    "tax_category",
    "supply_kind",
)
MILESTONE_FIELDS = ("name", "phase", "planned_date", "amount", "acceptance_criteria")

QUOTE_VALIDITY_DAYS = 30  # a new quote's default validity
MAX_EXPENSE_MARKUP = Decimal("100")  # percent

ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
# Extension → (the format the content must be, the content types a browser may declare for it).
ATTACHMENT_TYPES = {
    ".pdf": ("PDF", {"application/pdf", "application/x-pdf"}),
    ".jpg": ("JPEG", {"image/jpeg", "image/pjpeg"}),
    ".jpeg": ("JPEG", {"image/jpeg", "image/pjpeg"}),
    ".png": ("PNG", {"image/png", "image/x-png"}),
    ".docx": ("DOCX", {CANONICAL_CONTENT_TYPES["DOCX"], "application/zip", "application/x-zip-compressed"}),
    ".xlsx": ("XLSX", {CANONICAL_CONTENT_TYPES["XLSX"], "application/zip", "application/x-zip-compressed"}),
    ".odt": ("ODT", {CANONICAL_CONTENT_TYPES["ODT"], "application/zip", "application/x-zip-compressed"}),
}

_OPEN = PipelineStage.Outcome.OPEN
_WON = PipelineStage.Outcome.WON
_LOST = PipelineStage.Outcome.LOST


# --- money --------------------------------------------------------------------------------------------


def quote_line_net_amount(
    *,
    quantity: Decimal,
    unit_price: Decimal,
    discount_percent: Decimal,
    currency: str,
    markup_percent: Decimal = Decimal("0"),
) -> Decimal:
    """A quote line's net: quantity x unit price, plus the markup (rebillable expenses), less the discount,
    rounded once to the currency's minor unit (ROUND_HALF_UP, ``backbone.money.quantize``).

    The one place a line's net is computed: quotes, their PDF and the tax preview all read the stored result.
    """
    with localcontext() as context:
        context.prec = 60  # 18-digit quantities times 18-digit prices, exactly, before the one rounding
        exact = (
            to_decimal(quantity)
            * to_decimal(unit_price)
            * (1 + to_decimal(markup_percent) / 100)
            * (1 - to_decimal(discount_percent) / 100)
        )
    return quantize(exact, currency)


def _decimal_or_error(
    errors: _Errors, key: str, value: Any, *, missing: str | None, places: int | None = None
) -> Decimal | None:
    """``value`` as a Decimal, or None with a message under ``key`` (``missing`` when it is absent and
    required; absent and optional gives None without a message). ``places``: at most that many decimals."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if missing:
            errors.add(key, missing)
        return None
    try:
        number = to_decimal(value)
    except MoneyError:
        errors.add(key, f"'{value}' is not a number.")
        return None
    if not number.is_finite():
        errors.add(key, f"'{value}' is not a number.")
        return None
    if places is not None and number != number.quantize(Decimal(1).scaleb(-places)):
        errors.add(key, f"Use at most {places} decimals.")
        return None
    return number


def _amount_text(amount: Decimal, currency: str) -> str:
    return f"{quantize(amount, currency):,} {currency}"


# --- guards -------------------------------------------------------------------------------------------


def _require_deal_worker(user, deal: Deal, permission: str, what: str) -> None:
    require_writer(user)
    if not user.has_perm(permission):
        raise NotPermitted(f"Your role cannot {what}.")
    if not deal_edit_allowed(user=user, deal=deal):
        raise NotPermitted(f"You cannot {what} on {deal.number}: it is another sales rep's deal.")


def _require_open(deal: Deal, message: str) -> None:
    if deal.stage.outcome != _OPEN:
        raise TransitionNotAllowed(f"{deal.number} is {deal.stage.name.lower()}: {message}")


def _accepted_quote(deal: Deal, *, exclude: Quote | None = None) -> Quote | None:
    quotes = Quote.objects.filter(deal=deal, status=Quote.Status.ACCEPTED)
    if exclude is not None:
        quotes = quotes.exclude(pk=exclude.pk)
    return quotes.first()


# --- deals --------------------------------------------------------------------------------------------


def _validate_deal(errors: _Errors, deal: Deal, *, user, creating: bool) -> None:
    deal.title = str(deal.title or "").strip()
    deal.next_step = str(deal.next_step or "").strip()
    if not deal.title:
        errors.add("title", "Give the deal a title, e.g. 'Checkout redesign 2026'.")
    customer = deal.customer if deal.customer_id else None
    if customer is None:
        errors.add("customer", "Choose the customer.")
    elif (status := customers_visible_to(user).filter(pk=customer.pk).values_list("status", flat=True).first()) is None:
        errors.add("customer", "The customer does not exist or is not visible to you.")
    elif creating and status == Customer.Status.ARCHIVED:
        errors.add("customer", f"{customer.display_name} is archived; reactivate the account before a new deal.")
    if not deal.legal_entity_id:
        errors.add("legal_entity", "Choose which of our legal entities delivers (the customer has no default).")
    elif not deal.legal_entity.is_active:
        errors.add("legal_entity", f"{deal.legal_entity} no longer bills customers; choose an active entity.")
    if not deal.owner_id:
        errors.add("owner", "Choose the sales rep who owns the deal.")
    elif not has_role(deal.owner, Role.SALES, Role.ADMIN):
        errors.add("owner", f"{deal.owner.get_username()} is not a sales rep; only sales reps own deals.")
    if deal.currency not in CURRENCY_CODES:
        errors.add("currency", f"'{deal.currency}' is not a currency Throughline bills in.")
    amount = _decimal_or_error(errors, "amount", deal.amount, missing=None)
    if amount is None and "amount" not in errors.errors:
        deal.amount = Decimal("0")
    elif amount is not None:
        if amount < 0:
            errors.add("amount", "The deal's amount cannot be negative.")
        elif deal.currency in CURRENCY_CODES and quantize(amount, deal.currency) != amount:
            errors.add("amount", f"An amount in {deal.currency} has at most its currency's decimals.")
        else:
            deal.amount = amount
    probability = deal.probability
    if probability is None or not isinstance(probability, int) or not 0 <= probability <= 100:
        errors.add("probability", "The win probability is a whole percentage from 0 to 100.")
    _full_clean(
        errors,
        "",
        deal,
        exclude=["number", "customer", "owner", "legal_entity", "stage", "probability", "amount", "currency"],
    )


def _set_deal_fields(deal: Deal, data: Mapping[str, Any], fields: Sequence[str]) -> None:
    for name in fields:
        if name in data:
            value = data[name]
            if name in ("title", "next_step"):
                value = value or ""
            setattr(deal, name, value)


@transaction.atomic
def deal_create(*, user, data: Mapping[str, Any], reason: str = "") -> Deal:
    """Open a deal with a customer. It starts in the first open stage unless another open stage is given,
    with that stage's win probability unless one is given; the creator owns it (admins may name another
    sales rep); our delivering entity and the currency default to the customer's."""
    require_writer(user)
    if not user.has_perm("customers.add_deal"):
        raise NotPermitted("Your role cannot create deals.")
    errors = _Errors()
    deal = Deal()
    _set_deal_fields(deal, data, [f for f in DEAL_FIELDS if data.get(f) not in (None, "")])
    is_admin = user.is_superuser or has_role(user, Role.ADMIN)
    if not deal.owner_id:
        deal.owner = user
    elif deal.owner_id != user.pk and not is_admin:
        errors.add("owner", "You can only open deals that you own; an admin can hand them over.")
    customer = deal.customer if deal.customer_id else None
    if customer is not None:
        if not deal.legal_entity_id and customer.billing_entity_id:
            deal.legal_entity = customer.billing_entity
        if not data.get("currency"):
            deal.currency = customer.default_currency
    stage = deal.stage if deal.stage_id else None
    if stage is None:
        stage = PipelineStage.objects.filter(is_active=True, outcome=_OPEN).order_by("position", "id").first()
        if stage is None:
            errors.add("stage", "No open pipeline stage is configured; ask an admin.")
        deal.stage = stage
    elif stage.outcome != _OPEN or not stage.is_active:
        errors.add("stage", f"A new deal starts in an open stage, not in '{stage.name}'.")
    if data.get("probability") in (None, ""):
        deal.probability = stage.default_probability if stage is not None else 0
    _validate_deal(errors, deal, user=user, creating=True)
    errors.raise_if_any("The deal was not saved.")
    deal.number = sequence_next(key="deal", prefix="DEAL")
    stamp(deal, actor=user, reason=reason or "Created").save()
    return deal


@transaction.atomic
def deal_update(*, user, deal: Deal, data: Mapping[str, Any], reason: str = "") -> Deal:
    """Change a deal's own fields (absent keys keep their value). The stage moves with ``deal_move_stage``; a
    won deal is closed (its project carries on); the customer changes only while the deal has no quote; the
    owner is handed over by the current owner or an admin."""
    _require_deal_worker(user, deal, "customers.change_deal", "change deals")
    deal = deal_for_update(pk=deal.pk)
    if deal.stage.outcome == _WON:
        raise TransitionNotAllowed(f"{deal.number} is won and closed; scope changes go through its project.")
    errors = _Errors()
    if "stage" in data and data["stage"] is not None and getattr(data["stage"], "pk", data["stage"]) != deal.stage_id:
        errors.add("stage", "The stage changes with the pipeline's move buttons (deal_move_stage), not by editing.")
    old_owner_id, old_customer_id = deal.owner_id, deal.customer_id
    editable = [f for f in DEAL_FIELDS if f != "stage" and f in data and data[f] is not None]
    _set_deal_fields(deal, data, editable)
    is_admin = user.is_superuser or has_role(user, Role.ADMIN)
    if deal.owner_id != old_owner_id and not (is_admin or old_owner_id == user.pk):
        errors.add("owner", "Only the deal's owner or an admin can hand it over.")
    if deal.customer_id != old_customer_id and deal.quotes.exists():
        errors.add("customer", "The deal already has quotes for its customer; open a new deal instead.")
    _validate_deal(errors, deal, user=user, creating=False)
    errors.raise_if_any("The deal was not saved.")
    stamp(deal, actor=user, reason=reason or "Edited").save()
    return deal


def _resolve_stage(stage: PipelineStage | str) -> PipelineStage:
    if isinstance(stage, PipelineStage):
        return stage
    found = PipelineStage.objects.filter(code=str(stage or "").strip()).first()
    if found is None:
        raise ValidationFailed(f"'{stage}' is not a pipeline stage.", field="stage")
    return found


@transaction.atomic
def deal_move_stage(
    *,
    user,
    deal: Deal,
    stage: PipelineStage | str,
    lost_reason: str = "",
    probability: int | None = None,
    reason: str = "",
) -> Deal:
    """Move a deal to another stage of the pipeline.

    The win probability becomes the new stage's default unless ``probability`` is given (a lost deal is 0).
    Losing needs a reason and declines the quotes still out with the customer; reopening a lost deal clears
    the reason. The won stage is refused: "Mark won" hands the deal over to a project, which wins it.
    """
    _require_deal_worker(user, deal, "customers.change_deal", "move deals")
    stage = _resolve_stage(stage)
    deal = deal_for_update(pk=deal.pk)
    if deal.stage.outcome == _WON:
        raise TransitionNotAllowed(f"{deal.number} is won and closed; its project carries on from here.")
    if stage.outcome == _WON:
        raise TransitionNotAllowed(
            "A deal is won with “Mark won” on its page, which hands it over to a new project with the accepted "
            "quote's prices and terms; it cannot simply be moved to the won stage.",
            field="stage",
        )
    if not stage.is_active:
        raise ValidationFailed(f"The stage '{stage.name}' is no longer used.", field="stage")
    lost_reason = str(lost_reason or "").strip()
    if stage.outcome == _LOST and not lost_reason:
        raise ValidationFailed("Say why the deal was lost (e.g. 'Chose a cheaper agency').", field="lost_reason")
    if stage.outcome == _LOST and len(lost_reason) > 300:
        raise ValidationFailed("Keep the reason under 300 characters.", field="lost_reason")
    if probability is not None and (not isinstance(probability, int) or not 0 <= probability <= 100):
        raise ValidationFailed("The win probability is a whole percentage from 0 to 100.", field="probability")
    if stage.pk == deal.stage_id and (probability is None or probability == deal.probability):
        return deal
    fields = ["stage", "probability", "lost_reason", "closed_at", "updated_at"]
    if stage.outcome == _LOST:
        deal.probability, deal.lost_reason, deal.closed_at = 0, lost_reason, timezone.now()
        for quote in quotes_of_deal_for_update(deal_id=deal.pk):
            if quote.status == Quote.Status.SENT:
                quote.status = Quote.Status.DECLINED
                stamp(quote, actor=user, reason=f"{deal.number} was lost: {lost_reason}")
                quote.save(update_fields=["status", "updated_at"])
    else:
        deal.probability = stage.default_probability if probability is None else probability
        deal.lost_reason, deal.closed_at = "", None
    previous = deal.stage
    deal.stage = stage
    why = reason or f"Stage {previous.name} → {stage.name}" + (f": {lost_reason}" if lost_reason else "")
    stamp(deal, actor=user, reason=why).save(update_fields=fields)
    return deal


@transaction.atomic
def deal_close_won(*, user, deal: Deal, quote: Quote | None = None, reason: str = "") -> Deal:
    """Move a deal to the won stage: for the projects app's handoff only, inside its own transaction.

    Needs ``customers.win_deal`` on a deal the person works, an open deal, and an accepted quote of this deal
    (``quote``, or the deal's accepted one); a sent quote given here is accepted first. Winning an already won
    deal returns it unchanged, so a repeated handoff changes nothing.
    """
    _require_deal_worker(user, deal, "customers.win_deal", "mark deals won")
    deal = deal_for_update(pk=deal.pk)
    if deal.stage.outcome == _WON:
        return deal
    _require_open(deal, "reopen it before it can be won.")
    if quote is not None and quote.deal_id != deal.pk:
        raise ValidationFailed(f"That quote belongs to another deal than {deal.number}.", field="quote")
    if quote is not None:
        quote = Quote.objects.get(pk=quote.pk)  # its status as stored, not as the caller last saw it
    if quote is not None and quote.status == Quote.Status.SENT:
        quote = quote_accept(user=user, quote=quote, reason=reason or "Accepted when the deal was won")
    accepted = quote if quote is not None else _accepted_quote(deal)
    if accepted is None or accepted.status != Quote.Status.ACCEPTED:
        raise TransitionNotAllowed(f"{deal.number} has no accepted quote; a deal is won on its accepted quote.")
    won = stage_by_outcome(_WON)
    if won is None:
        raise ValidationFailed("No won stage is configured; ask an admin.", field="stage")
    deal.stage, deal.probability, deal.closed_at, deal.lost_reason = won, 100, timezone.now(), ""
    stamp(deal, actor=user, reason=reason or f"Won on quote v{accepted.version}")
    deal.save(update_fields=["stage", "probability", "closed_at", "lost_reason", "updated_at"])
    return deal


# --- quotes: validation -------------------------------------------------------------------------------

_TAX_CATEGORIES = {value for value, _ in PRODUCT_TAX_CATEGORIES}


def _set_quote_fields(quote: Quote, data: Mapping[str, Any]) -> None:
    for name in QUOTE_FIELDS:
        if name in data:
            value = data[name]
            if name in ("po_number", "terms"):
                value = str(value or "").strip()
            elif name in ("po_required", "portal_required"):
                value = bool(value)
            elif name in ("retainer_amount", "expense_markup_percent") and value in (None, ""):
                value = Decimal("0")
            setattr(quote, name, value)


def _validate_quote_fields(errors: _Errors, quote: Quote) -> None:
    if quote.currency not in CURRENCY_CODES:
        errors.add("currency", f"'{quote.currency}' is not a currency Throughline bills in.")
    if not isinstance(quote.valid_until, dt.date):
        errors.add("valid_until", "Enter the last day the offer is valid.")
    for name in ("planned_start", "planned_end"):
        value = getattr(quote, name)
        if value is not None and not isinstance(value, dt.date):
            errors.add(name, f"'{value}' is not a date.")
            setattr(quote, name, None)
    start, end = quote.planned_start, quote.planned_end
    if start and end and end < start:
        errors.add("planned_end", f"The planned end ({end.isoformat()}) is before the planned start ({start}).")
    for name, label in (("retainer_amount", "retainer"), ("expense_markup_percent", "markup")):
        value = _decimal_or_error(errors, name, getattr(quote, name), missing=None, places=2)
        if value is not None and value < 0:
            errors.add(name, f"The {label} cannot be negative.")
        elif value is not None:
            setattr(quote, name, value)
    if isinstance(quote.expense_markup_percent, Decimal) and quote.expense_markup_percent > MAX_EXPENSE_MARKUP:
        errors.add("expense_markup_percent", f"A markup on expenses is at most {MAX_EXPENSE_MARKUP} %.")
    if (
        quote.currency in CURRENCY_CODES
        and isinstance(quote.retainer_amount, Decimal)
        and quantize(quote.retainer_amount, quote.currency) != quote.retainer_amount
    ):
        errors.add("retainer_amount", f"An amount in {quote.currency} has at most its currency's decimals.")
    _full_clean(
        errors,
        "",
        quote,
        exclude=[
            "deal",
            "currency",
            "valid_until",
            "planned_start",
            "planned_end",
            "retainer_amount",
            "expense_markup_percent",
            "accepted_by",
            "pdf",
        ],
    )


def _build_lines(errors: _Errors, quote: Quote, rows: Sequence[Mapping[str, Any]]) -> list[QuoteLine]:
    """The quote's lines from ``rows``, each checked, with its net computed by ``quote_line_net_amount``."""
    if not rows:
        errors.add("lines", "A quote needs at least one line: what is sold, how much of it and at what price.")
    currency_ok = quote.currency in CURRENCY_CODES
    retainer_flagged = False
    built = []
    for index, row in enumerate(rows):
        prefix = f"lines.{index}."
        product = row.get("product") or None
        if product is not None and not isinstance(product, Product):
            errors.add(f"{prefix}product", "Choose a product from the catalog, or leave the product empty.")
            product = None
        line = QuoteLine(position=index, product=product)
        if product is not None:
            if not product.is_active:
                errors.add(f"{prefix}product", f"{product.code} is retired from the catalog; choose another product.")
            if product.currency != quote.currency:
                errors.add(
                    f"{prefix}product",
                    f"{product.code} is priced in {product.currency} but the quote is in {quote.currency}: "
                    f"choose a product priced in {quote.currency} or leave the product empty and enter the price.",
                )
        line.description = str(row.get("description") or "").strip() or (product.name if product else "")
        if not line.description:
            errors.add(f"{prefix}description", "Describe what the line sells.")
        line.phase = str(row.get("phase") or "").strip()
        line.labour_category = str(row.get("labour_category") or "").strip()
        line.billing_model = row.get("billing_model") or BillingModel.TIME_AND_MATERIALS
        if line.billing_model not in BillingModel.values:
            errors.add(
                f"{prefix}billing_model",
                f"'{line.billing_model}' is not a billing model; use one of {', '.join(BillingModel.values)}.",
            )
        line.unit = row.get("unit") or (product.unit if product else UnitCode.HOUR)
        if line.unit not in UnitCode.values:
            errors.add(f"{prefix}unit", f"'{line.unit}' is not a unit of measure (UN/ECE Rec. 20), e.g. HUR or DAY.")
        line.tax_category = row.get("tax_category") or (product.default_tax_category if product else "S")
        if line.tax_category not in _TAX_CATEGORIES:
            errors.add(f"{prefix}tax_category", f"'{line.tax_category}' is not a tax category a product asks for.")
        goods = product is not None and product.kind == Product.Kind.GOODS
        line.supply_kind = row.get("supply_kind") or (SupplyKind.GOODS if goods else SupplyKind.GENERAL_SERVICE)
        if line.supply_kind not in SupplyKind.VALUES:
            errors.add(f"{prefix}supply_kind", f"'{line.supply_kind}' is not a kind of supply.")
        quantity = _decimal_or_error(
            errors, f"{prefix}quantity", row.get("quantity"), missing="Enter the quantity.", places=4
        )
        if quantity is not None and quantity <= 0:
            errors.add(f"{prefix}quantity", "The quantity must be more than zero.")
            quantity = None
        price = _decimal_or_error(
            errors, f"{prefix}unit_price", row.get("unit_price"), missing="Enter the unit price.", places=4
        )
        if price is not None and price < 0:
            errors.add(f"{prefix}unit_price", "A unit price cannot be negative; give a discount instead.")
            price = None
        discount = _decimal_or_error(
            errors, f"{prefix}discount_percent", row.get("discount_percent"), missing=None, places=2
        )
        if discount is None and f"{prefix}discount_percent" not in errors.errors:
            discount = Decimal("0")
        if discount is not None and not Decimal("0") <= discount <= Decimal("100"):
            errors.add(f"{prefix}discount_percent", "A discount is between 0 and 100 %.")
            discount = None
        if line.billing_model == BillingModel.TIME_AND_MATERIALS and not line.labour_category:
            errors.add(
                f"{prefix}labour_category",
                "Time & materials lines need a labour category: the role on the rate card, e.g. 'Senior consultant'.",
            )
        if line.billing_model == BillingModel.RETAINER and not retainer_flagged:
            retainer = quote.retainer_amount
            if not isinstance(retainer, Decimal) or retainer <= 0:
                errors.add("retainer_amount", "A retainer line needs the monthly retainer amount on the quote.")
                retainer_flagged = True
        for name, value in (("quantity", quantity), ("unit_price", price), ("discount_percent", discount)):
            if value is not None:
                setattr(line, name, value)
        if quantity is not None and price is not None and discount is not None and currency_ok:
            markup = quote.expense_markup_percent if line.billing_model == BillingModel.EXPENSES else Decimal("0")
            markup = markup if isinstance(markup, Decimal) and markup >= 0 else Decimal("0")
            line.net_amount = quote_line_net_amount(
                quantity=quantity,
                unit_price=price,
                discount_percent=discount,
                currency=quote.currency,
                markup_percent=markup,
            )
        else:
            line.net_amount = None
        _full_clean(
            errors,
            prefix,
            line,
            exclude=[
                "quote",
                "product",
                "billing_model",
                "quantity",
                "unit",
                "unit_price",
                "discount_percent",
                "tax_category",
                "supply_kind",
                "net_amount",
            ],
        )
        built.append(line)
    return built


def _build_milestones(
    errors: _Errors, quote: Quote, rows: Sequence[Mapping[str, Any]], lines: Sequence[QuoteLine]
) -> list[QuoteMilestone]:
    """The milestone plan. Fixed-fee lines are billed by milestones, so when there are any, the milestone
    amounts must add up exactly to their net total; without fixed-fee lines, milestones are checkpoints and
    carry no amount."""
    fixed = [line for line in lines if line.billing_model == BillingModel.FIXED_FEE]
    currency = quote.currency if quote.currency in CURRENCY_CODES else None
    start, end = quote.planned_start, quote.planned_end
    built, amounts_ok = [], True
    for index, row in enumerate(rows):
        prefix = f"milestones.{index}."
        milestone = QuoteMilestone(position=index)
        milestone.name = str(row.get("name") or "").strip()
        milestone.phase = str(row.get("phase") or "").strip()
        milestone.acceptance_criteria = str(row.get("acceptance_criteria") or "").strip()
        if not milestone.name:
            errors.add(f"{prefix}name", "Name the milestone, e.g. 'Design signed off'.")
        planned = row.get("planned_date")
        if not isinstance(planned, dt.date):
            errors.add(f"{prefix}planned_date", "Enter the date the milestone is planned for.")
        else:
            milestone.planned_date = planned
            if (start and planned < start) or (end and planned > end):
                window = f"{start.isoformat() if start else '…'} – {end.isoformat() if end else '…'}"
                errors.add(
                    f"{prefix}planned_date",
                    f"{planned.isoformat()} is outside the quote's planned period ({window}).",
                )
        amount = _decimal_or_error(errors, f"{prefix}amount", row.get("amount"), missing=None)
        if amount is None:
            amount = Decimal("0") if f"{prefix}amount" not in errors.errors else None
        if amount is not None and amount < 0:
            errors.add(f"{prefix}amount", "A milestone amount cannot be negative.")
            amount = None
        if amount is not None and currency and quantize(amount, currency) != amount:
            errors.add(f"{prefix}amount", f"An amount in {currency} has at most its currency's decimals.")
            amount = None
        if amount is not None and amount and not fixed:
            errors.add(
                f"{prefix}amount",
                "Only fixed-fee work is billed by milestones; this quote has no fixed-fee line, so its milestones "
                "carry no amount.",
            )
        if amount is None:
            amounts_ok = False
        else:
            milestone.amount = amount
        _full_clean(errors, prefix, milestone, exclude=["quote", "planned_date", "amount"])
        built.append(milestone)
    if fixed and currency:
        nets = [line.net_amount for line in fixed]
        fixed_total = sum((n for n in nets if n is not None), Decimal("0"))
        if not rows:
            errors.add(
                "milestones",
                f"Fixed-fee lines are billed by milestones: add milestones whose amounts add up to "
                f"{_amount_text(fixed_total, currency)}.",
            )
        elif amounts_ok and None not in nets:
            planned = sum((m.amount for m in built), Decimal("0"))
            if planned != fixed_total:
                errors.add(
                    "milestones",
                    f"The milestone amounts add up to {_amount_text(planned, currency)} but the fixed-fee lines "
                    f"come to {_amount_text(fixed_total, currency)} "
                    f"(difference {_amount_text(fixed_total - planned, currency)}).",
                )
    return built


def _line_rows(lines: Sequence[QuoteLine]) -> list[dict[str, Any]]:
    return [{name: getattr(line, name) for name in LINE_FIELDS} for line in lines]


def _milestone_rows(milestones: Sequence[QuoteMilestone]) -> list[dict[str, Any]]:
    return [{name: getattr(m, name) for name in MILESTONE_FIELDS} for m in milestones]


def _validate_quote(
    quote: Quote, lines: Sequence[Mapping[str, Any]], milestones: Sequence[Mapping[str, Any]]
) -> tuple[_Errors, list[QuoteLine], list[QuoteMilestone]]:
    errors = _Errors()
    _validate_quote_fields(errors, quote)
    built_lines = _build_lines(errors, quote, lines)
    built_milestones = _build_milestones(errors, quote, milestones, built_lines)
    return errors, built_lines, built_milestones


def _same_rows(current: Sequence, fresh: Sequence, fields: Sequence[str]) -> bool:
    return len(current) == len(fresh) and all(
        all(getattr(a, f) == getattr(b, f) for f in (*fields, "position")) for a, b in zip(current, fresh, strict=True)
    )


def _replace_children(quote: Quote, manager, fresh: Sequence, fields: Sequence[str], *, user, reason: str) -> None:
    current = list(manager.order_by("position", "id"))
    if _same_rows(current, fresh, (*fields, "net_amount") if hasattr(manager.model, "net_amount") else fields):
        return
    for child in current:
        stamp(child, actor=user, reason=reason).delete()
    for child in fresh:
        child.quote = quote
        stamp(child, actor=user, reason=reason).save()


def _next_version(deal: Deal) -> int:
    return (Quote.objects.filter(deal=deal).aggregate(top=Max("version"))["top"] or 0) + 1


def _ready_to_go_out(quote: Quote, *, action: str) -> None:
    """What sending a draft (or accepting one) asks of it: valid today, lines and milestones that pass every
    rule (the catalog may have changed since the draft was saved), and a tax that can be worked out. A quote
    that was sent is accepted as it was sent: only its validity date is checked then."""
    errors = _Errors()
    if quote.status == Quote.Status.DRAFT:
        lines, milestones = list(quote.lines.all()), list(quote.milestones.all())
        errors, _built_lines, _built = _validate_quote(quote, _line_rows(lines), _milestone_rows(milestones))
    today = timezone.localdate()
    if isinstance(quote.valid_until, dt.date) and quote.valid_until < today:
        errors.add(
            "valid_until",
            f"The offer was valid until {quote.valid_until.isoformat()}, before today; set a new validity date.",
        )
    errors.raise_if_any(f"The quote was not {action}.")
    if quote.status != Quote.Status.DRAFT:
        return
    try:
        quote_tax_preview(quote=quote)
    except ValidationFailed as exc:
        raise ValidationFailed(
            f"The quote was not {action}: its tax cannot be worked out. {exc.message}", errors=exc.errors
        ) from exc


def _render_pdf_after_commit(quote: Quote) -> None:
    from django_q.tasks import async_task

    transaction.on_commit(lambda pk=quote.pk: async_task("customers.tasks.quote_pdf_render", pk))


def _sync_deal_amount(deal: Deal, quote: Quote, *, user, reason: str) -> None:
    """The deal's value follows the quote that went out or was accepted (its net total)."""
    total = sum((line.net_amount for line in quote.lines.all()), Decimal("0"))
    if deal.amount != total or deal.currency != quote.currency:
        deal.amount, deal.currency = total, quote.currency
        stamp(deal, actor=user, reason=reason).save(update_fields=["amount", "currency", "updated_at"])


# --- quotes: services ---------------------------------------------------------------------------------


@transaction.atomic
def quote_create(
    *,
    user,
    deal: Deal,
    data: Mapping[str, Any],
    lines: Sequence[Mapping[str, Any]],
    milestones: Sequence[Mapping[str, Any]] = (),
    reason: str = "",
) -> Quote:
    """The first (or next) version of the offer on an open deal, as a draft, with its lines and milestones.

    Defaults come from the deal and its customer: the currency, payment terms, PO and invoice-portal
    requirements; the offer is valid for 30 days. A deal has at most one draft at a time, and none once a
    quote was accepted.
    """
    _require_deal_worker(user, deal, "customers.add_quote", "create quotes")
    deal = deal_for_update(pk=deal.pk)
    _require_open(deal, "quotes are made for open deals only.")
    accepted = _accepted_quote(deal)
    if accepted is not None:
        raise Conflict(f"Version {accepted.version} of {deal.number} is accepted; the deal is waiting to be won.")
    draft = Quote.objects.filter(deal=deal, status=Quote.Status.DRAFT).first()
    if draft is not None:
        raise Conflict(f"Version {draft.version} of {deal.number} is still a draft: edit or send it first.")
    customer = deal.customer
    quote = Quote(
        deal=deal,
        status=Quote.Status.DRAFT,
        currency=deal.currency,
        payment_terms_days=customer.payment_terms_days,
        po_required=customer.purchase_order_required,
        portal_required=customer.delivery_channel == Customer.DeliveryChannel.PORTAL,
        valid_until=timezone.localdate() + dt.timedelta(days=QUOTE_VALIDITY_DAYS),
    )
    _set_quote_fields(quote, {k: v for k, v in data.items() if v is not None or k in ("planned_start", "planned_end")})
    errors, built_lines, built_milestones = _validate_quote(quote, lines, milestones)
    errors.raise_if_any("The quote was not saved.")
    quote.version = _next_version(deal)
    reason = reason or "Created"
    stamp(quote, actor=user, reason=reason).save()
    for child in (*built_lines, *built_milestones):
        child.quote = quote
        stamp(child, actor=user, reason=reason).save()
    return quote


@transaction.atomic
def quote_update(
    *,
    user,
    quote: Quote,
    data: Mapping[str, Any],
    lines: Sequence[Mapping[str, Any]] | None = None,
    milestones: Sequence[Mapping[str, Any]] | None = None,
    reason: str = "",
) -> Quote:
    """Change a draft. ``lines`` and ``milestones``, when given, replace the current ones wholesale; when
    absent, the current ones stay and are checked again against the changed quote (a new currency, a new
    markup). Sent, accepted, superseded and declined versions never change."""
    _require_deal_worker(user, quote.deal, "customers.change_quote", "change quotes")
    deal = deal_for_update(pk=quote.deal_id)
    quote = quote_for_update(pk=quote.pk)
    if quote.status != Quote.Status.DRAFT:
        raise TransitionNotAllowed(
            f"Version {quote.version} is {quote.get_status_display().lower()}: only drafts change. "
            "Make a new version to change the offer."
        )
    _require_open(deal, "its quotes no longer change.")
    _set_quote_fields(quote, data)
    line_rows = lines if lines is not None else _line_rows(list(quote.lines.all()))
    milestone_rows = milestones if milestones is not None else _milestone_rows(list(quote.milestones.all()))
    errors, built_lines, built_milestones = _validate_quote(quote, line_rows, milestone_rows)
    errors.raise_if_any("The quote was not saved.")
    reason = reason or "Edited"
    stamp(quote, actor=user, reason=reason).save()
    _replace_children(quote, quote.lines, built_lines, LINE_FIELDS, user=user, reason=reason)
    _replace_children(quote, quote.milestones, built_milestones, MILESTONE_FIELDS, user=user, reason=reason)
    return quote


@transaction.atomic
def quote_new_version(*, user, quote: Quote, reason: str = "") -> Quote:
    """Copy a draft, sent or declined quote into the next version, a draft with the same terms, lines and
    milestones (attachments stay with the version they were given for). Any draft of the deal, the copied
    one included, becomes superseded; a sent version stays out with the customer until the new one is sent.
    An offer that has expired gets a fresh 30-day validity."""
    _require_deal_worker(user, quote.deal, "customers.add_quote", "create quotes")
    deal = deal_for_update(pk=quote.deal_id)
    _require_open(deal, "quotes are made for open deals only.")
    quotes = quotes_of_deal_for_update(deal_id=deal.pk)
    source = next(q for q in quotes if q.pk == quote.pk)
    copyable = (Quote.Status.DRAFT, Quote.Status.SENT, Quote.Status.DECLINED)
    if source.status not in copyable:
        raise TransitionNotAllowed(
            f"Version {source.version} is {source.get_status_display().lower()}; new versions are made from a "
            "draft, sent or declined quote."
        )
    accepted = next((q for q in quotes if q.status == Quote.Status.ACCEPTED), None)
    if accepted is not None:
        raise Conflict(f"Version {accepted.version} of {deal.number} is accepted; the deal is waiting to be won.")
    version = max(q.version for q in quotes) + 1
    reason = reason or f"New version v{version} from v{source.version}"
    for draft in (q for q in quotes if q.status == Quote.Status.DRAFT):
        draft.status = Quote.Status.SUPERSEDED
        stamp(draft, actor=user, reason=f"Superseded by v{version}").save(update_fields=["status", "updated_at"])
    today = timezone.localdate()
    copy = Quote(deal=deal, version=version, status=Quote.Status.DRAFT)
    for name in QUOTE_FIELDS:
        setattr(copy, name, getattr(source, name))
    if copy.valid_until < today:
        copy.valid_until = today + dt.timedelta(days=QUOTE_VALIDITY_DAYS)
    stamp(copy, actor=user, reason=reason).save()
    for line in source.lines.all():
        clone = QuoteLine(quote=copy, position=line.position, net_amount=line.net_amount)
        for name in LINE_FIELDS:
            setattr(clone, name, getattr(line, name))
        stamp(clone, actor=user, reason=reason).save()
    for milestone in source.milestones.all():
        clone = QuoteMilestone(quote=copy, position=milestone.position)
        for name in MILESTONE_FIELDS:
            setattr(clone, name, getattr(milestone, name))
        stamp(clone, actor=user, reason=reason).save()
    return copy


@transaction.atomic
def quote_send(*, user, quote: Quote, reason: str = "") -> Quote:
    """Send a draft: it must be valid today, pass every rule and have a tax that can be worked out. The
    versions sent before it are superseded, the deal's value becomes this quote's net total, and once the
    transaction commits a task renders the PDF (once: a sent quote is never rendered again)."""
    _require_deal_worker(user, quote.deal, "customers.change_quote", "send quotes")
    deal = deal_for_update(pk=quote.deal_id)
    quotes = quotes_of_deal_for_update(deal_id=deal.pk)
    quote = next(q for q in quotes if q.pk == quote.pk)
    if quote.status != Quote.Status.DRAFT:
        raise TransitionNotAllowed(
            f"Version {quote.version} is {quote.get_status_display().lower()}; only a draft can be sent."
        )
    _require_open(deal, "its quotes are no longer sent.")
    _ready_to_go_out(quote, action="sent")
    reason = reason or f"Sent v{quote.version}"
    for earlier in (q for q in quotes if q.status == Quote.Status.SENT):
        earlier.status = Quote.Status.SUPERSEDED
        stamp(earlier, actor=user, reason=f"Superseded by v{quote.version}")
        earlier.save(update_fields=["status", "updated_at"])
    quote.status, quote.sent_at = Quote.Status.SENT, timezone.now()
    stamp(quote, actor=user, reason=reason).save(update_fields=["status", "sent_at", "updated_at"])
    _sync_deal_amount(deal, quote, user=user, reason=reason)
    _render_pdf_after_commit(quote)
    return quote


@transaction.atomic
def quote_accept(*, user, quote: Quote, customer_signatory: str = "", reason: str = "") -> Quote:
    """Record the customer's acceptance of a sent quote (or of a draft they signed on the spot). One quote
    per deal is accepted (the database refuses a second one too); the deal's other drafts and sent versions
    are superseded. Accepting does not win the deal: "Mark won" hands it over to a project."""
    _require_deal_worker(user, quote.deal, "customers.change_quote", "accept quotes")
    deal = deal_for_update(pk=quote.deal_id)
    quotes = quotes_of_deal_for_update(deal_id=deal.pk)
    quote = next(q for q in quotes if q.pk == quote.pk)
    if quote.status not in (Quote.Status.DRAFT, Quote.Status.SENT):
        raise TransitionNotAllowed(
            f"Version {quote.version} is {quote.get_status_display().lower()}; only a sent or draft quote can be "
            "accepted."
        )
    _require_open(deal, "its quotes are no longer accepted.")
    accepted = next((q for q in quotes if q.status == Quote.Status.ACCEPTED), None)
    if accepted is not None:
        raise Conflict(f"Version {accepted.version} of {deal.number} is already accepted; only one quote is.")
    signatory = str(customer_signatory or "").strip()
    if len(signatory) > 120:
        raise ValidationFailed("Keep the signatory's name under 120 characters.", field="customer_signatory")
    _ready_to_go_out(quote, action="accepted")
    reason = reason or f"Accepted v{quote.version}" + (f" (signed by {signatory})" if signatory else "")
    for other in (q for q in quotes if q.pk != quote.pk and q.status in (Quote.Status.DRAFT, Quote.Status.SENT)):
        other.status = Quote.Status.SUPERSEDED
        stamp(other, actor=user, reason=f"v{quote.version} was accepted").save(update_fields=["status", "updated_at"])
    quote.status, quote.accepted_at, quote.accepted_by = Quote.Status.ACCEPTED, timezone.now(), user
    quote.customer_signatory = signatory
    try:
        with transaction.atomic():
            stamp(quote, actor=user, reason=reason).save(
                update_fields=["status", "accepted_at", "accepted_by", "customer_signatory", "updated_at"]
            )
    except IntegrityError as exc:
        raise Conflict(f"Another quote of {deal.number} was accepted at the same time; only one quote is.") from exc
    _sync_deal_amount(deal, quote, user=user, reason=reason)
    if not quote.pdf:
        _render_pdf_after_commit(quote)
    return quote


def quote_tax_preview(*, quote: Quote, lines: Sequence[QuoteLine] | None = None) -> TaxResult:
    """The tax of a quote as it stands (nothing stored): our delivering entity sells to the deal's customer,
    the tax point is the planned start (today when there is none). ``lines`` (unsaved, e.g. from the edit
    page) replace the stored lines. Raises ``ValidationFailed`` when a fact is missing (a billing address)."""
    deal = quote.deal
    lines = list(quote.lines.all()) if lines is None else list(lines)
    return tax_preview(
        context=tax_context_for(
            legal_entity=deal.legal_entity,
            customer=deal.customer,
            lines=[
                {
                    "id": str(line.public_id) if line.pk else str(index + 1),
                    "net_amount": format(line.net_amount, "f"),
                    "category": line.tax_category,
                    "supply_kind": line.supply_kind,
                    "description": line.description,
                }
                for index, line in enumerate(lines)
            ],
            tax_point=quote.planned_start or timezone.localdate(),
            currency=quote.currency,
        )
    )


def quote_draft_lines(*, quote: Quote, lines: Sequence[Mapping[str, Any]]) -> list[QuoteLine]:
    """Unsaved lines built from ``lines`` by the rules of ``quote_create`` (for the live tax preview): the
    lines that passed, with their nets. Raises ``ValidationFailed`` when none did."""
    errors = _Errors()
    built = [line for line in _build_lines(errors, quote, lines) if line.net_amount is not None]
    if not built:
        errors.raise_if_any("No line can be taxed yet.")
        raise ValidationFailed("Add a line with a quantity and a unit price to see the tax.", field="lines")
    return built


# --- attachments --------------------------------------------------------------------------------------


@transaction.atomic
def quote_attachment_add(*, user, quote: Quote, kind: str, upload, reason: str = "") -> QuoteAttachment:
    """Attach a signed proposal, statement of work, purchase order or other document to a draft, sent or
    accepted quote: a PDF, JPEG, PNG, DOCX, XLSX or ODT file of at most 10 MB whose extension, declared type
    and content agree. Its SHA-256 is stored; the uploader's file name is kept for display only."""
    _require_deal_worker(user, quote.deal, "customers.add_quoteattachment", "attach documents to quotes")
    deal = deal_for_update(pk=quote.deal_id)
    quote = quote_for_update(pk=quote.pk)
    if deal.stage.outcome == _WON:
        raise TransitionNotAllowed(f"{deal.number} is won; its documents were handed over to the project.")
    if quote.status not in (Quote.Status.DRAFT, Quote.Status.SENT, Quote.Status.ACCEPTED):
        raise TransitionNotAllowed(
            f"Version {quote.version} is {quote.get_status_display().lower()}; attach documents to the current version."
        )
    errors = _Errors()
    if kind not in QuoteAttachment.Kind.values:
        errors.add(
            "kind", f"'{kind}' is not a kind of attachment; use one of {', '.join(QuoteAttachment.Kind.values)}."
        )
    if upload is None:
        errors.add("file", "Choose the file to attach.")
    else:
        problem = file_problem(upload, types=ATTACHMENT_TYPES, max_bytes=ATTACHMENT_MAX_BYTES, noun="attachment")
        if problem:
            errors.add("file", problem)
    errors.raise_if_any("The file was not attached.")
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks() if hasattr(upload, "chunks") else [upload.read()]:
        digest.update(chunk)
    upload.seek(0)
    name = PurePosixPath(getattr(upload, "name", "") or "file").name
    attachment = QuoteAttachment(
        quote=quote,
        kind=kind,
        filename=name[-200:],
        content_type=CANONICAL_CONTENT_TYPES[document_format(upload)],
        size=upload.size,
        sha256=digest.hexdigest(),
        uploaded_by=user,
    )
    attachment.file.save(name, upload, save=False)
    stamp(attachment, actor=user, reason=reason or f"Attached {attachment.get_kind_display().lower()}").save()
    return attachment


@transaction.atomic
def quote_attachment_remove(*, user, attachment: QuoteAttachment, reason: str = "") -> None:
    """Remove an attachment from a draft (a sent or accepted quote keeps its documents). The history keeps
    the record and the file stays in storage, so the history still leads to it."""
    quote = attachment.quote
    _require_deal_worker(user, quote.deal, "customers.delete_quoteattachment", "remove attachments")
    deal_for_update(pk=quote.deal_id)
    quote = quote_for_update(pk=quote.pk)
    if quote.status != Quote.Status.DRAFT:
        raise TransitionNotAllowed(
            f"Version {quote.version} is {quote.get_status_display().lower()}; its attachments stay with it. "
            "Only a draft's attachments can be removed."
        )
    stamp(attachment, actor=user, reason=reason or "Removed").delete()


__all__ = [
    "ATTACHMENT_MAX_BYTES",
    "ATTACHMENT_TYPES",
    "DEAL_FIELDS",
    "LINE_FIELDS",
    "MILESTONE_FIELDS",
    "QUOTE_FIELDS",
    "deal_close_won",
    "deal_create",
    "deal_move_stage",
    "deal_update",
    "quote_accept",
    "quote_attachment_add",
    "quote_attachment_remove",
    "quote_create",
    "quote_draft_lines",
    "quote_line_net_amount",
    "quote_new_version",
    "quote_send",
    "quote_tax_preview",
    "quote_update",
]
