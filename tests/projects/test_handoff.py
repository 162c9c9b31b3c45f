"""The handoff: a won deal becomes a project with contract version 1, its plan, permissions and a notice to
the project manager — once, whoever asks twice — and every guard refuses with a clear message."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.models import Notification, NumberSequence
from customers.models import Deal, PipelineStage, Quote
from projects import services
from projects.models import BillingRule, BudgetLine, ContractVersion, Milestone, Project, RateCardEntry
from projects.terms import terms_sha256

from .factories import END, START, DealFactory, QuoteFactory, QuoteLineFactory, stage, tm_quote

pytestmark = pytest.mark.django_db


def test_winning_a_deal_creates_the_project_with_version_1_and_its_plan(tm_deal, people):
    sales, pm = people["sales"], people["pm"]

    project, created = services.deal_win(actor=sales, deal=tm_deal, project_manager=pm)

    assert created is True
    assert project.number == "PRJ-000001"
    assert (project.customer, project.legal_entity, project.deal) == (tm_deal.customer, tm_deal.legal_entity, tm_deal)
    assert (project.project_manager, project.name, project.status) == (pm, "Data platform", Project.Status.PLANNED)
    assert (project.planned_start, project.planned_end) == (START, END)
    assert (project.currency, project.payment_terms_days, project.po_number, project.po_required) == (
        "EUR",
        21,
        "PO-4711",
        True,
    )

    deal = Deal.objects.get(pk=tm_deal.pk)
    assert deal.stage.outcome == PipelineStage.Outcome.WON
    assert deal.probability == 100 and deal.closed_at is not None
    quote = deal.quotes.get()
    assert quote.status == Quote.Status.ACCEPTED and quote.accepted_by == sales and quote.accepted_at

    version = ContractVersion.objects.get(project=project)
    assert (version.number, version.source, version.quote, version.effective_from) == (1, "quote", quote, START)
    assert version.sha256 == terms_sha256(version.terms)
    assert version.created_by == sales
    terms = version.terms
    assert terms["quote"]["deal_number"] == deal.number and terms["quote"]["version"] == 1
    assert terms["quote"]["customer_signatory"] == quote.customer_signatory == "Ida Berg, COO"
    assert terms["customer"]["number"] == deal.customer.number
    assert [line["key"] for line in terms["lines"]] == [
        "labour:senior-consultant",
        "labour:developer",
        "expenses:travel",
    ]
    assert [row["line_id"] for row in terms["tax"]["lines"]] == [line["key"] for line in terms["lines"]]

    assert list(
        RateCardEntry.objects.filter(project=project).values_list("labour_category", "rate", "effective_from")
    ) == [
        ("Developer", Decimal("99.0000"), START),  # 110 less 10 %
        ("Senior consultant", Decimal("150.0000"), START),
    ]
    assert list(
        BudgetLine.objects.filter(project=project).order_by("id").values_list("key", "kind", "hours", "amount")
    ) == [
        ("labour:senior-consultant", "labour", Decimal("100.00"), Decimal("15000.00")),
        ("labour:developer", "labour", Decimal("200.00"), Decimal("19800.00")),
        ("expenses:travel", "non_labour", None, Decimal("2200.00")),  # 2,000 plus the 10 % markup, as quoted
    ]
    assert list(BillingRule.objects.filter(project=project).values_list("model", "markup_percent")) == [
        ("expenses", Decimal("10.00")),
        ("tm", Decimal("0.00")),
    ]

    assert pm.has_perm("projects.change_project", project)
    assert pm.has_perm("customers.view_customer", project.customer)
    assert not people["pm2"].has_perm("projects.change_project", project)
    notice = Notification.objects.get(user=pm)
    assert notice.title == f"You manage {project.number} Data platform"

    record = project.history.get()
    assert record.history_user == sales and record.history_change_reason == f"Deal {deal.number} won"


def test_fixed_fee_milestones_carry_the_fee_with_their_baseline(fixed_deal, win):
    project = win(fixed_deal)
    assert list(
        Milestone.objects.filter(project=project).values_list("key", "name", "planned_date", "baseline_date", "amount")
    ) == [
        ("milestone:1", "Design sign-off", dt.date(2026, 4, 30), dt.date(2026, 4, 30), Decimal("12000.00")),
        ("milestone:2", "Beta", dt.date(2026, 6, 30), dt.date(2026, 6, 30), Decimal("9000.00")),
        ("milestone:3", "Launch", dt.date(2026, 8, 28), dt.date(2026, 8, 28), Decimal("9000.00")),
    ]
    assert list(BudgetLine.objects.filter(project=project).order_by("id").values_list("key", "kind")) == [
        ("fixed:designer", "labour"),  # it names a labour category
        ("fixed:build", "non_labour"),
    ]
    assert list(project.billing_rules.values_list("model", flat=True)) == ["fixed_fee"]
    assert not project.rate_card.exists()


def test_retainer_becomes_a_billing_rule_with_the_monthly_amount(retainer_deal, win):
    project = win(retainer_deal)
    assert list(project.billing_rules.values_list("model", "retainer_amount")) == [("retainer", Decimal("3200.00"))]
    assert list(project.budget_lines.values_list("key", "amount")) == [
        ("retainer:support-retainer", Decimal("19200.00"))
    ]


def test_winning_twice_returns_the_same_project_and_changes_nothing(tm_deal, people):
    project, created = services.deal_win(actor=people["sales"], deal=tm_deal, project_manager=people["pm"])
    deal_history = Deal.objects.get(pk=tm_deal.pk).history.count()

    again, created_again = services.deal_win(
        actor=people["sales"], deal=tm_deal, project_manager=people["pm2"], name="Another name"
    )

    assert (again, created, created_again) == (project, True, False)
    assert again.project_manager == people["pm"] and again.name == "Data platform"
    assert Project.objects.count() == 1 and ContractVersion.objects.count() == 1
    assert Deal.objects.get(pk=tm_deal.pk).history.count() == deal_history
    assert NumberSequence.objects.get(key="project").last_value == 1
    assert Notification.objects.filter(user=people["pm"]).count() == 1


def test_the_accepted_quote_wins_over_a_newer_sent_one(deal, people):
    accepted = tm_quote(deal, status=Quote.Status.ACCEPTED)
    QuoteFactory(deal=deal, version=2, status=Quote.Status.SENT)
    project, _ = services.deal_win(actor=people["sales"], deal=deal, project_manager=people["pm"])
    assert project.contract_versions.get().quote == accepted


def test_without_an_accepted_quote_the_latest_sent_one_is_accepted(deal, people):
    old = QuoteFactory(deal=deal, version=1, status=Quote.Status.SENT)
    QuoteLineFactory(quote=old)
    latest = QuoteFactory(deal=deal, version=2, status=Quote.Status.SENT)
    QuoteLineFactory(quote=latest, unit_price=Decimal("160"))
    project, _ = services.deal_win(actor=people["sales"], deal=deal, project_manager=people["pm"])
    assert project.contract_versions.get().quote == latest
    assert project.rate_card.get().rate == Decimal("160")
    old.refresh_from_db()
    assert old.status == Quote.Status.SUPERSEDED  # the customers app's acceptance supersedes the rest


def test_admins_may_win_any_deal(tm_deal, people):
    project, created = services.deal_win(actor=people["admin"], deal=tm_deal, project_manager=people["pm"])
    assert created and project.deal == tm_deal


def test_the_project_name_and_dates_can_be_given(tm_deal, people):
    project, _ = services.deal_win(
        actor=people["sales"],
        deal=tm_deal,
        project_manager=people["pm"],
        name="Platform, phase 1",
        planned_start=dt.date(2026, 4, 1),
        planned_end=dt.date(2026, 12, 31),
    )
    assert (project.name, project.planned_start, project.planned_end) == (
        "Platform, phase 1",
        dt.date(2026, 4, 1),
        dt.date(2026, 12, 31),
    )
    assert project.rate_card.first().effective_from == dt.date(2026, 4, 1)
    assert project.contract_versions.get().effective_from == dt.date(2026, 4, 1)


# --- guards --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["pm", "finance", "executive", "consultant"])
def test_roles_without_win_deal_are_refused(tm_deal, people, who):
    with pytest.raises(NotPermitted, match="cannot mark deals won"):
        services.deal_win(actor=people[who], deal=tm_deal, project_manager=people["pm"])
    assert not Project.objects.exists()


def test_auditors_are_refused(tm_deal, people):
    with pytest.raises(NotPermitted, match="Auditors"):
        services.deal_win(actor=people["auditor"], deal=tm_deal, project_manager=people["pm"])


def test_another_sales_reps_deal_is_refused(tm_deal, people):
    with pytest.raises(NotPermitted, match="belongs to another sales rep"):
        services.deal_win(actor=people["sales2"], deal=tm_deal, project_manager=people["pm"])
    assert not Project.objects.exists()


def test_a_lost_deal_is_refused(tm_deal, people):
    Deal.objects.filter(pk=tm_deal.pk).update(stage=stage("lost"), lost_reason="Budget cut")
    with pytest.raises(TransitionNotAllowed, match=r"is lost \(Budget cut\)"):
        services.deal_win(actor=people["sales"], deal=tm_deal, project_manager=people["pm"])


def test_a_deal_without_a_sent_or_accepted_quote_is_refused(deal, people):
    QuoteFactory(deal=deal, status=Quote.Status.DRAFT)
    with pytest.raises(ValidationFailed) as caught:
        services.deal_win(actor=people["sales"], deal=deal, project_manager=people["pm"])
    assert "no accepted or sent quote" in caught.value.errors["quote"][0]


def test_a_quote_without_lines_is_refused(deal, people):
    QuoteFactory(deal=deal)
    with pytest.raises(ValidationFailed) as caught:
        services.deal_win(actor=people["sales"], deal=deal, project_manager=people["pm"])
    assert "has no lines" in caught.value.errors["quote"][0]


def test_a_quote_of_another_deal_is_refused(tm_deal, people, customer, legal_entity):
    other = tm_quote(DealFactory(customer=customer, legal_entity=legal_entity))
    with pytest.raises(ValidationFailed) as caught:
        services.deal_win(actor=people["sales"], deal=tm_deal, quote=other, project_manager=people["pm"])
    assert "another deal" in caught.value.errors["quote"][0]


def test_a_declined_quote_is_refused(deal, people):
    quote = tm_quote(deal, status=Quote.Status.DECLINED)
    with pytest.raises(TransitionNotAllowed, match="declined"):
        services.deal_win(actor=people["sales"], deal=deal, quote=quote, project_manager=people["pm"])


def test_naming_another_quote_than_the_accepted_one_is_refused(deal, people):
    tm_quote(deal, status=Quote.Status.ACCEPTED)
    sent = QuoteFactory(deal=deal, version=2)
    with pytest.raises(Conflict, match="already accepted"):
        services.deal_win(actor=people["sales"], deal=deal, quote=sent, project_manager=people["pm"])


@pytest.mark.parametrize("who", ["consultant", "sales", "finance"])
def test_the_project_manager_must_hold_the_role(tm_deal, people, who):
    with pytest.raises(ValidationFailed) as caught:
        services.deal_win(actor=people["sales"], deal=tm_deal, project_manager=people[who])
    assert "not an active project manager" in caught.value.errors["project_manager"][0]


def test_missing_dates_are_refused(deal, people):
    tm_quote(deal, planned_start=None, planned_end=None)
    with pytest.raises(ValidationFailed) as caught:
        services.deal_win(actor=people["sales"], deal=deal, project_manager=people["pm"])
    assert set(caught.value.errors) == {"planned_start", "planned_end"}


def test_reversed_dates_are_refused(tm_deal, people):
    with pytest.raises(ValidationFailed) as caught:
        services.deal_win(
            actor=people["sales"], deal=tm_deal, project_manager=people["pm"], planned_end=dt.date(2026, 1, 1)
        )
    assert "before the planned start" in caught.value.errors["planned_end"][0]


def test_milestones_outside_the_given_dates_are_refused(fixed_deal, people):
    with pytest.raises(ValidationFailed) as caught:
        services.deal_win(
            actor=people["sales"], deal=fixed_deal, project_manager=people["pm"], planned_end=dt.date(2026, 7, 31)
        )
    assert "'Launch' is planned for 2026-08-28, after the planned end" in caught.value.errors["planned_end"][0]


def test_time_and_materials_priced_per_day_is_refused(deal, people):
    quote = QuoteFactory(deal=deal)
    QuoteLineFactory(quote=quote, unit="DAY", unit_price=Decimal("1200"), quantity=Decimal("10"))
    with pytest.raises(ValidationFailed) as caught:
        services.deal_win(actor=people["sales"], deal=deal, project_manager=people["pm"])
    assert "rate cards are hourly" in caught.value.errors["lines.0.unit"][0]
    # Refused after the quote was accepted and the deal moved: all of it rolled back.
    assert Quote.objects.get(pk=quote.pk).status == Quote.Status.SENT
    assert Deal.objects.get(pk=deal.pk).stage.code == "negotiation"


def test_one_labour_category_with_two_rates_is_refused(deal, people):
    quote = QuoteFactory(deal=deal)
    QuoteLineFactory(quote=quote, position=1, labour_category="Developer", unit_price=Decimal("100"))
    QuoteLineFactory(quote=quote, position=2, labour_category="Developer", unit_price=Decimal("120"))
    with pytest.raises(ValidationFailed) as caught:
        services.deal_win(actor=people["sales"], deal=deal, project_manager=people["pm"])
    assert "a labour category has one rate" in caught.value.errors["lines.1.unit_price"][0]


def test_a_refused_win_leaves_no_trace_and_no_gap_in_the_numbers(tm_deal, people):
    with pytest.raises(ValidationFailed):
        services.deal_win(
            actor=people["sales"], deal=tm_deal, project_manager=people["pm"], planned_end=dt.date(2026, 1, 1)
        )
    deal = Deal.objects.get(pk=tm_deal.pk)
    assert deal.stage.code == "negotiation" and deal.quotes.get().status == Quote.Status.SENT
    project, _ = services.deal_win(actor=people["sales"], deal=tm_deal, project_manager=people["pm"])
    assert project.number == "PRJ-000001"
