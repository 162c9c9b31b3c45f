"""``manage.py tax_recheck``: recompute stored tax calculations and report every difference.

Each calculation is recomputed from its stored context with the rate data in the database (the engine picks
the rates in force on the stored tax point date) and the configured engine. A difference means the rates
of that date or the rules changed since the decision was made, or the stored row was altered; either way
someone must look. Exits with status 1 when anything differs, so it can run from cron or CI.
"""

import sys

from django.core.management.base import BaseCommand

from tax.models import TaxCalculation
from tax.selectors import rate_book
from tax.services import tax_calculation_recheck


class Command(BaseCommand):
    help = "Recompute stored tax calculations with the rate data of their date and report every difference."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="Only calculations with a tax point on or after this date (YYYY-MM-DD).")
        parser.add_argument("--locked-only", action="store_true", help="Only evidence of issued documents.")

    def handle(self, *args, **options):
        calculations = TaxCalculation.objects.order_by("tax_point", "id")
        if options["since"]:
            calculations = calculations.filter(tax_point__gte=options["since"])
        if options["locked_only"]:
            calculations = calculations.filter(locked_at__isnull=False)
        book = rate_book()
        checked = differing = 0
        for calculation in calculations.iterator(chunk_size=500):
            checked += 1
            differences = tax_calculation_recheck(calculation=calculation, rates=book)
            if differences:
                differing += 1
                label = calculation.document_ref or calculation.purpose or "no document"
                self.stdout.write(
                    self.style.WARNING(f"{calculation.public_id} ({label}, tax point {calculation.tax_point}):")
                )
                for difference in differences:
                    self.stdout.write(f"  - {difference}")
        summary = f"{checked} calculations rechecked with rate data {book.version}: {differing} with differences."
        if differing:
            self.stderr.write(self.style.ERROR(summary))
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS(summary))
