"""Benchmark: an invoice run over many projects and a hundred thousand approved time entries, beside the raw
SQL that writes the same rows.

``billing.services.invoice_run_execute`` is measured end to end: it claims the run, walks the legal entity's
projects a batch of them a transaction, takes each project's approved unbilled items priced with the contract
in force on each item's date, drafts one invoice per project (tax engine, history, audit entry), rolls the
items up into lines and writes one invoice item per entry. The **lower bound** writes the same invoices, lines and
items with three ``INSERT … SELECT`` statements (rates precomputed, untimed, into a temporary table): what
the database needs to store the result and nothing else. Each run happens in a transaction that is rolled
back, so every run bills the same entries. The query count of the run is taken at the full size and at a
tenth of the entries (measured before the rest is added): it must not grow with the entries.

PostgreSQL only (the lower bound is PostgreSQL SQL):
DATABASE_URL=postgres://… python bench/bench_invoice_run.py [--projects 200] [--entries 100000] [--runs 5]
[--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import logging
import os
import pstats
import statistics
import sys
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()
logging.disable(logging.INFO)  # the synchronous queue of the test settings logs every task of the set-up

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

CONSULTANTS = 5
PERIOD_START, PERIOD_END = dt.date(2026, 3, 1), dt.date(2026, 3, 31)  # inside the quotes' plan (March to August)
CATEGORIES = ("Senior consultant", "Developer")  # both rated by ``tm_quote``


def _person(username: str, role: str):
    user = get_user_model().objects.create_user(username=username, password="bench-pw-123")
    user.groups.add(Group.objects.get(name=role))
    return get_user_model().objects.get(pk=user.pk)  # fresh permission caches


def seed(projects: int):
    """A finance user, a project manager, consultants, one legal entity and ``projects`` time-and-materials
    projects, each of its own customer, won through the handoff (a quote with two rated labour categories)."""
    from projects.services import deal_win
    from tests.customers.factories import CustomerFactory, LegalEntityFactory
    from tests.projects.factories import DealFactory, tm_quote

    sales, pm = _person("bench-sales", "sales"), _person("bench-pm", "project_manager")
    finance = _person("bench-finance", "finance")
    consultants = [_person(f"bench-consultant-{n}", "consultant") for n in range(CONSULTANTS)]
    entity = LegalEntityFactory(legal_name="Bench Studio GmbH", invoice_prefix="BE")
    made = []
    for n in range(projects):
        deal = DealFactory(customer=CustomerFactory(owner=sales), legal_entity=entity, title=f"Bench platform {n}")
        tm_quote(deal)
        project, _ = deal_win(actor=sales, deal=deal, project_manager=pm)
        made.append(project)
    return finance, pm, consultants, entity, made


def approved_entries(first: int, last: int, pm, consultants, projects) -> None:
    """Approved billable entries number ``first`` to ``last - 1`` on the weekdays of the period, spread evenly
    over the projects, written directly in batches: set-up, not the code under test."""
    from projects.models import EntryStatus, TimeEntry

    days = (PERIOD_START + dt.timedelta(days=n) for n in range((PERIOD_END - PERIOD_START).days + 1))
    weekdays = [day for day in days if day.weekday() < 5]
    now = timezone.now()
    batch = 10_000
    for low in range(first, last, batch):
        TimeEntry.objects.bulk_create(
            TimeEntry(
                person=consultants[n % len(consultants)],
                project=projects[n % len(projects)],
                date=weekdays[(n // len(projects)) % len(weekdays)],
                hours=Decimal("1.25") + Decimal(n % 4) / 4,
                labour_category=CATEGORIES[(n // len(projects)) % 2],
                description=f"Bench work item {n}",
                status=EntryStatus.APPROVED,
                submitted_at=now,
                decided_by=pm,
                decided_at=now,
            )
            for n in range(low, min(low + batch, last))
        )


def rate_table(projects) -> int:
    """``bench_rate(project_id, labour_category, date, rate)``: the rate of each (project, category, day) that
    has entries, from the same resolver the selector prices with. Untimed: the lower bound gets its prices
    for free."""
    from projects.models import TimeEntry
    from projects.selectors import _rate_resolver

    resolvers = {project.pk: _rate_resolver(project) for project in projects}
    keys = TimeEntry.objects.values_list("project_id", "labour_category", "date").order_by().distinct()
    rows = [(pk, category, day, resolvers[pk](category, day)) for pk, category, day in keys]
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_rate")
        cursor.execute(
            "CREATE TEMPORARY TABLE bench_rate (project_id bigint, labour_category varchar(80), date date, "
            "rate numeric(18, 4), PRIMARY KEY (project_id, labour_category, date))"
        )
        cursor.executemany("INSERT INTO bench_rate VALUES (%s, %s, %s, %s)", rows)
        cursor.execute("ANALYZE bench_rate")
    return len(rows)


# The same rows the run writes (its history, audit entries and tax evidence aside): one draft per project,
# one line per (project, labour category, rate), one item per entry. The bound is the database's work alone.
_ENTRIES = """
    FROM projects_timeentry t
    JOIN projects_project p ON p.id = t.project_id
    JOIN bench_rate r ON (r.project_id, r.labour_category, r.date) = (t.project_id, t.labour_category, t.date)
    JOIN billing_invoice i ON i.project_id = t.project_id AND i.run_id = %(run)s
