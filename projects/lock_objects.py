"""Every row lock of the projects app, in one place.

Lock order across apps: customer → deal → its quotes → project → change order → invoice → lines → payment.
"""

from __future__ import annotations

from .models import ChangeOrder, Project


def project_for_update(*, pk: int) -> Project:
    return Project.objects.select_for_update(of=("self",)).get(pk=pk)


def change_order_for_update(*, pk: int) -> ChangeOrder:
    return ChangeOrder.objects.select_for_update(of=("self",)).get(pk=pk)


def person_for_update(*, pk: int):
    """The user row that serialises one person's time entries (the 24-hour rule sums their day)."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.select_for_update(of=("self",)).get(pk=pk)


def entries_for_update(model, *, pks) -> list:
    """Time entries or expenses by primary key, locked in key order (after their projects)."""
    return list(model.objects.filter(pk__in=list(pks)).order_by("pk").select_for_update(of=("self",)))
