"""Two people accepting two versions of one deal at the same moment: one acceptance wins (PostgreSQL only)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from backbone.errors import Conflict, TransitionNotAllowed
from customers.models import PipelineStage, Quote
from customers.services import quote_new_version, quote_send
from tests.customers.deal_factories import make_customer, make_deal, make_entity, make_quote

STAGES = [("qualified", "Qualified", 10, 20, "open"), ("won", "Won", 40, 100, "won"), ("lost", "Lost", 50, 0, "lost")]


@pytest.mark.django_db(transaction=True)
def test_concurrent_acceptances_of_one_deal_accept_one_quote(django_user_model):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    from customers import services

    # Transactional tests start from an empty database: no role groups, no stages. A superuser works the deal.
    for code, name, position, probability, outcome in STAGES:
        PipelineStage.objects.get_or_create(
            code=code,
            defaults={"name": name, "position": position, "default_probability": probability, "outcome": outcome},
        )
    root = django_user_model.objects.create_superuser("root", password="x")
    deal = make_deal(root, make_customer(root, entity=make_entity()))
    first = quote_send(user=root, quote=make_quote(root, deal))
    second = quote_new_version(user=root, quote=first)
    start = threading.Barrier(2, timeout=10)
    outcomes, failures = [], []

    def accept(quote: Quote) -> None:
        try:
            start.wait()
            services.quote_accept(user=root, quote=quote)
            outcomes.append("accepted")
        except (Conflict, TransitionNotAllowed):
            outcomes.append("refused")
        except Exception as exc:  # reported below: a thread must not swallow it
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(quote,)) for quote in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not failures
    assert sorted(outcomes) == ["accepted", "refused"]
    assert Quote.objects.filter(deal=deal, status=Quote.Status.ACCEPTED).count() == 1
    assert Quote.objects.filter(deal=deal, status=Quote.Status.SUPERSEDED).count() == 1
