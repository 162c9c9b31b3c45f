"""Demo data of the projects app: four won deals, one per billing model, each handed over to a project by the
real handoff (``deal_win``), and two change orders: one approved (a rate raised from a date: contract
version 2) and one waiting for the project manager.

The deals and quotes are made through the customers services (``deal_create``, ``quote_create``,
``quote_send``) by the demo sales rep, on the demo customers of the customers seeder. Dates follow today, so
the projects are always under way. Idempotent: each deal is found again by its demo external ID, each change
order by its title; nothing is created twice. No actual time or expenses are made up: budget alerts come
with time entry.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from backbone.history import set_reason
from backbone.models import UserProfile
from backbone.services import external_id_link, external_id_lookup
from customers.models import Customer, Deal
from customers.services import deal_create, quote_create, quote_send

from .models import ChangeOrder, Project
from .services import change_order_approve, change_order_create, change_order_submit, deal_win

DEMO_SYSTEM = "demo"
# Change-order limits of the demo people (UserProfile.change_order_limit_amount).
CHANGE_ORDER_LIMITS = {"pm": Decimal("5000"), "finance": Decimal("20000"), "executive": Decimal("1000000")}


def _month_start(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _month_end(day: dt.date, months: int) -> dt.date:
    return _month_start(day, months + 1) - dt.timedelta(days=1)


def _tm(description: str, category: str, hours: str, rate: str, discount: str = "0") -> dict:
    return {
        "description": description,
        "billing_model": "tm",
        "labour_category": category,
        "quantity": Decimal(hours),
        "unit": "HUR",
        "unit_price": Decimal(rate),
        "discount_percent": Decimal(discount),
    }


def _specs(today: dt.date) -> list[dict]:
    start = _month_start(today, -2)
    return [
        {
            "key": "PRJ-DEMO-TM",
            "customer": "C02",
            "title": "Brewery data platform",
            "start": start,
            "end": _month_end(today, 5),
            "quote": {"terms": "Time and materials, invoiced monthly in arrears.", "po_number": "BI-2291"},
            "lines": [
                _tm("Solution architecture", "Senior consultant", "160", "165"),
                _tm("Data engineering", "Data engineer", "480", "125", "5"),
                _tm("Dashboards", "Developer", "240", "110"),
            ],
            "milestones": [],
        },
        {
            "key": "PRJ-DEMO-FIXED",
            "customer": "C05",
            "title": "Atelier Lumière website relaunch",
            "start": start,
            "end": _month_end(today, 4),
            "quote": {"terms": "Fixed fee, invoiced on acceptance of each milestone."},
            "lines": [
                {
                    "description": "Design: concept, design system, key screens",
                    "billing_model": "fixed_fee",
                    "labour_category": "Designer",
                    "quantity": Decimal("1"),
                    "unit": "LS",
                    "unit_price": Decimal("18000"),
                },
                {
                    "description": "Build: front end, CMS, launch",
                    "billing_model": "fixed_fee",
                    "labour_category": "",
                    "quantity": Decimal("1"),
                    "unit": "LS",
                    "unit_price": Decimal("24000"),
                },
            ],
            "milestones": [
                ("Design signed off", _month_end(today, -1), "18000", "Design system and key screens approved."),
                ("Beta live", _month_end(today, 2), "12000", "Beta site on staging, content migrated."),
                ("Launch", _month_end(today, 4) - dt.timedelta(days=7), "12000", "Site live, handover done."),
            ],
        },
        {
            "key": "PRJ-DEMO-RETAINER",
            "customer": "C12",
            "title": "Liffey Analytics support retainer",
            "start": _month_start(today, -1),
            "end": _month_end(today, 10),
            "quote": {"terms": "Monthly retainer, up to 20 hours of support.", "retainer_amount": Decimal("3200")},
            "lines": [
                {
                    "description": "Support and maintenance retainer",
                    "billing_model": "retainer",
                    "labour_category": "",
                    "quantity": Decimal("12"),
                    "unit": "MON",
                    "unit_price": Decimal("3200"),
                }
            ],
            "milestones": [],
        },
        {
            "key": "PRJ-DEMO-EXPENSES",
            "customer": "C18",
            "title": "Golden Gate Robotics field research",
            "start": start,
            "end": _month_end(today, 3),
            "quote": {
                "terms": "Research at the rate card; travel rebilled at cost plus 12 %.",
                "expense_markup_percent": Decimal("12"),
            },
            "lines": [
                _tm("User research", "Researcher", "200", "140"),
                {
                    "description": "Travel and lodging for site visits",
                    "billing_model": "expenses",
                    "labour_category": "",
                    "quantity": Decimal("1"),
                    "unit": "LS",
                    "unit_price": Decimal("6000"),
                },
            ],
            "milestones": [],
        },
    ]


def _user(username: str):
    return get_user_model().objects.filter(username=username).first()


def _set_limits() -> int:
    changed = 0
    for username, limit in CHANGE_ORDER_LIMITS.items():
        user = _user(username)
        if user is None:
            continue
        profile, _ = UserProfile.objects.get_or_create(user=user)
        if profile.change_order_limit_amount != limit:
            profile.change_order_limit_amount = limit
            set_reason(profile, "Demo data: change-order limit").save()
            changed += 1
    return changed


def _won_project(spec: dict, *, sales, pm) -> tuple[Project | None, bool]:
    """The project of ``spec``'s demo deal, won now if it was not before."""
    deal = external_id_lookup(model=Deal, system=DEMO_SYSTEM, external_id=spec["key"])
    if deal is not None:
        return Project.objects.filter(deal=deal).first(), False
    customer = external_id_lookup(model=Customer, system=DEMO_SYSTEM, external_id=spec["customer"])
    if customer is None:
        return None, False
    with transaction.atomic():
        deal = deal_create(
            user=sales,
            data={"title": spec["title"], "customer": customer, "expected_close_date": spec["start"]},
            reason="Demo data",
        )
        external_id_link(obj=deal, system=DEMO_SYSTEM, external_id=spec["key"], user=sales)
        quote = quote_create(
            user=sales,
            deal=deal,
            data={"planned_start": spec["start"], "planned_end": spec["end"], **spec["quote"]},
            lines=spec["lines"],
            milestones=[
                {"name": name, "planned_date": day, "amount": Decimal(amount), "acceptance_criteria": criteria}
                for name, day, amount, criteria in spec["milestones"]
            ],
            reason="Demo data",
        )
        quote_send(user=sales, quote=quote, reason="Demo data")
        project, _ = deal_win(actor=sales, deal=deal, project_manager=pm)
    return project, True


