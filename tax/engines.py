"""Which engine calculates tax, and the one entry point the rest of the system calls.

The engine is named by the ``TAX_ENGINE`` setting (a dotted path to a class); the built-in
``tax.rules.RulesEngine`` is the default. An engine is any class with:

    name: str                     # stored as evidence, e.g. "throughline-rules" or "avalara"
    version: str                  # stored as evidence; bump it whenever a decision could change
    def calculate(self, context: TaxContext, *, rates: RateBook) -> TaxResult

``calculate`` must be deterministic for a given context and rate book and must not write anything.
It raises ``backbone.errors.ValidationFailed`` with a message naming what is missing, never returns a
silent zero. An adapter for an external service (Avalara, Stripe Tax) translates the context into the
service's request, maps its answer back into a ``TaxResult`` (categories by UNCL5305, notes, rules as the
service's own reason codes) and may ignore ``rates``; its own data version belongs in ``rate_data_version``.
"""

from __future__ import annotations

from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from tax.context import TaxContext, TaxResult
from tax.rates import RateBook

DEFAULT_ENGINE = "tax.rules.RulesEngine"


class TaxEngine(Protocol):
    name: str
    version: str

    def calculate(self, context: TaxContext, *, rates: RateBook) -> TaxResult: ...


def get_engine(path: str | None = None) -> TaxEngine:
    return import_string(path or getattr(settings, "TAX_ENGINE", DEFAULT_ENGINE))()


def calculate(context: TaxContext, *, rates: RateBook | None = None, engine: TaxEngine | None = None) -> TaxResult:
    """Tax for ``context`` by the configured engine, with the rate data in the database unless given."""
    if rates is None:
        from tax.selectors import rate_book

        rates = rate_book()
    return (engine or get_engine()).calculate(context, rates=rates)
