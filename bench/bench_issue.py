"""Benchmark: issuing invoices through the queue, and the gapless counter under contention.

1. **Queue.** A django-q2 cluster (``manage.py qcluster``, a separate process, ``--workers`` workers, the ORM
   broker of production) issues ``--invoices`` approved invoices, one ``billing.tasks_issue.invoice_issue_task``
   each, enqueued at once; every issue queues its PDF (``billing.tasks.invoice_pdf_render``), which the same
   workers render (warm: a few invoices of another series are issued and rendered first) and store as files.
   Timed from the first enqueue until every invoice is issued, and until every PDF is stored: issues and PDFs
   per second. The numbers must be 1…N of the series, with no gap and no duplicate.
2. **Counter.** ``--threads`` threads, each with its own connection, take numbers of one invoice series, one
   transaction a number, for ``--seconds``: numbers per second (issue 6's target: 500), checked gapless and
   distinct; through ``billing.numbering.sequence_take`` (one ``UPDATE … RETURNING``) and, for comparison,
   ``backbone.services.sequence_next`` (which issuing calls today); each also with one thread.
3. **Full issues.** The same threads issue ``--contention-invoices`` approved invoices of one series through
   ``billing.issuing.invoice_issue`` (each issue's PDF is queued, not rendered): issues per second, numbers
   checked.

PostgreSQL only (row locks, and a second process on the same database):
DATABASE_URL=postgres://… python bench/bench_issue.py [--invoices 500] [--workers 2] [--threads 8] [--seconds 5]
[--contention-invoices 400]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "_queue_settings")
if __name__ == "__main__":  # files (the logos, the PDFs) in one place for this process and the cluster's
    os.environ.setdefault("BENCH_MEDIA_ROOT", tempfile.mkdtemp(prefix="bench-issue-"))

import django  # noqa: E402

django.setup()
logging.disable(logging.INFO)

from _world import World, approved_invoices, billing_world  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

YEAR = 2026


def _database_url() -> str:
    """The database this process uses now (the throw-away test database), for the cluster's process."""
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def _gapless(values: list[int]) -> bool:
    return sorted(values) == list(range(1, len(values) + 1))


# --- 1. the queue ---------------------------------------------------------------------------------------------


class Cluster:
    """``manage.py qcluster`` in its own process group, on the same database and settings."""

    def __init__(self, workers: int, media: Path) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "_queue_settings",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench")]),
            "DATABASE_URL": _database_url(),
            "BENCH_WORKERS": str(workers),
            "BENCH_MEDIA_ROOT": str(media),  # where the workers store the PDFs
            "LOG_LEVEL": "WARNING",
        }
        self.log = open(media / "qcluster.log", "w")  # noqa: SIM115 -- closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "qcluster"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # django-q's main process stops its own workers
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # our own child's process group
                self.process.wait()
        self.log.close()


