"""Every write of projects: the handoff from a won deal, projects made by hand, change orders, budget alerts.

Each use case is one ``transaction.atomic`` block that validates everything first, locks in the fixed order
(customer → deal → quote → project → change order), records who and why on every history record and leaves
side effects (the emails of notifications) to ``transaction.on_commit``.

The blocks are not ``durable``: the API runs a service and stores its ``Idempotency-Key`` record in one
transaction (``backbone.api.idempotent``), so that a crash leaves neither behind; a durable block would
refuse to run inside it. Pages call the services outside any transaction (``ATOMIC_REQUESTS`` is off), so
there each call is its own transaction all the same.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.history import stamp
from backbone.links import object_url
from backbone.money import CURRENCY_CODES, MoneyError, format_money, to_decimal
from backbone.roles import Role, has_role, require_writer
from backbone.services import notify, sequence_next
from customers.lock_objects import deal_for_update
from customers.models import Customer, Deal, Language, LegalEntity, PipelineStage, Quote
from customers.services import certificate_document_problem, deal_close_won, quote_accept
from customers.tax_parties import tax_context_for
from tax.engines import calculate

from . import selectors
from . import terms as contract_terms
from .lock_objects import change_order_for_update, project_for_update
from .models import (
    BillingRule,
    BudgetAlert,
    BudgetLine,
    ChangeOrder,
    ContractVersion,
    Milestone,
    Project,
    RateCardEntry,
)

# Where the pages of projects and change orders live (the pages register these names; until they exist the
# notifications carry no link).
PROJECT_URL = "projects.project"
CHANGE_ORDER_URL = "projects.changeorder"


class _Errors:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    def merge(self, errors: Mapping[str, list[str]]) -> None:
        for key, messages in errors.items():
            for message in messages:
                self.add(key, message)

    def raise_if_any(self, summary: str) -> None:
        if self.errors:
            messages = next(iter(self.errors.values()))
            raise ValidationFailed(f"{summary} {messages[0]}".strip(), errors=self.errors)


def _name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else "someone"


def _finance_people():
    return get_user_model().objects.filter(is_active=True, groups__name=Role.FINANCE).distinct().order_by("pk")


def _url(label: str, public_id) -> str:
    return object_url(label, public_id) or ""


# --- the handoff: deal won → project ----------------------------------------------------------------------


def _quote_to_win(deal: Deal, quote: Quote | None) -> Quote:
    """The given quote, else the deal's accepted quote, else its latest sent one."""
    accepted = deal.quotes.filter(status=Quote.Status.ACCEPTED).first()
    if quote is not None:
        if quote.deal_id != deal.pk:
            raise ValidationFailed(f"That quote belongs to another deal than {deal.number}.", field="quote")
        if accepted is not None and accepted.pk != quote.pk:
            raise Conflict(
                f"Version {accepted.version} of the quote of {deal.number} is already accepted; win the deal with it.",
                field="quote",
            )
        return quote
    if accepted is not None:
        return accepted
    sent = deal.quotes.filter(status=Quote.Status.SENT).order_by("-version").first()
    if sent is None:
        raise ValidationFailed(
            f"{deal.number} has no accepted or sent quote; send the quote to the customer before winning the deal.",
            field="quote",
        )
    return sent


def _frozen_tax(*, deal: Deal, currency: str, lines: Sequence[Mapping[str, Any]], tax_point: dt.date) -> dict[str, Any]:
    """The tax treatment of the quote lines by the configured engine, with the project's planned start as
    the tax point (as the quote's own tax preview has it)."""
    try:
        context = tax_context_for(
            legal_entity=deal.legal_entity,
            customer=deal.customer,
            lines=[
                {
                    "id": line["key"],
                    "net_amount": line["net_amount"],
                    "category": line["tax_category"],
                    "supply_kind": line["supply_kind"],
                    "description": line["description"],
                }
                for line in lines
            ],
            tax_point=tax_point,
            currency=currency,
        )
        return calculate(context).to_dict()
    except ValidationFailed as exc:
        raise ValidationFailed(
            f"The tax treatment of the quote cannot be frozen: {exc.message}",
            errors={f"tax.{key}": messages for key, messages in exc.errors.items()} or {"tax": [exc.message]},
        ) from exc


def _is_project_manager(user) -> bool:
    return user is not None and user.is_active and has_role(user, Role.PROJECT_MANAGER)


