"""Benchmark: rendering invoice PDFs in a warm process, as a queue worker does.

``billing.pdf.render_invoice_document`` (the function the queue task ``invoice_pdf_render`` calls: context,
template, WeasyPrint layout and PDF writing) renders an issued one-page invoice (five lines) and an issued
five-page invoice (ninety lines), both reverse-charged EUR invoices with the payment QR code. The first
render of the process is timed on its own (WeasyPrint imported, fonts looked up, the stylesheet parsed); then
each invoice is rendered ``--runs`` times, alternating, and the median and 95th percentile of the wall clock
and of the process's CPU time are printed per render and per page. The CPU time is what a busy machine
disturbs least. Targets (issue 6): one page ≤ 80 ms median, ≤ 150 ms a page at five pages.

``--stages`` splits the CPU time of a render into its stages (context, template, HTML parsing, styles and
layout, PDF writing); ``--profile`` prints a cProfile of the one-page renders; ``--try`` times candidate
speed-ups of ``billing/pdf.py`` applied here only (monkeypatched, checked to give the same PDF text and page
count), alternating with the unpatched function in the same process.

Run: DATABASE_URL=postgres://… python bench/bench_pdf_render.py [--runs 30] [--stages] [--profile] [--try]
(SQLite in memory without DATABASE_URL: the database's share of a render is small.)
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()
logging.disable(logging.INFO)

from _world import billing_world, issued_invoice  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

ONE_PAGE_LINES, FIVE_PAGE_LINES = 5, 90


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def render(invoice) -> tuple[float, float, int]:
    """One render: wall seconds, CPU seconds, pages."""
    from billing.pdf import render_invoice_document

    wall, cpu = time.perf_counter(), time.process_time()
    pages = render_invoice_document(invoice).pages
    return time.perf_counter() - wall, time.process_time() - cpu, pages


def measure(invoices: dict[str, object], runs: int) -> dict[str, dict[str, list[float]]]:
    """``runs`` renders of each invoice, alternating (a drift of the machine's load hits both alike)."""
    measured: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in invoices}
    for _ in range(runs):
        for name, invoice in invoices.items():
            wall, cpu, _pages = render(invoice)
            measured[name]["wall"].append(wall * 1000)
            measured[name]["cpu"].append(cpu * 1000)
    return measured


def report(measured: dict[str, dict[str, list[float]]], pages: dict[str, int]) -> None:
    for name, series in measured.items():
        count = pages[name]
        wall, cpu = series["wall"], series["cpu"]
        print(
            f"{name:<10} {count} page{'s' if count > 1 else ' '}  wall median {statistics.median(wall):6.1f} ms "
            f"p95 {p95(wall):6.1f} ms   CPU median {statistics.median(cpu):6.1f} ms p95 {p95(cpu):6.1f} ms   "
            f"a page: wall {statistics.median(wall) / count:6.1f} ms, CPU {statistics.median(cpu) / count:6.1f} ms"
        )


def pdf_text(data: bytes) -> str:
    """The PDF's text (poppler's pdftotext), to check that a speed-up leaves the output alone."""
    import shutil
    import subprocess

    command = shutil.which("pdftotext")
    if command is None:
        return ""
    done = subprocess.run([command, "-layout", "-", "-"], input=data, capture_output=True, check=True)
    return done.stdout.decode("utf-8")


def stages(invoice, runs: int) -> dict[str, list[float]]:
    """CPU milliseconds of each stage of ``render_invoice_document``, done by hand in the same order."""
    from django.template.loader import render_to_string

    from billing import pdf

    html_class, font_config, stylesheet = pdf._weasyprint()
    measured: dict[str, list[float]] = {}

    def lap(name: str, since: float) -> float:
        now = time.process_time()
        measured.setdefault(name, []).append((now - since) * 1000)
        return now

    for _ in range(runs):
        started = time.process_time()
        context = pdf.invoice_pdf_context(invoice)
        started = lap("context (queries, Babel, QR code)", started)
        html = render_to_string(pdf.TEMPLATE, context)
        started = lap("template", started)
        parsed = html_class(string=html, base_url=None)
        started = lap("HTML parsed", started)
        document = parsed.render(stylesheets=[stylesheet], font_config=font_config)
        started = lap("styles and layout", started)
        document.write_pdf()
        lap("PDF written (fonts subset, drawn)", started)
    return measured


_IMAGE_CACHE: dict = {}