def _wait_for(condition, *, timeout: float, cluster: Cluster) -> float:
    """Poll ``condition()`` every 20 ms until true; returns when (perf_counter)."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if cluster.process.poll() is not None:
            raise RuntimeError(f"the cluster stopped (exit {cluster.process.returncode}); see its log")
        if time.perf_counter() > deadline:
            raise TimeoutError("the queue did not finish in time")
        time.sleep(0.02)
    return time.perf_counter()


def issue_through_queue(warm: World, world: World, *, warm_pks, pks, workers: int, timeout: float, media: Path):
    """Start a cluster, warm its workers with ``warm_pks``, then enqueue ``pks`` and time them. Returns
    (seconds until all issued, seconds until all PDFs stored)."""
    from django_q.tasks import async_task

    from billing.models import Invoice, InvoiceDocument

    def enqueue(ids, actor):
        for pk in ids:
            async_task("billing.tasks_issue.invoice_issue_task", pk, actor.pk, task_name=f"issue {pk}")

    def issued(ids) -> int:
        return Invoice.objects.filter(pk__in=ids, status=Invoice.Status.ISSUED).count()

    def rendered(ids) -> int:
        return InvoiceDocument.objects.filter(invoice_id__in=ids, kind="pdf").count()

    cluster = Cluster(workers, media)
    try:
        enqueue(warm_pks, warm.finance)  # every worker imports WeasyPrint and loads its fonts on its first PDF
        _wait_for(lambda: rendered(warm_pks) == len(warm_pks), timeout=timeout, cluster=cluster)
        start = time.perf_counter()
        enqueue(pks, world.finance)
        all_issued = _wait_for(lambda: issued(pks) == len(pks), timeout=timeout, cluster=cluster)
        all_rendered = _wait_for(lambda: rendered(pks) == len(pks), timeout=timeout, cluster=cluster)
    finally:
        cluster.stop()
    sequences = list(Invoice.objects.filter(pk__in=pks).values_list("sequence", flat=True))
    assert _gapless(sequences), "the queue's numbers have a gap or a duplicate"
    assert InvoiceDocument.objects.filter(invoice_id__in=pks, pages=1).count() == len(pks)
    return all_issued - start, all_rendered - start


# --- 2. the counter -------------------------------------------------------------------------------------------


def _threads(count: int, work) -> float:
    """Run ``work(index)`` in ``count`` threads, each with its own connection, started together; returns the
    seconds from the start until the last one finished. A failure in any thread is raised."""
    barrier = threading.Barrier(count, timeout=60)
    failures: list[BaseException] = []
    finished: list[float] = []
    began: list[float] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            began.append(time.perf_counter())
            work(index)
            finished.append(time.perf_counter())
        except BaseException as exc:  # raised below: a thread must not swallow it
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return max(finished) - min(began)


def counter(world: World, *, threads: int, seconds: float, function: str) -> tuple[int, float]:
    """Numbers taken by ``threads`` threads for ``seconds``, one transaction each, through ``function``:
    ``sequence_take`` (``billing.numbering``) or ``sequence_next`` (``backbone.services``, what issuing calls
    today); returns (numbers, seconds). The series is the legal entity's invoice series of YEAR, created
    beforehand; checked gapless afterwards."""
    from backbone.models import NumberSequence
    from backbone.services import sequence_next
    from billing import numbering

    entity = world.legal_entity
    key = numbering.sequence_key(legal_entity_pk=entity.pk, kind="invoice")
    prefix = numbering.series_prefix(invoice_prefix=entity.invoice_prefix, kind="invoice")
    padding = entity.invoice_number_padding

    def take() -> int:
        if function == "sequence_take":
            return numbering.sequence_take(
                legal_entity_pk=entity.pk, kind="invoice", year=YEAR, prefix=prefix, padding=padding
            )
        return int(sequence_next(key=key, year=YEAR, prefix=prefix, padding=padding).rsplit("-", 1)[1])

    NumberSequence.objects.filter(key=key, year=YEAR).delete()
    with transaction.atomic():
        take()  # the row exists: the threads race for its lock, not to create it
        transaction.set_rollback(True)
    taken: list[list[int]] = [[] for _ in range(threads)]

    def work(index: int) -> None:
        mine = taken[index]
        stop = time.perf_counter() + seconds
        while time.perf_counter() < stop:
            with transaction.atomic():
                mine.append(take())

    elapsed = _threads(threads, work)
    values = [value for mine in taken for value in mine]
    assert _gapless(values), "the counter gave a number twice or left a gap"
    assert NumberSequence.objects.get(key=key, year=YEAR).last_value == len(values)
    NumberSequence.objects.filter(key=key, year=YEAR).delete()  # the next measurement starts at 1 again
    return len(values), elapsed


def issue_in_threads(world: World, pks: list[int], *, threads: int) -> float:
    """``threads`` threads issue the invoices (interleaved: neighbours race each other); returns the seconds."""
    from django.contrib.auth import get_user_model

    from billing.issuing import invoice_issue
    from billing.models import Invoice

    batches = [pks[index::threads] for index in range(threads)]

    def work(index: int) -> None:
        actor = get_user_model().objects.get(pk=world.finance.pk)  # own connection, own permission cache
        for invoice in list(Invoice.objects.filter(pk__in=batches[index]).order_by("pk")):
            invoice_issue(actor=actor, invoice=invoice)

    elapsed = _threads(threads, work)
    sequences = list(Invoice.objects.filter(pk__in=pks).values_list("sequence", flat=True))
    assert _gapless(sequences), "concurrent issues left a gap or a duplicate"
    return elapsed


# --- the benchmark -------------------------------------------------------------------------------------------


def bench(args: argparse.Namespace, *, media: Path) -> list[str]:
    """Every measurement in the current database (committed data: the cluster and the threads have their
    own connections); the cluster stores its PDFs and its log under ``media``. Returns the report's lines."""
    from tax.models import TaxRate
    from tax.services import tax_rates_load

    if not TaxRate.objects.exists():  # a flushed database (the smoke test's): the rates of the data migration
        tax_rates_load()
    lines = []
    if args.invoices:
        warm = billing_world(name="Bench Warm-up GmbH", prefix="BW")
        queued = billing_world(name="Bench Queue GmbH", prefix="BQ")
        warm_pks = approved_invoices(warm, max(2, args.workers * 2))
        pks = approved_invoices(queued, args.invoices)
        issued, rendered = issue_through_queue(
            warm, queued, warm_pks=warm_pks, pks=pks, workers=args.workers, timeout=args.timeout, media=media
        )
        lines.append(
            f"queue, {args.workers} workers: {args.invoices} invoices issued in {issued:.2f} s "
            f"({args.invoices / issued:.0f} issues/s), their PDFs stored after {rendered:.2f} s "
            f"({args.invoices / rendered:.1f} PDFs/s over the whole time, {args.invoices / (rendered - issued):.1f} "
            f"PDFs/s once issuing was done); numbers 1…{args.invoices}, no gap"
        )
    counted = billing_world(name="Bench Counter GmbH", prefix="BC")
    for function in ("sequence_take", "sequence_next"):
        for threads in sorted({1, args.threads}):
            numbers, elapsed = counter(counted, threads=threads, seconds=args.seconds, function=function)
            lines.append(
                f"counter, {function}, {threads} thread{'s' if threads > 1 else ' '}: {numbers} numbers in "
                f"{elapsed:.2f} s = {numbers / elapsed:.0f} numbers/s, gapless and distinct"
            )
    if args.contention_invoices:
        contended = billing_world(name="Bench Contention GmbH", prefix="BX")
        pks = approved_invoices(contended, args.contention_invoices)
        elapsed = issue_in_threads(contended, pks, threads=args.threads)
        lines.append(
            f"full issues, {args.threads} threads: {len(pks)} invoices in {elapsed:.2f} s = "
            f"{len(pks) / elapsed:.0f} issues/s; numbers 1…{len(pks)}, no gap"
        )
    return lines


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=500, help="issued through the queue (0: skip)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="of taking numbers, per measurement")
    parser.add_argument("--contention-invoices", type=int, default=400, help="issued by the threads (0: skip)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds the queue may take")
    return parser


def main() -> None:
    args = parser().parse_args()
    media = Path(settings.MEDIA_ROOT)
    if connection.vendor != "postgresql":
        print("bench_issue: needs PostgreSQL (DATABASE_URL=postgres://…); skipped")
        if media.name.startswith("bench-issue-"):
            media.rmdir()
        return
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        with open("/proc/loadavg") as loadavg:
            load = loadavg.read().split()[0]
        print(f"bench_issue on {connection.vendor}, load average {load}")
        for line in bench(args, media=media):
            print(line)
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        if media.name.startswith("bench-issue-"):
            shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    main()
