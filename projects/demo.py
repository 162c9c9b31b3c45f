"""Demo data of the projects app: four won deals, one per billing model, each handed over to a project by the
real handoff (``deal_win``); two change orders (one approved, a rate raised from a date: contract version 2,
and one waiting for the project manager); and three months of time and expenses up to today.

The deals and quotes are made through the customers services (``deal_create``, ``quote_create``,
``quote_send``) by the demo sales rep, on the demo customers of the customers seeder. Dates follow today, so
the projects are always under way.

Time and expenses go through the services of ``projects.timesheets`` week by week, as a team would: the
consultants and the project manager are put on the teams (``project_member_add``), log their days (6 to 9
hours in quarter steps, weekdays but for one Saturday), submit every past week, and the project manager
approves or rejects each week but the last, which waits in her approval queue; this week stays draft. Some
entries are rejected with a reason: three are fixed (split, recategorised, a receipt attached) and approved,
one is split and waits in the queue again, two wait for their person.

Nothing is billed and no month is locked here: what the project manager approved stays approved. The
billing seeder (``billing.demo``, which runs after this one) bills it with real invoice runs and invoices,
corrects one billed entry with an adjustment for the client, and has finance lock the month before last once
nothing in it is open.

The research project is pushed near its budget (90 % and more), so its budget alerts fire on approval; the
fixed-fee project has its design milestone accepted, with a signed PDF, and the other two pending. Receipts
are small PDFs and PNGs drawn with Pillow (fast: no HTML rendering). Fixed-fee and retainer projects have no
rate card, so the time logged on them is non-billable (and burns none of their budget).

Every row is written by a service, none by hand, but for the users of the two extra consultants, made as
``backbone.demo.seed_users`` makes the demo users (there is no user service). Entries carry their work
dates; the times of submission and decision are the moment of seeding (no service backdates them).
The project manager approves her own time too: the services allow it.

Idempotent and deterministic: each deal is found again by its demo external ID, each change order by its
title, each team member by project and person; the time and expenses are made once, when the demo projects
have none (a fixed random seed, so the same day gives the same data); a milestone is accepted only while
planned. Nothing is created twice.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFont

from backbone.history import set_reason
from backbone.models import UserProfile
from backbone.services import external_id_link, external_id_lookup
from customers.models import Customer, Deal
from customers.services import deal_create, quote_create, quote_send

from .members import project_member_add
from .milestones import milestone_accept
from .models import (
    BudgetAlert,
    ChangeOrder,
    EntryStatus,
    Expense,
    LockedPeriod,
    Milestone,
    Project,
    ProjectMember,
    TimeEntry,
)
from .services import change_order_approve, change_order_create, change_order_submit, deal_win, project_set_status
from .timesheets import (
    QUARTER,
    expense_create,
    expense_update,
    time_entries_approve,
    time_entries_reject,
    time_entry_create,
    time_entry_update,
    timesheet_submit,
)

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


# --- the team, their time and their expenses --------------------------------------------------------------

# Two more consultants, so that the timesheets are a team's. backbone.demo keeps one login per role; these
# sign in with the same demo password.
DEMO_CONSULTANTS = [("consultant2", "Mei", "Tanaka"), ("consultant3", "Noah", "Okafor")]

# (project, person, usual labour category). Only categories on the project's rate card: the fixed-fee and
# retainer projects have none, so their members have no default and log non-billable time.
TEAMS = [
    ("PRJ-DEMO-TM", "consultant", "Senior consultant"),
    ("PRJ-DEMO-TM", "consultant2", "Data engineer"),
    ("PRJ-DEMO-TM", "pm", "Senior consultant"),
    ("PRJ-DEMO-FIXED", "consultant3", ""),
    ("PRJ-DEMO-FIXED", "pm", ""),
    ("PRJ-DEMO-RETAINER", "consultant2", ""),
    ("PRJ-DEMO-RETAINER", "pm", ""),
    ("PRJ-DEMO-EXPENSES", "consultant", "Researcher"),
    ("PRJ-DEMO-EXPENSES", "pm", ""),
]
LOGGERS = ("consultant", "consultant2", "consultant3", "pm")

# Kinds of work: (project, labour category, billable, client-facing descriptions).
WORK: dict[str, tuple[str, str, bool, tuple[str, ...]]] = {
    "architecture": (
        "PRJ-DEMO-TM",
        "Senior consultant",
        True,
        (
            "Solution architecture: target data platform (ingestion, lakehouse, serving layer)",
            "Architecture review of the SAP brewing-order extract with the IT lead",
            "Design of the batch traceability model, from malt lot to keg",
            "Data governance workshop: ownership of recipe and batch master data",
            "Security model for the data platform: Entra ID groups and row-level access",
            "Review of the data engineering pull requests against the coding standards",
            "Cloud cost estimate for the platform and reserved-capacity options",
            "Sprint planning and backlog refinement with the product owner",
            "Roadmap for phase 2: demand forecasting and delivery route planning",
            "Architecture decision record: streaming versus nightly loads for tank sensors",
        ),
    ),
    "steering": (
        "PRJ-DEMO-TM",
        "Senior consultant",
        True,
        (
            "Steering committee with the Brauhaus Isar management: progress, risks, next sprint",
            "KPI definitions workshop with finance and sales (gross volume, net revenue per hectolitre)",
            "Stakeholder interviews on reporting needs: logistics and key account management",
            "Preparation of the monthly steering committee: status report and decisions needed",
            "Requirements review of the distributor sales reports with the sales director",
        ),
    ),
    "data": (
        "PRJ-DEMO-TM",
        "Data engineer",
        True,
        (
            "Ingestion pipeline for SAP brewing orders (daily incremental load)",
            "Data quality checks on the fermentation tank sensor readings",
            "dbt models for batch yield and brewhouse losses",
            "Load of the historical distributor sales exports (2019 to 2025)",
            "Airflow DAGs for the nightly loads, with alerting to the ops channel",
            "Performance tuning of the keg movement fact table",
            "Change data capture from the warehouse management system",
            "Tests and documentation of the sales data marts",
            "Reconciliation of brewhouse volumes with the finance figures",
            "Deployment pipeline and dev/test/prod environments for the data platform",
            "Mapping of distributor customer codes to the SAP customer master",
        ),
    ),
    "dashboards": (
        "PRJ-DEMO-TM",
        "Developer",
        True,
        (
            "Sales dashboard: volumes by region, channel and top customers",
            "Brewhouse KPI dashboard: yield, losses and tank utilisation",
            "Drill-through from monthly sales to distributor invoices",
            "Row-level security for the regional sales managers in the dashboards",
            "Dashboard changes after the feedback round with the sales managers",
        ),
    ),
    "research": (
        "PRJ-DEMO-EXPENSES",
        "Researcher",
        True,
        (
            "Contextual interviews with warehouse operators on robot fleet supervision",
            "Interview guide and screener for the fleet maintenance technicians",
            "Recruiting and scheduling of interview participants across both sites",
            "Synthesis of the interview notes: affinity map of operator pain points",
            "Journey map of a robot incident, from alert to resolution",
            "Analysis of six months of support tickets: top incident types and their cost",
            "Usability test of the fleet dashboard prototype (five sessions)",
            "Opportunity areas and how-might-we statements from the research so far",
            "Interviews with the fleet maintenance technicians (remote)",
            "Research repository: tagging and highlight reels for the product team",
        ),
    ),
    "research_pm": (
        "PRJ-DEMO-EXPENSES",
        "Project manager",
        False,
        (
            "Weekly check-in with the Golden Gate Robotics product lead",
            "Research plan update and site-visit logistics",
            "Budget review of the research phase with the client",
        ),
    ),
    "design": (
        "PRJ-DEMO-FIXED",
        "Designer",
        False,
        (
            "Moodboards and visual direction for the relaunch",
            "Design system: typography, colour and spacing tokens",
            "Key screens: home page and collection pages, desktop and mobile",
            "Product detail page with the atelier's own photography",
            "Navigation and information architecture workshop with the atelier team",
            "Accessible colour palette and focus states (WCAG 2.2 AA)",
            "Clickable Figma prototype for the stakeholder walkthrough",
            "Design review with Camille Roussel; revisions to the collection pages",
        ),
    ),
    "build": (
        "PRJ-DEMO-FIXED",
        "Front-end developer",
        False,
        (
            "Front-end component library from the design system",
            "CMS content model for collections and journal articles",
            "Migration of the journal articles from the old site",
            "Responsive images and a performance budget for the collection pages",
            "Appointment booking flow for the Paris atelier",
            "Staging environment with preview deployments for the atelier team",
        ),
    ),
    "website_pm": (
        "PRJ-DEMO-FIXED",
        "Project manager",
        False,
        (
            "Weekly status call with Atelier Lumière: plan, risks and open decisions",
            "Planning of the design sign-off and the content migration",
            "Content inventory with the atelier's marketing team",
        ),
    ),
    "support": (
        "PRJ-DEMO-RETAINER",
        "Support engineer",
        False,
        (
            "Monthly health check of the analytics platform and patching",
            "Ticket LIF-214: failed nightly export to the reporting share",
            "Ticket LIF-221: Power BI gateway refresh failures",
            "Support call with Liffey's analysts on slow month-end queries",
            "Upgrade of the Python runtime of the ETL jobs",
            "Ticket LIF-230: new data source for the Cork office",
        ),
    ),
    "service_review": (
        "PRJ-DEMO-RETAINER",
        "Service manager",
        False,
        ("Monthly service review with Liffey Analytics: tickets, hours used, upcoming changes",),
    ),
}

# Day totals of a working day, in hours (quarter steps; most days are near 8).
DAY_TOTALS = ("6.5", "7", "7.25", "7.5", "7.5", "7.75", "8", "8", "8", "8.25", "8.5", "8.75", "9")
# Days the researcher spends on the research project over the weeks already approved: enough to take it
# past 90 % of its budget (with the trips' expenses), so that its budget alerts fire.
RESEARCH_DAYS = 26
RANDOM_SEED = "throughline-demo-timesheets"

# The entries the project manager sends back: the week (by age: 0 this week, 1 last week …; None: the
# week the entry is in), whose it is and what she says. All but STAYS_REJECTED are corrected and resubmitted
# by their person, and approved again but WAITS_AGAIN.
REJECTIONS = {
    "workshop": (
        5,
        "consultant",
        "Please split the workshop prep from the workshop itself: Brauhaus Isar wants to see preparation "
        "separately on the invoice.",
    ),
    "category": (
        4,
        "consultant2",
        "Dashboard work is billed as Developer, not Data engineer: please change the labour category.",
    ),
    "receipt": (
        None,
        "consultant",
        "The hotel invoice is missing: please attach it, the client reimburses against receipts.",
    ),
    "vague": (
        2,
        "consultant3",
        "Please say what you worked on: the atelier reads these descriptions in the monthly report.",
    ),
    "own_bug": (
        2,
        "consultant2",
        "This rework fixes our own bug in the loss calculation: please log it as non-billable.",
    ),
    "readout": (
        2,
        "consultant",
        "Please split the preparation from the readout itself, as we agreed for the workshops.",
    ),
}
STAYS_REJECTED = {"vague", "own_bug"}
WAITS_AGAIN = {"readout"}  # fixed and resubmitted, back in the approval queue


@dataclass(frozen=True)
class _Item:
    """One time entry of a person's day."""

    work: str
    hours: Decimal
    description: str = ""
    labour_category: str = ""
    tag: str = ""


