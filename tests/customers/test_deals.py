"""Deals: the services' guards (create, edit, stage moves, the won handoff helper), who sees which deal, and
the pipeline board."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.http import Http404

from backbone.errors import NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.models import AuditEntry
from backbone.roles import Role
from customers.models import Customer, Deal, PipelineStage, Quote
from customers.selectors import (
    access_deal,
    deal_can_win,
    deal_edit_allowed,
    deals_visible_to,
    pipeline_board,
)
from customers.services import (
    customer_set_status,
    deal_close_won,
    deal_create,
    deal_move_stage,
    deal_update,
    quote_accept,
    quote_send,
)
from tests.customers.deal_factories import make_customer, make_deal

pytestmark = pytest.mark.django_db


def stage(code: str) -> PipelineStage:
    return PipelineStage.objects.get(code=code)


# --- deal_create ----------------------------------------------------------------------------------------


def test_deal_create_takes_number_first_stage_and_defaults_from_the_customer(sales, account, entity):
    deal = deal_create(user=sales, data={"title": "  Portal  ", "customer": account, "amount": Decimal("50000")})
    assert deal.number.startswith("DEAL-") and len(deal.number) == 11
    assert deal.title == "Portal"
    assert deal.stage.code == "qualified" and deal.probability == 20
    assert deal.owner == sales and deal.legal_entity == entity and deal.currency == account.default_currency
    entry = AuditEntry.objects.filter(object_public_id=deal.public_id).latest("pk")
    assert entry.user == sales and entry.reason == "Created"


def test_deal_numbers_are_consecutive(sales, account):
    first = make_deal(sales, account)
    second = make_deal(sales, account)
    assert int(second.number[-6:]) == int(first.number[-6:]) + 1


def test_deal_create_takes_the_given_open_stage_and_probability(sales, account):
    deal = deal_create(user=sales, data={"title": "X", "customer": account, "stage": stage("proposal")})
    assert deal.probability == 40
    deal = deal_create(
        user=sales, data={"title": "Y", "customer": account, "stage": stage("negotiation"), "probability": 75}
    )
    assert deal.probability == 75


@pytest.mark.parametrize("code", ["won", "lost"])
def test_deal_create_refuses_a_closed_stage(sales, account, code):
    with pytest.raises(ValidationFailed) as exc:
        deal_create(user=sales, data={"title": "X", "customer": account, "stage": stage(code)})
    assert "stage" in exc.value.errors
    assert not Deal.objects.exists()


def test_deal_create_reports_every_problem_at_once(sales, account):
    with pytest.raises(ValidationFailed) as exc:
        deal_create(
            user=sales,
            data={"title": " ", "customer": account, "amount": Decimal("-5"), "probability": 120, "currency": "XXX"},
        )
    assert {"title", "amount", "probability", "currency"} <= set(exc.value.errors)


def test_deal_create_needs_a_delivering_entity(sales):
    customer = make_customer(sales)  # no billing entity
    with pytest.raises(ValidationFailed) as exc:
        deal_create(user=sales, data={"title": "X", "customer": customer})
    assert "legal_entity" in exc.value.errors


def test_deal_create_refuses_an_archived_customer(sales, account):
    customer_set_status(user=sales, customer=account, status=Customer.Status.ARCHIVED, reason="Closed down")
    with pytest.raises(ValidationFailed) as exc:
        deal_create(user=sales, data={"title": "X", "customer": account})
    assert "archived" in exc.value.errors["customer"][0]


def test_a_sales_rep_cannot_open_a_deal_for_another_rep(sales, sales2, account):
    with pytest.raises(ValidationFailed) as exc:
        deal_create(user=sales, data={"title": "X", "customer": account, "owner": sales2})
    assert "owner" in exc.value.errors


def test_an_admin_opens_a_deal_for_a_rep_but_not_for_a_non_rep(admin_user, sales, finance, account):
    deal = deal_create(user=admin_user, data={"title": "X", "customer": account, "owner": sales})
    assert deal.owner == sales
    with pytest.raises(ValidationFailed) as exc:
        deal_create(user=admin_user, data={"title": "Y", "customer": account, "owner": finance})
    assert "not a sales rep" in exc.value.errors["owner"][0]


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.FINANCE, Role.PROJECT_MANAGER, Role.EXECUTIVE])
def test_deal_create_is_refused_to_roles_that_do_not_sell(users, account, role):
    with pytest.raises(NotPermitted):
        deal_create(user=users[role], data={"title": "X", "customer": account})


# --- deal_update ----------------------------------------------------------------------------------------


def test_deal_update_changes_fields_with_the_reason(sales, deal):
    deal = deal_update(user=sales, deal=deal, data={"next_step": "Workshop", "amount": Decimal("1000")}, reason="Call")
    assert deal.next_step == "Workshop" and deal.amount == Decimal("1000")
    assert AuditEntry.objects.filter(object_public_id=deal.public_id).latest("pk").reason == "Call"


def test_deal_update_refuses_a_stage_change(sales, deal):
    with pytest.raises(ValidationFailed) as exc:
        deal_update(user=sales, deal=deal, data={"stage": stage("proposal")})
    assert "stage" in exc.value.errors


def test_deal_update_refuses_another_customer_once_quoted(sales, deal, draft, entity):
    other = make_customer(sales, entity=entity)
    with pytest.raises(ValidationFailed) as exc:
        deal_update(user=sales, deal=deal, data={"customer": other})
    assert "customer" in exc.value.errors


def test_deal_update_is_refused_to_another_rep_and_to_auditors(sales2, auditor, deal):
    with pytest.raises(NotPermitted):
        deal_update(user=sales2, deal=deal, data={"title": "Mine now"})
    with pytest.raises(NotPermitted):
        deal_update(user=auditor, deal=deal, data={"title": "Audited"})


def test_only_the_owner_or_an_admin_hands_a_deal_over(sales, sales2, admin_user, entity):
    account = make_customer(sales2, entity=entity)  # sales2's account, sales's deal: both work it
    deal = make_deal(sales, account)
    with pytest.raises(ValidationFailed) as exc:
        deal_update(user=sales2, deal=deal, data={"owner": sales2})
    assert "owner" in exc.value.errors
    assert deal_update(user=sales, deal=deal, data={"owner": sales2}).owner == sales2
    assert deal_update(user=admin_user, deal=deal, data={"owner": sales}).owner == sales


# --- deal_move_stage ------------------------------------------------------------------------------------


def test_moving_a_deal_takes_the_stage_probability_unless_given(sales, deal):
    deal = deal_move_stage(user=sales, deal=deal, stage=stage("proposal"))
    assert deal.stage.code == "proposal" and deal.probability == 40
    deal = deal_move_stage(user=sales, deal=deal, stage="negotiation", probability=70)
    assert deal.probability == 70
    assert "Proposal → Negotiation" in AuditEntry.objects.filter(object_public_id=deal.public_id).latest("pk").reason


def test_moving_to_the_won_stage_is_refused_with_a_pointer_to_mark_won(sales, deal):
    with pytest.raises(TransitionNotAllowed) as exc:
        deal_move_stage(user=sales, deal=deal, stage="won")
    assert "Mark won" in exc.value.message
    deal.refresh_from_db()
    assert deal.stage.code == "qualified"


def test_losing_a_deal_needs_a_reason(sales, deal):
    with pytest.raises(ValidationFailed) as exc:
        deal_move_stage(user=sales, deal=deal, stage="lost", lost_reason="  ")
    assert "lost_reason" in exc.value.errors


def test_losing_a_deal_declines_the_quote_out_with_the_customer_and_reopening_clears_the_reason(sales, deal, draft):
    quote_send(user=sales, quote=draft)
    deal = deal_move_stage(user=sales, deal=deal, stage="lost", lost_reason="Chose a cheaper agency")
    assert deal.probability == 0 and deal.closed_at is not None and deal.lost_reason == "Chose a cheaper agency"
    draft.refresh_from_db()
    assert draft.status == Quote.Status.DECLINED
    deal = deal_move_stage(user=sales, deal=deal, stage="qualified")
    assert deal.lost_reason == "" and deal.closed_at is None and deal.probability == 20


def test_moving_an_unknown_or_retired_stage_is_refused(sales, deal):
    with pytest.raises(ValidationFailed):
        deal_move_stage(user=sales, deal=deal, stage="nowhere")
    PipelineStage.objects.filter(code="proposal").update(is_active=False)
    with pytest.raises(ValidationFailed):
        deal_move_stage(user=sales, deal=deal, stage="proposal")


def test_a_bad_probability_is_refused(sales, deal):
    with pytest.raises(ValidationFailed) as exc:
        deal_move_stage(user=sales, deal=deal, stage="proposal", probability=101)
    assert "probability" in exc.value.errors


def test_moving_is_refused_to_auditors_and_other_reps(auditor, sales2, deal):
    for person in (auditor, sales2):
        with pytest.raises(NotPermitted):
            deal_move_stage(user=person, deal=deal, stage="proposal")


# --- deal_close_won (for the projects handoff) -----------------------------------------------------------


def test_close_won_needs_an_accepted_quote_and_is_idempotent(sales, deal, draft):
    with pytest.raises(TransitionNotAllowed):
        deal_close_won(user=sales, deal=deal)
    quote_accept(user=sales, quote=draft, customer_signatory="Katrin Vogel")
    deal = deal_close_won(user=sales, deal=deal, quote=draft)
    assert deal.stage.code == "won" and deal.probability == 100 and deal.closed_at is not None
    closed_at = deal.closed_at
    assert deal_close_won(user=sales, deal=deal).closed_at == closed_at
    with pytest.raises(TransitionNotAllowed):
        deal_move_stage(user=sales, deal=deal, stage="qualified")
    with pytest.raises(TransitionNotAllowed):
        deal_update(user=sales, deal=deal, data={"title": "After the fact"})


def test_close_won_accepts_a_sent_quote_and_refuses_without_win_permission(sales, finance, deal, draft):
    quote_send(user=sales, quote=draft)
    with pytest.raises(NotPermitted):
        deal_close_won(user=finance, deal=deal, quote=draft)
    deal = deal_close_won(user=sales, deal=deal, quote=draft)
    draft.refresh_from_db()
    assert draft.status == Quote.Status.ACCEPTED and deal.stage.outcome == "won"


# --- scope ----------------------------------------------------------------------------------------------


def test_sales_see_their_deals_and_deals_on_their_accounts_only(sales, sales2, entity, deal):
    theirs = make_deal(sales2, make_customer(sales2, entity=entity))
    on_my_account = make_deal(sales2, deal.customer)
    visible = set(deals_visible_to(sales))
    assert deal in visible and on_my_account in visible and theirs not in visible
    with pytest.raises(Http404):
        access_deal(user=sales, public_id=theirs.public_id)
    assert deal_edit_allowed(user=sales, deal=on_my_account)


@pytest.mark.parametrize("role", [Role.FINANCE, Role.EXECUTIVE, Role.AUDITOR, Role.ADMIN])
def test_finance_executives_auditors_and_admins_see_every_deal(users, deal, role):
    assert list(deals_visible_to(users[role])) == [deal]
    assert deal_edit_allowed(user=users[role], deal=deal) is (role == Role.ADMIN)


def test_consultants_see_no_deal(users, deal):
    assert not deals_visible_to(users[Role.CONSULTANT]).exists()


def test_mark_won_is_offered_to_the_owner_once_a_quote_is_out(sales, finance, deal, draft):
    assert not deal_can_win(user=sales, deal=deal)
    quote_send(user=sales, quote=draft)
    assert deal_can_win(user=sales, deal=deal)
    assert not deal_can_win(user=finance, deal=deal)


# --- the pipeline board ---------------------------------------------------------------------------------


def test_board_has_open_stages_then_won_and_lost_with_counts_and_weighted_totals(sales, entity, account):
    make_deal(sales, account, amount=Decimal("10000"))  # qualified, 20 %
    make_deal(sales, account, amount=Decimal("5000.50"), stage=stage("proposal"))  # 40 %
    make_deal(sales, account, amount=Decimal("1000"), stage=stage("proposal"), currency="GBP")
    lost = make_deal(sales, account, amount=Decimal("999"))
    deal_move_stage(user=sales, deal=lost, stage="lost", lost_reason="Budget cut")
    board = pipeline_board(user=sales)
    assert [c.stage.code for c in board.columns] == ["qualified", "proposal", "negotiation", "won", "lost"]
    columns = {c.stage.code: c for c in board.columns}
    assert columns["qualified"].count == 1 and columns["qualified"].weighted == [("EUR", Decimal("2000.00"))]
    assert columns["proposal"].count == 2
    assert columns["proposal"].weighted == [("EUR", Decimal("2000.20")), ("GBP", Decimal("400.00"))]
    assert columns["proposal"].totals == [("EUR", Decimal("5000.50")), ("GBP", Decimal("1000.00"))]
    assert columns["lost"].count == 1 and columns["lost"].deals[0].lost_reason == "Budget cut"
    assert board.weighted == [("EUR", Decimal("4000.20")), ("GBP", Decimal("400.00"))]
    assert columns["qualified"].next_stage.code == "proposal" and columns["qualified"].previous_stage is None
    assert columns["negotiation"].next_stage is None


def test_board_leaves_out_deals_closed_long_ago(sales, account):
    lost = deal_move_stage(user=sales, deal=make_deal(sales, account), stage="lost", lost_reason="Went quiet")
    Deal.objects.filter(pk=lost.pk).update(closed_at=lost.closed_at - dt.timedelta(days=200))
    columns = {c.stage.code: c for c in pipeline_board(user=sales).columns}
    assert columns["lost"].count == 0


def test_board_query_count_does_not_grow_with_deals(sales, account, django_assert_max_num_queries):
    make_deal(sales, account)
    with django_assert_max_num_queries(6) as few:
        pipeline_board(user=sales)
    for _ in range(8):
        make_deal(sales, account, stage=stage("proposal"))
    with django_assert_max_num_queries(len(few.captured_queries)):
        board = pipeline_board(user=sales)
    assert sum(c.count for c in board.columns) == 9


def test_another_reps_deals_are_not_on_my_board(sales, sales2, entity, deal):
    make_deal(sales2, make_customer(sales2, entity=entity))
    assert sum(c.count for c in pipeline_board(user=sales).columns) == 1
    assert sum(c.count for c in pipeline_board(user=sales2).columns) == 1