"""
_BILLABLE = """
    WHERE p.legal_entity_id = %(entity)s AND t.status = 'approved' AND t.billable AND t.date <= %(period_end)s
"""
_STAMPS = {"public_id": "gen_random_uuid()", "created_at": "now()", "updated_at": "now()"}


def insert_select(model, values: dict[str, str], rest: str) -> tuple[str, dict]:
    """``INSERT INTO <model's table> (every column) SELECT <values> <rest>``: the columns not in ``values`` get
    their field's default as a parameter, as ``bulk_create`` would send it (so the statement keeps up with
    columns added later)."""
    columns, expressions, params = [], [], {}
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.column in values:
            expressions.append(values[field.column])
            continue
        if not field.null and not field.has_default() and not field.empty_strings_allowed:
            raise ValueError(f"{model.__name__}.{field.name}: give the lower bound a value")
        params[f"default_{field.column}"] = field.get_db_prep_save(field.get_default(), connection)
        expressions.append(f"%(default_{field.column})s")
    table = model._meta.db_table
    return f"INSERT INTO {table} ({', '.join(columns)})\n    SELECT {', '.join(expressions)}\n{rest}", params


def lower_bound_statements() -> list[tuple[str, dict]]:
    from billing.models import Invoice, InvoiceItem, InvoiceLine

    invoices = insert_select(
        Invoice,
        {
            **_STAMPS,
            "legal_entity_id": "p.legal_entity_id",
            "customer_id": "p.customer_id",
            "project_id": "p.id",
            "run_id": "%(run)s",
            "consolidation_key": "'project:' || p.id",
            "currency": "p.currency",
            "language": "p.language",
            "po_number": "p.po_number",
            "period_start": "%(period_start)s",
            "period_end": "%(period_end)s",
            "payment_terms_days": "p.payment_terms_days",
            "created_by_id": "%(user)s",
        },
        """
    FROM projects_project p
    WHERE p.legal_entity_id = %(entity)s AND EXISTS (
        SELECT 1 FROM projects_timeentry t
        WHERE t.project_id = p.id AND t.status = 'approved' AND t.billable AND t.date <= %(period_end)s)