def _rate_raise(project: Project, *, pm, finance, today: dt.date) -> int:
    """Approved: the senior consultant's rate rises by 10 % from the first of next month (contract v2)."""
    title = "Senior consultant rate from next month"
    if project.change_orders.filter(title=title).exists():
        return 0
    day = _month_start(today, 1)
    with transaction.atomic():
        co = change_order_create(
            actor=pm,
            project=project,
            title=title,
            reason="Annual rate review agreed with the customer's procurement team.",
            effective_from=day,
            changes=[
                {"op": "rate.set", "labour_category": "Senior consultant", "rate": "181.50", "effective_from": day}
            ],
            customer_accepted_by="Procurement, Brauhaus Isar",
            customer_accepted_on=today,
        )
        co = change_order_submit(actor=pm, change_order=co)
        change_order_approve(actor=finance, change_order=co)
    return 1


def _scope_extension(project: Project, *, sales, today: dt.date) -> int:
    """Submitted, waiting for the project manager: an accessibility audit added to the fixed fee, paid with the
    launch milestone, and the beta two weeks later."""
    title = "Accessibility audit before launch"
    if project.change_orders.filter(title=title).exists():
        return 0
    beta = project.milestones.get(key="milestone:2")
    launch = project.milestones.get(key="milestone:3")
    with transaction.atomic():
        co = change_order_create(
            actor=sales,
            project=project,
            title=title,
            reason="The customer asked for a WCAG 2.2 AA audit before the site goes live.",
            effective_from=today,
            changes=[
                {
                    "op": "budget_line.add",
                    "kind": "non_labour",
                    "description": "Accessibility audit (WCAG 2.2 AA)",
                    "amount": "4000.00",
                    "fixed_fee": True,
                },
                {"op": "milestone.change", "key": launch.key, "amount": str(launch.amount + Decimal("4000"))},
                {"op": "milestone.move", "key": beta.key, "planned_date": beta.planned_date + dt.timedelta(days=14)},
            ],
            customer_accepted_by="Camille Roussel, Directrice digitale",
            customer_accepted_on=today,
        )
        change_order_submit(actor=sales, change_order=co)
    return 1


def seed_projects(*, password: str = "", **_) -> str:
    sales, pm, finance = _user("sales"), _user("pm"), _user("finance")
    if not (sales and pm and finance):
        raise RuntimeError("Run the users seeder first: the demo projects are won by the demo sales rep.")
    limits = _set_limits()
    today = timezone.localdate()
    projects, new = {}, 0
    for spec in _specs(today):
        project, created = _won_project(spec, sales=sales, pm=pm)
        if project is not None:
            projects[spec["key"]] = project
            new += created
    orders = 0
    if "PRJ-DEMO-TM" in projects:
        orders += _rate_raise(projects["PRJ-DEMO-TM"], pm=pm, finance=finance, today=today)
    if "PRJ-DEMO-FIXED" in projects:
        orders += _scope_extension(projects["PRJ-DEMO-FIXED"], sales=sales, today=today)
    pending = ChangeOrder.objects.filter(status=ChangeOrder.Status.SUBMITTED).count()
    return (
        f"{len(projects)} demo projects ({new} new), {orders} new change orders ({pending} waiting for approval), "
        f"{limits} change-order limits set"
    )