@transaction.atomic
def deal_win(
    *,
    actor,
    deal: Deal,
    quote: Quote | None = None,
    project_manager,
    name: str = "",
    planned_start: dt.date | None = None,
    planned_end: dt.date | None = None,
) -> tuple[Project, bool]:
    """THE HANDOFF: mark ``deal`` won and create its project from the accepted quote, all or nothing.

    Idempotent: a deal that already has a project returns ``(project, False)`` and changes nothing; the deal
    row lock and the one-to-one from project to deal make a concurrent second win wait and then find the
    first one's project. Otherwise the quote is accepted when it was only sent (``customers.services
    .quote_accept``: its other versions are superseded), the deal moves to the won stage
    (``deal_close_won``), and the project starts with contract version 1 (the quote's prices, discounts, tax
    treatment, terms and attachments, frozen), its rate card, budget, milestones and billing rules.
    Returns ``(project, True)``.
    """
    require_writer(actor)
    refusal = selectors.deal_win_refusal(user=actor, deal=deal)
    if refusal:
        raise NotPermitted(refusal)
    deal = deal_for_update(pk=deal.pk)
    existing = Project.objects.filter(deal=deal).first()
    if existing is not None:
        return existing, False
    if deal.stage.outcome == PipelineStage.Outcome.LOST:
        why = f" ({deal.lost_reason})" if deal.lost_reason else ""
        raise TransitionNotAllowed(f"{deal.number} is lost{why}; reopen it before winning it.", field="deal")

    quote = _quote_to_win(deal, quote)
    if quote.status not in (Quote.Status.ACCEPTED, Quote.Status.SENT, Quote.Status.DRAFT):
        raise TransitionNotAllowed(
            f"Version {quote.version} of the quote is {quote.get_status_display().lower()}; only a draft or sent "
            "quote can be accepted.",
            field="quote",
        )
    lines = list(quote.lines.select_related("product").order_by("position", "id"))
    if not lines:
        raise ValidationFailed(
            f"Version {quote.version} of the quote of {deal.number} has no lines; there is nothing to freeze.",
            field="quote",
        )
    errors = _Errors()
    if project_manager is None:
        errors.add("project_manager", "Choose the project manager.")
    elif not _is_project_manager(project_manager):
        errors.add(
            "project_manager",
            f"{project_manager.get_username()} is not an active project manager; choose someone with that role.",
        )
    start, end = planned_start or quote.planned_start, planned_end or quote.planned_end
    if start is None:
        errors.add("planned_start", "Enter the planned start (the quote has none).")
    if end is None:
        errors.add("planned_end", "Enter the planned end (the quote has none).")
    if start and end and end < start:
        errors.add("planned_end", f"The planned end {end.isoformat()} is before the planned start {start.isoformat()}.")
    errors.raise_if_any("The deal was not won.")

    reason = f"Deal {deal.number} won"
    if quote.status != Quote.Status.ACCEPTED:
        quote = quote_accept(
            user=actor, quote=quote, customer_signatory=quote.customer_signatory, reason=f"Accepted: {reason.lower()}"
        )
    deal = deal_close_won(user=actor, deal=deal, quote=quote, reason=reason)
    project = Project(
        name=(name or "").strip()[:200] or deal.title[:200],
        customer=deal.customer,
        legal_entity=deal.legal_entity,
        deal=deal,
        project_manager=project_manager,
        currency=quote.currency,
        language=deal.customer.invoice_language or Language.EN,
        planned_start=start,
        planned_end=end,
        po_number=quote.po_number,
        po_required=quote.po_required,
        portal_required=quote.portal_required,
        payment_terms_days=quote.payment_terms_days,
    )
    terms = contract_terms.quote_terms(
        project=project,
        quote=quote,
        lines=lines,
        milestones=list(quote.milestones.order_by("position", "id")),
        attachments=list(quote.attachments.order_by("created_at", "id")),
        tax=None,
    )
    terms["tax"] = contract_terms.canonical(
        _frozen_tax(deal=deal, currency=project.currency, lines=terms["lines"], tax_point=start)
    )
    project.number = sequence_next(key="project")
    stamp(project, actor=actor, reason=reason).save()
    version = ContractVersion.objects.create(
        project=project,
        number=1,
        effective_from=start,
        source=ContractVersion.Source.QUOTE,
        quote=quote,
        terms=terms,
        sha256=contract_terms.terms_sha256(terms),
        created_by=actor,
    )
    _sync_working_rows(project=project, version=version, terms=terms, actor=actor, reason=reason)
    _grant_manager(project)
    notify(
        users=[project_manager],
        title=f"You manage {project.number} {project.name}",
        body=f"{_name(actor)} won {deal.number} with {deal.customer}. The project runs from {start.isoformat()} to "
        f"{end.isoformat()}; contract version 1 holds the prices and terms that were sold.",
        url=_url(PROJECT_URL, project.public_id),
    )
    return project, True


