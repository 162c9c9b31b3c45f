"""factory-boy factories for deals and quotes (the sold side the handoff reads), and helpers that build a
typical offer of each billing model. Test set-up only: projects themselves are always made by the services."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from customers.models import BillingModel, Deal, PipelineStage, Quote, QuoteLine, QuoteMilestone
from tests.customers.factories import CustomerFactory, LegalEntityFactory

START = dt.date(2026, 3, 2)
END = dt.date(2026, 8, 31)


def stage(code: str) -> PipelineStage:
    """The stages come from customers' data migration 0008 (qualified, proposal, negotiation, won, lost)."""
    return PipelineStage.objects.get(code=code)


class DealFactory(DjangoModelFactory):
    class Meta:
        model = Deal

    number = factory.Sequence(lambda n: f"DEAL-{n + 500000:06d}")
    title = factory.Sequence(lambda n: f"Data platform {n}")
    customer = factory.SubFactory(CustomerFactory)
    owner = factory.LazyAttribute(lambda o: o.customer.owner)
    legal_entity = factory.SubFactory(LegalEntityFactory)
    stage = factory.LazyFunction(lambda: stage("negotiation"))
    probability = 60
    amount = Decimal("50000.00")
    currency = "EUR"


class QuoteFactory(DjangoModelFactory):
    class Meta:
        model = Quote

    deal = factory.SubFactory(DealFactory)
    version = 1
    status = Quote.Status.SENT
    currency = "EUR"
    valid_until = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=30))
    payment_terms_days = 21
    po_number = "PO-4711"
    po_required = True
    planned_start = START
    planned_end = END
    terms = "Delivery as described in the statement of work."
    customer_signatory = "Ida Berg, COO"


def net_amount(quantity: Decimal, unit_price: Decimal, discount_percent: Decimal, markup: Decimal = Decimal(0)):
    """As the quotes compute it: quantity x price, plus the expense markup, less the discount, rounded once."""
    gross = quantity * unit_price * (1 + markup / 100) * (1 - discount_percent / 100)
    return gross.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


class QuoteLineFactory(DjangoModelFactory):
    class Meta:
        model = QuoteLine

    quote = factory.SubFactory(QuoteFactory)
    position = factory.Sequence(lambda n: n)
    description = factory.Sequence(lambda n: f"Consulting {n}")
    billing_model = BillingModel.TIME_AND_MATERIALS
    labour_category = "Senior consultant"
    quantity = Decimal("100")
    unit = "HUR"
    unit_price = Decimal("150.0000")
    discount_percent = Decimal("0")
    net_amount = factory.LazyAttribute(
        lambda o: net_amount(
            o.quantity,
            o.unit_price,
            o.discount_percent,
            o.quote.expense_markup_percent if o.billing_model == BillingModel.EXPENSES else Decimal(0),
        )
    )


class QuoteMilestoneFactory(DjangoModelFactory):
    class Meta:
        model = QuoteMilestone

    quote = factory.SubFactory(QuoteFactory)
    position = factory.Sequence(lambda n: n)
    name = factory.Sequence(lambda n: f"Milestone {n}")
    planned_date = dt.date(2026, 5, 29)
    amount = Decimal("0")


def tm_quote(deal: Deal, **quote_fields) -> Quote:
    """Time & materials: two categories (one with a 10 % discount) and rebillable travel at 10 % markup."""
    quote = QuoteFactory(deal=deal, expense_markup_percent=Decimal("10"), **quote_fields)
    QuoteLineFactory(quote=quote, position=1, description="Senior consultant", labour_category="Senior consultant")
    QuoteLineFactory(
        quote=quote,
        position=2,
        description="Developer",
        labour_category="Developer",
        quantity=Decimal("200"),
        unit_price=Decimal("110.0000"),
        discount_percent=Decimal("10"),
    )
    QuoteLineFactory(
        quote=quote,
        position=3,
        description="Travel",
        billing_model=BillingModel.EXPENSES,
        labour_category="",
        quantity=Decimal("1"),
        unit="LS",
        unit_price=Decimal("2000.0000"),
    )
    return quote


def fixed_fee_quote(deal: Deal, **quote_fields) -> Quote:
    """A fixed fee of 30,000 in two lines, carried by three milestones."""
    quote = QuoteFactory(deal=deal, **quote_fields)
    QuoteLineFactory(
        quote=quote,
        position=1,
        description="Design",
        billing_model=BillingModel.FIXED_FEE,
        labour_category="Designer",
        quantity=Decimal("1"),
        unit="LS",
        unit_price=Decimal("12000.0000"),
    )
    QuoteLineFactory(
        quote=quote,
        position=2,
        description="Build",
        billing_model=BillingModel.FIXED_FEE,
        labour_category="",
        quantity=Decimal("1"),
        unit="LS",
        unit_price=Decimal("18000.0000"),
    )
    for position, (name, day, amount) in enumerate(
        [
            ("Design sign-off", dt.date(2026, 4, 30), "12000"),
            ("Beta", dt.date(2026, 6, 30), "9000"),
            ("Launch", dt.date(2026, 8, 28), "9000"),
        ],
        start=1,
    ):
        QuoteMilestoneFactory(quote=quote, position=position, name=name, planned_date=day, amount=Decimal(amount))
    return quote


def retainer_quote(deal: Deal, **quote_fields) -> Quote:
    quote = QuoteFactory(deal=deal, retainer_amount=Decimal("3200.00"), **quote_fields)
    QuoteLineFactory(
        quote=quote,
        position=1,
        description="Support retainer",
        billing_model=BillingModel.RETAINER,
        labour_category="",
        quantity=Decimal("6"),
        unit="MON",
        unit_price=Decimal("3200.0000"),
    )
    return quote
