"""Benchmark: the tax engine on documents of realistic and large size, without the database.

Pure engine time (rates from the shipped data file): what an invoice run of many drafts or a live preview
of a long quote costs. Run: python bench/bench_tax_engine.py [--lines 500] [--documents 200]
"""

from __future__ import annotations

import argparse
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

from tax.context import TaxContext  # noqa: E402
from tax.rates import RateBook  # noqa: E402
from tax.rules import RulesEngine  # noqa: E402

SCENARIOS = {
    "domestic DE": ({"country": "DE"}, {"country": "DE"}),
    "reverse charge DE→FR": (
        {"country": "DE"},
        {"country": "FR", "registrations": [{"country": "FR", "number": "FR40303265045"}]},
    ),
    "B2C e-services AT→IT above threshold": (
        {"country": "AT", "oss_registered": True, "eu_b2c_threshold_exceeded": True},
        {"country": "IT", "is_business": False},
    ),
    "GB seller to DE business": ({"country": "GB"}, {"country": "DE"}),
}


def context(seller: dict, buyer: dict, lines: int) -> TaxContext:
    categories = ["S", "S", "S", "AA", "Z", "E"]
    kinds = ["general_service", "electronic_service", "goods"]
    return TaxContext.from_dict(
        {
            "seller": seller,
            "buyer": buyer,
            "lines": [
                {
                    "id": str(n),
                    "net_amount": str(Decimal(n * 137 % 99_991) / 100),
                    "category": categories[n % len(categories)],
                    "supply_kind": kinds[n % len(kinds)] if seller["country"] != "DE" else "general_service",
                }
                for n in range(1, lines + 1)
            ],
            "tax_point": "2026-06-30",
            "currency": "EUR",
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=500, help="lines per document")
    parser.add_argument("--documents", type=int, default=200, help="documents per scenario")
    args = parser.parse_args()
    book = RateBook.from_file()
    engine = RulesEngine()
    print(f"Tax engine {engine.name} {engine.version}, rate data {book.version}")
    print(f"{args.documents} documents x {args.lines} lines per scenario\n")
    for label, (seller, buyer) in SCENARIOS.items():
        ctx = context(seller, buyer, args.lines)
        timings = []
        for _ in range(args.documents):
            start = time.perf_counter()
            engine.calculate(ctx, rates=book)
            timings.append(time.perf_counter() - start)
        per_line_us = statistics.median(timings) / args.lines * 1e6
        print(
            f"{label:40} median {statistics.median(timings) * 1000:7.2f} ms/document"
            f"  p95 {sorted(timings)[int(len(timings) * 0.95) - 1] * 1000:7.2f} ms  ({per_line_us:5.1f} µs/line)"
        )


if __name__ == "__main__":
    main()
