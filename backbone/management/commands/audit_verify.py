"""``manage.py audit_verify``: walk the audit chain and fail loudly if it was tampered with (for cron/CI)."""

import sys

from django.core.management.base import BaseCommand

from backbone.history import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the tamper-evident audit chain; exits with status 1 when an entry was altered or removed."

    def handle(self, *args, **options):
        intact, checked, broken = audit_chain_verify()
        if intact:
            self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {checked} entries checked."))
            return
        if broken is not None:
            message = (
                f"Audit chain broken at entry #{broken.pk} ({broken}, {broken.occurred_at.isoformat()}); "
                f"{checked} entries before it are intact."
            )
        else:
            message = f"Audit chain broken: the chain head does not match the last of {checked} entries."
        self.stderr.write(self.style.ERROR(message))
        # Exit even when called through call_command(): a broken chain must stop whatever runs it.
        sys.exit(1)
