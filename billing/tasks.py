"""django-q2 task functions of billing; each is idempotent and safe to retry."""

from __future__ import annotations

from .services import invoice_run_execute


def invoice_run_task(run_id: int) -> str:
    """Execute (or continue, or do nothing for) the invoice run; returns its status for the task log."""
    run = invoice_run_execute(run_id)
    return run.status if run is not None else "missing"
