"""Credit notes: the only correction of an issued invoice (financial records are append-only).

A credit note is an ``Invoice`` of kind ``credit_note`` that names the invoice it credits
(``credited_invoice``) and, line by line, the line it credits (``InvoiceLine.credited_line``). It is made as a
**draft** here and then goes through the normal life cycle of ``billing.issuing`` (approve within the approval
limit, issue with the next number of its own gapless series ``<prefix>-CN-<year>-…``).

**What may be credited.** Only issued invoices (kind invoice), in full or chosen lines with an amount each.
The invariant, per original line: the credit lines of all credit notes that are not discarded (drafts and
approved ones included, so that two drafts cannot credit the same euro twice) never add up to more than the
line's net amount. It is checked under a lock of the original invoice, so concurrent credit notes of one
invoice are serialised. A line with a net amount of zero or less (a discount, a negative adjustment) is only
credited whole.

**Exact negation of the tax.** A credit line keeps the original line's product tax category, and the credit
note is priced with the original's tax point (its issue date), so the engine decides the same category and
rate; since the engine computes the tax of a category on the sum of its line nets and rounds half away from
zero, negated nets give exactly the negated tax, to the cent. The service checks it rather than trusting it:
a line the engine would now tax differently (the customer's VAT details changed, say) is refused with the
reason, both when the draft is made and again when it is issued (``credit_note_on_issue``).

**Release for rebilling.** With ``release_items`` the credited source items (time, expenses, milestones,
retainer months) become billable again once the credit note is issued, inside the issuing transaction: the
original's live ``InvoiceItem`` rows of the credited lines are released (``live`` true → false, the one
change the trigger of ``0003_issued_invoices_immutable`` allows on an issued invoice), and the projects app
puts their sources back (time and expenses billed → approved, milestones billed → accepted, the invoice
reference cleared) through its own services. A retainer month has no source row: its released item was the
record that it was billed. The next invoice run then bills them again, once, at the price in force on each
item's date. Only lines credited in full may release their items: when the draft is made (a partial credit is
refused, naming the line) and again at issue, where "in full" counts the issued credit notes and this one
(not drafts, which may still be discarded). All or nothing: any refusal rolls the whole issue back.

Lock order: the original invoice (``FOR NO KEY UPDATE``: it serialises credit notes of one invoice without
blocking the ``FOR KEY SHARE`` that the item trigger takes when an issuing transaction releases items), then
the rows this module writes. No history is written before the lock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, Sum

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.history import stamp
from backbone.money import format_money, quantize
from backbone.roles import require_writer
from projects.milestones import milestones_release_billed
from projects.models import Expense, Milestone, TimeEntry
from projects.timesheets import time_entries_release_billed

from .models import CreditReason, Invoice, InvoiceItem, InvoiceLine
from .pricing import invoice_refigure

# Whether a credit note may release its items for rebilling (the projects app's ``*_release_billed`` services
# and its trigger of ``0009_release_billed`` do their half). Pages and the API offer the option when true.
RELEASE_AVAILABLE = True
RELEASE_UNAVAILABLE_MESSAGE = (
    "Releasing the credited items for rebilling is not available yet; create the credit note without it "
    "(the items stay billed on the original invoice)."
)

ZERO = Decimal("0")
# Credit notes that count against an invoice: everything but discarded drafts.
_COUNTING = (Invoice.Status.DRAFT, Invoice.Status.APPROVED, Invoice.Status.ISSUED)
_MAX_QUANTITY_PLACES = 4  # InvoiceLine.quantity has four decimal places


# --- guards -------------------------------------------------------------------------------------------


def _require_creditor(actor) -> None:
    require_writer(actor)
    if not actor.has_perm("billing.add_invoice"):
        raise NotPermitted(
            "Only finance creates credit notes; ask finance for one (executives approve those above the limits)."
        )


def _money(amount: Decimal, currency: str) -> str:
    return format_money(amount, currency)


def line_label(line: InvoiceLine) -> str:
    """How messages name a line: its position and the start of its description."""
    description = " ".join(line.description.split())
    if len(description) > 60:
        description = description[:59].rstrip() + "…"
    return f"Line {line.position} ({description})"


def credit_refusal(invoice: Invoice) -> str | None:
    """Why ``invoice`` cannot be credited at all (kind and status only), or None."""
    if invoice.kind != Invoice.Kind.INVOICE:
        return f"{invoice} is a credit note itself; only invoices are credited."
    if invoice.status == Invoice.Status.ISSUED:
        return None
    if invoice.status == Invoice.Status.DISCARDED:
        return f"{invoice} was discarded; there is nothing to credit."
    state = "a draft" if invoice.status == Invoice.Status.DRAFT else "approved but not issued yet"
    return f"{invoice} is {state}; only issued invoices are credited (until then, correct the invoice itself)."


# --- reads --------------------------------------------------------------------------------------------


def credited_by_line(invoice: Invoice) -> dict[int, Decimal]:
    """Per line of ``invoice`` (by pk): the sum of the net amounts of the credit lines of every credit note
    that is not discarded (negative for a credited positive line). One query."""
    rows = InvoiceLine.objects.filter(credited_line__invoice=invoice, invoice__status__in=_COUNTING)
    return {
        row["credited_line_id"]: row["total"] or ZERO
        for row in rows.order_by().values("credited_line_id").annotate(total=Sum("net_amount"))
    }


@dataclass
class CreditableLine:
    """A line of an issued invoice with what is credited already and what remains."""

    line: InvoiceLine
    credited_amount: Decimal  # the amount credited so far, in the line's own sign (positive for a positive line)
    remaining_amount: Decimal  # the line's net amount less what is credited

    @property
    def untouched(self) -> bool:
        return self.credited_amount == ZERO


def creditable_lines(invoice: Invoice) -> list[CreditableLine]:
    """Every line of ``invoice`` in order with its credited and remaining amounts: two queries."""
    credited = credited_by_line(invoice)
    lines = list(InvoiceLine.objects.filter(invoice=invoice).order_by("position", "id"))
    return [
        CreditableLine(
            line=line,
            credited_amount=-credited.get(line.pk, ZERO),
            remaining_amount=line.net_amount + credited.get(line.pk, ZERO),
        )
        for line in lines
    ]


def invoice_balance(invoice: Invoice) -> dict[str, Any]:
    """What an invoice still asks for after its credit notes: the gross total, the gross credited by issued
    credit notes (a positive amount), the remaining balance, and what drafts or approved credit notes would
    credit on top (pending). Payments are not part of it (receivables). One query.

    Keys: ``currency``, ``gross_total``, ``credited_amount``, ``remaining_amount``, ``pending_amount``,
    ``issued_count``, ``pending_count``."""
    rows = (
        Invoice.objects.filter(credited_invoice=invoice, kind=Invoice.Kind.CREDIT_NOTE, status__in=_COUNTING)
        .order_by()
        .values("status")
        .annotate(total=Sum("gross_total"), count=Count("id"))
    )
    issued = pending = ZERO
    issued_count = pending_count = 0
    for row in rows:
        if row["status"] == Invoice.Status.ISSUED:
            issued, issued_count = -(row["total"] or ZERO), row["count"]
        else:
            pending += -(row["total"] or ZERO)
            pending_count += row["count"]
    return {
        "currency": invoice.currency,
        "gross_total": invoice.gross_total,
        "credited_amount": issued,
        "remaining_amount": invoice.gross_total - issued,
        "pending_amount": pending,
        "issued_count": issued_count,
        "pending_count": pending_count,
    }


def credit_notes_of(invoice: Invoice):
    """The credit notes of ``invoice`` (discarded ones too: the record), oldest first."""
    return Invoice.objects.filter(credited_invoice=invoice, kind=Invoice.Kind.CREDIT_NOTE).order_by("created_at", "id")


def billed_items_by_line(invoice: Invoice) -> dict[int, int]:
    """Per line of ``invoice`` (by pk): how many source items it still bills (live items), which a credit of the
    whole line may release for rebilling. One query."""
    rows = InvoiceItem.objects.filter(invoice=invoice, live=True).order_by().values("line_id").annotate(n=Count("id"))
    return {row["line_id"]: row["n"] for row in rows}


# --- create -------------------------------------------------------------------------------------------


@dataclass
class _Planned:
    source: CreditableLine
    net_amount: Decimal  # the credit line's net amount (negative for a positive original line)


class _Errors:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    def raise_if_any(self, lead: str) -> None:
        if self.errors:
            first = next(iter(self.errors.values()))[0]
            raise ValidationFailed(f"{lead} {first}", errors=self.errors)


def _amount(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        raise ValueError("a float")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(str(value)) from exc
    if not amount.is_finite():
        raise ValueError(str(value))
    return amount


def _reason(errors: _Errors, reason: Any, explanation: str) -> str:
    reason = str(reason or "").strip()
    if not reason:
        errors.add("reason", "Choose the root cause of the credit (missing time, misapplied tax, …).")
    elif reason not in CreditReason.values:
        choices = ", ".join(CreditReason.values)
        errors.add("reason", f"'{reason}' is not a root cause; choose one of {choices}.")
    elif reason == CreditReason.OTHER and not explanation:
        errors.add("explanation", "Say what the other cause was: it is printed on the credit note.")
    return reason


def _plan_full(errors: _Errors, invoice: Invoice, creditable: list[CreditableLine]) -> list[_Planned]:
    planned = [_Planned(source=c, net_amount=-c.remaining_amount) for c in creditable if c.remaining_amount != ZERO]
    if not planned:
        errors.add("full", f"Everything on {invoice} is credited already (draft credit notes included).")
    return planned


def _plan_lines(
    errors: _Errors, invoice: Invoice, creditable: list[CreditableLine], chosen: Sequence[Mapping[str, Any]]
) -> list[_Planned]:
    by_pk = {c.line.pk: c for c in creditable}
    currency = invoice.currency
    planned: list[_Planned] = []
    seen: set[int] = set()
    for index, choice in enumerate(chosen):
        at = f"lines.{index}"
        line = choice.get("line") if isinstance(choice, Mapping) else None
        source = by_pk.get(getattr(line, "pk", None))
        if source is None:
            errors.add(f"{at}.line", f"Choice {index + 1} is not a line of {invoice}.")
            continue
        label = line_label(source.line)
        if source.line.pk in seen:
            errors.add(f"{at}.line", f"{label} is chosen twice.")
            continue
        seen.add(source.line.pk)
        try:
            amount = _amount(choice.get("amount"))
        except ValueError:
            errors.add(f"{at}.amount", f"{label}: the amount must be a number like 120.50.")
            continue
        net, remaining = source.line.net_amount, source.remaining_amount
        if net == ZERO:
            errors.add(f"{at}.amount", f"{label} has a net amount of zero; there is nothing to credit.")
            continue
        if remaining == ZERO:
            errors.add(
                f"{at}.amount",
                f"{label} is fully credited already ({_money(source.credited_amount, currency)}, draft credit notes "
                "included); nothing remains to credit.",
            )
            continue
        if amount is None:
            planned.append(_Planned(source=source, net_amount=-remaining))
            continue
        if net <= ZERO:
            errors.add(
                f"{at}.amount",
                f"{label} reduces the invoice by {_money(-net, currency)}; it is credited whole or not at all "
                "(leave the amount empty).",
            )
            continue
        if amount <= ZERO:
            errors.add(f"{at}.amount", f"{label}: the amount to credit must be more than zero.")
            continue
        if amount != quantize(amount, currency):
            errors.add(f"{at}.amount", f"{label}: {amount} has more decimals than {currency} allows.")
            continue
        if amount > remaining:
            already = (
                f"{_money(source.credited_amount, currency)} of its {_money(net, currency)} is credited already "
                "(draft credit notes included), so at most "
                if source.credited_amount
                else f"its net amount is {_money(net, currency)}, so at most "
            )
            errors.add(
                f"{at}.amount",
                f"{label}: {_money(amount, currency)} is more than can be credited; {already}"
                f"{_money(remaining, currency)} can be.",
            )
            continue
        planned.append(_Planned(source=source, net_amount=-amount))
    if not chosen:
        errors.add("lines", "Choose the lines to credit, or credit the whole invoice.")
    return planned


def _release_refusal(invoice: Invoice, planned: list[_Planned]) -> tuple[str, str] | None:
    """(field, message) when the credited lines' items may not be released, else None."""
    partial = [p for p in planned if p.source.remaining_amount + p.net_amount != ZERO]
    if partial:
        labels = ", ".join(line_label(p.source.line) for p in partial[:3])
        return (
            "release_items",
            f"Only lines credited in full release their items for rebilling; {labels} "
            f"{'is' if len(partial) == 1 else 'are'} credited in part.",
        )
    line_ids = [p.source.line.pk for p in planned]
    if not InvoiceItem.objects.filter(invoice=invoice, line_id__in=line_ids, live=True).exists():
        return ("release_items", "The credited lines carry no billed items; there is nothing to release.")
    if not RELEASE_AVAILABLE:
        return ("release_items", RELEASE_UNAVAILABLE_MESSAGE)
    return None