""",
    )
    lines = insert_select(
        InvoiceLine,
        {
            **_STAMPS,
            "invoice_id": "i.id",
            "position": "row_number() OVER (PARTITION BY t.project_id ORDER BY min(t.date), t.labour_category)",
            "kind": "'time'",
            "project_id": "t.project_id",
            "description": "t.labour_category || ' (' || p.name || ')'",
            "labour_category": "t.labour_category",
            "quantity": "sum(t.hours)",
            "unit": "'HUR'",
            "unit_price": "r.rate",
            "net_amount": "round(sum(t.hours) * r.rate, 2)",
            "service_start": "min(t.date)",
            "service_end": "max(t.date)",
        },
        _ENTRIES + _BILLABLE + "    GROUP BY t.project_id, p.name, i.id, t.labour_category, r.rate\n",
    )
    items = insert_select(
        InvoiceItem,
        {
            **_STAMPS,
            "line_id": "l.id",
            "invoice_id": "i.id",
            "kind": "CASE WHEN t.adjusts_id IS NULL THEN 'time' ELSE 'adjustment' END",
            "project_id": "t.project_id",
            "time_entry_id": "t.id",
            "date": "t.date",
            "description": "t.description",
            "quantity": "t.hours",
            "unit_price": "r.rate",
            "amount": "round(t.hours * r.rate, 2)",
        },
        _ENTRIES
        + """    JOIN billing_invoiceline l
        ON l.invoice_id = i.id AND l.labour_category = t.labour_category AND l.unit_price = r.rate
