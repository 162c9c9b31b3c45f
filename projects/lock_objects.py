"""Every row lock of the projects app, in one place.

Lock order across apps: customer → deal → its quotes → project → change order → invoice → lines → payment.
"""

from __future__ import annotations

from customers.models import Deal

from .models import ChangeOrder, Project


def deal_for_update(*, pk: int) -> Deal:
    """The deal row that serialises two wins of one deal.

    No joins: when the first win commits, the waiting second one gets the row again, and PostgreSQL re-checks
    a locked row against the rows it was joined to when the statement began. Joined to its old stage, a deal
    that the first win moved to "won" would no longer match, and the second win would find no deal at all.
    """
    return Deal.objects.select_for_update(of=("self",)).get(pk=pk)


def project_for_update(*, pk: int) -> Project:
    return Project.objects.select_for_update(of=("self",)).get(pk=pk)


def change_order_for_update(*, pk: int) -> ChangeOrder:
    return ChangeOrder.objects.select_for_update(of=("self",)).get(pk=pk)
