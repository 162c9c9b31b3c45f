"""The seller's cross-border B2C sales that the EUR 10,000 threshold of Art. 59c is judged on.

The tax app cannot count them itself: they are the net amounts of issued invoices, and invoices live in a
higher app (billing) that the tax app may not import. So a higher app *registers a source* here, from its
``AppConfig.ready``::

    from tax.thresholds import register_b2c_sales_source

    register_b2c_sales_source(issued_cross_border_b2c_sales_eur)

Billing registers a source computed from issued invoices (electronically supplied services and distance
sales of goods to consumers in other EU countries, converted to EUR at each invoice's rate). Until a source
is registered the total is ``Decimal("0")``, which is the truth while no invoice has been issued.

``seller_key`` names the seller without the tax app knowing what a seller is: the customers app passes the
legal entity's public ID as a string. Amounts are in EUR.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal

from django.conf import settings

B2CSalesSource = Callable[..., Decimal]  # fn(*, seller_key: str, year: int) -> Decimal (EUR)

_sources: list[B2CSalesSource] = []


def register_b2c_sales_source(fn: B2CSalesSource) -> B2CSalesSource:
    """Add a source of cross-border B2C sales; registering the same function again changes nothing.

    Returns ``fn`` so that it can be used as a decorator.
    """
    if fn not in _sources:
        _sources.append(fn)
    return fn


def unregister_b2c_sales_source(fn: B2CSalesSource) -> None:
    """Remove a source (tests; an app that is being unloaded). Unknown sources are ignored."""
    if fn in _sources:
        _sources.remove(fn)


@contextmanager
def b2c_sales_source(fn: B2CSalesSource) -> Iterator[B2CSalesSource]:
    """Register ``fn`` for the duration of a ``with`` block: tests use this so no source outlives them."""
    already = fn in _sources
    register_b2c_sales_source(fn)
    try:
        yield fn
    finally:
        if not already:
            unregister_b2c_sales_source(fn)


def b2c_sales_eur(*, seller_key: str, year: int) -> Decimal:
    """The seller's cross-border B2C sales in ``year`` in EUR: the sum of every registered source."""
    total = Decimal("0")
    for source in _sources:
        amount = source(seller_key=seller_key, year=year)
        if isinstance(amount, int) and not isinstance(amount, bool):
            amount = Decimal(amount)
        if not isinstance(amount, Decimal) or not amount.is_finite():
            name = getattr(source, "__qualname__", repr(source))
            raise TypeError(f"The B2C sales source {name} returned {amount!r}; a source returns a finite Decimal.")
        total += amount
    return total


def threshold_forced(country: str, seller_key: str) -> bool:
    """Whether settings.TAX_EU_B2C_THRESHOLD_EXCEEDED treats this seller as above the EUR 10,000 threshold.

    The setting lists sellers' country codes (every seller of that country) or sellers' keys (a legal
    entity's public ID: that one seller), compared without regard to case.
    """
    forced = {str(entry).strip().upper() for entry in getattr(settings, "TAX_EU_B2C_THRESHOLD_EXCEEDED", ())}
    forced.discard("")
    if "EL" in forced:  # Greece's VAT prefix, as people write it
        forced.add("GR")
    return bool(forced) and (
        str(country or "").strip().upper() in forced or str(seller_key or "").strip().upper() in forced
    )
