"""A person's notifications: the bell in the navbar with the unread count, the list (own notifications only,
paginated, constant queries), and marking one or all read — by POST, never by an auditor."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backbone.models import Notification
from backbone.roles import Role
from backbone.services import notify

pytestmark = pytest.mark.django_db

LIST_URL = reverse("notifications")
READ_URL = reverse("notification-read")


def signed_in(client, user):
    client.force_login(user)
    return client


def bell(response) -> str:
    """The navbar's bell link, as rendered."""
    match = re.search(r'<a [^>]*id="notification-bell".*?</a>', response.content.decode(), re.S)
    assert match, "the page has no notification bell"
    return match.group(0)


def text_of(response) -> str:
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).replace("&#x27;", "'")


@pytest.fixture
def pm(users):
    return users[Role.PROJECT_MANAGER]


@pytest.fixture
def inbox(pm, finance):
    """Three notifications of the project manager (one read), one of finance."""
    mine = notify(users=[pm], title="PRJ-000001: 75 % of the budget used", body="Data platform", url="/projects/")
    mine += notify(users=[pm], title="CO-000001 approved", url="/projects/")
    mine += notify(users=[pm], title="You manage PRJ-000002", url="https://evil.example/phish")
    Notification.objects.filter(pk=mine[1].pk).update(read_at=timezone.now())
    theirs = notify(users=[finance], title="CO-000002 waits for your approval")
    return {"mine": mine, "theirs": theirs}


def test_the_bell_shows_the_unread_count_and_links_to_the_list(client, pm, inbox):
    response = signed_in(client, pm).get(reverse("home"))
    link = bell(response)
    assert f'href="{LIST_URL}"' in link
    assert 'aria-label="Notifications, 2 unread"' in link
    assert ">2</span>" in link


def test_the_bell_without_unread_notifications_shows_no_count(client, finance, pm, inbox):
    Notification.objects.filter(user=finance).update(read_at=timezone.now())
    link = bell(signed_in(client, finance).get(reverse("home")))
    assert 'aria-label="Notifications, none unread"' in link
    assert "badge" not in link


def test_the_bell_caps_a_large_count(client, pm):
    Notification.objects.bulk_create(Notification(user=pm, title=f"n{i}") for i in range(120))
    assert ">99+</span>" in bell(signed_in(client, pm).get(reverse("home")))


def test_the_list_shows_only_the_persons_own_notifications_newest_first(client, pm, inbox):
    response = signed_in(client, pm).get(LIST_URL)
    assert response.status_code == 200
    titles = [n.title for n in response.context["notifications"]]
    assert titles == ["You manage PRJ-000002", "CO-000001 approved", "PRJ-000001: 75 % of the budget used"]
    text = text_of(response)
    assert "CO-000002 waits for your approval" not in text
    assert "2 unread." in text
    assert "Mark all as read" in text


def test_the_list_filters_the_unread(client, pm, inbox):
    response = signed_in(client, pm).get(LIST_URL, {"show": "unread"})
    assert [n.title for n in response.context["notifications"]] == [
        "You manage PRJ-000002",
        "PRJ-000001: 75 % of the budget used",
    ]


def test_an_empty_list_says_what_will_arrive(client, users):
    response = signed_in(client, users[Role.CONSULTANT]).get(LIST_URL)
    assert "No notifications yet" in text_of(response)
    unread = client.get(LIST_URL, {"show": "unread"})
    assert "No unread notifications" in text_of(unread)


def test_the_list_paginates_with_constant_queries(client, pm, django_assert_max_num_queries):
    Notification.objects.bulk_create(Notification(user=pm, title=f"n{i}") for i in range(3))
    signed_in(client, pm).get(LIST_URL)
    with CaptureQueriesContext(connection) as few:
        client.get(LIST_URL)
    Notification.objects.bulk_create(Notification(user=pm, title=f"m{i}") for i in range(60))
    with django_assert_max_num_queries(len(few)):
        response = client.get(LIST_URL)
    assert len(response.context["notifications"]) == 25
    assert response.context["page_obj"].paginator.num_pages == 3
    assert "Page 1 of 3" in text_of(response)


def test_marking_one_read_returns_to_the_list(client, pm, inbox):
    target = inbox["mine"][0]
    response = signed_in(client, pm).post(READ_URL, {"notification": target.pk, "next": f"{LIST_URL}?show=unread"})
    assert response.status_code == 302 and response["Location"] == f"{LIST_URL}?show=unread"
    target.refresh_from_db()
    assert target.read_at is not None
    assert Notification.objects.filter(user=pm, read_at__isnull=True).count() == 1


def test_opening_marks_read_and_follows_a_local_link_only(client, pm, inbox):
    signed_in(client, pm)
    local = client.post(READ_URL, {"notification": inbox["mine"][0].pk, "open": "1"})
    assert local.status_code == 302 and local["Location"] == "/projects/"
    outside = client.post(READ_URL, {"notification": inbox["mine"][2].pk, "open": "1", "next": "https://evil.example/"})
    assert outside.status_code == 302 and outside["Location"] == LIST_URL
    assert not Notification.objects.filter(user=pm, read_at__isnull=True).exists()


def test_marking_all_read_touches_only_the_persons_own(client, pm, finance, inbox):
    response = signed_in(client, pm).post(READ_URL, {"all": "1"}, follow=True)
    assert "2 notifications marked as read." in text_of(response)
    assert not Notification.objects.filter(user=pm, read_at__isnull=True).exists()
    assert Notification.objects.filter(user=finance, read_at__isnull=True).count() == 1
    again = client.post(READ_URL, {"all": "1"}, follow=True)
    assert "You have no unread notifications." in text_of(again)


@pytest.mark.parametrize("pk", ["theirs", "999999", "x"])
def test_another_persons_or_an_unknown_notification_is_not_found(client, pm, inbox, pk):
    value = inbox["theirs"][0].pk if pk == "theirs" else pk
    assert signed_in(client, pm).post(READ_URL, {"notification": value}).status_code == 404
    assert Notification.objects.get(pk=inbox["theirs"][0].pk).read_at is None


def test_auditors_read_their_notifications_but_change_nothing(client, auditor):
    notice = notify(users=[auditor], title="Audit export ready")[0]
    signed_in(client, auditor)
    page = client.get(LIST_URL)
    assert page.status_code == 200 and "Audit export ready" in text_of(page)
    assert READ_URL not in page.text
    assert client.post(READ_URL, {"notification": notice.pk}).status_code == 403
    assert client.post(READ_URL, {"all": "1"}).status_code == 403
    notice.refresh_from_db()
    assert notice.read_at is None


def test_marking_read_is_post_only(client, pm):
    assert signed_in(client, pm).get(READ_URL).status_code == 405


def test_signed_out_visitors_go_to_sign_in(client):
    for url in (LIST_URL, READ_URL):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
