"""factory-boy factories for customers, contacts, catalog and legal entities (test set-up only; the code under
test always goes through the services)."""

from __future__ import annotations

from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from customers.models import Address, BankAccount, Contact, Customer, LegalEntity, Product, TaxRegistration


class LegalEntityFactory(DjangoModelFactory):
    class Meta:
        model = LegalEntity
        django_get_or_create = ("legal_name",)

    legal_name = factory.Sequence(lambda n: f"Studio Entity {n} GmbH")
    short_name = factory.Sequence(lambda n: f"Entity {n}")
    line1 = "Torstraße 1"
    postal_code = "10119"
    city = "Berlin"
    country = "DE"
    invoice_prefix = factory.Sequence(lambda n: f"E{n}")


class CustomerFactory(DjangoModelFactory):
    class Meta:
        model = Customer
        skip_postgeneration_save = True

    number = factory.Sequence(lambda n: f"CUST-{n + 100000:06d}")
    legal_name = factory.Sequence(lambda n: f"Customer {n} Ltd")
    display_name = factory.LazyAttribute(lambda o: o.legal_name.removesuffix(" Ltd"))
    status = Customer.Status.ACTIVE

    billing_address = factory.RelatedFactory(
        "tests.customers.factories.AddressFactory", factory_related_name="customer"
    )


class AddressFactory(DjangoModelFactory):
    class Meta:
        model = Address

    customer = factory.SubFactory(CustomerFactory, billing_address=None)
    kind = Address.Kind.BILLING
    line1 = "1 Grand Canal Square"
    postal_code = "D02 P820"
    city = "Dublin"
    country = "IE"


class TaxRegistrationFactory(DjangoModelFactory):
    class Meta:
        model = TaxRegistration

    customer = factory.SubFactory(CustomerFactory)
    country = "IE"
    number = "IE6433435F"


class ContactFactory(DjangoModelFactory):
    class Meta:
        model = Contact

    customer = factory.SubFactory(CustomerFactory)
    first_name = "Aoife"
    last_name = factory.Sequence(lambda n: f"Byrne{n}")
    email = factory.Sequence(lambda n: f"ap{n}@example.test")
    role = Contact.Role.BILLING
    receives_invoices = True


class ProductFactory(DjangoModelFactory):
    class Meta:
        model = Product

    code = factory.Sequence(lambda n: f"SVC-{n:03d}")
    name = factory.Sequence(lambda n: f"Service {n}")
    unit = "HUR"
    default_price_amount = Decimal("120.0000")
    revenue_account = "8400"


class BankAccountFactory(DjangoModelFactory):
    class Meta:
        model = BankAccount

    legal_entity = factory.SubFactory(LegalEntityFactory)
    bank_name = "Commerzbank"
    account_holder = "Studio GmbH"
    iban = "DE89370400440532013000"
    bic = "COBADEFFXXX"