"""
        + _BILLABLE,
    )
    return [invoices, lines, items]


class QueryCounter:
    """Counts the statements sent (an ``execute_wrapper``: unlike ``CaptureQueriesContext`` it does not
    render each statement's SQL, which for a 100,000-row INSERT would cost more than the INSERT)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def settle() -> None:
    """VACUUM (untimed): every rolled-back run leaves 100,000 dead rows and their index entries behind, and
    the next run would write into a more bloated table than the one before. (Not inside a transaction, where
    PostgreSQL cannot vacuum: the smoke test's.)"""
    if connection.in_atomic_block:
        return
    with connection.cursor() as cursor:
        cursor.execute("VACUUM")


def deferred_checks() -> None:
    """Run the deferred foreign-key checks now, as the commit of each project's transaction would (a
    rolled-back transaction never runs them)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def summary(timings: list[float]) -> tuple[float, float]:
    """Median and minimum, in milliseconds."""
    return statistics.median(timings) * 1000, min(timings) * 1000


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one more run of the real run")
    return parser


def main() -> None:
    args = parser().parse_args()
    if connection.vendor != "postgresql":
        print("bench_invoice_run: needs PostgreSQL (DATABASE_URL=postgres://…); skipped")
        return
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        bench(args)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def bench(args: argparse.Namespace) -> None:
    """Set up, measure and print, in the current (empty) database."""
    from billing.models import InvoiceItem, InvoiceLine
    from billing.services import invoice_run_execute, invoice_run_start

    start = time.perf_counter()
    finance, pm, consultants, entity, projects = seed(args.projects)
    tenth = args.entries // 10
    approved_entries(0, tenth, pm, consultants, projects)
    setup = time.perf_counter() - start

    statements = lower_bound_statements()

    def new_run():
        return invoice_run_start(actor=finance, legal_entity=entity, period_start=PERIOD_START, period_end=PERIOD_END)

    def real(expected: int, profiler: cProfile.Profile | None = None) -> tuple[float, float, int]:
        """The run, end to end, then rolled back: its seconds without and with the foreign-key checks of the
        commits, and its statements."""
        with transaction.atomic():
            run = new_run()
            counter = QueryCounter()
            with connection.execute_wrapper(counter):
                if profiler is not None:
                    profiler.enable()
                start = time.perf_counter()
                run = invoice_run_execute(run.pk)
                done = time.perf_counter()
                deferred_checks()
                checked = time.perf_counter()
                if profiler is not None:
                    profiler.disable()
            assert run.status == "completed", (run.status, run.error)
            assert run.items_billed == expected, (run.items_billed, expected)
            assert run.invoices_created == args.projects and not run.exceptions.exists()
            transaction.set_rollback(True)
        return done - start, checked - start, counter.count - 1  # not SET CONSTRAINTS

    def lower_bound() -> tuple[float, float, float]:
        """The same invoices, lines and items by INSERT … SELECT, then rolled back: the seconds without and
        with the foreign-key checks, and of the items' statement alone."""
        with transaction.atomic():
            run = new_run()
            params = {
                "run": run.pk,
                "entity": entity.pk,
                "user": finance.pk,
                "period_start": PERIOD_START,
                "period_end": PERIOD_END,
            }
            (invoices, invoice_defaults), (lines, line_defaults), (items, item_defaults) = statements
            with connection.cursor() as cursor:
                start = time.perf_counter()
                cursor.execute(invoices, {**params, **invoice_defaults})
                cursor.execute(lines, {**params, **line_defaults})
                items_start = time.perf_counter()
                cursor.execute(items, {**params, **item_defaults})
                items_end = time.perf_counter()
                deferred_checks()
                end = time.perf_counter()
            assert InvoiceItem.objects.filter(invoice__run=run).count() == args.entries
            assert InvoiceLine.objects.filter(invoice__run=run).count() == args.projects * len(CATEGORIES)
            transaction.set_rollback(True)
        return items_end - start, end - start, items_end - items_start

    # A tenth of the entries first (the same projects), for the query count; then all of them.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    real(tenth)  # warm-up
    small, small_queries = [], 0
    for _ in range(3):
        settle()
        seconds, _, small_queries = real(tenth)
        small.append(seconds)
    start = time.perf_counter()
    approved_entries(tenth, args.entries, pm, consultants, projects)
    rates = rate_table(projects)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    setup += time.perf_counter() - start
    with open("/proc/loadavg") as loadavg:
        load = loadavg.read().split()[0]
    print(
        f"{args.entries:,} approved time entries of {CONSULTANTS} people on {args.projects} projects in "
        f"{PERIOD_START:%B %Y}; {args.runs} runs each, alternating; {connection.vendor}; load average {load} "
        f"(set-up {setup:.0f} s, {rates:,} rates precomputed for the lower bound)"
    )

    real(args.entries)  # warm-up: caches, the planner's statistics
    lower_bound()
    measured: dict[str, list[float]] = defaultdict(list)
    queries = 0
    for n in range(args.runs):  # alternating which goes first, so that a drift in load hits both alike
        pair = {}
        for which in ("bound", "run") if n % 2 == 0 else ("run", "bound"):
            settle()
            pair[which] = lower_bound() if which == "bound" else real(args.entries)
        (bound, bound_checked, items), (run, run_checked, queries) = pair["bound"], pair["run"]
        for key, value in [("bound", bound), ("bound checked", bound_checked), ("items", items)]:
            measured[key].append(value)
        measured["run"].append(run)
        measured["run checked"].append(run_checked)
        measured["ratio"].append(run / bound)
        measured["ratio checked"].append(run_checked / bound_checked)
    rows = [
        ("lower bound: 3 INSERT … SELECT", "bound", ""),
        ("  of which the items' INSERT", "items", ""),
        ("invoice_run_execute", "run", f"   {queries} statements"),
        ("lower bound + FK checks of a commit", "bound checked", ""),
        ("invoice_run_execute + FK checks", "run checked", ""),
    ]
    for label, key, note in rows:
        median, fastest = summary(measured[key])
        print(f"{label:<40} median {median:8.0f} ms   min {fastest:8.0f} ms{note}")
    for label, key in [("ratio run / lower bound", "ratio"), ("ratio, FK checks in both", "ratio checked")]:
        ratios = measured[key]
        print(f"{label:<40} median {statistics.median(ratios):8.2f} ×    min {min(ratios):8.2f} ×   (pairs)")
    small_median, small_min = summary(small)
    label = f"invoice_run_execute, {tenth:,} entries"
    print(f"{label:<40} median {small_median:8.0f} ms   min {small_min:8.0f} ms   {small_queries} statements")
    print(f"statements of the run: {small_queries} for {tenth:,} entries, {queries} for {args.entries:,}")

    if args.profile:
        profiler = cProfile.Profile()
        real(args.entries, profiler)
        stats = pstats.Stats(profiler).strip_dirs().sort_stats("cumulative")
        stats.print_stats(40)
        stats.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