@dataclass(frozen=True)
class _Spend:
    """One expense."""

    who: str
    project: str
    category: str
    amount: Decimal
    description: str
    receipt: tuple[str, str, list[tuple[str, Decimal]]] | None = None  # (file name, merchant, lines)
    billable: bool = True
    tag: str = ""


def _dec(value: str | int) -> Decimal:
    return Decimal(str(value))


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _long_date(day: dt.date) -> str:
    return f"{day.day} {day:%B %Y}"


def _ensure_consultants(password: str) -> int:
    """The extra demo consultants, created as ``backbone.demo.seed_users`` creates the demo users."""
    User = get_user_model()
    created = 0
    for username, first, last in DEMO_CONSULTANTS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(
                username=username, first_name=first, last_name=last, email=f"{username}@demo.throughline.invalid"
            )
            if password:
                user.set_password(password)
            else:
                user.set_unusable_password()
            set_reason(user, "Demo user").save()
            created += 1
        user.groups.add(Group.objects.get(name="consultant"))
        UserProfile.objects.get_or_create(user=user)
    return created


def _ensure_teams(projects: dict[str, Project], *, pm) -> int:
    added = 0
    for key, username, category in TEAMS:
        project, user = projects.get(key), _user(username)
        if project is None or user is None or ProjectMember.objects.filter(project=project, user=user).exists():
            continue
        project_member_add(actor=pm, project=project, user=user, labour_category=category)
        added += 1
    return added


