"""The home page: one panel per role a person holds, showing what exists so far.

Each panel costs a fixed handful of queries, whatever the number of rows; nothing here invents data
for features that have not shipped yet (projects, time, invoices).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.db.models import Count, Exists, OuterRef, Q
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from backbone.roles import Role, roles_of
from backbone.selectors import audit_chain_length, audit_entries_recent
from customers.models import Contact, Customer, TaxRegistration
from customers.selectors import (
    customer_can_create,
    customers_visible_to,
    legal_entities_visible_to,
    products_visible_to,
)

PANEL_LIST_SIZE = 5


def _url(name: str, **kwargs) -> str | None:
    """The URL of a page that may not be wired yet (its app ships later): ``None`` when it is missing."""
    try:
        return reverse(name, kwargs=kwargs or None)
    except NoReverseMatch:
        return None


def _status_counts(customers) -> list[dict]:
    """Customers per lifecycle status, every status listed (zero included), in lifecycle order."""
    counts = dict(customers.order_by().values_list("status").annotate(n=Count("pk")))
    return [
        {"status": value, "label": label, "count": counts.get(value, 0)} for value, label in Customer.Status.choices
    ]


def _with_links(customers) -> list[Customer]:
    rows = list(customers)
    for customer in rows:
        customer.page_url = _url("customers:customer-detail", public_id=customer.public_id)
    return rows


def _sales_panel(user) -> dict:
    mine = Customer.objects.filter(owner=user)
    return {
        "status_counts": _status_counts(mine),
        "total": mine.count(),
        "recent": _with_links(mine.order_by("-created_at")[:PANEL_LIST_SIZE]),
        "create_url": _url("customers:customer-create") if customer_can_create(user=user) else None,
        "list_url": _url("customers:customer-list"),
    }


def _finance_panel(user) -> dict:
    """Customers whose invoices could not go out correctly yet: no billing contact, or a business customer
    without a VAT registration. Archived customers are left out."""
    billing_contact = Contact.objects.filter(customer=OuterRef("pk"), role=Contact.Role.BILLING, is_active=True)
    vat = TaxRegistration.objects.filter(customer=OuterRef("pk"), kind=TaxRegistration.Kind.VAT)
    incomplete = (
        customers_visible_to(user)
        .exclude(status=Customer.Status.ARCHIVED)
        .annotate(has_billing_contact=Exists(billing_contact), has_vat=Exists(vat))
        .filter(Q(has_billing_contact=False) | Q(has_vat=False, kind=Customer.Kind.BUSINESS))
    )
    entities = legal_entities_visible_to(user)
    return {
        "incomplete_count": incomplete.count(),
        "incomplete": _with_links(incomplete.order_by("display_name")[:PANEL_LIST_SIZE]),
        "legal_entities": list(entities.filter(is_active=True).order_by("short_name")[:PANEL_LIST_SIZE]),
        "legal_entity_count": entities.filter(is_active=True).count(),
        "product_count": products_visible_to(user).filter(is_active=True).count(),
        "customer_list_url": _url("customers:customer-list"),
        "legal_entity_list_url": _url("customers:legal-entity-list"),
        "product_list_url": _url("customers:product-list"),
    }


def _executive_panel(user) -> dict:
    status_counts = _status_counts(customers_visible_to(user))
    return {
        "status_counts": status_counts,
        "customer_total": sum(row["count"] for row in status_counts),
        "product_count": products_visible_to(user).filter(is_active=True).count(),
        "legal_entity_count": legal_entities_visible_to(user).filter(is_active=True).count(),
        "chart": {
            "labels": [row["label"] for row in status_counts],
            "counts": [row["count"] for row in status_counts],
        },
    }


def _auditor_panel(user) -> dict:
    return {"recent": audit_entries_recent(limit=10), "chain_length": audit_chain_length()}


def _admin_panel(user) -> dict:
    per_role = dict(
        Group.objects.filter(name__in=Role.values)
        .annotate(n=Count("user", filter=Q(user__is_active=True)))
        .values_list("name", "n")
    )
    return {
        "roles": [{"label": role.label, "count": per_role.get(role.value, 0)} for role in Role],
        "user_count": get_user_model().objects.filter(is_active=True).count(),
        "admin_url": _url("admin:index") if user.is_staff else None,
        "users_url": _url("admin:auth_user_changelist") if user.is_staff else None,
    }


@login_required
def home(request):
    user = request.user
    roles = roles_of(user)
    context = {"roles": roles}
    if Role.SALES in roles:
        context["sales"] = _sales_panel(user)
    if Role.FINANCE in roles:
        context["finance"] = _finance_panel(user)
    if Role.EXECUTIVE in roles:
        context["executive"] = _executive_panel(user)
    if Role.AUDITOR in roles and user.has_perm("backbone.view_auditentry"):
        context["auditor"] = _auditor_panel(user)
    if roles & {Role.PROJECT_MANAGER, Role.CONSULTANT}:
        context["delivery"] = {"is_pm": Role.PROJECT_MANAGER in roles}
    if Role.ADMIN in roles:
        context["admin_panel"] = _admin_panel(user)
    # Panels share a row on wide screens only when there is more than one of them.
    context["pair_panels"] = sum(key in context for key in ("sales", "finance", "delivery", "admin_panel")) > 1
    context["history_url"] = _url("history") if user.has_perm("backbone.view_auditentry") else None
    return render(request, "home.html", context)
