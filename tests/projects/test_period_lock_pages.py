"""The locked-periods page through Django's test client: the last 18 months with their state for everyone
who may see them, finance locking a month after a confirmation, the service refusing duplicates, and no
unlock anywhere."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backbone.errors import ValidationFailed
from projects import timesheets as ts
from projects.models import LockedPeriod

pytestmark = pytest.mark.django_db

LIST_URL = reverse("projects:period-list")
LOCK_URL = reverse("projects:period-lock")


def signed_in(client, user):
    client.force_login(user)
    return client


def text_of(response) -> str:
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", response.content.decode(), flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\s+", " ", text)
    return text.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&")


def flashed(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def months_ago(count: int) -> dt.date:
    month = timezone.localdate().replace(day=1)
    for _ in range(count):
        month = (month - dt.timedelta(days=1)).replace(day=1)
    return month


def lock(month: dt.date, by) -> LockedPeriod:
    return ts.period_lock(actor=by, month=month)


# --- the list -----------------------------------------------------------------------------------------


def test_finance_sees_the_last_18_months_with_their_state_and_lock_buttons(client, people):
    locked = lock(months_ago(2), people["finance"])
    lock(months_ago(18), people["finance"])  # older than the window: not listed
    response = signed_in(client, people["finance"]).get(LIST_URL)
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [row["month"] for row in rows] == [months_ago(n) for n in range(18)]
    assert rows[0]["current"] and rows[2]["period"] == locked
    assert [row["month"] for row in rows if row["period"]] == [months_ago(2)]
    text = text_of(response)
    assert f"Locked by finance on {timezone.localtime(locked.locked_at):%Y-%m-%d %H:%M}" in text
    assert "there is no unlock" in text.lower()
    html = response.content.decode()
    assert f"{LOCK_URL}?month={months_ago(1):%Y-%m}" in html
    assert f"{LOCK_URL}?month={months_ago(2):%Y-%m}" not in html  # locked already


@pytest.mark.parametrize("role", ["consultant", "pm", "executive", "auditor"])
def test_everyone_with_view_permission_sees_which_months_are_locked_without_lock_buttons(client, people, role):
    lock(months_ago(1), people["finance"])
    response = signed_in(client, people[role]).get(LIST_URL)
    assert response.status_code == 200
    assert response.context["can_lock"] is False
    assert [row["month"] for row in response.context["rows"] if row["period"]] == [months_ago(1)]
    assert LOCK_URL not in response.content.decode()
    assert "Not yet approved" not in text_of(response)  # finance's working figures only


def test_admins_may_lock(client, people):
    response = signed_in(client, people["admin"]).get(LIST_URL)
    assert response.context["can_lock"] is True


def test_everyone_who_logs_time_sees_the_locks_and_signed_out_goes_to_sign_in(client, people):
    assert signed_in(client, people["sales"]).get(LIST_URL).status_code == 200
    nobody = get_user_model().objects.create_user(username="norole", password="pw")
    assert signed_in(client, nobody).get(LIST_URL).status_code == 403
    client.logout()
    response = client.get(LIST_URL)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_list_counts_what_is_not_approved_yet_per_month(client, people, team):
    # The T&M project runs 2026-03-02 … 2026-08-31; the entries are dated in it.
    march = dt.date(2026, 3, 9)
    ts.expense_create(
        actor=people["consultant"], project=team, date=march, category="travel", amount="10", description="Bus"
    )
    ts.time_entry_create(actor=people["consultant"], project=team, date=march, hours="2", description="Work")
    ts.time_entry_create(actor=people["consultant"], project=team, date=march, hours="1", description="More")
    response = signed_in(client, people["finance"]).get(LIST_URL)
    row = next((row for row in response.context["rows"] if row["month"] == dt.date(2026, 3, 1)), None)
    if row is None:  # today is more than 18 months after March 2026
        pytest.skip("March 2026 is outside the page's window today.")
    assert row["pending"] == {"time": 2, "expenses": 1}
    assert "2 time entries, 1 expense" in text_of(response)


def test_list_queries_do_not_grow_with_locked_months(client, people, django_assert_max_num_queries):
    signed_in(client, people["finance"])
    client.get(LIST_URL)
    with CaptureQueriesContext(connection) as one:
        assert client.get(LIST_URL).status_code == 200
    for count in range(1, 12):
        lock(months_ago(count), people["finance"] if count % 2 else people["admin"])
    with django_assert_max_num_queries(len(one)):
        response = client.get(LIST_URL)
    assert sum(1 for row in response.context["rows"] if row["period"]) == 11


# --- locking ------------------------------------------------------------------------------------------


def test_lock_asks_first_explaining_the_consequences(client, people):
    month = months_ago(1)
    response = signed_in(client, people["finance"]).get(LOCK_URL, {"month": f"{month:%Y-%m}"})
    assert response.status_code == 200
    text = text_of(response)
    assert f"Lock {month:%B %Y}?" in text
    assert f"nobody can log time or expenses dated in {month:%B %Y}" in text
    assert "There is no unlock" in text
    assert f'name="month" value="{month:%Y-%m}"' in response.content.decode()
    assert not LockedPeriod.objects.exists()  # GET changes nothing


def test_lock_the_month(client, people):
    month = months_ago(1)
    response = signed_in(client, people["finance"]).post(LOCK_URL, {"month": f"{month:%Y-%m}"})
    assert response.status_code == 302 and response["Location"] == LIST_URL
    period = LockedPeriod.objects.get()
    assert (period.month, period.locked_by) == (month, people["finance"])
    assert flashed(response) == [
        f"{month:%B %Y} is locked: no time or expense dated in it can be logged, changed or submitted any more."
    ]


def test_the_service_refuses_a_duplicate_and_the_page_says_so(client, people):
    month = months_ago(3)
    lock(month, people["admin"])
    signed_in(client, people["finance"])
    response = client.post(LOCK_URL, {"month": f"{month:%Y-%m}"})
    assert response.status_code == 302
    assert flashed(response) == [f"{month:%B %Y} was not locked. {month:%B %Y} is already locked."]
    assert LockedPeriod.objects.count() == 1
    confirm = client.get(LOCK_URL, {"month": f"{month:%Y-%m}"})
    assert confirm.status_code == 302 and "is already locked (by admin on" in flashed(confirm)[-1]


@pytest.mark.parametrize("value", ["", "March", "2026-13", "0000-01"])
def test_a_bad_month_is_said_so(client, people, value):
    signed_in(client, people["finance"])
    response = client.post(LOCK_URL, {"month": value})
    assert response.status_code == 302
    assert flashed(response)[-1].startswith("Nothing was locked. Choose the month to lock")
    # Without a month the confirmation offers last month; a bad one goes back to the list.
    assert client.get(LOCK_URL, {"month": value}).status_code == (200 if value == "" else 302)
    assert not LockedPeriod.objects.exists()


def test_the_lock_page_offers_last_month_by_default(client, people):
    response = signed_in(client, people["finance"]).get(LOCK_URL)
    last_month = (dt.date.today().replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    assert response.status_code == 200 and response.context["month"] == last_month


@pytest.mark.parametrize("role", ["pm", "consultant", "sales", "executive", "auditor"])
def test_only_finance_and_admins_lock(client, people, role):
    signed_in(client, people[role])
    assert client.get(LOCK_URL, {"month": f"{months_ago(1):%Y-%m}"}).status_code == 403
    assert client.post(LOCK_URL, {"month": f"{months_ago(1):%Y-%m}"}).status_code == 403
    assert not LockedPeriod.objects.exists()


def test_lock_signed_out_goes_to_sign_in(client):
    response = client.post(LOCK_URL, {"month": f"{months_ago(1):%Y-%m}"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not LockedPeriod.objects.exists()


def test_a_locked_month_stops_logging_in_it(client, people, team):
    lock(dt.date(2026, 3, 1), people["finance"])
    with pytest.raises(ValidationFailed, match="March 2026 is locked by finance"):
        ts.expense_create(
            actor=people["consultant"],
            project=team,
            date=dt.date(2026, 3, 9),
            category="travel",
            amount="10",
            description="Bus",
        )