def _activate(projects: dict[str, Project], *, pm, today: dt.date) -> int:
    """Projects whose work has started are active (the handoff leaves them planned)."""
    changed = 0
    for project in projects.values():
        if project.status == Project.Status.PLANNED and project.planned_start <= today:
            project_set_status(actor=pm, project=project, status=Project.Status.ACTIVE, reason="Work started")
            changed += 1
    return changed


# --- receipts and signed documents: small, valid files drawn with Pillow --------------------------------------


def _paper(lines: list[str | tuple[str, str]], *, width: int = 420) -> Image.Image:
    """A white slip with one line of text per row; a (label, amount) row has the amount flush right."""
    font = ImageFont.load_default(size=15)
    image = Image.new("RGB", (width, 40 + 24 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        label, amount = (line, "") if isinstance(line, str) else line
        top = 20 + 24 * row
        draw.text((20, top), label, fill="black", font=font)
        if amount:
            draw.text((width - 20 - draw.textlength(amount, font=font), top), amount, fill="black", font=font)
    return image


def _upload(name: str, image: Image.Image) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    if name.endswith(".pdf"):
        image.save(buffer, "PDF", resolution=96)
        content_type = "application/pdf"
    else:
        image.save(buffer, "PNG", optimize=True)
        content_type = "image/png"
    return SimpleUploadedFile(name, buffer.getvalue(), content_type)


def _receipt(receipt: tuple[str, str, list[tuple[str, Decimal]]], day: dt.date, currency: str) -> SimpleUploadedFile:
    name, merchant, lines = receipt
    total = sum((amount for _, amount in lines), Decimal(0))
    text: list[str | tuple[str, str]] = [merchant, f"Date: {day.isoformat()}", ""]
    text += [(label, f"{amount:,.2f}") for label, amount in lines]
    text += ["", (f"TOTAL {currency}", f"{total:,.2f}"), "Paid by card **** 4821", "Thank you!"]
    return _upload(name, _paper(text))


# --- what each person does on a day ------------------------------------------------------------------------


class _Plan:
    """The deterministic plan of the demo team's three months: who works on what each day, the research
    trips, the expenses and the special cases the project manager rejects."""

    def __init__(self, *, projects: dict[str, Project], start: dt.date, today: dt.date) -> None:
        self.rng = random.Random(RANDOM_SEED)  # noqa: S311 - repeatable demo data, not secrets
        self.projects = projects
        self.start = start
        self.today = today
        self.this_monday = _monday(today)
        self.mondays = [
            _monday(start) + dt.timedelta(weeks=n) for n in range((self.this_monday - _monday(start)).days // 7 + 1)
        ]
        self._queues: dict[str, list[str]] = {}
        fixed = projects.get("PRJ-DEMO-FIXED")
        design = fixed.milestones.filter(key="milestone:1").first() if fixed else None
        self.design_end = design.planned_date if design else today
        retainer = projects.get("PRJ-DEMO-RETAINER")
        self.retainer_start = retainer.planned_start if retainer else None
        self.overrides: dict[tuple[str, dt.date], list[_Item]] = {}
        self.spending: dict[dt.date, list[_Spend]] = {}
        self._plan_research()
        self._plan_special_cases()

    def monday_of_age(self, age: int) -> dt.date:
        return self.this_monday - dt.timedelta(weeks=age)

    def age(self, monday: dt.date) -> int:
        return (self.this_monday - monday).days // 7

    def describe(self, work: str) -> str:
        queue = self._queues.get(work)
        if not queue:
            queue = list(WORK[work][3])
            self.rng.shuffle(queue)
            self._queues[work] = queue
        return queue.pop()

    def total(self) -> Decimal:
        return _dec(self.rng.choice(DAY_TOTALS))

    # -- research days and trips (the consultant, on the research project) --

    def _plan_research(self) -> None:
        """The researcher's days: three-day trips (Tuesday to Thursday), and RESEARCH_DAYS in all over the
        weeks that are approved (two weeks ago and older), the rest spread evenly over the free days; later
        weeks at the same pace."""
        oldest = self.age(self.mondays[0])
        self.trips = sorted({oldest - 1, (oldest + 3) // 2, 3}, reverse=True)  # ages, oldest first

        def free(monday: dt.date) -> list[int]:
            """Tuesday to Friday (Monday is the data platform's) from the start up to today, in the order they
            are taken: Thursday, Friday, Wednesday, Tuesday; two weeks ago the readout is on Wednesday."""
            order = (2, 3, 4, 1) if self.age(monday) == 2 else (3, 4, 2, 1)
            return [d for d in order if self.start <= monday + dt.timedelta(days=d) <= self.today]

        ordinary = [m for m in self.mondays if self.age(m) not in self.trips]
        capacity = sum(len(free(m)) for m in ordinary if self.age(m) >= 2)
        share = min(1.0, (RESEARCH_DAYS - 3 * len(self.trips)) / max(capacity, 1))
        self.research_days: set[dt.date] = set()
        seen = 0
        for monday in self.mondays:
            if self.age(monday) in self.trips:
                chosen = [1, 2, 3]
            else:
                days = free(monday)
                count = round((seen + len(days)) * share) - round(seen * share)
                seen += len(days)
                chosen = days[: max(count, 1 if self.age(monday) == 2 else 0)]
            self.research_days |= {monday + dt.timedelta(days=d) for d in chosen}
        for number, age in enumerate(self.trips, start=1):
            self._plan_trip(number, self.monday_of_age(age) + dt.timedelta(days=1))
        # Last week's remote interviews: the participants' thank-you gift cards wait for approval with the time.
        last_week = sorted(d for d in self.research_days if self.monday_of_age(1) <= d < self.this_monday)
        if last_week:
            cards = _dec("300.00")
            self._spend(
                last_week[0],
                _Spend(
                    "consultant",
                    "PRJ-DEMO-EXPENSES",
                    "other",
                    cards,
                    "Thank-you gift cards for six interview participants (USD 50 each)",
                    (
                        f"gift-cards-{last_week[0].isoformat()}.png",
                        "Tremendous, Inc.",
                        [("6 digital gift cards", cards)],
                    ),
                ),
            )
        months = sorted({d.replace(day=1) for d in self.research_days if self.start <= d <= self.today})
        for month in months:
            first = min(d for d in self.research_days if d.replace(day=1) == month and self.start <= d <= self.today)
            self._spend(
                first,
                _Spend(
                    "consultant",
                    "PRJ-DEMO-EXPENSES",
                    "software",
                    _dec("39.00"),
                    f"Dovetail research repository, one seat ({month:%B %Y})",
                    (
                        f"dovetail-invoice-{month:%Y-%m}.pdf",
                        "Dovetail Research Pty Ltd",
                        [("Pro plan, 1 seat", _dec("39.00"))],
                    ),
                ),
            )
        # The Monday train to the steering committee in Munich; the rates include travel, so non-billable.
        for month in sorted({m.replace(day=1) for m in self.mondays}):
            monday = next((m for m in self.mondays if m.replace(day=1) == month and m >= self.start), None)
            if monday is None or monday > self.today:
                continue
            fare = _dec(self.rng.choice(("119.80", "139.80", "151.90")))
            self._spend(
                monday,
                _Spend(
                    "consultant",
                    "PRJ-DEMO-TM",
                    "travel",
                    fare,
                    "Train Berlin–Munich and back for the steering committee at Brauhaus Isar",
                    (
                        f"db-ticket-{monday.isoformat()}.pdf",
                        "Deutsche Bahn – Online-Ticket",
                        [("ICE Berlin–München, return", fare)],
                    ),
                    billable=False,
                ),
            )
            seat = _dec("15.00")
            self._spend(
                monday,
                _Spend(
                    "consultant3",
                    "PRJ-DEMO-FIXED",
                    "software",
                    seat,
                    f"Figma Professional, one editor seat ({month:%B %Y})",
                    (f"figma-receipt-{month:%Y-%m}.pdf", "Figma, Inc.", [("Professional, 1 editor", seat)]),
                    billable=False,
                ),
            )

    def _plan_trip(self, number: int, tuesday: dt.date) -> None:
        """Three days at the client's sites in the Bay Area: flight and hotel on the first, dinner with the
        night shift and rides on the second, lunch on the third; and on the Saturday after the second trip
        the notes are written up."""
        rng = self.rng
        flight = _dec(rng.randrange(78000, 94000)) / 100
        night = _dec(rng.randrange(21500, 26500)) / 100
        dinner = _dec(rng.randrange(11000, 16500)) / 100
        rides = _dec(rng.randrange(4200, 7800)) / 100
        lunch = _dec(rng.randrange(3200, 5200)) / 100
        hotel = "Hotel Zephyr San Francisco"
        self._spend(
            tuesday,
            _Spend(
                "consultant",
                "PRJ-DEMO-EXPENSES",
                "travel",
                flight,
                f"Return flight to San Francisco for site visit {number} at Golden Gate Robotics",
                (
                    f"eticket-receipt-trip-{number}.pdf",
                    "United Airlines – e-ticket receipt",
                    [("Economy, return", flight)],
                ),
            ),
        )
        self._spend(
            tuesday,
            _Spend(
                "consultant",
                "PRJ-DEMO-EXPENSES",
                "accommodation",
                night * 2,
                f"{hotel}, 2 nights (site visit {number})",
                None
                if number == 1
                else (f"hotel-folio-trip-{number}.pdf", hotel, [("Room, night 1", night), ("Room, night 2", night)]),
                tag="receipt" if number == 1 else "",
            ),
        )
        wednesday, thursday = tuesday + dt.timedelta(days=1), tuesday + dt.timedelta(days=2)
        self._spend(
            wednesday,
            _Spend(
                "consultant",
                "PRJ-DEMO-EXPENSES",
                "meals",
                dinner,
                "Dinner with the night-shift supervisors after the interviews",
                (f"dinner-receipt-trip-{number}.png", "Nopalito, 9th Avenue", [("Dinner, 4 guests", dinner)]),
            ),
        )
        self._spend(
            wednesday,
            _Spend(
                "consultant",
                "PRJ-DEMO-EXPENSES",
                "travel",
                rides,
                "Rides between the hotel and the Richmond and Fremont sites",
                (f"rides-trip-{number}.png", "Lyft, Inc.", [("3 rides", rides)]),
            ),
        )
        self._spend(
            thursday,
            _Spend("consultant", "PRJ-DEMO-EXPENSES", "meals", lunch, "Working lunch with the fleet operations lead"),
        )
        if number == 2:
            saturday = tuesday + dt.timedelta(days=4)
            self.overrides[("consultant", saturday)] = [
                _Item("research", _dec("2.75"), "Write-up of the site-visit notes while they are fresh")
            ]

    def _spend(self, day: dt.date, spend: _Spend) -> None:
        if self.start <= day <= self.today:
            self.spending.setdefault(day, []).append(spend)

    # -- the entries the project manager sends back --

    def _plan_special_cases(self) -> None:
        def on(age: int, weekday: int) -> dt.date:
            return self.monday_of_age(age) + dt.timedelta(days=weekday)

        self.overrides[("consultant", on(5, 0))] = [
            _Item(
                "architecture",
                _dec("8"),
                "Data strategy workshop with the brewing and logistics leads, including preparation",
                tag="workshop",
            )
        ]
        friday = on(4, 4)
        support = bool(self.retainer_start and friday >= self.retainer_start)  # else the whole day is dashboards
        self.overrides[("consultant2", friday)] = [
            *([_Item("support", _dec("2.5"), "Ticket LIF-226: month-end extract stuck on a locked table")] * support),
            _Item(
                "dashboards",
                _dec("5.5") if support else _dec("8"),
                "Dashboard feedback session with the sales managers; changes to the regional drill-down",
                labour_category="Data engineer",
                tag="category",
            ),
        ]
        tuesday = on(2, 1)
        self.overrides[("consultant3", tuesday)] = [
            _Item(
                "design" if tuesday <= self.design_end else "build",
                _dec("7.5"),
                "Design work" if tuesday <= self.design_end else "Front-end work",
                tag="vague",
            )
        ]
        self.overrides[("consultant2", on(2, 3))] = [
            _Item("data", _dec("3"), "Rework of the batch loss calculation after the rounding bug", tag="own_bug"),
            _Item("data", _dec("4.75")),
        ]
        self.overrides[("consultant", on(2, 2))] = [
            _Item(
                "research",
                _dec("8.5"),
                "Readout of the interview findings to product and engineering, including preparation",
                tag="readout",
            )
        ]

    # -- a day --

    def day(self, who: str, day: dt.date) -> list[_Item]:
        if (who, day) in self.overrides:
            return self.overrides[(who, day)]
        weekday = day.weekday()
        if weekday >= 5:
            return []
        work: list[tuple[str, Decimal]] = []
        if who == "consultant":
            if weekday == 0:
                work = [("architecture", self.total())]
            elif day in self.research_days:
                work = [("research", self.total())]
        elif who == "consultant2":
            if weekday in (1, 2, 3):
                work = [("data", self.total())]
            elif weekday == 4:
                total = self.total()
                if self.retainer_start and day >= self.retainer_start:
                    support = _dec(self.rng.choice(("2", "2.5", "3", "3.5")))
                    work = [("support", support), ("dashboards", total - support)]
                else:
                    work = [("data", total)]
        elif who == "consultant3":
            if weekday < 4:
                work = [("design" if day <= self.design_end else "build", self.total())]
        elif who == "pm" and weekday in (0, 2):
            total = self.total()
            if weekday == 0:
                steering = (total * _dec("0.4") / QUARTER).to_integral_value() * QUARTER
                review = self.retainer_start and day >= self.retainer_start and day.day <= 7  # first Monday
                work = [("steering", steering), ("website_pm", _dec("2"))]
                work.append(("research_pm", total - steering - 2 - (1 if review else 0)))
                if review:
                    work.append(("service_review", _dec("1")))
            else:
                half = (total / 2 / QUARTER).to_integral_value() * QUARTER
                work = [("website_pm", half), ("research_pm", total - half)]
        items = []
        for kind, hours in work:
            if hours >= 6 and self.rng.random() < 0.35:
                part = _dec(self.rng.choice(("1.5", "2", "2.5", "3")))
                items += [_Item(kind, part), _Item(kind, hours - part)]
            elif hours > 0:
                items.append(_Item(kind, hours))
        return items


# --- the weeks ------------------------------------------------------------------------------------------------


def _fix(tag: str, entry, *, people) -> list:
    """The person's correction of a rejected entry; returns the entries it adds."""
    if tag == "workshop":
        time_entry_update(
            actor=people["consultant"],
            entry=entry,
            data={"hours": "5.5", "description": "Data strategy workshop with the brewing and logistics leads"},
        )
        extra = "Preparation of the data strategy workshop: agenda, current-state map, interview notes"
        return [_log(people["consultant"], entry.project, entry.date, _Item("architecture", _dec("2.5"), extra))]
    if tag == "readout":
        time_entry_update(
            actor=people["consultant"],
            entry=entry,
            data={"hours": "6", "description": "Readout of the interview findings to product and engineering"},
        )
        extra = "Preparation of the findings readout: storyline, clips and slides"
        return [_log(people["consultant"], entry.project, entry.date, _Item("research", _dec("2.5"), extra))]
    if tag == "category":
        time_entry_update(actor=people["consultant2"], entry=entry, data={"labour_category": "Developer"})
        return []
    if tag == "receipt":
        folio = ("hotel-folio-trip-1.pdf", "Hotel Zephyr San Francisco", [("Room, 2 nights", entry.amount)])
        upload = _receipt(folio, entry.date, entry.currency)
        expense_update(actor=people["consultant"], expense=entry, data={"receipt": upload})
        return []
    raise ValueError(tag)


def _log(person, project: Project, day: dt.date, item: _Item, plan: _Plan | None = None) -> TimeEntry:
    _, category, billable, _ = WORK[item.work]
    return time_entry_create(
        actor=person,
        project=project,
        date=day,
        hours=item.hours,
        description=item.description or plan.describe(item.work),
        labour_category=item.labour_category or category,
        billable=billable,
    )


def _seed_weeks(plan: _Plan, *, people, pm) -> dict[str, Any]:
    """Log, submit and decide week by week, oldest first, as the team would have."""
    projects = plan.projects
    locked = set(LockedPeriod.objects.values_list("month", flat=True))
    tagged: dict[str, Any] = {}
    for monday in plan.mondays:
        age = plan.age(monday)
        week: list = []
        for offset in range(7):
            day = monday + dt.timedelta(days=offset)
            if not (plan.start <= day <= plan.today) or day.replace(day=1) in locked:
                continue
            for who in LOGGERS:
                for item in plan.day(who, day):
                    project = projects.get(WORK[item.work][0])
                    if project is None or not (project.planned_start <= day <= project.planned_end):
                        continue
                    entry = _log(people[who], project, day, item, plan)
                    week.append(entry)
                    if item.tag:
                        tagged[item.tag] = entry
            for spend in plan.spending.get(day, []):
                project = projects.get(spend.project)
                if project is None or not (project.planned_start <= day <= project.planned_end):
                    continue
                expense = expense_create(
                    actor=people[spend.who],
                    project=project,
                    date=day,
                    category=spend.category,
                    amount=spend.amount,
                    description=spend.description,
                    billable=spend.billable,
                    receipt=_receipt(spend.receipt, day, project.currency) if spend.receipt else None,
                )
                week.append(expense)
                if spend.tag:
                    tagged[spend.tag] = expense
        if age == 0 or not week:
            continue  # this week: drafts
        for who in LOGGERS:
            if any(entry.person_id == people[who].pk for entry in week):
                timesheet_submit(actor=people[who], week_start=monday)
        if age == 1:
            continue  # last week: in the project manager's approval queue
        rejected = []
        for tag, (when, who, reason) in REJECTIONS.items():
            entry = tagged.get(tag)
            if entry is not None and entry in week and when in (age, None):
                time_entries_reject(actor=pm, entries=[entry], reason=reason)
                rejected.append((tag, who, entry))
        time_entries_approve(actor=pm, entries=[e for e in week if all(e is not entry for _, _, entry in rejected)])
        for tag, who, entry in rejected:
            if tag in STAYS_REJECTED:
                continue
            added = _fix(tag, entry, people=people)
            timesheet_submit(actor=people[who], week_start=monday)
            if tag not in WAITS_AGAIN:
                time_entries_approve(actor=pm, entries=[entry, *added])
    return tagged


def _signed_acceptance(milestone: Milestone, *, who: str, day: dt.date) -> SimpleUploadedFile:
    lines = [
        "ACCEPTANCE CERTIFICATE",
        "",
        f"Project:    {milestone.project.number} {milestone.project.name}",
        f"Milestone:  {milestone.name}",
        f"Criteria:   {milestone.acceptance_criteria}",
        "",
        "The deliverables above are accepted.",
        "",
        f"Signed: {who}",
        f"Date:   {day.isoformat()}",
    ]
    return _upload(f"{milestone.project.number}-design-acceptance-signed.pdf", _paper(lines, width=640))


def _accept_design(projects: dict[str, Project], *, pm, today: dt.date) -> int:
    """The client signed off the design at the end of last month; beta and launch are pending."""
    project = projects.get("PRJ-DEMO-FIXED")
    milestone = project.milestones.filter(key="milestone:1").first() if project else None
    if milestone is None or milestone.status != Milestone.Status.PLANNED:
        return 0
    day = min(milestone.planned_date, today) - dt.timedelta(days=2)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    if day < project.planned_start or LockedPeriod.objects.filter(month=day.replace(day=1)).exists():
        return 0
    who = "Camille Roussel, Directrice digitale"
    milestone_accept(
        actor=pm,
        milestone=milestone,
        accepted_by_name=who,
        accepted_on=day,
        note="Design system and key screens approved in the review of "
        f"{_long_date(day)}; copy changes on the collection pages follow in the build.",
        document=_signed_acceptance(milestone, who=who, day=day),
    )
    return 1


def _seed_time_and_expenses(projects: dict[str, Project], *, pm, today: dt.date) -> str:
    people = {username: _user(username) for username in LOGGERS}
    ours = list(projects.values())
    new = ""
    if (
        projects
        and all(people.values())
        and not (
            TimeEntry.objects.filter(project__in=ours).exists() or Expense.objects.filter(project__in=ours).exists()
        )
    ):
        month = _month_start(today, -2)
        plan = _Plan(projects=projects, start=month, today=today)
        _seed_weeks(plan, people=people, pm=pm)
        _accept_design(projects, pm=pm, today=today)
        new = " (new)"
    counts = dict.fromkeys(EntryStatus.values, 0)
    for model in (TimeEntry, Expense):
        for status, n in (
            model.objects.filter(project__in=ours).order_by().values_list("status").annotate(n=Count("pk"))
        ):
            counts[status] += n
    entries = TimeEntry.objects.filter(project__in=ours).count()
    expenses = Expense.objects.filter(project__in=ours).count()
    accepted = Milestone.objects.filter(project__in=ours, status=Milestone.Status.ACCEPTED).count()
    alerts = BudgetAlert.objects.filter(project__in=ours, kind=BudgetAlert.Kind.BUDGET_THRESHOLD).count()
    locked = ", ".join(
        m.strftime("%B %Y") for m in LockedPeriod.objects.order_by("month").values_list("month", flat=True)
    )
    return (
        f"{entries} time entries and {expenses} expenses{new}: "
        + ", ".join(f"{n} {status}" for status, n in counts.items())
        + f"; {accepted} milestone accepted, {alerts} budget alerts; locked: {locked or 'nothing'}"
    )


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
    consultants = _ensure_consultants(password)
    activated = _activate(projects, pm=pm, today=today)
    members = _ensure_teams(projects, pm=pm)
    work = _seed_time_and_expenses(projects, pm=pm, today=today)
    return (
        f"{len(projects)} demo projects ({new} new), {orders} new change orders ({pending} waiting for approval), "
        f"{limits} change-order limits set; {consultants} new consultants, {activated} projects activated, "
        f"{members} team members added; {work}"
    )
