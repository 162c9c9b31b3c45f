"""The roles of ../shared/ROLES.md as Django groups. Group names are these slugs."""

from __future__ import annotations

from django.db import models

from .errors import NotPermitted


class Role(models.TextChoices):
    SALES = "sales", "Sales"
    PROJECT_MANAGER = "project_manager", "Project manager"
    CONSULTANT = "consultant", "Consultant"
    FINANCE = "finance", "Finance"
    EXECUTIVE = "executive", "Executive"
    AUDITOR = "auditor", "Auditor"
    ADMIN = "admin", "Admin"


def roles_of(user) -> frozenset[str]:
    """The role slugs a user holds (cached on the user object for the request)."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_throughline_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached = cached | {Role.ADMIN.value}
        user._throughline_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(roles_of(user) & set(roles))


def is_read_only(user) -> bool:
    """Auditors change nothing, anywhere, even when they also hold another role."""
    return has_role(user, Role.AUDITOR) and not user.is_superuser


def require_writer(user) -> None:
    """Refuse a change by someone signed out or read-only (auditors), before any other check."""
    if not getattr(user, "is_authenticated", False):
        raise NotPermitted("Sign in to make changes.")
    if is_read_only(user):
        raise NotPermitted("Auditors can view everything but change nothing.")


ALL_VIEW = "*view"  # every view_* permission of the app, historical models included
ALL = "*all"  # every permission of the app


def grant_role_permissions(apps, app_label: str, matrix: dict[str, list[str]]) -> None:
    """Data-migration helper: create the role groups and give each the listed permissions of one app.

    Re-runnable: it adds what is missing and removes this app's permissions a role no longer lists, so the
    matrix in the newest migration is the truth. ``apps`` is the migration state's registry.
    """
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config(app_label)
    app_config.models_module = getattr(app_config, "models_module", None) or True
    create_permissions(app_config, apps=apps, verbosity=0)

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    available = {p.codename: p for p in Permission.objects.filter(content_type__app_label=app_label)}
    for role in Role.values:
        group, _ = Group.objects.get_or_create(name=role)
        wanted: set[str] = set()
        for item in matrix.get(role, []):
            if item == ALL:
                wanted |= set(available)
            elif item == ALL_VIEW:
                wanted |= {code for code in available if code.startswith("view_")}
            elif item in available:
                wanted.add(item)
            else:
                raise LookupError(f"Permission {app_label}.{item} does not exist (role {role}).")
        current = set(group.permissions.filter(content_type__app_label=app_label).values_list("codename", flat=True))
        group.permissions.remove(*[available[c] for c in current - wanted])
        group.permissions.add(*[available[c] for c in wanted - current])
