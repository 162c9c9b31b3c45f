"""Domain errors of the projects app (shared kinds come from backbone.errors)."""

from __future__ import annotations

from backbone.errors import Conflict, DomainError, NotPermitted, TransitionNotAllowed, ValidationFailed


class ContractNotInForce(Conflict):
    """No contract version governs the day asked about (it is before version 1 takes effect)."""

    code = "contract_not_in_force"


class RateMissing(Conflict):
    """The contract in force on a day has no rate for a labour category (billing cannot price the hours)."""

    code = "rate_missing"


__all__ = [
    "Conflict",
    "ContractNotInForce",
    "DomainError",
    "NotPermitted",
    "RateMissing",
    "TransitionNotAllowed",
    "ValidationFailed",
]
