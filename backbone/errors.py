"""Domain errors: services raise them; pages show their message, the API answers 400/409 with it."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule refused the request. ``field`` names the input at fault, when there is one."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, errors: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.errors = errors or ({field: [message]} if field else {})


class ValidationFailed(DomainError):
    """Input broke one or more rules; ``errors`` maps each field (or nested path) to its messages."""


class Conflict(DomainError):
    """The request conflicts with the current state (a duplicate, an immutable value, a replayed key)."""

    status_code = 409
    code = "conflict"


class TransitionNotAllowed(Conflict):
    code = "transition_not_allowed"


class NotPermitted(DomainError):
    status_code = 403
    code = "permission_denied"
