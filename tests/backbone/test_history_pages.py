"""The History area and object timelines through Django's test client: constant queries, filters, the
field-by-field diff of one entry, chain verification, and who changed a customer and why."""

from __future__ import annotations

import datetime
import itertools
import re
import zoneinfo
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from backbone.models import AuditEntry
from customers.services import customer_create, customer_set_status, customer_update, product_create, product_update
from tests.customers.factories import ContactFactory, CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db

HISTORY_URL = reverse("history")
VERIFY_URL = reverse("history-verify")
LOCAL = zoneinfo.ZoneInfo(settings.TIME_ZONE)
BILLING = {"kind": "billing", "line1": "12 Rue de Rivoli", "postal_code": "75004", "city": "Paris", "country": "FR"}


def signed_in(client, user):
    client.force_login(user)
    return client


def product_at(when: datetime.datetime, *, user=None, **fields):
    """A product whose creation is recorded at ``when`` (django-simple-history's ``_history_date``)."""
    product = ProductFactory.build(**fields)
    product._history_date = when
    if user is not None:
        product._history_user = user
    product.save()
    return product


def entry_pks(response) -> list[int]:
    return [entry.pk for entry in response.context["entries"]]


def timeline_html(response) -> str:
    """The rendered change history of the page (the timeline section only)."""
    match = re.search(r'<section class="tl-timeline".*?</section>', response.content.decode(), re.S)
    assert match, "the page has no change history"
    return match.group(0)


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- the list ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [{}, {"date_from": "2000-01-01", "user": ""}], ids=["all", "filtered"])
def test_history_list_queries_do_not_grow_with_the_entries(client, make_user, query):
    # Fresh people rather than the one-per-role fixture: each person is a tracked record, too.
    auditor = make_user("aud", "auditor", is_staff=True)
    finance = make_user("fin", "finance")
    users = itertools.cycle([finance, None])
    while AuditEntry.objects.count() < 5:
        product_at(datetime.datetime.now(tz=LOCAL), user=next(users))
    assert AuditEntry.objects.filter(model_label="customers.product").exists()
    assert AuditEntry.objects.count() == 5
    signed_in(client, auditor)
    client.get(HISTORY_URL, query)  # warm the per-process caches
    with CaptureQueriesContext(connection) as few:
        response = client.get(HISTORY_URL, query)
    assert len(response.context["entries"]) == 5

    for _ in range(15):  # a customer, its billing address and a contact each, by nobody in particular
        ContactFactory(customer=CustomerFactory())
    assert AuditEntry.objects.count() == 50  # 5 + 15 * 3
    with CaptureQueriesContext(connection) as many:
        response = client.get(HISTORY_URL, query)
    assert len(response.context["entries"]) == 25
    assert {entry.model_label for entry in response.context["entries"]} >= {"customers.customer", "customers.contact"}
    assert len(many) == len(few), f"{len(few)} queries for 5 entries, {len(many)} for 50"


def test_history_list_shows_who_what_and_why_newest_first(client, auditor, finance):
    product = product_create(
        user=finance, data={"code": "CONS-SR", "name": "Senior consulting", "revenue_account": "8400"}
    )
    product_update(user=finance, product=product, data={"name": "Senior advisory"}, reason="Client-facing rename")
    response = signed_in(client, auditor).get(HISTORY_URL)

    entries = list(response.context["entries"])
    assert [entry.action for entry in entries[:2]] == ["~", "+"]
    assert entries[0].user == finance and entries[0].reason == "Client-facing rename"
    assert entries[0].changed_labels == ["Client-facing name"]
    assert entries[0].object_url == reverse("customers:product-detail", args=[product.public_id])
    row = text(response.content.decode().split("<tbody>")[1].split("</tr>")[0])
    assert "finance" in row and "Changed" in row and "Client-facing name" in row and "Client-facing rename" in row


