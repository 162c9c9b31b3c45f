"""The pipeline's demo data: every open stage and lost deals for both demo reps, quotes in every state, one
accepted quote waiting for "Mark won", no won deal (the projects seeder wins its own), and nothing new on a
second run."""

from __future__ import annotations

import pytest

from backbone.demo import seed_users
from customers.demo import seed_customers, seed_deals
from customers.models import Deal, Quote, QuoteAttachment, QuoteLine

pytestmark = pytest.mark.django_db


def test_seeding_the_pipeline_twice_creates_nothing_new(django_capture_on_commit_callbacks):
    seed_users(password="demo-pass-123")
    seed_customers()
    with django_capture_on_commit_callbacks(execute=False):
        summary = seed_deals()
    assert summary == "11 demo deals (11 new)"
    stages = set(Deal.objects.values_list("stage__code", flat=True))
    assert stages == {"qualified", "proposal", "negotiation", "lost"}
    assert set(Deal.objects.values_list("owner__username", flat=True)) == {"sales", "sales2"}
    statuses = set(Quote.objects.values_list("status", flat=True))
    assert statuses == {"draft", "sent", "accepted", "superseded", "declined"}
    accepted = Quote.objects.get(status=Quote.Status.ACCEPTED)
    assert accepted.deal.stage.outcome == "open" and accepted.attachments.count() == 1
    assert set(QuoteLine.objects.values_list("billing_model", flat=True)) == {"tm", "fixed_fee", "retainer", "expenses"}
    assert set(Quote.objects.values_list("currency", flat=True)) >= {"EUR", "GBP", "CHF", "USD"}
    counts = (Deal.objects.count(), Quote.objects.count(), QuoteLine.objects.count(), QuoteAttachment.objects.count())
    with django_capture_on_commit_callbacks(execute=False):
        assert seed_deals() == "11 demo deals (0 new)"
    assert counts == (
        Deal.objects.count(),
        Quote.objects.count(),
        QuoteLine.objects.count(),
        QuoteAttachment.objects.count(),
    )