def _grant_manager(project: Project) -> None:
    """The manager edits the plan (object permission) and sees the customer and its deals (customers'
    selectors read the customer permission)."""
    assign_perm("projects.change_project", project.project_manager, project)
    assign_perm("customers.view_customer", project.project_manager, project.customer)


# --- working rows: the mirror of the newest contract version ----------------------------------------------


def _dec(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def _sync_working_rows(*, project: Project, version: ContractVersion, terms: Mapping[str, Any], actor, reason: str):
    """Make the rate card, budget lines, milestones and billing rules mirror ``terms``, matched by key.

    Rate card entries are only ever added (each remembers the version that brought it); budget lines,
    milestones and billing rules are created, changed or removed by key. Rows that did not change are left
    alone, so their history shows only real changes.
    """
    have = {(e.labour_category.lower(), e.effective_from) for e in project.rate_card.all()}
    for entry in terms["rate_card"]:
        start = dt.date.fromisoformat(entry["effective_from"])
        if (entry["labour_category"].lower(), start) in have:
            continue
        stamp(
            RateCardEntry(
                project=project,
                labour_category=entry["labour_category"],
                rate=Decimal(entry["rate"]),
                currency=entry["currency"],
                effective_from=start,
                contract_version=version,
            ),
            actor=actor,
            reason=reason,
        ).save()

    _sync_by_key(
        rows={line.key: line for line in project.budget_lines.all()},
        wanted=[
            (
                line["key"],
                {
                    "kind": line["kind"],
                    "labour_category": line["labour_category"],
                    "description": line["description"],
                    "hours": _dec(line["hours"]),
                    "rate": _dec(line["rate"]),
                    "amount": Decimal(line["amount"]),
                },
            )
            for line in terms["budget"]
        ],
        make=lambda key: BudgetLine(project=project, key=key),
        actor=actor,
        reason=reason,
    )
    _sync_by_key(
        rows={m.key: m for m in project.milestones.all()},
        wanted=[
            (
                m["key"],
                {
                    "position": index,
                    "name": m["name"],
                    "phase": m["phase"],
                    "planned_date": dt.date.fromisoformat(m["planned_date"]),
                    "baseline_date": dt.date.fromisoformat(m["baseline_date"]),
                    "amount": Decimal(m["amount"]),
                    "acceptance_criteria": m["acceptance_criteria"],
                },
            )
            for index, m in enumerate(terms["milestones"])
        ],
        make=lambda key: Milestone(project=project, key=key),
        actor=actor,
        reason=reason,
    )
    _sync_by_key(
        rows={rule.model: rule for rule in project.billing_rules.all()},
        wanted=[
            (
                rule["model"],
                {
                    "retainer_amount": Decimal(rule["retainer_amount"]),
                    "markup_percent": Decimal(rule["markup_percent"]),
                },
            )
            for rule in terms["billing_rules"]
        ],
        make=lambda model: BillingRule(project=project, model=model),
        actor=actor,
        reason=reason,
    )


def _sync_by_key(*, rows: dict[str, models.Model], wanted, make, actor, reason: str) -> None:
    for key, values in wanted:
        row = rows.pop(key, None)
        if row is not None and all(getattr(row, field) == value for field, value in values.items()):
            continue
        row = row or make(key)
        for field, value in values.items():
            setattr(row, field, value)
        stamp(row, actor=actor, reason=reason).save()
    for row in rows.values():
        stamp(row, actor=actor, reason=reason).delete()


# --- projects made by hand ----------------------------------------------------------------------------


PROJECT_TEXT_FIELDS = {"name": 200, "po_number": 60}


@transaction.atomic
def project_create(*, actor, data: Mapping[str, Any]) -> Project:
    """A project without a deal (internal work, a contract signed elsewhere): version 1 is ``manual``.

    ``data``: name, customer, project_manager (a project manager creates projects they manage; admins name
    anyone with the role), legal_entity (default: the customer's billing entity), currency, language,
    payment_terms_days, po_required (defaults from the customer), planned_start, planned_end, po_number,
    portal_required, reason, and the plan: rate_card [{labour_category, rate, effective_from}], budget
    [{kind, labour_category, description, hours, rate, amount, fixed_fee}], milestones [{name, phase,
    planned_date, amount, acceptance_criteria}], billing_rules [{model, retainer_amount, markup_percent}].
    """
    require_writer(actor)
    if not selectors.project_can_create(user=actor):
        raise NotPermitted("Only project managers and admins create projects.")
    errors = _Errors()
    customer = data.get("customer")
    if not isinstance(customer, Customer):
        errors.add("customer", "Choose the customer.")
        customer = None
    elif customer.status == Customer.Status.ARCHIVED:
        errors.add("customer", f"{customer} is archived; reactivate it before starting a project.")
    manager = data.get("project_manager") or (actor if has_role(actor, Role.PROJECT_MANAGER) else None)
    if manager is None:
        errors.add("project_manager", "Choose the project manager.")
    elif not _is_project_manager(manager):
        errors.add("project_manager", f"{manager.get_username()} is not an active project manager.")
    elif manager.pk != actor.pk and not selectors.is_admin(actor):
        errors.add("project_manager", "You create projects that you manage; an admin assigns other managers.")
    legal_entity = data.get("legal_entity") or (customer.billing_entity if customer else None)
    if not isinstance(legal_entity, LegalEntity):
        errors.add("legal_entity", "Choose which of our companies delivers (the customer has no billing entity).")
    texts = {}
    for field, limit in PROJECT_TEXT_FIELDS.items():
        texts[field] = str(data.get(field) or "").strip()
        if len(texts[field]) > limit:
            errors.add(field, f"At most {limit} characters.")
    if not texts["name"]:
        errors.add("name", "Name the project.")
    currency = data.get("currency") or (customer.default_currency if customer else "EUR")
    if currency not in CURRENCY_CODES:
        errors.add("currency", f"'{currency}' is not a currency Throughline bills in.")
    language = data.get("language") or (customer.invoice_language if customer else Language.EN)
    if language not in Language.values:
        errors.add("language", f"'{language}' is not a language of invoices ({', '.join(Language.values)}).")
    terms_days = data.get("payment_terms_days")
    if terms_days in (None, ""):
        terms_days = customer.payment_terms_days if customer else 30
    if not isinstance(terms_days, int) or isinstance(terms_days, bool) or not 0 <= terms_days <= 365:
        errors.add("payment_terms_days", "Payment terms are 0 to 365 days.")
    start, end = data.get("planned_start"), data.get("planned_end")
    if not isinstance(start, dt.date):
        errors.add("planned_start", "Enter the planned start.")
    if not isinstance(end, dt.date):
        errors.add("planned_end", "Enter the planned end.")
    if isinstance(start, dt.date) and isinstance(end, dt.date) and end < start:
        errors.add("planned_end", f"The planned end {end.isoformat()} is before the planned start {start.isoformat()}.")
    errors.raise_if_any("The project was not saved.")

    po_required = data.get("po_required")
    project = Project(
        name=texts["name"],
        customer=customer,
        legal_entity=legal_entity,
        project_manager=manager,
        currency=currency,
        language=language,
        planned_start=start,
        planned_end=end,
        po_number=texts["po_number"],
        po_required=customer.purchase_order_required if po_required is None else bool(po_required),
        portal_required=bool(data.get("portal_required")),
        payment_terms_days=terms_days,
    )
    terms = contract_terms.manual_terms(
        project=project,
        customer=customer,
        legal_entity=legal_entity,
        rate_card=data.get("rate_card") or [],
        budget=data.get("budget") or [],
        milestones=data.get("milestones") or [],
        billing_rules=data.get("billing_rules") or [],
    )
    reason = str(data.get("reason") or "").strip() or "Created by hand"
    project.number = sequence_next(key="project")
    stamp(project, actor=actor, reason=reason).save()
    version = ContractVersion.objects.create(
        project=project,
        number=1,
        effective_from=start,
        source=ContractVersion.Source.MANUAL,
        terms=terms,
        sha256=contract_terms.terms_sha256(terms),
        created_by=actor,
    )
    _sync_working_rows(project=project, version=version, terms=terms, actor=actor, reason=reason)
    _grant_manager(project)
    if manager.pk != actor.pk:
        notify(
            users=[manager],
            title=f"You manage {project.number} {project.name}",
            body=f"{_name(actor)} created the project for {customer}.",
            url=_url(PROJECT_URL, project.public_id),
        )
    return project


@transaction.atomic
def project_set_status(*, actor, project: Project, status: str, reason: str = "") -> Project:
    """Move a project along planned → active ⇄ on hold → closed; holding and closing need a reason."""
    require_writer(actor)
    project = project_for_update(pk=project.pk)
    if not selectors.project_can_edit(user=actor, project=project):
        raise NotPermitted(f"Only the manager of {project.number} or an admin changes its status.")
    if status not in Project.Status.values:
        raise ValidationFailed(f"'{status}' is not a project status.", field="status")
    if status == project.status:
        return project
    if not project.can_transition_to(status):
        raise TransitionNotAllowed(
            f"A {project.get_status_display().lower()} project cannot become {Project.Status(status).label.lower()}.",
            field="status",
        )
    reason = (reason or "").strip()
    if status in (Project.Status.ON_HOLD, Project.Status.CLOSED) and not reason:
        raise ValidationFailed(
            f"Say why {project.number} is put {Project.Status(status).label.lower()}.", field="reason"
        )
    if status == Project.Status.CLOSED:
        pending = list(
            project.change_orders.filter(status=ChangeOrder.Status.SUBMITTED).values_list("number", flat=True)
        )
        if pending:
            raise Conflict(f"Decide the submitted change orders first ({', '.join(pending)}).", field="status")
    project.status = status
    stamp(project, actor=actor, reason=reason or f"Status: {Project.Status(status).label}").save(
        update_fields=["status", "updated_at"]
    )
    return project


# --- change orders ------------------------------------------------------------------------------------


CHANGE_ORDER_FIELDS = (
    "title",
    "reason",
    "effective_from",
    "changes",
    "customer_accepted_by",
    "customer_accepted_on",
    "acceptance_file",
)


def _accepted_milestones(project: Project) -> set[str]:
    return set(project.milestones.filter(status=Milestone.Status.ACCEPTED).values_list("key", flat=True))


def _check_change_order(
    *, project: Project, values: Mapping[str, Any], current: ContractVersion
) -> tuple[dict, list, _Errors]:
    """Validate a change order's header and its operations against the newest terms; all messages at once."""
    errors = _Errors()
    title = str(values.get("title") or "").strip()
    if not title:
        errors.add("title", "Give the change order a title.")
    elif len(title) > 200:
        errors.add("title", "At most 200 characters.")
    if not str(values.get("reason") or "").strip():
        errors.add("reason", "Say why the scope or terms change.")
    effective_from = values.get("effective_from")
    if isinstance(effective_from, str):
        try:
            effective_from = dt.date.fromisoformat(effective_from)
        except ValueError:
            effective_from = None
    if not isinstance(effective_from, dt.date):
        errors.add("effective_from", "Enter the first day the amended contract governs billing (YYYY-MM-DD).")
    elif effective_from < current.effective_from:
        errors.add(
            "effective_from",
            f"The change cannot take effect before the contract in force since {current.effective_from.isoformat()} "
            f"(version {current.number}); amendments only go forward.",
        )
    elif effective_from < project.planned_start:
        errors.add("effective_from", f"{project.number} starts on {project.planned_start.isoformat()}.")
    accepted_by = str(values.get("customer_accepted_by") or "").strip()
    if len(accepted_by) > 120:
        errors.add("customer_accepted_by", "At most 120 characters.")
    accepted_on = values.get("customer_accepted_on")
    if accepted_on not in (None, "") and not isinstance(accepted_on, dt.date):
        errors.add("customer_accepted_on", "Enter the date the customer accepted (YYYY-MM-DD).")
    elif isinstance(accepted_on, dt.date) and accepted_on > timezone.localdate():
        errors.add("customer_accepted_on", "The customer's acceptance cannot be dated in the future.")
    upload = values.get("acceptance_file")
    if upload:
        problem = certificate_document_problem(upload)
        if problem:
            errors.add("acceptance_file", problem.replace("The document", "The acceptance file"))
    new_terms, cleaned = dict(current.terms), []
    try:
        new_terms, cleaned = contract_terms.apply_changes(
            current.terms,
            values.get("changes") if values.get("changes") is not None else [],
            effective_from=effective_from if isinstance(effective_from, dt.date) else project.planned_start,
            accepted_milestones=_accepted_milestones(project),
        )
    except ValidationFailed as exc:
        errors.merge(exc.errors)
    if isinstance(effective_from, dt.date) and not errors.errors:
        end = dt.date.fromisoformat(new_terms["project"]["planned_end"])
        if effective_from > end:
            errors.add("effective_from", f"{project.number} ends on {end.isoformat()}, before the change would start.")
    return new_terms, cleaned, errors


def _co_figures(co: ChangeOrder, *, old_terms: Mapping[str, Any], new_terms: Mapping[str, Any]) -> None:
    co.budget_delta_amount = contract_terms.budget_total(new_terms) - contract_terms.budget_total(old_terms)
    co.touches_billing_terms = contract_terms.touches_billing_terms(co.changes)


def _set_acceptance_file(co: ChangeOrder, upload) -> None:
    co.customer_acceptance_file = upload
    co.customer_acceptance_filename = PurePosixPath(getattr(upload, "name", "") or "").name[:200]


@transaction.atomic
def change_order_create(
    *,
    actor,
    project: Project,
    title: str,
    reason: str,
    effective_from: dt.date,
    changes: list[dict[str, Any]],
    customer_accepted_by: str = "",
    customer_accepted_on: dt.date | None = None,
    acceptance_file=None,
) -> ChangeOrder:
    """A draft amendment, checked against the newest contract version (and checked again on submission and
    approval, when another amendment may have come first)."""
    require_writer(actor)
    if project.status == Project.Status.CLOSED:
        raise TransitionNotAllowed(f"{project.number} is closed; closed projects take no change orders.")
    if not selectors.change_order_can_propose(user=actor, project=project):
        raise NotPermitted(
            "Change orders are proposed by the project's manager, the sales rep who owns the customer, or an admin."
        )
    current = selectors.current_version(project)
    values = {
        "title": title,
        "reason": reason,
        "effective_from": effective_from,
        "changes": changes,
        "customer_accepted_by": customer_accepted_by,
        "customer_accepted_on": customer_accepted_on,
        "acceptance_file": acceptance_file,
    }
    new_terms, cleaned, errors = _check_change_order(project=project, values=values, current=current)
    errors.raise_if_any("The change order was not saved.")
    co = ChangeOrder(
        project=project,
        title=title.strip(),
        reason=reason.strip(),
        effective_from=effective_from,
        changes=cleaned,
        customer_accepted_by=(customer_accepted_by or "").strip(),
        customer_accepted_on=customer_accepted_on or None,
        proposed_by=actor,
    )
    _co_figures(co, old_terms=current.terms, new_terms=new_terms)
    if acceptance_file:
        _set_acceptance_file(co, acceptance_file)
    co.number = sequence_next(key="change_order")
    stamp(co, actor=actor, reason="Proposed").save()
    return co


@transaction.atomic
def change_order_update(*, actor, change_order: ChangeOrder, data: Mapping[str, Any]) -> ChangeOrder:
    """Change a draft; keys absent from ``data`` keep their value (``acceptance_file``: a new upload replaces
    the stored one). Submitted, approved and rejected change orders do not change."""
    require_writer(actor)
    co = change_order_for_update(pk=change_order.pk)
    if co.status != ChangeOrder.Status.DRAFT:
        raise TransitionNotAllowed(f"{co.number} is {co.get_status_display().lower()}; only drafts change.")
    if not selectors.change_order_can_edit(user=actor, change_order=co):
        raise NotPermitted(f"You cannot edit {co.number}.")
    values = {field: getattr(co, field) for field in CHANGE_ORDER_FIELDS if field != "acceptance_file"}
    values.update({field: data[field] for field in CHANGE_ORDER_FIELDS if field in data})
    current = selectors.current_version(co.project)
    new_terms, cleaned, errors = _check_change_order(project=co.project, values=values, current=current)
    errors.raise_if_any("The change order was not saved.")
    co.title, co.reason = str(values["title"]).strip(), str(values["reason"]).strip()
    co.effective_from = values["effective_from"]
    if isinstance(co.effective_from, str):
        co.effective_from = dt.date.fromisoformat(co.effective_from)
    co.changes = cleaned
    co.customer_accepted_by = str(values["customer_accepted_by"] or "").strip()
    co.customer_accepted_on = values["customer_accepted_on"] or None
    if data.get("acceptance_file"):
        _set_acceptance_file(co, data["acceptance_file"])
    _co_figures(co, old_terms=current.terms, new_terms=new_terms)
    stamp(co, actor=actor, reason=str(data.get("edit_reason") or "Edited")).save()
    return co


@transaction.atomic
def change_order_submit(*, actor, change_order: ChangeOrder) -> ChangeOrder:
    """Send a draft for approval: the operations are checked again, the budget change and whether billing
    terms change are computed, and the people who may approve it are told.

    The customer's acceptance (who and when) must be on record first: an amendment of a contract is agreed
    with the customer before anyone on our side approves it.
    """
    require_writer(actor)
    co = change_order_for_update(pk=change_order.pk)
    if co.status != ChangeOrder.Status.DRAFT:
        raise TransitionNotAllowed(f"{co.number} is {co.get_status_display().lower()}; only drafts are submitted.")
    if not selectors.change_order_can_edit(user=actor, change_order=co):
        raise NotPermitted(f"You cannot submit {co.number}.")
    errors = _Errors()
    if not co.changes:
        errors.add("changes", "Add at least one change before submitting.")
    if not co.customer_accepted_by:
        errors.add("customer_accepted_by", "Record who accepted the change on the customer's side.")
    if not co.customer_accepted_on:
        errors.add("customer_accepted_on", "Record when the customer accepted the change.")
    errors.raise_if_any(f"{co.number} was not submitted.")
    current = selectors.current_version(co.project)
    values = {field: getattr(co, field) for field in CHANGE_ORDER_FIELDS if field != "acceptance_file"}
    new_terms, cleaned, errors = _check_change_order(project=co.project, values=values, current=current)
    errors.raise_if_any(f"{co.number} no longer fits the contract (version {current.number}):")
    co.changes = cleaned
    _co_figures(co, old_terms=current.terms, new_terms=new_terms)
    co.status, co.submitted_at = ChangeOrder.Status.SUBMITTED, timezone.now()
    stamp(co, actor=actor, reason="Submitted for approval").save()
    delta = format_money(co.budget_delta_amount, co.project.currency)
    notify(
        users=[user for user in selectors.change_order_approvers(co) if user.pk != actor.pk],
        title=f"{co.number} waits for your approval",
        body=f"{_name(actor)} submitted '{co.title}' on {co.project.number} {co.project.name}: budget change {delta}"
        f"{', billing terms change' if co.touches_billing_terms else ''}; effective from "
        f"{co.effective_from.isoformat()}.",
        url=_url(CHANGE_ORDER_URL, co.public_id),
    )
    return co


@transaction.atomic
def change_order_approve(*, actor, change_order: ChangeOrder) -> ContractVersion:
    """Approve a submitted change order: the next contract version, the working rows, slip alerts, one
    transaction. Locks the project, then the change order, so two approvals on one project queue up."""
    require_writer(actor)
    project = project_for_update(pk=change_order.project_id)
    co = change_order_for_update(pk=change_order.pk)
    co.project = project
    if co.status != ChangeOrder.Status.SUBMITTED:
        raise TransitionNotAllowed(
            f"{co.number} is {co.get_status_display().lower()}; only submitted ones are approved."
        )
    if project.status == Project.Status.CLOSED:
        raise TransitionNotAllowed(f"{project.number} is closed; its change orders can only be rejected.")
    refusal = selectors.change_order_scope_refusal(user=actor, change_order=co)
    if refusal:
        raise NotPermitted(refusal)
    current = selectors.current_version(project)
    values = {field: getattr(co, field) for field in CHANGE_ORDER_FIELDS if field != "acceptance_file"}
    new_terms, cleaned, errors = _check_change_order(project=project, values=values, current=current)
    if errors.errors:
        first = next(iter(errors.errors.values()))[0]
        raise Conflict(
            f"{co.number} no longer fits the contract (version {current.number}): {first} Reject it and propose "
            "it again.",
            errors=errors.errors,
        )
    co.changes = cleaned
    _co_figures(co, old_terms=current.terms, new_terms=new_terms)
    refusal = selectors.change_order_approval_refusal(user=actor, change_order=co)
    if refusal:
        raise NotPermitted(refusal)

    reason = f"{co.number} approved"
    version = ContractVersion.objects.create(
        project=project,
        number=current.number + 1,
        effective_from=co.effective_from,
        source=ContractVersion.Source.CHANGE_ORDER,
        change_order=co,
        terms=new_terms,
        sha256=contract_terms.terms_sha256(new_terms),
        created_by=actor,
    )
    _sync_working_rows(project=project, version=version, terms=new_terms, actor=actor, reason=reason)
    new_end = dt.date.fromisoformat(new_terms["project"]["planned_end"])
    if new_end != project.planned_end:
        project.planned_end = new_end
        stamp(project, actor=actor, reason=reason).save(update_fields=["planned_end", "updated_at"])
    co.status, co.decided_by, co.decided_at = ChangeOrder.Status.APPROVED, actor, timezone.now()
    stamp(co, actor=actor, reason="Approved").save()

    milestones = {m.key: m for m in project.milestones.all()}
    for slipped in contract_terms.slipped_milestones(current.terms, new_terms):
        _alert_once(
            project=project,
            kind=BudgetAlert.Kind.MILESTONE_SLIP,
            key=f"slip:{slipped['key']}:{slipped['planned_date']}",
            milestone=milestones.get(slipped["key"]),
            message=f"Milestone '{slipped['name']}' moved to {slipped['planned_date']}, after its baseline "
            f"{slipped['baseline_date']} ({co.number}).",
        )
    if co.proposed_by_id != actor.pk:
        notify(
            users=[co.proposed_by],
            title=f"{co.number} approved",
            body=f"{_name(actor)} approved '{co.title}'; contract version {version.number} of {project.number} takes "
            f"effect on {co.effective_from.isoformat()}.",
            url=_url(CHANGE_ORDER_URL, co.public_id),
        )
    return version


@transaction.atomic
def change_order_reject(*, actor, change_order: ChangeOrder, reason: str) -> ChangeOrder:
    """Send a submitted change order back with the reason; the contract does not change."""
    require_writer(actor)
    project = project_for_update(pk=change_order.project_id)
    co = change_order_for_update(pk=change_order.pk)
    co.project = project
    if co.status != ChangeOrder.Status.SUBMITTED:
        raise TransitionNotAllowed(
            f"{co.number} is {co.get_status_display().lower()}; only submitted ones are rejected."
        )
    refusal = selectors.change_order_scope_refusal(user=actor, change_order=co)
    if refusal:
        raise NotPermitted(refusal)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Say why the change order is rejected.", field="reason")
    co.status, co.rejection_reason = ChangeOrder.Status.REJECTED, reason
    co.decided_by, co.decided_at = actor, timezone.now()
    stamp(co, actor=actor, reason=f"Rejected: {reason}").save()
    if co.proposed_by_id != actor.pk:
        notify(
            users=[co.proposed_by],
            title=f"{co.number} rejected",
            body=f"{_name(actor)} rejected '{co.title}': {reason}",
            url=_url(CHANGE_ORDER_URL, co.public_id),
        )
    return co


# --- alerts -------------------------------------------------------------------------------------------


def _alert_once(*, project: Project, kind: str, key: str, message: str, **fields) -> BudgetAlert | None:
    """Create the alert with ``key`` unless it exists (the unique key makes "once" a database fact) and tell
    the project manager and finance. Returns the new alert, or None when it was already raised."""
    if BudgetAlert.objects.filter(project=project, key=key).exists():
        return None
    try:
        with transaction.atomic():
            alert = BudgetAlert.objects.create(project=project, kind=kind, key=key, message=message[:300], **fields)
    except IntegrityError:
        return None  # raised by a concurrent evaluation at this very moment
    notify(
        users=[project.project_manager, *_finance_people()],
        title=f"{project.number}: {alert.message}"[:200],
        body=f"{project.number} {project.name} ({project.customer}).",
        url=_url(PROJECT_URL, project.public_id),
    )
    return alert


@transaction.atomic
def budget_alerts_evaluate(*, project: Project, actual_amount: Decimal) -> list[BudgetAlert]:
    """Raise an alert for each of ``project.alert_thresholds`` (percent of the budget) that ``actual_amount``
    has reached, once per threshold and contract version (key ``budget:v<version>:<threshold>``).

    Returns the alerts raised now. Nothing calls this in production yet: actual time and expenses arrive
    with time entry, which will call it whenever approved actuals change.
    """
    try:
        actual = to_decimal(actual_amount)
    except MoneyError as exc:
        raise ValidationFailed(str(exc), field="actual_amount") from exc
    version = selectors.current_version(project)
    total = contract_terms.budget_total(version.terms)
    if total <= 0:
        return []
    percent = actual * 100 / total
    raised = []
    for threshold in sorted({int(t) for t in project.alert_thresholds or []}):
        if percent < threshold:
            continue
        currency = project.currency
        alert = _alert_once(
            project=project,
            kind=BudgetAlert.Kind.BUDGET_THRESHOLD,
            key=f"budget:v{version.number}:{threshold}",
            threshold_percent=threshold,
            actual_amount=actual,
            budget_amount=total,
            message=f"{threshold} % of the budget used: {format_money(actual, currency)} of "
            f"{format_money(total, currency)} (contract version {version.number}).",
        )
        if alert is not None:
            raised.append(alert)
    return raised