def test_history_list_filters_by_model(client, auditor, finance):
    product_at(datetime.datetime.now(tz=LOCAL), user=finance)
    CustomerFactory()  # a customer and its billing address
    signed_in(client, auditor)

    customers = client.get(HISTORY_URL, {"model": "customers.customer"})
    assert {entry.model_label for entry in customers.context["entries"]} == {"customers.customer"}
    products = client.get(HISTORY_URL, {"model": "customers.product"})
    assert {entry.model_label for entry in products.context["entries"]} == {"customers.product"}
    assert len(customers.context["entries"]) == 1 and len(products.context["entries"]) == 1
    addresses = client.get(HISTORY_URL, {"model": "customers.address"})
    assert [entry.action for entry in addresses.context["entries"]] == ["+"]
    everything = client.get(HISTORY_URL)
    assert len(everything.context["entries"]) == AuditEntry.objects.count() > 3  # people are tracked, too
    assert customers.context["is_filtered"] and not everything.context["is_filtered"]


def test_history_list_filters_by_user(client, auditor, finance, make_user):
    wholesaler = make_user("wholesaler", "finance")
    mine = product_at(datetime.datetime.now(tz=LOCAL), user=finance, code="MINE")
    product_at(datetime.datetime.now(tz=LOCAL), user=wholesaler, code="THEIRS")
    product_at(datetime.datetime.now(tz=LOCAL), code="NOBODY")
    signed_in(client, auditor)

    def codes(**query):
        response = client.get(HISTORY_URL, {"model": "customers.product", **query})
        return [entry.object_repr.split(" ")[0] for entry in response.context["entries"]]

    assert codes(user="finance") == [mine.code]
    assert codes(user="FINANCE") == [mine.code]
    assert codes(user="wholesaler") == ["THEIRS"]
    assert codes(user="system") == ["NOBODY"]
    assert codes() == ["NOBODY", "THEIRS", "MINE"]
    assert codes(user="nobody-like-this") == []


def test_history_list_filters_by_local_date(client, auditor, finance):
    jan = product_at(datetime.datetime(2026, 1, 10, 12, 0, tzinfo=LOCAL), code="JAN")
    late_jan = product_at(datetime.datetime(2026, 1, 31, 23, 30, tzinfo=LOCAL), code="LATE-JAN")
    # 00:30 in Berlin on 1 February is still 31 January in UTC: the filter reads dates in local time.
    early_feb = product_at(datetime.datetime(2026, 2, 1, 0, 30, tzinfo=LOCAL), code="EARLY-FEB")
    mar = product_at(datetime.datetime(2026, 3, 20, 9, 0, tzinfo=LOCAL), code="MAR")
    signed_in(client, auditor)

    def codes(**query):
        response = client.get(HISTORY_URL, {"model": "customers.product", **query})
        assert response.status_code == 200
        return sorted(entry.object_repr.split(" ")[0] for entry in response.context["entries"])

    assert codes(date_to="2026-01-31") == sorted([str(jan.code), str(late_jan.code)])
    assert codes(date_from="2026-02-01") == sorted([early_feb.code, mar.code])
    assert codes(date_from="2026-02-01", date_to="2026-02-01") == [early_feb.code]
    assert codes(date_from="2026-01-31", date_to="2026-03-19") == sorted([late_jan.code, early_feb.code])
    assert codes(date_from="2027-01-01") == []


def test_history_list_combines_filters_and_explains_an_empty_result(client, auditor, finance):
    product_at(datetime.datetime(2026, 1, 10, 12, 0, tzinfo=LOCAL), user=finance)
    signed_in(client, auditor)
    response = client.get(HISTORY_URL, {"model": "customers.product", "user": "finance", "date_from": "2026-02-01"})
    assert list(response.context["entries"]) == []
    assert "No changes match these filters" in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        {"model": "auth.nonsense"},
        {"date_from": "2026-13-45"},
        {"date_from": "2026-03-01", "date_to": "2026-01-01"},
        {"action": "?"},
        {"obj": "x" * 500},
        {"page": "last"},
    ],
)
def test_history_list_survives_bad_filters(client, auditor, query):
    CustomerFactory()
    response = signed_in(client, auditor).get(HISTORY_URL, query)
    assert response.status_code == 200


def test_history_list_start_before_end_is_explained(client, auditor):
    response = signed_in(client, auditor).get(HISTORY_URL, {"date_from": "2026-03-01", "date_to": "2026-01-01"})
    assert "The end date is before the start date." in response.content.decode()