def candidates():
    """Changes of billing/pdf.py to try, each a context manager patching the module here only."""
    import contextlib

    from billing import pdf

    @contextlib.contextmanager
    def image_cache():
        # WeasyPrint decodes every image of every render (the logo, the QR code's SVG); its ``cache`` option
        # keeps decoded images by URL for the process: the logo (the same data URI every time) once.
        original = pdf.render_invoice_document

        def render_invoice_document(invoice, *, portal_url=None):
            html_class, font_config, stylesheet = pdf._weasyprint()
            html = pdf.render_invoice_html(invoice, portal_url=portal_url)
            document = html_class(string=html, base_url=None).render(
                stylesheets=[stylesheet], font_config=font_config, cache=_IMAGE_CACHE
            )
            return pdf.RenderedPdf(data=document.write_pdf(), pages=len(document.pages))

        pdf.render_invoice_document = render_invoice_document
        try:
            yield
        finally:
            pdf.render_invoice_document = original

    @contextlib.contextmanager
    def template_object():
        # render_to_string finds the template through the loaders on every call (cached, but still a lookup)
        original = pdf.render_invoice_html
        template = pdf.get_template(pdf.TEMPLATE)

        def render_invoice_html(invoice, *, portal_url=None):
            return template.render(pdf.invoice_pdf_context(invoice, portal_url=portal_url))

        pdf.render_invoice_html = render_invoice_html
        try:
            yield
        finally:
            pdf.render_invoice_html = original

    @contextlib.contextmanager
    def uncompressed():
        # Not output-preserving: the same pages and text, but the content streams are not zlib-compressed
        # (a larger file). Measured to show what compression costs.
        original = pdf.render_invoice_document

        def render_invoice_document(invoice, *, portal_url=None):
            html_class, font_config, stylesheet = pdf._weasyprint()
            html = pdf.render_invoice_html(invoice, portal_url=portal_url)
            document = html_class(string=html, base_url=None).render(stylesheets=[stylesheet], font_config=font_config)
            return pdf.RenderedPdf(data=document.write_pdf(uncompressed_pdf=True), pages=len(document.pages))

        pdf.render_invoice_document = render_invoice_document
        try:
            yield
        finally:
            pdf.render_invoice_document = original

    @contextlib.contextmanager
    def qr_as_png():
        # Not output-preserving: the EPC QR code as a PNG image instead of an SVG drawing (the same code).
        original = pdf.epc_qr_data_uri

        def epc_qr_data_uri(*, name, iban, bic, amount, reference):
            if not (iban and reference):
                return ""
            iban = iban.replace(" ", "")
            qr = pdf.make_epc_qr(name=name[:70], iban=iban, amount=amount, reference=reference, bic=bic or None)
            return qr.png_data_uri(scale=4, border=4)

        pdf.epc_qr_data_uri = epc_qr_data_uri
        try:
            yield
        finally:
            pdf.epc_qr_data_uri = original

    return {
        "image cache for the process": image_cache,
        "template object reused": template_object,
        "(uncompressed PDF)": uncompressed,
        "(QR code as PNG, not SVG)": qr_as_png,
    }


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the one-page renders")
    parser.add_argument("--stages", action="store_true", help="CPU time of each stage of a render")
    parser.add_argument("--try", dest="attempt", action="store_true", help="time candidate speed-ups (bench only)")
    return parser


def main() -> None:
    args = parser().parse_args()
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        bench(args)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def bench(args: argparse.Namespace) -> None:
    """Set up, measure and print, in the current database."""
    from billing.pdf import _weasyprint, render_invoice_document

    world = billing_world(name="Bench Studio GmbH", prefix="BE")
    invoices = {
        "one page": issued_invoice(world, lines=ONE_PAGE_LINES),
        "five pages": issued_invoice(world, lines=FIVE_PAGE_LINES),
    }
    cold_wall, cold_cpu, _ = render(invoices["one page"])  # imports WeasyPrint, finds fonts, parses the CSS
    pages = {name: render(invoice)[2] for name, invoice in invoices.items()}
    assert pages == {"one page": 1, "five pages": 5}, pages
    with open("/proc/loadavg") as loadavg:
        load = loadavg.read().split()[0]
    print(
        f"invoice PDFs in a warm process, {args.runs} renders each, alternating; {connection.vendor}; "
        f"load average {load}; first render of the process {cold_wall * 1000:.0f} ms ({cold_cpu * 1000:.0f} ms CPU)"
    )
    report(measure(invoices, args.runs), pages)
    assert _weasyprint.cache_info().misses == 1  # fonts and stylesheet made once in the process

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.runs):
            render_invoice_document(invoices["one page"])
        profiler.disable()
        stats = pstats.Stats(profiler).strip_dirs()
        stats.sort_stats("cumulative").print_stats(35)
        stats.sort_stats("tottime").print_stats(20)

    if args.stages:
        for name, invoice in invoices.items():
            parts = stages(invoice, args.runs)
            total = sum(statistics.median(values) for values in parts.values())
            print(f"{name}, CPU median of each stage (sum {total:.1f} ms):")
            for stage, values in parts.items():
                print(f"    {stage:<36} {statistics.median(values):6.1f} ms")

    if args.attempt:
        from billing import pdf

        one = invoices["one page"]
        link = "https://portal.example.test/p/fixed"  # a fresh signed link differs at every render

        def output() -> tuple[str, int]:
            rendered = pdf.render_invoice_document(one, portal_url=link)
            return pdf_text(rendered.data), rendered.pages

        expected = output()
        for label, patch in candidates().items():
            base, patched = [], []
            with patch():
                same = output() == expected
            for _ in range(args.runs):  # alternating, as above
                base.append(render(one)[1] * 1000)
                with patch():
                    patched.append(render(one)[1] * 1000)
            gain = statistics.median(base) - statistics.median(patched)
            print(
                f"try {label:<30} CPU median {statistics.median(base):6.1f} → {statistics.median(patched):6.1f} ms "
                f"({gain:+.1f} ms){'' if same else '   OUTPUT DIFFERS'}"
            )


if __name__ == "__main__":
    main()
