"""``manage.py schedule_outbox_sweep``: create or update the django-q2 schedule that sweeps the Outbox.

Every 10 minutes ``backbone.tasks.outbound_messages_sweep`` queues again the messages whose send task was lost
(a broker restart, a dropped one-off retry schedule). Sending is idempotent, so a message that was only slow is
not sent twice. Running the command again keeps one schedule; ``--disable`` removes it.
"""

from django.core.management.base import BaseCommand
from django.db import transaction
from django_q.models import Schedule

NAME = "Outbox sweep"
FUNC = "backbone.tasks.outbound_messages_sweep"
EVERY_MINUTES = 10


class Command(BaseCommand):
    help = "Create or update the Outbox sweep schedule (every 10 minutes); --disable removes it."

    def add_arguments(self, parser):
        parser.add_argument("--disable", action="store_true", help="Remove the schedule.")

    @transaction.atomic
    def handle(self, *args, **options):
        found = list(Schedule.objects.select_for_update().filter(func=FUNC).order_by("pk"))
        if options["disable"]:
            for schedule in found:
                schedule.delete()
            self.stdout.write(self.style.SUCCESS(f"Removed {len(found)} Outbox sweep schedule(s)."))
            return
        schedule = found[0] if found else Schedule(func=FUNC)
        for duplicate in found[1:]:
            duplicate.delete()
        created = schedule.pk is None
        schedule.name = NAME
        schedule.schedule_type = Schedule.MINUTES
        schedule.minutes = EVERY_MINUTES
        schedule.repeats = -1
        schedule.save()
        verb = "created" if created else "up to date"
        self.stdout.write(self.style.SUCCESS(f"Schedule “{NAME}” {verb}: every {EVERY_MINUTES} minutes."))
