"""Benchmark: a project manager approves a thousand submitted time entries at once, and the approval queue
that lists them.

``projects.timesheets.time_entries_approve`` locks the projects and entries, sets them approved in one UPDATE,
writes one bulk INSERT of history and one of audit entries, and evaluates each touched project's budget alerts
(actuals from approved time, priced with the contract's rates). ``projects.selectors.approval_queue`` is the
page's read. Both are measured on the same 1,000 submitted entries; each run starts from fresh entries in a
savepoint that is rolled back, so every run approves the same thing (budget alerts included).

Run: DATABASE_URL=postgres://… python bench/bench_approve_time.py [--entries 1000] [--projects 1] [--runs 7]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

CONSULTANTS = 5


def _person(username: str, role: str):
    user = get_user_model().objects.create_user(username=username, password="bench-pw-123")
    user.groups.add(Group.objects.get(name=role))
    return get_user_model().objects.get(pk=user.pk)  # fresh permission caches


def seed(projects: int):
    """A project manager, consultants on the team, and ``projects`` time-and-materials projects won through
    the handoff (a quote with two rated labour categories)."""
    from projects.models import ProjectMember
    from projects.services import deal_win
    from tests.customers.factories import CustomerFactory, LegalEntityFactory
    from tests.projects.factories import DealFactory, tm_quote

    sales, pm = _person("bench-sales", "sales"), _person("bench-pm", "project_manager")
    consultants = [_person(f"bench-consultant-{n}", "consultant") for n in range(CONSULTANTS)]
    entity = LegalEntityFactory(legal_name="Bench Studio GmbH", invoice_prefix="BE")
    made = []
    for n in range(projects):
        deal = DealFactory(customer=CustomerFactory(owner=sales), legal_entity=entity, title=f"Bench platform {n}")
        tm_quote(deal)
        project, _ = deal_win(actor=sales, deal=deal, project_manager=pm)
        ProjectMember.objects.bulk_create(
            ProjectMember(project=project, user=c, labour_category="Developer") for c in consultants
        )
        made.append(project)
    return pm, consultants, made


def submitted_entries(count: int, consultants, projects) -> None:
    """``count`` submitted entries of the consultants on weekdays of the projects, written directly: set-up,
    not the code under test (the services that log and submit them are measured by the tests)."""
    from projects.models import EntryStatus, TimeEntry

    first = max(project.planned_start for project in projects)
    last = min(project.planned_end for project in projects)
    days = (first + dt.timedelta(days=n) for n in range((last - first).days + 1))
    weekdays = [day for day in days if day.weekday() < 5]
    categories = ("Senior consultant", "Developer")
    TimeEntry.objects.bulk_create(
        TimeEntry(
            person=consultants[n % len(consultants)],
            project=projects[n % len(projects)],
            date=weekdays[(n // len(consultants)) % len(weekdays)],
            hours=Decimal("0.25"),  # 250 h in all: the 75 % budget alert is raised, as on a busy project
            labour_category=categories[n % 2],
            description=f"Bench work item {n}",
            status=EntryStatus.SUBMITTED,
        )
        for n in range(count)
    )


def timed(call, runs: int) -> tuple[float, float, int]:
    """Median and minimum milliseconds of ``runs`` calls of ``call() -> (seconds, queries)``, and the
    queries of the last call."""
    timings, queries = [], 0
    for _ in range(runs):
        seconds, queries = call()
        timings.append(seconds * 1000)
    return statistics.median(timings), min(timings), queries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--projects", type=int, default=1)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    from projects import selectors
    from projects.models import BudgetAlert, EntryStatus, TimeEntry
    from projects.timesheets import time_entries_approve

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        pm, consultants, projects = seed(args.projects)
        alerts = []

        def approve() -> tuple[float, int]:
            """Fresh submitted entries, all approved in one call, then rolled back."""
            with transaction.atomic():
                submitted_entries(args.entries, consultants, projects)
                entries = list(TimeEntry.objects.filter(status=EntryStatus.SUBMITTED))
                with CaptureQueriesContext(connection) as captured:
                    start = time.perf_counter()
                    approved = time_entries_approve(actor=pm, entries=entries)
                    seconds = time.perf_counter() - start
                assert approved == args.entries, approved
                alerts.append(BudgetAlert.objects.count())
                transaction.set_rollback(True)
            return seconds, len(captured)

        def queue() -> tuple[float, int]:
            """The project manager's queue, and what its page shows of each row."""
            with CaptureQueriesContext(connection) as captured:
                start = time.perf_counter()
                rows = selectors.approval_queue(user=pm)
                for entry in rows.time_entries:
                    (entry.person.get_full_name(), entry.project.number, entry.project.customer.display_name)
                seconds = time.perf_counter() - start
            assert len(rows) == args.entries, len(rows)
            return seconds, len(captured)

        print(
            f"{args.entries} submitted time entries of {CONSULTANTS} people on {args.projects} project(s), "
            f"{args.runs} runs each, database {connection.vendor}"
        )
        median, fastest, queries = timed(approve, args.runs)
        label = "time_entries_approve (one call, all entries)"
        print(
            f"{label:<46} median {median:7.1f} ms   min {fastest:7.1f} ms   {queries} queries"
            f"   ({alerts[-1]} budget alerts raised)"
        )
        with transaction.atomic():
            submitted_entries(args.entries, consultants, projects)
            median, fastest, queries = timed(queue, args.runs)
            label = "approval_queue (the project manager's)"
            print(f"{label:<46} median {median:7.1f} ms   min {fastest:7.1f} ms   {queries} queries")
            transaction.set_rollback(True)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