def test_history_list_finds_a_record_by_public_id_and_by_name(client, auditor):
    wanted = CustomerFactory(legal_name="Needle Ltd")
    CustomerFactory(legal_name="Haystack Ltd")
    signed_in(client, auditor)
    by_id = client.get(HISTORY_URL, {"obj": str(wanted.public_id)})
    assert {entry.object_pk for entry in by_id.context["entries"]} == {str(wanted.pk)}
    by_name = client.get(HISTORY_URL, {"obj": "needle", "model": "customers.customer"})
    assert [entry.object_pk for entry in by_name.context["entries"]] == [str(wanted.pk)]


def test_history_area_needs_the_audit_permission(client, sales, finance):
    assert signed_in(client, sales).get(HISTORY_URL).status_code == 403
    assert signed_in(client, finance).get(HISTORY_URL).status_code == 200
    client.logout()
    assert client.get(HISTORY_URL).status_code == 302


# --- one entry ---------------------------------------------------------------------------------------


def test_entry_detail_shows_the_field_by_field_diff(client, auditor, finance):
    product = product_create(
        user=finance,
        data={
            "code": "CONS-SR",
            "name": "Senior consulting",
            "revenue_account": "8400",
            "default_price_amount": Decimal("150"),
        },
    )
    product_update(
        user=finance,
        product=product,
        data={"name": "Senior advisory", "default_price_amount": Decimal("165")},
        reason="2027 price list",
    )
    entry = AuditEntry.objects.filter(model_label="customers.product", action="~").get()

    response = signed_in(client, auditor).get(reverse("history-entry", args=[entry.pk]))

    assert response.status_code == 200
    changes = {change.label: (change.old, change.new) for change in response.context["item"].changes}
    assert changes["Client-facing name"] == ("Senior consulting", "Senior advisory")
    assert changes["Default unit price"] == (Decimal("150.0000"), Decimal("165.0000"))
    assert "Code" not in changes  # unchanged fields are not listed
    body = text(response.content.decode())
    assert "Field by field" in body and "Before" in body and "After" in body
    assert "Senior consulting" in body and "Senior advisory" in body
    assert "2027 price list" in body and "finance" in body
    assert "The hash matches this entry's content." in body


def test_entry_detail_of_a_creation_lists_the_first_values(client, auditor, finance):
    product_create(
        user=finance, data={"code": "TRAVEL", "name": "Travel costs", "revenue_account": "8400", "kind": "expense"}
    )
    entry = AuditEntry.objects.get(model_label="customers.product")
    response = signed_in(client, auditor).get(reverse("history-entry", args=[entry.pk]))
    assert response.context["item"].initial
    body = text(response.content.decode())
    assert "Values when created" in body and "Travel costs" in body and "Expense" in body


def test_entry_detail_of_a_tampered_entry_says_so(client, auditor):
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL refuses to edit an audit entry (append-only trigger)")
    CustomerFactory()
    entry = AuditEntry.objects.order_by("id").first()
    AuditEntry.objects.filter(pk=entry.pk).update(reason="rewritten")
    response = signed_in(client, auditor).get(reverse("history-entry", args=[entry.pk]))
    assert "it was altered after it was written" in response.content.decode()


def test_unknown_entry_is_404(client, auditor):
    assert signed_in(client, auditor).get(reverse("history-entry", args=[999_999])).status_code == 404


# --- verifying the chain -----------------------------------------------------------------------------


def test_verify_reports_an_intact_chain(client, auditor):
    CustomerFactory.create_batch(2)  # two customers, two billing addresses
    total = AuditEntry.objects.count()
    assert total >= 4
    response = signed_in(client, auditor).post(VERIFY_URL)
    assert response.status_code == 302 and response["Location"] == HISTORY_URL
    message = f"The audit chain is intact: {total} entries checked, none altered or missing."
    assert [str(m) for m in get_messages(response.wsgi_request)] == [message]
    assert message in client.get(HISTORY_URL).content.decode()  # shown on the page it returns to
    assert "The audit chain is intact" not in client.get(HISTORY_URL).content.decode()  # and only once


