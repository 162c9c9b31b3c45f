"""Domain errors of the customers app (shared kinds come from backbone.errors)."""

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed

__all__ = ["Conflict", "NotPermitted", "TransitionNotAllowed", "ValidationFailed"]
