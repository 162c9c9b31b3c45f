"""Customer services: every guard, all-or-nothing saves, history with the acting user."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.models import AuditEntry, ExternalId
from customers.models import Address, Contact, Customer, TaxRegistration
from customers.selectors import customer_edit_scope
from customers.services import (
    contact_create,
    contact_update,
    customer_create,
    customer_link_external_id,
    customer_set_status,
    customer_update,
)

pytestmark = pytest.mark.django_db

BILLING = {"kind": "billing", "line1": "12 Rue de Rivoli", "postal_code": "75004", "city": "Paris", "country": "FR"}


def create(user, **overrides):
    kwargs = {
        "user": user,
        "data": {"legal_name": "Atelier Lumière SAS", "default_currency": "EUR"},
        "addresses": [BILLING],
        "registrations": [{"country": "FR", "number": "FR 40 303 265 045"}],
        "contacts": [
            {
                "first_name": "Claire",
                "last_name": "Martin",
                "email": "Claire@Atelier.test",
                "role": "billing",
                "receives_invoices": True,
            }
        ],
    }
    kwargs.update(overrides)
    return customer_create(**kwargs)


def test_customer_create_numbers_normalises_and_owns(sales):
    customer = create(sales)
    assert customer.number.startswith("CUST-") and len(customer.number) == 11
    assert customer.display_name == "Atelier Lumière SAS"
    assert customer.owner == sales
    assert customer.registrations.get().number == "FR40303265045"
    assert customer.contacts.get().email == "claire@atelier.test"
    assert sales.has_perm("customers.change_customer", customer)
    second = create(sales, data={"legal_name": "Second SARL"})
    assert int(second.number[5:]) == int(customer.number[5:]) + 1


def test_customer_create_refuses_invalid_vat_id_and_saves_nothing(sales):
    with pytest.raises(ValidationFailed) as caught:
        create(sales, registrations=[{"country": "DE", "number": "DE123456789"}])
    assert "check digit" in caught.value.errors["registrations.0.number"][0]
    assert not Customer.objects.exists() and not Address.objects.exists() and not Contact.objects.exists()


def test_customer_create_refuses_vat_id_of_another_country(sales):
    with pytest.raises(ValidationFailed) as caught:
        create(sales, registrations=[{"country": "FR", "number": "DE123456788"}])
    assert "not the VAT prefix" in caught.value.errors["registrations.0.number"][0]


def test_customer_create_requires_a_billing_address(sales):
    with pytest.raises(ValidationFailed) as caught:
        create(sales, addresses=[{**BILLING, "kind": "shipping"}])
    assert "billing address is required" in caught.value.errors["addresses"][0]
    assert not Customer.objects.exists()


def test_customer_create_refuses_two_billing_addresses(sales):
    with pytest.raises(ValidationFailed) as caught:
        create(sales, addresses=[BILLING, BILLING])
    assert "Only one billing address" in caught.value.errors["addresses"][0]


def test_customer_create_refuses_unknown_country(sales):
    with pytest.raises(ValidationFailed) as caught:
        create(sales, addresses=[{**BILLING, "country": "XX"}])
    assert "not an ISO 3166 country code" in caught.value.errors["addresses.0.country"][0]


def test_customer_create_reports_every_error_at_once(sales):
    with pytest.raises(ValidationFailed) as caught:
        create(
            sales,
            data={"legal_name": "", "default_currency": "XYZ"},
            addresses=[{**BILLING, "city": ""}],
            contacts=[{"last_name": "X", "email": "not-an-email"}],
        )
    errors = caught.value.errors
    assert {"legal_name", "default_currency", "addresses.0.city", "contacts.0.email"} <= set(errors)


def test_customer_create_refuses_duplicate_contact_email(sales):
    contact = {"last_name": "Martin", "email": "ap@atelier.test"}
    with pytest.raises(ValidationFailed) as caught:
        create(sales, contacts=[contact, {**contact, "email": "AP@atelier.test"}])
    assert "listed twice" in caught.value.errors["contacts.1.email"][0]


def test_customer_create_refuses_roles_without_add_permission(users):
    for role in ("consultant", "finance", "executive", "project_manager"):
        with pytest.raises(NotPermitted):
            create(users[role])


def test_auditor_changes_nothing(auditor, sales):
    with pytest.raises(NotPermitted, match="Auditors"):
        create(auditor)
    customer = create(sales)
    with pytest.raises(NotPermitted):
        customer_update(user=auditor, customer=customer, data={"payment_terms_days": 10})


def test_sales_rep_cannot_create_for_another_owner(sales, make_user):
    other = make_user("other-rep", "sales")
    with pytest.raises(ValidationFailed) as caught:
        create(sales, data={"legal_name": "X GmbH", "owner": other})
    assert "owner" in caught.value.errors


def test_admin_hands_account_to_a_sales_rep_and_permission_moves(admin_user, sales, make_user):
    other = make_user("other-rep", "sales")
    customer = create(sales)
    customer_update(user=admin_user, customer=customer, data={"owner": other}, reason="Territory change")
    customer.refresh_from_db()
    assert customer.owner == other
    assert other.has_perm("customers.change_customer", customer)
    sales = type(sales).objects.get(pk=sales.pk)  # drop guardian's per-user cache
    assert not sales.has_perm("customers.change_customer", customer)


def test_owner_must_be_a_sales_rep(admin_user, users):
    with pytest.raises(ValidationFailed) as caught:
        create(admin_user, data={"legal_name": "X GmbH", "owner": users["consultant"]})
    assert "not a sales rep" in caught.value.errors["owner"][0]


def test_sales_rep_cannot_edit_another_reps_account(sales, make_user):
    other = make_user("other-rep", "sales")
    customer = create(other)
    assert customer_edit_scope(user=sales, customer=customer) is None
    with pytest.raises(NotPermitted):
        customer_update(user=sales, customer=customer, data={"notes": "mine now"})


def test_finance_edits_billing_fields_only(finance, sales):
    customer = create(sales)
    assert customer_edit_scope(user=finance, customer=customer) == "billing"
    customer_update(user=finance, customer=customer, data={"payment_terms_days": 14, "purchase_order_required": True})
    customer.refresh_from_db()
    assert customer.payment_terms_days == 14 and customer.purchase_order_required
    with pytest.raises(NotPermitted) as caught:
        customer_update(user=finance, customer=customer, data={"legal_name": "Renamed SAS"})
    assert "legal_name" in caught.value.errors


def test_update_replaces_nested_rows_by_public_id(sales):
    customer = create(sales)
    address = customer.addresses.get()
    customer_update(
        user=sales,
        customer=customer,
        data={},
        addresses=[
            {**BILLING, "public_id": str(address.public_id), "city": "Lyon"},
            {**BILLING, "kind": "shipping", "city": "Nantes"},
        ],
        contacts=[],
    )
    assert customer.addresses.get(kind="billing").pk == address.pk
    assert customer.addresses.get(kind="billing").city == "Lyon"
    assert customer.addresses.filter(kind="shipping").count() == 1
    assert not customer.contacts.exists()


def test_update_refuses_foreign_nested_row(sales):
    first, second = create(sales), create(sales, data={"legal_name": "Other SARL"})
    foreign = second.addresses.get()
    with pytest.raises(ValidationFailed) as caught:
        customer_update(
            user=sales, customer=first, data={}, addresses=[{**BILLING, "public_id": str(foreign.public_id)}]
        )
    assert "addresses.0.public_id" in caught.value.errors


def test_update_that_fails_changes_nothing(sales):
    customer = create(sales)
    with pytest.raises(ValidationFailed):
        customer_update(
            user=sales,
            customer=customer,
            data={"payment_terms_days": 60},
            registrations=[{"country": "FR", "number": "FR00000000000"}],
        )
    customer.refresh_from_db()
    assert customer.payment_terms_days == 30
    assert customer.registrations.get().number == "FR40303265045"


def test_parent_cannot_form_a_loop(sales):
    parent = create(sales, data={"legal_name": "Group SE"})
    child = create(sales, data={"legal_name": "Child SAS", "parent": parent})
    with pytest.raises(ValidationFailed, match="loop"):
        customer_update(user=sales, customer=parent, data={"parent": child})
    with pytest.raises(ValidationFailed, match="own parent"):
        customer_update(user=sales, customer=parent, data={"parent": parent})


def test_early_discount_needs_days_within_terms(sales):
    with pytest.raises(ValidationFailed) as caught:
        create(sales, data={"legal_name": "X", "early_discount_percent": Decimal("2.00")})
    assert "early_discount_days" in caught.value.errors
    with pytest.raises(ValidationFailed) as caught:
        create(sales, data={"legal_name": "X", "early_discount_percent": Decimal("2"), "early_discount_days": 30})
    assert "shorter than the payment terms" in caught.value.errors["early_discount_days"][0]


def test_status_follows_the_transition_table(sales):
    customer = create(sales)
    assert customer.status == Customer.Status.PROSPECT
    customer = customer_set_status(user=sales, customer=customer, status="active")
    customer = customer_set_status(user=sales, customer=customer, status="on_hold", reason="Credit hold")
    with pytest.raises(ValidationFailed, match="why"):
        customer_set_status(user=sales, customer=customer, status="archived")
    customer = customer_set_status(user=sales, customer=customer, status="archived", reason="Closed down")
    with pytest.raises(TransitionNotAllowed):
        customer_set_status(user=sales, customer=customer, status="on_hold")
    with pytest.raises(ValidationFailed):
        customer_set_status(user=sales, customer=customer, status="deleted")
    assert customer.history.first().history_change_reason == "Closed down"


def test_new_customer_cannot_start_archived(sales):
    with pytest.raises(ValidationFailed) as caught:
        create(sales, data={"legal_name": "X", "status": "archived"})
    assert "status" in caught.value.errors


def test_history_records_user_and_reason_and_audit_chain(sales):
    customer = create(sales, reason="Signed NDA, onboarding")
    record = customer.history.first()
    assert record.history_user == sales
    assert record.history_change_reason == "Signed NDA, onboarding"
    entry = AuditEntry.objects.filter(model_label="customers.customer", object_public_id=customer.public_id).get()
    assert entry.user == sales and entry.action == "+"
    customer_update(user=sales, customer=customer, data={"payment_terms_days": 45}, reason="Renegotiated")
    change = AuditEntry.objects.filter(model_label="customers.customer", action="~").get()
    assert change.changed_fields == ["payment_terms_days"]
    assert change.reason == "Renegotiated"


def test_external_ids_link_once_and_never_move(sales):
    customer = create(sales, external_ids=[{"system": "hubspot", "external_id": "HS-1"}])
    other = create(sales, data={"legal_name": "Other SARL"})
    ct = ContentType.objects.get_for_model(Customer)
    assert ExternalId.objects.get(content_type=ct, system="hubspot").object_id == customer.pk
    assert customer_link_external_id(user=sales, customer=customer, system="hubspot", external_id="HS-1")
    with pytest.raises(Conflict, match="already belongs"):
        customer_link_external_id(user=sales, customer=other, system="hubspot", external_id="HS-1")
    with pytest.raises(Conflict, match="never change"):
        customer_link_external_id(user=sales, customer=customer, system="hubspot", external_id="HS-2")


def test_duplicate_external_id_on_create_saves_nothing(sales):
    create(sales, external_ids=[{"system": "hubspot", "external_id": "HS-1"}])
    with pytest.raises(Conflict):
        create(sales, data={"legal_name": "Dup SARL"}, external_ids=[{"system": "hubspot", "external_id": "HS-1"}])
    assert Customer.objects.count() == 1


def test_contact_services_check_scope_and_duplicates(sales, make_user):
    customer = create(sales)
    contact = contact_create(user=sales, customer=customer, data={"last_name": "Dubois", "email": "d@x.test"})
    with pytest.raises(ValidationFailed) as caught:
        contact_create(user=sales, customer=customer, data={"last_name": "Other", "email": "D@x.test"})
    assert "already a contact" in caught.value.errors["email"][0]
    contact_update(user=sales, contact=contact, data={"receives_reminders": True})
    contact.refresh_from_db()
    assert contact.receives_reminders
    stranger = make_user("stranger", "sales")
    with pytest.raises(NotPermitted):
        contact_update(user=stranger, contact=contact, data={"phone": "1"})


def test_registration_validated_at_is_set(sales):
    customer = create(sales)
    assert TaxRegistration.objects.get(customer=customer).validated_at is not None


def test_finance_may_hold_and_release_but_not_archive(finance, sales):
    customer = customer_set_status(user=sales, customer=create(sales), status="active")
    customer = customer_set_status(user=finance, customer=customer, status="on_hold", reason="Overdue")
    customer = customer_set_status(user=finance, customer=customer, status="active", reason="Paid")
    with pytest.raises(NotPermitted, match="on hold"):
        customer_set_status(user=finance, customer=customer, status="archived", reason="No")


def test_swapping_unique_values_between_rows_is_a_conflict_not_a_crash(sales):
    customer = create(
        sales, contacts=[{"last_name": "A", "email": "a@x.test"}, {"last_name": "B", "email": "b@x.test"}]
    )
    a, b = customer.contacts.order_by("last_name")
    with pytest.raises(Conflict, match="two steps"):
        customer_update(
            user=sales,
            customer=customer,
            data={},
            contacts=[
                {"public_id": str(a.public_id), "last_name": "A", "email": "b@x.test"},
                {"public_id": str(b.public_id), "last_name": "B", "email": "a@x.test"},
            ],
        )
    assert sorted(customer.contacts.values_list("last_name", "email")) == [("A", "a@x.test"), ("B", "b@x.test")]


def test_unchanged_nested_rows_are_not_rewritten(sales):
    customer = create(sales)
    address = customer.addresses.get()
    before = address.history.count()
    customer_update(
        user=sales, customer=customer, data={}, addresses=[{**BILLING, "public_id": str(address.public_id)}]
    )
    assert address.history.count() == before


def test_legal_entity_update_keeps_unchanged_children(admin_user):
    from customers.services import legal_entity_create, legal_entity_update

    account = {
        "bank_name": "Commerzbank",
        "account_holder": "Studio GmbH",
        "iban": "DE89 3704 0044 0532 0130 00",
        "bic": "COBADEFFXXX",
        "currency": "EUR",
        "is_default": True,
    }
    entity = legal_entity_create(
        user=admin_user,
        data={
            "legal_name": "Studio GmbH",
            "short_name": "Studio",
            "line1": "Torstraße 1",
            "city": "Berlin",
            "country": "DE",
            "invoice_prefix": "DE",
        },
        registrations=[{"country": "DE", "number": "DE136585820"}],
        bank_accounts=[account],
    )
    bank = entity.bank_accounts.get()
    assert bank.iban == "DE89370400440532013000"
    legal_entity_update(
        user=admin_user,
        entity=entity,
        data={"short_name": "Studio Berlin"},
        bank_accounts=[{**account, "public_id": str(bank.public_id)}],
    )
    assert entity.bank_accounts.get().public_id == bank.public_id
    with pytest.raises(ValidationFailed) as caught:
        legal_entity_update(
            user=admin_user, entity=entity, data={}, bank_accounts=[{**account, "iban": "DE89 3704 0044 0532 0130 01"}]
        )
    assert "check digits" in caught.value.errors["bank_accounts.0.iban"][0]


def test_logo_must_be_a_real_png_or_jpeg(admin_user):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from customers.services import legal_entity_create

    data = {
        "legal_name": "Logo GmbH",
        "short_name": "Logo",
        "line1": "Torstraße 1",
        "city": "Berlin",
        "country": "DE",
        "invoice_prefix": "LG",
    }
    svg = SimpleUploadedFile("logo.png", b"<svg onload='alert(1)'></svg>", content_type="image/png")
    with pytest.raises(ValidationFailed) as caught:
        legal_entity_create(user=admin_user, data={**data, "logo": svg})
    assert "PNG or JPEG" in caught.value.errors["logo"][0]
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "#1F6FEB").save(buffer, format="PNG")
    png = SimpleUploadedFile("logo.png", buffer.getvalue(), content_type="image/png")
    assert legal_entity_create(user=admin_user, data={**data, "logo": png}).logo
