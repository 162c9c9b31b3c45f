"""The django-q2 task the monthly schedule calls (``manage.py schedule_invoice_runs`` creates the schedule).

Idempotent like every task here: a retried or duplicated call starts no second run of the same period.
"""

from __future__ import annotations

from .schedules import scheduled_invoice_runs


def scheduled_invoice_runs_task() -> str:
    """Start last month's invoice runs; returns the summary for the task log."""
    return scheduled_invoice_runs().summary()
