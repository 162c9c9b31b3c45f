"""``manage.py schedule_invoice_runs``: create or update the django-q2 schedule of the monthly invoice runs.

The schedule calls ``billing.tasks_schedule.scheduled_invoice_runs_task`` on the 1st of every month at 06:00
(``settings.TIME_ZONE``): every active legal entity gets a run for the previous calendar month. Running the
command again changes nothing but what drifted (it never makes a second schedule); ``--disable`` removes
the schedule; ``--run-now`` also starts last month's runs at once (the runs themselves work in the queue, and
an entity that already has its run is left alone).
"""

from django.core.management.base import BaseCommand
from django.utils import timezone

from billing.schedules import invoice_run_schedule_ensure, invoice_run_schedule_remove, scheduled_invoice_runs


class Command(BaseCommand):
    help = "Create or update the monthly invoice run schedule (the 1st at 06:00); --disable removes it."

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--disable", action="store_true", help="Remove the schedule.")
        group.add_argument(
            "--run-now", action="store_true", help="Also start last month's runs now (idempotent, like the schedule)."
        )

    def handle(self, *args, **options):
        if options["disable"]:
            removed = invoice_run_schedule_remove()
            self.stdout.write(
                self.style.SUCCESS("Monthly invoice run schedule removed.")
                if removed
                else "There was no monthly invoice run schedule to remove."
            )
            return
        schedule, created = invoice_run_schedule_ensure()
        when = timezone.localtime(schedule.next_run).strftime("%Y-%m-%d %H:%M %Z")
        verb = "created" if created else "up to date"
        self.stdout.write(self.style.SUCCESS(f"Schedule “{schedule.name}” {verb}: next run {when}, then monthly."))
        if options["run_now"]:
            outcome = scheduled_invoice_runs()
            style = self.style.WARNING if outcome.refused else self.style.SUCCESS
            self.stdout.write(style(outcome.summary()))
