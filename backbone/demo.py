"""Demo data: each app registers a seeder from its AppConfig.ready(); ``manage.py seed_demo`` runs them
in order. Seeders must be idempotent: running the command twice changes nothing the second time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Seeder:
    order: int
    name: str
    run: Callable[..., str]  # run(*, stdout_write, password) -> one-line summary


_SEEDERS: dict[str, Seeder] = {}


def register_seeder(name: str, run: Callable[..., str], *, order: int) -> None:
    _SEEDERS[name] = Seeder(order=order, name=name, run=run)


def seeders() -> list[Seeder]:
    return sorted(_SEEDERS.values(), key=lambda s: (s.order, s.name))


# One demo login per role (ROLES.md); `sales2` owns some accounts so that "own accounts" is visible.
DEMO_USERS = [
    ("sales", "Sofia", "Reyes", ["sales"]),
    ("sales2", "Jonas", "Keller", ["sales"]),
    ("pm", "Priya", "Menon", ["project_manager"]),
    ("consultant", "Luca", "Bianchi", ["consultant"]),
    ("finance", "Femke", "de Vries", ["finance"]),
    ("executive", "Eleanor", "Hughes", ["executive"]),
    ("auditor", "Arno", "Schmidt", ["auditor"]),
    ("admin", "Ada", "Admin", ["admin"]),
]


def seed_users(*, password: str, **_) -> str:
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from .history import set_reason
    from .models import UserProfile

    User = get_user_model()
    created = 0
    for username, first, last, roles in DEMO_USERS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(
                username=username, first_name=first, last_name=last, email=f"{username}@demo.throughline.invalid"
            )
            user.is_staff = username in ("admin", "auditor")
            user.is_superuser = username == "admin"
            user.set_password(password)
            set_reason(user, "Demo user").save()
            created += 1
        for role in roles:
            user.groups.add(Group.objects.get(name=role))
        limits = {"finance": Decimal("25000"), "executive": Decimal("250000"), "pm": Decimal("10000")}
        UserProfile.objects.get_or_create(
            user=user,
            defaults={
                "approval_limit_amount": limits.get(username, 0),
                "change_order_limit_amount": limits.get(username, 0),
            },
        )
    return f"{len(DEMO_USERS)} demo users ({created} new)"


register_seeder("users", seed_users, order=0)