def _credit_quantity(source: InvoiceLine, net_amount: Decimal) -> tuple[Decimal, str, Decimal]:
    """Quantity, unit and unit price of a credit line. The whole line: the original's quantity negated at its
    price. A part: the quantity at the original price when it comes out exact (300.00 of 150/h: -2 h), else one
    unit (C62) at the amount."""
    if net_amount == -source.net_amount:
        return -source.quantity, source.unit, source.unit_price
    if source.unit_price > ZERO:
        quantity = net_amount / source.unit_price
        if quantity == quantity.quantize(Decimal(1).scaleb(-_MAX_QUANTITY_PLACES)):
            return quantity, source.unit, source.unit_price
    return Decimal("-1"), "C62", -net_amount


def _credit_line(note: Invoice, position: int, plan: _Planned, original: Invoice) -> InvoiceLine:
    source = plan.source.line
    quantity, unit, unit_price = _credit_quantity(source, plan.net_amount)
    kind = source.kind
    if kind == InvoiceLine.Kind.DISCOUNT:
        # A discount is an allowance of a positive amount; reversing it is a positive line (same category).
        kind, quantity, unit, unit_price = InvoiceLine.Kind.MANUAL, Decimal("1"), "C62", plan.net_amount
    note_text = f"Credits line {source.position} of {original.number}"
    if plan.net_amount != -source.net_amount:
        currency = original.currency
        note_text += f" in part ({_money(-plan.net_amount, currency)} of {_money(source.net_amount, currency)})"
    return InvoiceLine(
        invoice=note,
        position=position,
        kind=kind,
        project=source.project,
        description=source.description,
        phase=source.phase,
        labour_category=source.labour_category,
        note=note_text,
        quantity=quantity,
        unit=unit,
        unit_price=unit_price,
        net_amount=plan.net_amount,
        product_tax_category=source.product_tax_category,
        tax_category=source.tax_category,
        tax_rate=source.tax_rate,
        service_start=source.service_start,
        service_end=source.service_end,
        credited_line=source,
    )


