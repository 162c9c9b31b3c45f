"""Read queries shared by pages and the API; object access is decided here (missing and forbidden → 404)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from guardian.shortcuts import get_objects_for_user

from backbone.money import quantize
from backbone.roles import Role, has_role, is_read_only

from .models import (
    Address,
    BankAccount,
    Contact,
    Customer,
    Deal,
    ExemptionCertificate,
    LegalEntity,
    LegalEntityRegistration,
    PipelineStage,
    Product,
    Quote,
    QuoteAttachment,
)

EditScope = Literal["all", "billing"] | None

# Roles that see every customer (ROLES.md "customers, contacts: view" = all).
_SEE_ALL_CUSTOMERS = (Role.SALES, Role.FINANCE, Role.EXECUTIVE, Role.AUDITOR, Role.ADMIN)


def customers_visible_to(user) -> QuerySet[Customer]:
    """Customers a person may see: all for sales, finance, executives, auditors and admins; a project
    manager only those they hold an object permission on (the customers of their projects)."""
    if not getattr(user, "is_authenticated", False) or not user.has_perm("customers.view_customer"):
        return Customer.objects.none()
    if user.is_superuser or has_role(user, *_SEE_ALL_CUSTOMERS):
        return Customer.objects.all()
    return get_objects_for_user(
        user, "customers.view_customer", klass=Customer, accept_global_perms=False, with_superuser=False
    )


def customer_list(*, user) -> QuerySet[Customer]:
    """The customer list's base query: constant number of queries whatever the page size."""
    return (
        customers_visible_to(user)
        .select_related("owner", "parent")
        .prefetch_related(
            Prefetch(
                "addresses", queryset=Address.objects.filter(kind=Address.Kind.BILLING), to_attr="billing_addresses"
            )
        )
    )


def customer_with_details(queryset: QuerySet[Customer]) -> QuerySet[Customer]:
    return queryset.select_related("owner", "parent", "billing_entity").prefetch_related(
        "addresses", "registrations", "contacts", "exemption_certificates"
    )


