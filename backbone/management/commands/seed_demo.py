from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from backbone.demo import DEMO_USERS, seeders


class Command(BaseCommand):
    help = "Load the demo data (idempotent) and print the demo login of each role."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Seed even when DEMO_MODE is off.")

    def handle(self, *args, **options):
        password = getattr(settings, "DEMO_PASSWORD", "")
        if not (settings.DEMO_MODE or options["force"]):
            raise CommandError("seed_demo runs in demo mode only (DEMO_MODE=true) or with --force.")
        if not password:
            raise CommandError("Set DEMO_PASSWORD: the demo users need a password.")
        for seeder in seeders():
            with transaction.atomic():
                summary = seeder.run(password=password, stdout_write=self.stdout.write)
            self.stdout.write(f"  {seeder.name}: {summary}")
        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Sign in as (password for all: {password}):"))
        for username, first, last, roles in DEMO_USERS:
            self.stdout.write(f"  {username:<11} {first} {last} — {', '.join(roles)}")
