"""The billing benchmarks in ``bench/`` run end to end at a tiny size, so that they do not rot. Their numbers
are not checked (they measure; ``bench/README.md`` has them at full size): the scripts' own assertions are
(every run bills every entry, the lower bound writes the same rows, the PDFs have their pages, the numbers
are gapless)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import ModuleType

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection

BENCH = Path(__file__).resolve().parents[2] / "bench"
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the benchmark needs PostgreSQL")


def load(name: str) -> ModuleType:
    """The script as a module (its ``main`` is not run: the test calls ``bench`` in the test database)."""
    spec = importlib.util.spec_from_file_location(f"bench_smoke_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    logging.disable(logging.NOTSET)  # the scripts quiet Django's INFO logging for their own output
    return module


@postgres_only
@pytest.mark.django_db
def test_the_invoice_run_benchmark_runs(capsys):
    script = load("bench_invoice_run")
    script.bench(script.parser().parse_args(["--projects", "2", "--entries", "40", "--runs", "1"]))
    out = capsys.readouterr().out
    assert "ratio run / lower bound" in out and "statements of the run" in out


@pytest.mark.django_db
def test_the_pdf_benchmark_runs(capsys):
    script = load("bench_pdf_render")
    script.bench(script.parser().parse_args(["--runs", "1"]))
    out = capsys.readouterr().out
    assert "one page   1 page" in out and "five pages 5 pages" in out


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_issue_benchmark_runs_with_a_real_queue_cluster(tmp_path, monkeypatch):
    from django_q.conf import Conf

    script = load("bench_issue")
    # This process has the tests' synchronous queue; the cluster, started on the bench's queue settings, the
    # asynchronous one of production under the same name.
    monkeypatch.setattr(Conf, "SYNC", False)
    # Transactional tests may start from a flushed database: the finance role's permission to issue.
    finance, _ = Group.objects.get_or_create(name="finance")
    finance.permissions.add(Permission.objects.get(content_type__app_label="billing", codename="issue_invoice"))
    args = ["--invoices", "2", "--workers", "1", "--threads", "2", "--seconds", "0.2", "--contention-invoices", "4"]
    lines = script.bench(script.parser().parse_args([*args, "--timeout", "60"]), media=tmp_path)
    assert len(lines) == 6 and "numbers 1…2, no gap" in lines[0] and "numbers 1…4, no gap" in lines[5]
