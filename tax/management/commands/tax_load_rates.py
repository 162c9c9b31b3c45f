"""``manage.py tax_load_rates``: load (a new version of) the shipped VAT rate data file; safe to repeat."""

from pathlib import Path

from django.core.management.base import BaseCommand

from tax.rates import DATA_FILE, load_rate_file
from tax.services import tax_rates_load


class Command(BaseCommand):
    help = "Load VAT rates from tax/data/vat_rates.json (or --file); rates added in the app are never overwritten."

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, default=DATA_FILE, help="A rate data file in the same format.")

    def handle(self, *args, **options):
        report = tax_rates_load(data=load_rate_file(options["file"]))
        self.stdout.write(self.style.SUCCESS(report.summary()))
        for conflict in report.conflicts:
            self.stdout.write(self.style.WARNING(f"  conflict: {conflict}"))