def _rate(rate: Decimal | None) -> str:
    return f"{(rate or ZERO).normalize():f} %"


def tax_mismatches(note_lines: Iterable[InvoiceLine], originals: Mapping[int, InvoiceLine]) -> dict[str, list[str]]:
    """Credit lines the engine taxed otherwise than their original line (category or rate), by
    ``tax.<original line's position>``: a credit note must reverse the VAT exactly as it was charged."""
    errors: dict[str, list[str]] = {}
    for line in note_lines:
        source = originals.get(line.credited_line_id)
        if source is None:
            continue
        same_rate = (line.tax_rate or ZERO) == (source.tax_rate or ZERO)
        if line.tax_category != source.tax_category or not same_rate:
            errors[f"tax.{source.position}"] = [
                f"{line_label(source)} was taxed {source.tax_category} {_rate(source.tax_rate)} on the invoice, but "
                f"the engine now decides {line.tax_category} {_rate(line.tax_rate)} (the customer's tax details or "
                "the rates changed): the credit note would not reverse the VAT as it was charged."
            ]
    return errors


@transaction.atomic
def credit_note_create(
    *,
    actor,
    invoice: Invoice,
    lines: Sequence[Mapping[str, Any]] | None = None,
    full: bool = False,
    reason: str,
    explanation: str = "",
    release_items: bool = False,
) -> Invoice:
    """A draft credit note of the issued ``invoice``: the whole of it (``full``), or the chosen ``lines``
    (``[{"line": InvoiceLine, "amount": Decimal | None}]``; no amount credits what remains of the line), with
    the root cause ``reason`` (a ``CreditReason``), an ``explanation`` printed on it, and whether issuing it
    releases the credited items for rebilling. Approve and issue it with ``billing.issuing``.

    Plain ``atomic`` like ``billing.issuing``, so that an API can store its idempotency record in the same
    transaction."""
    _require_creditor(actor)
    original = (
        Invoice.objects.select_for_update(of=("self",), no_key=True)
        .select_related("legal_entity", "customer")
        .get(pk=invoice.pk)
    )
    refusal = credit_refusal(original)
    if refusal:
        raise TransitionNotAllowed(refusal, field="invoice")

    errors = _Errors()
    explanation = str(explanation or "").strip()
    reason = _reason(errors, reason, explanation)
    if len(explanation) > 2000:
        errors.add("explanation", "At most 2,000 characters.")
    chosen = list(lines or [])
    creditable = creditable_lines(original)
    planned: list[_Planned] = []
    if full and chosen:
        errors.add("full", "Credit either the whole invoice or chosen lines, not both.")
    elif full:
        planned = _plan_full(errors, original, creditable)
    else:
        planned = _plan_lines(errors, original, creditable, chosen)
    if planned and sum((p.net_amount for p in planned), ZERO) == ZERO:
        errors.add("lines", "The chosen lines add up to zero; there is nothing to credit.")
    errors.raise_if_any("The credit note was not created:")
    if release_items:
        release = _release_refusal(original, planned)
        if release:
            raise ValidationFailed(release[1], field=release[0])

    note = Invoice(
        kind=Invoice.Kind.CREDIT_NOTE,
        legal_entity=original.legal_entity,
        customer=original.customer,
        project=original.project,
        currency=original.currency,
        language=original.language,
        po_number=original.po_number,
        grouping=original.grouping,
        period_start=original.period_start,
        period_end=original.period_end,
        payment_terms_days=original.payment_terms_days,
        seller=original.seller,
        buyer=original.buyer,
        credited_invoice=original,
        created_by=actor,
        credit_reason=reason,
        credit_explanation=explanation,
        releases_items=bool(release_items),
    )
    what = "in full" if full else f"{len(planned)} line{'s' if len(planned) != 1 else ''}"
    stamp(note, actor=actor, reason=f"Credit note for {original.number} ({what}): {CreditReason(reason).label}").save()
    note_lines = []
    for position, plan in enumerate(sorted(planned, key=lambda p: (p.source.line.position, p.source.line.pk)), 1):
        line = _credit_line(note, position, plan, original)
        stamp(line, actor=actor, reason=f"Credits line {plan.source.line.position} of {original.number}").save()
        note_lines.append(line)

    # Priced with the original's tax point: a credit note reverses the VAT of the supply it corrects.
    invoice_refigure(note, note_lines, tax_point=original.issue_date)
    mismatches = tax_mismatches(note_lines, {c.line.pk: c.line for c in creditable})
    if mismatches:
        first = next(iter(mismatches.values()))[0]
        raise Conflict(f"The credit note was not created: {first}", errors=mismatches)
    return note