def access_customer(*, user, public_id, for_edit: bool = False) -> Customer:
    """The customer with ``public_id`` if ``user`` may see it (and edit it, when asked); else 404."""
    try:
        customer = customer_with_details(customers_visible_to(user)).get(public_id=public_id)
    except (Customer.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such customer.") from exc
    if for_edit and customer_edit_scope(user=user, customer=customer) is None:
        raise Http404("No such customer.")
    return customer


def customer_edit_scope(*, user, customer: Customer) -> EditScope:
    """What ``user`` may change on ``customer``: everything, only the billing fields, or nothing.

    Sales reps edit the accounts they own (django-guardian object permission), finance edits the billing
    fields of every customer, admins edit all; auditors change nothing.
    """
    if not getattr(user, "is_authenticated", False) or is_read_only(user):
        return None
    if user.is_superuser or has_role(user, Role.ADMIN):
        return "all"
    if user.has_perm("customers.change_customer") and user.has_perm("customers.change_customer", customer):
        return "all"
    if user.has_perm("customers.change_customer_billing"):
        return "billing"
    return None


def customer_history_visible(*, user, customer: Customer) -> bool:
    """ROLES.md: history of "own records" for sales; all of it for finance, executives, auditors, admins."""
    return user.has_perm("backbone.view_auditentry") or customer_edit_scope(user=user, customer=customer) == "all"


def customer_status_allowed(*, user, customer: Customer, status: str) -> bool:
    """Whether ``user`` may move ``customer`` to ``status`` now: the transition table, narrowed for finance
    to putting an active customer on hold and releasing the hold."""
    scope = customer_edit_scope(user=user, customer=customer)
    if scope is None or not customer.can_transition_to(status):
        return False
    if scope == "billing":
        return {customer.status, status} == {Customer.Status.ACTIVE, Customer.Status.ON_HOLD}
    return True


def customer_can_create(*, user) -> bool:
    return not is_read_only(user) and user.has_perm("customers.add_customer")


def contacts_visible_to(user) -> QuerySet[Contact]:
    return Contact.objects.filter(customer__in=customers_visible_to(user)).select_related("customer")


def access_contact(*, user, public_id) -> Contact:
    try:
        return contacts_visible_to(user).get(public_id=public_id)
    except (Contact.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such contact.") from exc


def exemption_certificates_visible_to(user) -> QuerySet[ExemptionCertificate]:
    """Certificates of the customers a person may see, for holders of ``view_exemptioncertificate``."""
    if not getattr(user, "is_authenticated", False) or not user.has_perm("customers.view_exemptioncertificate"):
        return ExemptionCertificate.objects.none()
    return ExemptionCertificate.objects.filter(customer__in=customers_visible_to(user)).select_related("customer")


def access_exemption_certificate(*, user, public_id, for_action: str | None = None) -> ExemptionCertificate:
    """The certificate with ``public_id`` if ``user`` may see it (and ``for_action`` it: "change" or
    "delete"); else 404."""
    try:
        certificate = exemption_certificates_visible_to(user).get(public_id=public_id)
    except (ExemptionCertificate.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such exemption certificate.") from exc
    if for_action and for_action not in exemption_certificate_actions(user=user, customer=certificate.customer):
        raise Http404("No such exemption certificate.")
    return certificate


def exemption_certificate_actions(*, user, customer: Customer) -> frozenset[str]:
    """What ``user`` may do with ``customer``'s exemption certificates: a subset of add, change, delete.

    ROLES.md "tax rules, rates, exemptions": finance edits, admins do everything, the rest at most view.
    The model permission decides, narrowed to customers whose billing data the person may edit; auditors
    change nothing.
    """
    if customer_edit_scope(user=user, customer=customer) is None:
        return frozenset()
    return frozenset(
        verb for verb in ("add", "change", "delete") if user.has_perm(f"customers.{verb}_exemptioncertificate")
    )


def products_visible_to(user) -> QuerySet[Product]:
    if not getattr(user, "is_authenticated", False) or not user.has_perm("customers.view_product"):
        return Product.objects.none()
    return Product.objects.all()


def access_product(*, user, public_id) -> Product:
    try:
        return products_visible_to(user).get(public_id=public_id)
    except (Product.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such product.") from exc


def legal_entities_visible_to(user) -> QuerySet[LegalEntity]:
    if not getattr(user, "is_authenticated", False) or not user.has_perm("customers.view_legalentity"):
        return LegalEntity.objects.none()
    return LegalEntity.objects.all()


def legal_entity_with_details(queryset: QuerySet[LegalEntity]) -> QuerySet[LegalEntity]:
    return queryset.prefetch_related(
        Prefetch("registrations", queryset=LegalEntityRegistration.objects.order_by("country")),
        Prefetch("bank_accounts", queryset=BankAccount.objects.order_by("currency", "-is_default")),
    )


def access_legal_entity(*, user, public_id) -> LegalEntity:
    try:
        return legal_entity_with_details(legal_entities_visible_to(user)).get(public_id=public_id)
    except (LegalEntity.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such legal entity.") from exc


def sales_reps():
    """People who may own accounts: holders of the sales role (admins included for hand-overs)."""
    from django.contrib.auth import get_user_model

    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[Role.SALES, Role.ADMIN])
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


# --- deals, the pipeline and quotes -------------------------------------------------------------------

# Roles that see every deal (ROLES.md "deals, quotes: view" = all).
_SEE_ALL_DEALS = (Role.FINANCE, Role.EXECUTIVE, Role.AUDITOR, Role.ADMIN)
# How long won and lost deals stay on the pipeline board after they closed.
BOARD_CLOSED_DAYS = 90


def deals_visible_to(user) -> QuerySet[Deal]:
    """Deals a person may see: all for finance, executives, auditors and admins; for a sales rep the deals
    they own and the deals on accounts they own; for a project manager the deals their projects came from."""
    if not getattr(user, "is_authenticated", False) or not user.has_perm("customers.view_deal"):
        return Deal.objects.none()
    if user.is_superuser or has_role(user, *_SEE_ALL_DEALS):
        return Deal.objects.all()
    scopes = []
    if has_role(user, Role.SALES):
        scopes.append(Q(owner=user) | Q(customer__owner=user))
    if has_role(user, Role.PROJECT_MANAGER):
        # ROLES.md: the deals of their own projects. ``project`` is the reverse side of projects.Project.deal,
        # named in the query only (the customers app never imports projects).
        scopes.append(Q(project__project_manager=user))
    if not scopes:
        return Deal.objects.none()
    scope = scopes[0]
    for more in scopes[1:]:
        scope |= more
    return Deal.objects.filter(scope)


def deal_list(*, user) -> QuerySet[Deal]:
    """The deal list's base query: one query for a page, whatever its size."""
    return (
        deals_visible_to(user)
        .select_related("customer", "owner", "stage", "legal_entity")
        .annotate(quote_count=Count("quotes"))
        .order_by("-created_at", "-pk")  # explicit: an aggregating query ignores Meta.ordering
    )


def deal_edit_allowed(*, user, deal: Deal) -> bool:
    """Sales reps work the deals they own and the deals on their accounts; admins work all; everyone else
    (and auditors always) only looks."""
    if not getattr(user, "is_authenticated", False) or is_read_only(user):
        return False
    if user.is_superuser or has_role(user, Role.ADMIN):
        return True
    if not (has_role(user, Role.SALES) and user.has_perm("customers.change_deal")):
        return False
    return deal.owner_id == user.pk or deal.customer.owner_id == user.pk


def deal_can_create(*, user) -> bool:
    return not is_read_only(user) and user.has_perm("customers.add_deal")


def access_deal(*, user, public_id, for_edit: bool = False) -> Deal:
    """The deal with ``public_id`` if ``user`` may see it (and work it, when asked); else 404."""
    try:
        deal = deal_list(user=user).get(public_id=public_id)
    except (Deal.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such deal.") from exc
    if for_edit and not deal_edit_allowed(user=user, deal=deal):
        raise Http404("No such deal.")
    return deal


def deal_quotes(*, deal: Deal) -> QuerySet[Quote]:
    """A deal's quotes, newest version first, with their lines, milestones and attachments (four queries)."""
    return (
        Quote.objects.filter(deal=deal)
        .prefetch_related("lines", "milestones", Prefetch("attachments", queryset=QuoteAttachment.objects.all()))
        .order_by("-version")
    )


def deal_can_win(*, user, deal: Deal, quotes=None) -> bool:
    """Whether to offer "Mark won": the person may win deals and work this one, the deal is open, and a quote
    was accepted or at least sent (the handoff accepts a sent one)."""
    if not user.has_perm("customers.win_deal") or not deal_edit_allowed(user=user, deal=deal):
        return False
    if deal.stage.outcome != PipelineStage.Outcome.OPEN:
        return False
    quotes = deal.quotes.all() if quotes is None else quotes
    return any(q.status in (Quote.Status.ACCEPTED, Quote.Status.SENT) for q in quotes)


def open_stages() -> list[PipelineStage]:
    return list(PipelineStage.objects.filter(is_active=True, outcome=PipelineStage.Outcome.OPEN))


def stage_by_outcome(outcome: str) -> PipelineStage | None:
    return PipelineStage.objects.filter(is_active=True, outcome=outcome).order_by("position", "id").first()


def _money_totals(amounts: dict[str, Decimal]) -> list[tuple[str, Decimal]]:
    return [(currency, quantize(total, currency)) for currency, total in sorted(amounts.items())]


@dataclass
class PipelineColumn:
    """One stage on the board: its deals, how many, and their value per currency, plain and weighted
    (amount times probability / 100; amounts in different currencies are never added up)."""

    stage: PipelineStage
    deals: list[Deal] = field(default_factory=list)
    totals: list[tuple[str, Decimal]] = field(default_factory=list)
    weighted: list[tuple[str, Decimal]] = field(default_factory=list)
    previous_stage: PipelineStage | None = None
    next_stage: PipelineStage | None = None

    @property
    def count(self) -> int:
        return len(self.deals)

    @property
    def is_open(self) -> bool:
        return self.stage.outcome == PipelineStage.Outcome.OPEN


@dataclass
class PipelineBoard:
    columns: list[PipelineColumn]
    weighted: list[tuple[str, Decimal]]  # of the open deals
    reopen_stage: PipelineStage | None
    closed_since: dt.date


def pipeline_board(*, user, today: dt.date | None = None) -> PipelineBoard:
    """The board: a column per active open stage in order, then won and lost (deals closed in the last
    ``BOARD_CLOSED_DAYS`` days). Two queries whatever the number of deals."""
    today = today or timezone.localdate()
    since = today - dt.timedelta(days=BOARD_CLOSED_DAYS)
    stages = list(PipelineStage.objects.filter(is_active=True))
    opened = [s for s in stages if s.outcome == PipelineStage.Outcome.OPEN]
    closed = [s for s in stages if s.outcome != PipelineStage.Outcome.OPEN]
    closed.sort(key=lambda s: (s.outcome != PipelineStage.Outcome.WON, s.position, s.pk))
    columns = {s.pk: PipelineColumn(stage=s) for s in [*opened, *closed]}
    for index, stage in enumerate(opened):
        column = columns[stage.pk]
        column.previous_stage = opened[index - 1] if index > 0 else None
        column.next_stage = opened[index + 1] if index + 1 < len(opened) else None
    deals = (
        deals_visible_to(user)
        .filter(stage__in=stages)
        .filter(Q(stage__outcome=PipelineStage.Outcome.OPEN) | Q(closed_at__date__gte=since))
        .select_related("customer", "owner", "stage")
        .order_by("expected_close_date", "-amount", "pk")
    )
    sums: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    weights: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    open_weighted: dict[str, Decimal] = defaultdict(Decimal)
    for deal in deals:
        column = columns[deal.stage_id]
        column.deals.append(deal)
        weighted = deal.amount * deal.probability / 100
        sums[deal.stage_id][deal.currency] += deal.amount
        weights[deal.stage_id][deal.currency] += weighted
        if column.is_open:
            open_weighted[deal.currency] += weighted
    for stage_id, column in columns.items():
        column.totals = _money_totals(sums[stage_id])
        column.weighted = _money_totals(weights[stage_id])
    return PipelineBoard(
        columns=list(columns.values()),
        weighted=_money_totals(open_weighted),
        reopen_stage=opened[0] if opened else None,
        closed_since=since,
    )


def quotes_visible_to(user) -> QuerySet[Quote]:
    if not user.has_perm("customers.view_quote"):
        return Quote.objects.none()
    return Quote.objects.filter(deal__in=deals_visible_to(user).values("pk"))


def quote_list(*, user) -> QuerySet[Quote]:
    return quotes_visible_to(user).select_related("deal", "deal__customer").order_by("-created_at", "-pk")


def access_quote(*, user, public_id, for_edit: bool = False) -> Quote:
    """The quote with ``public_id`` if ``user`` may see its deal (and work it, when asked); else 404."""
    try:
        quote = (
            quotes_visible_to(user)
            .select_related("deal__customer", "deal__owner", "deal__stage", "deal__legal_entity", "accepted_by")
            .get(public_id=public_id)
        )
    except (Quote.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such quote.") from exc
    if for_edit and not deal_edit_allowed(user=user, deal=quote.deal):
        raise Http404("No such quote.")
    return quote


def access_quote_attachment(*, user, public_id, for_edit: bool = False) -> QuoteAttachment:
    if not getattr(user, "is_authenticated", False) or not user.has_perm("customers.view_quoteattachment"):
        raise Http404("No such attachment.")
    try:
        attachment = (
            QuoteAttachment.objects.filter(quote__in=quotes_visible_to(user).values("pk"))
            .select_related("quote__deal__customer")
            .get(public_id=public_id)
        )
    except (QuoteAttachment.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such attachment.") from exc
    if for_edit and not deal_edit_allowed(user=user, deal=attachment.quote.deal):
        raise Http404("No such attachment.")
    return attachment


def quote_actions(*, user, quote: Quote) -> frozenset[str]:
    """The buttons a quote's page offers ``user``: a subset of edit, send, accept, new_version, attach and
    remove_attachment. The services decide again when the button is pressed."""
    if not deal_edit_allowed(user=user, deal=quote.deal):
        return frozenset()
    deal_open = quote.deal.stage.outcome == PipelineStage.Outcome.OPEN
    actions = set()
    draft = quote.status == Quote.Status.DRAFT
    if deal_open and draft and user.has_perm("customers.change_quote"):
        actions |= {"edit", "send"}
    can_change = user.has_perm("customers.change_quote")
    if deal_open and quote.status in (Quote.Status.DRAFT, Quote.Status.SENT) and can_change:
        actions.add("accept")
    if (
        deal_open
        and quote.status in (Quote.Status.DRAFT, Quote.Status.SENT, Quote.Status.DECLINED)
        and user.has_perm("customers.add_quote")
    ):
        actions.add("new_version")
    attachable = (Quote.Status.DRAFT, Quote.Status.SENT, Quote.Status.ACCEPTED)
    not_won = quote.deal.stage.outcome != PipelineStage.Outcome.WON
    if not_won and quote.status in attachable and user.has_perm("customers.add_quoteattachment"):
        actions.add("attach")
    if draft and user.has_perm("customers.delete_quoteattachment"):
        actions.add("remove_attachment")
    return frozenset(actions)
