"""Template context for every page: the navigation a person may use, their roles, their unread
notifications (the navbar's bell), and demo mode.

The backbone may not import the apps above it, so menu entries name their pages by URL name; an entry
whose page does not exist yet (its app not wired) is skipped. Values are computed lazily and once per
request, so pages that do not show the navbar (the admin) pay nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from .models import Notification
from .roles import Role, roles_of


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    icon: str
    active: bool
    secondary: bool = False  # shown in the user menu, not the main bar
    group: str = ""  # shown in the main bar's dropdown of that name (when the person has two or more of it)


@dataclass(frozen=True)
class NavGroup:
    label: str
    icon: str
    items: list[NavItem]

    @property
    def active(self) -> bool:
        return any(item.active for item in self.items)


# (label, URL name, Bootstrap icon, what it needs): a permission codename, "authenticated" or "staff".
NAVIGATION = [
    ("Home", "home", "house", "authenticated"),
    ("Customers", "customers:customer-list", "people", "customers.view_customer"),
    ("Deals", "customers:deal-list", "briefcase", "customers.view_deal"),
    ("Pipeline", "customers:pipeline", "funnel", "customers.view_deal"),
    ("Projects", "projects:project-list", "kanban", "projects.view_project"),
    ("Timesheet", "projects:timesheet", "calendar-week", "projects.add_timeentry"),
    ("Expenses", "projects:expense-list", "receipt", "projects.view_expense"),
    ("Approvals", "projects:approval-queue", "check2-square", "projects.approve_timeentry"),
    ("Import time", "projects:time-import", "upload", "projects.add_timeentry"),
    ("Invoices", "billing:invoice-list", "receipt-cutoff", "billing.view_invoice"),
    ("Invoice runs", "billing:run-list", "play-circle", "billing.view_invoicerun"),
    ("Outbox", "outbox", "envelope-paper", "backbone.view_outboundmessage"),
    ("Catalog", "customers:product-list", "box-seam", "customers.view_product"),
    ("Legal entities", "customers:legal-entity-list", "building", "customers.view_legalentity"),
    ("Tax", "tax:rate-table", "percent", "tax.view_taxrate"),
    ("Tax preview", "tax:preview", "calculator", "tax.preview_tax"),
    ("History", "history", "clock-history", "backbone.view_auditentry"),
    ("Locked periods", "projects:period-list", "lock", "projects.view_lockedperiod"),
    ("API docs", "api-docs", "braces", "authenticated"),
    ("Admin", "admin:index", "gear", "staff"),
]


# Tools rather than work areas: they live in the user menu, so the main bar stays on one line.
SECONDARY = frozenset({"api-docs", "admin:index", "projects:period-list"})

# Related work areas share one dropdown of the main bar: (group label, its icon, the URL names in it).
GROUPS = [
    (
        "Time",
        "stopwatch",
        ("projects:timesheet", "projects:expense-list", "projects:approval-queue", "projects:time-import"),
    ),
    ("Billing", "cash-coin", ("billing:invoice-list", "billing:run-list", "outbox")),
    (
        "Reference",
        "journal-bookmark",
        ("customers:product-list", "customers:legal-entity-list", "tax:rate-table", "tax:preview"),
    ),
]
_GROUP_OF = {name: (label, icon) for label, icon, names in GROUPS for name in names}


def _allowed(user, need: str) -> bool:
    if need == "authenticated":
        return True
    if need == "staff":
        return user.is_staff
    return user.has_perm(need)


def nav_items(request) -> list[NavItem]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    entries = []
    for label, url_name, icon, need in NAVIGATION:
        if not _allowed(user, need):
            continue
        try:
            entries.append((label, reverse(url_name), icon, url_name in SECONDARY, _GROUP_OF.get(url_name, ("",))[0]))
        except NoReverseMatch:
            continue
    # One active entry: the longest URL the path starts with (/customers/deals/… is Deals, not Customers).
    matches = [e[1] for e in entries if (request.path == e[1] if e[1] == "/" else request.path.startswith(e[1]))]
    current = max(matches, key=len, default=None)
    return [
        NavItem(label=label, url=url, icon=icon, active=url == current, secondary=secondary, group=group)
        for label, url, icon, secondary, group in entries
    ]


def nav_main(items: list[NavItem]) -> list[NavItem | NavGroup]:
    """The main bar: entries in order, those of a group gathered into one dropdown where the group's first
    entry stands; a group the person has only one entry of shows that entry by itself."""
    icons = {label: icon for label, icon, _names in GROUPS}
    main = [item for item in items if not item.secondary]
    sizes: dict[str, int] = {}
    for item in main:
        sizes[item.group] = sizes.get(item.group, 0) + 1
    bar: list[NavItem | NavGroup] = []
    placed: dict[str, NavGroup] = {}
    for item in main:
        if not item.group or sizes[item.group] < 2:
            bar.append(item)
        elif item.group in placed:
            placed[item.group].items.append(item)
        else:
            placed[item.group] = NavGroup(label=item.group, icon=icons[item.group], items=[item])
            bar.append(placed[item.group])
    return bar


def role_labels(user) -> list[str]:
    held = roles_of(user)
    return [role.label for role in Role if role.value in held]


def unread_notification_count(user) -> int:
    if user is None or not user.is_authenticated:
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    return {
        "nav_items": cache(lambda: nav_items(request)),
        "nav_main": cache(lambda: nav_main(nav_items(request))),
        "user_roles": cache(lambda: role_labels(user) if user is not None else []),
        "unread_notifications": cache(lambda: unread_notification_count(user)),
        "demo_mode": bool(getattr(settings, "DEMO_MODE", False)),
    }