# --- issue --------------------------------------------------------------------------------------------


def credit_note_on_issue(credit_note: Invoice, *, actor) -> None:
    """What issuing a credit note adds, inside ``billing.issuing.invoice_issue``'s transaction, after the tax is
    refigured and the fields are set and before the issued row is saved:

    * the credited invoice must still be an issued invoice, and no line of it credited beyond its net amount;
    * every credit line must be taxed exactly as the line it credits (else the VAT would not be reversed);
    * the seller and buyer are the original's snapshots (the parties of the supply being corrected);
    * with ``releases_items``, the credited items are released for rebilling (see the module docstring).

    A credit note made by hand without a credited invoice (no ``credited_invoice``) is left to issuing as it
    is, and so are its lines that name no credited line: only what names the original is checked.

    Raises a ``DomainError`` to refuse; the issue rolls back with its number (and any release with it). Takes no
    row lock of its own before writing (the issuing transaction already holds the projects; the original invoice
    is only read). A release locks the released entries and milestones through the projects services, after
    their projects (held by the issue already), exactly as the billed mark of an invoice's issue does."""
    if credit_note.kind != Invoice.Kind.CREDIT_NOTE or credit_note.credited_invoice_id is None:
        return
    original = Invoice.objects.get(pk=credit_note.credited_invoice_id)
    refusal = credit_refusal(original)
    if refusal:
        raise Conflict(f"{credit_note} cannot be issued: {refusal}", field="credited_invoice")
    note_lines = list(
        InvoiceLine.objects.filter(invoice=credit_note, credited_line__isnull=False).order_by("position", "id")
    )
    originals = {line.pk: line for line in InvoiceLine.objects.filter(invoice=original)}
    if any(line.credited_line_id not in originals for line in note_lines):
        raise Conflict(f"{credit_note} credits lines of another invoice than {original.number}.", field="lines")
    credited = credited_by_line(original)
    over = [
        originals[pk] for pk, total in credited.items() if pk in originals and _beyond(originals[pk].net_amount, -total)
    ]
    if over:
        raise Conflict(
            f"{line_label(over[0])} of {original.number} would be credited beyond its net amount; nothing was issued.",
            field="lines",
        )
    mismatches = tax_mismatches(note_lines, originals)
    if mismatches:
        first = next(iter(mismatches.values()))[0]
        raise Conflict(f"{credit_note} cannot be issued: {first}", errors=mismatches)
    credit_note.seller, credit_note.buyer = original.seller, original.buyer
    if credit_note.releases_items and note_lines:
        _release(credit_note, original, note_lines, actor=actor)