def test_verify_reports_a_broken_chain(client, auditor):
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL refuses to edit an audit entry (append-only trigger)")
    CustomerFactory.create_batch(2)
    victim = AuditEntry.objects.order_by("id")[1]
    AuditEntry.objects.filter(pk=victim.pk).update(reason="nothing to see here")
    response = signed_in(client, auditor).post(VERIFY_URL, follow=True)
    assert f"The audit chain is broken at entry #{victim.pk}" in response.content.decode()


def test_verify_answers_post_only_and_needs_the_permission(client, auditor, sales):
    assert signed_in(client, auditor).get(VERIFY_URL).status_code == 405
    assert signed_in(client, sales).post(VERIFY_URL).status_code == 403


# --- the timeline on the customer page ---------------------------------------------------------------


@pytest.fixture
def changed_customer(sales, finance):
    customer = customer_create(user=sales, data={"legal_name": "Atelier Lumière SAS"}, addresses=[BILLING])
    customer_set_status(user=sales, customer=customer, status="active", reason="Signed the MSA")
    customer_update(user=finance, customer=customer, data={"payment_terms_days": 14}, reason="New AP policy")
    customer.refresh_from_db()
    return customer


def test_customer_timeline_shows_who_changed_what_and_why(client, sales, changed_customer):
    response = signed_in(client, sales).get(reverse("customers:customer-detail", args=[changed_customer.public_id]))
    timeline = timeline_html(response)
    items = [text(item) for item in re.findall(r"<li class=\"tl-timeline-item.*?</li>", timeline, re.S)]

    assert len(items) == 3  # newest first
    assert "finance" in items[0] and "Reason: New AP policy" in items[0]
    assert "Payment terms (net days)" in items[0] and "30" in items[0] and "14" in items[0]
    assert "sales" in items[1] and "Reason: Signed the MSA" in items[1]
    assert "Prospect" in items[1] and "Active" in items[1]
    assert "Created" in items[2] and "sales" in items[2] and "Values when created" in items[2]


def test_customer_timeline_is_shown_to_auditors(client, auditor, changed_customer):
    response = signed_in(client, auditor).get(reverse("customers:customer-detail", args=[changed_customer.public_id]))
    assert "Reason: New AP policy" in text(timeline_html(response))


def test_customer_timeline_is_hidden_from_another_sales_rep(client, make_user, changed_customer):
    other = make_user("rep-two", "sales")
    response = signed_in(client, other).get(reverse("customers:customer-detail", args=[changed_customer.public_id]))
    assert response.status_code == 200
    assert 'class="tl-timeline"' not in response.content.decode()
    assert "New AP policy" not in response.content.decode()


def test_every_kind_of_entry_has_a_working_detail_page(client, auditor, sales, finance, changed_customer):
    from customers.services import contact_create, contact_delete, legal_entity_create

    contact = contact_create(
        user=sales, customer=changed_customer, data={"last_name": "Martin", "email": "claire@atelier.test"}
    )
    contact_delete(user=sales, contact=contact, reason="Left the company")
    legal_entity_create(
        user=finance,
        data={
            "legal_name": "Studio Nord GmbH",
            "short_name": "Studio Nord",
            "line1": "Torstraße 1",
            "city": "Berlin",
            "country": "DE",
            "invoice_prefix": "SN",
        },
        bank_accounts=[
            {
                "bank_name": "Commerzbank",
                "account_holder": "Studio Nord GmbH",
                "iban": "DE89370400440532013000",
                "bic": "COBADEFFXXX",
                "currency": "EUR",
            }
        ],
    )
    signed_in(client, auditor)
    labels = set()
    for entry in AuditEntry.objects.all():
        response = client.get(reverse("history-entry", args=[entry.pk]))
        assert response.status_code == 200, (entry, response.status_code)
        assert "The hash matches this entry's content." in response.content.decode()
        labels.add((entry.model_label, entry.action))
    assert {("customers.contact", "-"), ("customers.bankaccount", "+"), ("auth.user", "+")} <= labels
    deleted = AuditEntry.objects.get(model_label="customers.contact", action="-")
    body = client.get(reverse("history-entry", args=[deleted.pk])).content.decode()
    assert "The record was deleted." in body and "Left the company" in body
    listing = client.get(HISTORY_URL, {"action": "-"})
    assert [entry.pk for entry in listing.context["entries"]] == [deleted.pk]
    assert listing.context["entries"][0].object_url is None  # no link to a page that is gone
