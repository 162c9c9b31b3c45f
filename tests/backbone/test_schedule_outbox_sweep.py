"""The Outbox sweep schedule: one django-q2 schedule however often the command runs; --disable removes it."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django_q.models import Schedule

pytestmark = pytest.mark.django_db


def test_the_command_makes_one_schedule_and_disable_removes_it():
    call_command("schedule_outbox_sweep")
    call_command("schedule_outbox_sweep")
    schedules = Schedule.objects.filter(func="backbone.tasks.outbound_messages_sweep")
    assert schedules.count() == 1
    schedule = schedules.get()
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 10, -1)

    call_command("schedule_outbox_sweep", "--disable")
    assert not Schedule.objects.filter(func="backbone.tasks.outbound_messages_sweep").exists()