def _beyond(net: Decimal, credited: Decimal) -> bool:
    """Whether ``credited`` (in the line's sign) exceeds the line's ``net`` amount."""
    return credited > net if net >= ZERO else credited < net


def _credited_by_issued(original: Invoice, credit_note: Invoice) -> dict[int, Decimal]:
    """Per line of ``original``: what the issued credit notes and ``credit_note`` (being issued) credit (negative
    for a positive line). Drafts do not count here: they may still be discarded."""
    rows = InvoiceLine.objects.filter(credited_line__invoice=original).filter(
        Q(invoice__status=Invoice.Status.ISSUED, invoice__kind=Invoice.Kind.CREDIT_NOTE) | Q(invoice=credit_note)
    )
    return {
        row["credited_line_id"]: row["total"] or ZERO
        for row in rows.order_by().values("credited_line_id").annotate(total=Sum("net_amount"))
    }


def _release(credit_note: Invoice, original: Invoice, note_lines: list[InvoiceLine], *, actor) -> int:
    """Release the items of the credited lines and give their sources back to billing through the projects app;
    each line must be credited in full by the issued credit notes and this one. Returns the number of items
    released (0 when another credit note released them already, which the partial check makes impossible)."""
    if not RELEASE_AVAILABLE:
        raise ValidationFailed(RELEASE_UNAVAILABLE_MESSAGE, field="release_items")
    credited = _credited_by_issued(original, credit_note)
    sources = {line.pk: line for line in InvoiceLine.objects.filter(invoice=original)}
    line_ids = sorted({line.credited_line_id for line in note_lines})
    partial = [sources[pk] for pk in line_ids if sources[pk].net_amount + credited.get(pk, ZERO) != ZERO]
    if partial:
        source = partial[0]
        done = _money(-credited.get(source.pk, ZERO), original.currency)
        raise Conflict(
            f"The credit note cannot be issued: it releases the items of {line_label(source)} of {original.number}, "
            f"but issued credit notes and this one credit only {done} of its "
            f"{_money(source.net_amount, original.currency)}; only lines credited in full release their items "
            "(issue the other credit notes of the line first). Nothing was issued.",
            field="release_items",
        )
    items = list(InvoiceItem.objects.filter(invoice=original, line_id__in=line_ids, live=True).order_by("pk"))
    if not items:
        return 0
    # The one change the trigger allows on an issued invoice's items: live true -> false. A later run may then
    # bill the sources again (the partial unique constraints hold live items only).
    InvoiceItem.objects.filter(pk__in=[item.pk for item in items]).update(live=False)
    entries, milestones = _sources_of(items)
    reference = credit_note.number or str(credit_note)
    # The projects app's own services (billing never writes projects' rows); they lock the projects (held by
    # the issue already) and the rows, and refuse anything not billed on the original.
    if entries:
        time_entries_release_billed(entries=entries, invoice_ref=original.number, credit_ref=reference, actor=actor)
    if milestones:
        milestones_release_billed(milestones=milestones, invoice_ref=original.number, credit_ref=reference, actor=actor)
    return len(items)


def _sources_of(items: list[InvoiceItem]) -> tuple[list, list]:
    """The time entries and expenses, and the milestones, behind ``items`` (retainer months have no source
    row: the released item itself was the record that the month was billed)."""
    ids: dict[type, set[int]] = defaultdict(set)
    for item in items:
        if item.time_entry_id:
            ids[TimeEntry].add(item.time_entry_id)
        if item.expense_id:
            ids[Expense].add(item.expense_id)
        if item.milestone_id:
            ids[Milestone].add(item.milestone_id)
    entries = []
    for model in (TimeEntry, Expense):
        if ids[model]:
            entries += list(model.objects.filter(pk__in=sorted(ids[model])).order_by("pk").only("pk", "project_id"))
    milestones = (
        list(Milestone.objects.filter(pk__in=sorted(ids[Milestone])).order_by("pk").only("pk", "project_id"))
        if ids[Milestone]
        else []
    )
    return entries, milestones
