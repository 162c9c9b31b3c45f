"""Legal entities and customers as the parties of a tax calculation (customers.tax_parties), through the
real engine and the shipped rate data, and the threshold registry of tax.thresholds."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backbone.errors import ValidationFailed
from customers.models import Customer, ExemptionCertificate, LegalEntityRegistration
from customers.tax_parties import tax_buyer, tax_context_data, tax_context_for, tax_seller
from tax import thresholds
from tax.engines import calculate
from tests.customers.factories import AddressFactory, CustomerFactory, LegalEntityFactory, TaxRegistrationFactory

pytestmark = pytest.mark.django_db

TAX_POINT = dt.date(2026, 5, 4)
SERVICE = [{"id": "1", "net_amount": "1000.00", "description": "Consulting"}]
E_SERVICE = [{"id": "1", "net_amount": "1000.00", "supply_kind": "electronic_service"}]


@pytest.fixture
def seller():
    entity = LegalEntityFactory(country="DE")
    LegalEntityRegistration.objects.create(legal_entity=entity, kind="vat", country="DE", number="DE136585820")
    LegalEntityRegistration.objects.create(legal_entity=entity, kind="tax_number", country="DE", number="37/123/45678")
    return entity


def customer_in(country: str, *, kind: str = Customer.Kind.BUSINESS, vat: str | None = None) -> Customer:
    customer = CustomerFactory(kind=kind, billing_address=None)
    AddressFactory(customer=customer, country=country, city="Paris", postal_code="75004", line1="12 Rue de Rivoli")
    if vat:
        TaxRegistrationFactory(customer=customer, country=country, number=vat)
    return customer


def certificate(customer, **overrides) -> ExemptionCertificate:
    fields = {
        "reference": "IO-2026-1",
        "reason_code": "VATEX-EU-151-1B",
        "reason": "Supply to an international body (Art. 151(1)(b))",
        "country": "DE",
        "valid_from": dt.date(2026, 1, 1),
        "valid_to": dt.date(2026, 12, 31),
    }
    fields.update(overrides)
    return ExemptionCertificate.objects.create(customer=customer, **fields)


def context_for(seller, customer, lines=SERVICE, **kwargs):
    return tax_context_for(
        legal_entity=seller, customer=customer, lines=lines, tax_point=TAX_POINT, currency="EUR", **kwargs
    )


# --- the parties through the engine ---------------------------------------------------------------------


def test_french_business_with_a_valid_vat_id_is_reverse_charged(seller):
    customer = customer_in("FR", vat="FR40303265045")

    context = context_for(seller, customer)
    result = calculate(context)

    assert context.seller.country == "DE" and context.buyer.country == "FR" and context.buyer.is_business
    assert [(r.country, r.number, r.valid) for r in context.buyer.registrations] == [("FR", "FR40303265045", None)]
    assert [(r.country, r.number) for r in context.seller.registrations] == [("DE", "DE136585820")]  # VAT only
    (line,) = result.lines
    assert (line.category, line.rate, line.place_of_supply) == ("AE", Decimal("0"), "FR")
    assert line.rule == "EU-B2B-SERVICE-REVERSE-CHARGE"
    assert "VAT-ID-FORMAT-CHECKED" in result.rules_fired  # the engine checked the unchecked ID itself
    assert result.tax_amount == Decimal("0.00")


def test_consumer_customer_pays_the_sellers_vat(seller):
    customer = customer_in("FR", kind=Customer.Kind.CONSUMER)

    result = calculate(context_for(seller, customer))

    (line,) = result.lines
    assert (line.category, line.rate, line.place_of_supply) == ("S", Decimal("19"), "DE")
    assert line.rule == "EU-B2C-SERVICE-SELLER-COUNTRY"
    assert result.tax_amount == Decimal("190.00")


def test_customer_without_billing_address_is_refused_naming_the_buyers_country(seller):
    customer = CustomerFactory(billing_address=None)
    AddressFactory(customer=customer, kind="shipping", country="FR")  # a delivery address is no billing address

    assert tax_buyer(customer, on=TAX_POINT)["country"] is None
    with pytest.raises(ValidationFailed) as refused:
        context_for(seller, customer)

    assert refused.value.errors == {"buyer.country": ["The buyer's country is missing."]}
    assert refused.value.message == "The buyer's country is missing."


def test_oss_registration_is_carried_and_named_on_the_invoice(seller):
    LegalEntityRegistration.objects.create(
        legal_entity=seller, kind="vat", country="FR", number="FR40303265045", is_oss_registered=True
    )
    consumer = customer_in("FR", kind=Customer.Kind.CONSUMER)

    with thresholds.b2c_sales_source(lambda **_: Decimal("25000")):
        context = context_for(seller, consumer, lines=E_SERVICE)
    result = calculate(context)

    assert context.seller.oss_registered is True
    assert result.lines[0].place_of_supply == "FR"
    assert any("One-Stop Shop" in note for note in result.legal_notes)
    assert not any("must be registered" in warning for warning in result.warnings)


def test_without_oss_registration_the_seller_is_warned(seller):
    consumer = customer_in("FR", kind=Customer.Kind.CONSUMER)
    with thresholds.b2c_sales_source(lambda **_: Decimal("25000")):
        context = context_for(seller, consumer, lines=E_SERVICE)

    assert context.seller.oss_registered is False
    assert any("OSS scheme" in warning for warning in calculate(context).warnings)


def test_threshold_sales_come_from_the_registered_source_per_seller_and_year(seller):
    consumer = customer_in("FR", kind=Customer.Kind.CONSUMER)
    calls = []

    def issued_invoices(*, seller_key: str, year: int) -> Decimal:
        calls.append((seller_key, year))
        return {2026: Decimal("12000.50"), 2025: Decimal("4000")}[year]

    assert calculate(context_for(seller, consumer, lines=E_SERVICE)).lines[0].place_of_supply == "DE"
    with thresholds.b2c_sales_source(issued_invoices):
        context = context_for(seller, consumer, lines=E_SERVICE)
    after = context_for(seller, consumer, lines=E_SERVICE)

    assert sorted(calls) == [(str(seller.public_id), 2025), (str(seller.public_id), 2026)]
    assert context.seller.eu_b2c_sales_current_year_eur == Decimal("12000.50")
    assert context.seller.eu_b2c_sales_previous_year_eur == Decimal("4000")
    result = calculate(context)
    assert (result.lines[0].place_of_supply, result.lines[0].rate) == ("FR", Decimal("20"))
    assert "EU-B2C-THRESHOLD-EXCEEDED" in result.rules_fired
    # The source was unregistered when the block ended: no invoices, no sales.
    assert after.seller.eu_b2c_sales_current_year_eur == Decimal("0")


def test_threshold_forced_by_setting_for_the_sellers_country_or_the_seller_itself(seller, settings):
    consumer = customer_in("FR", kind=Customer.Kind.CONSUMER)
    assert context_for(seller, consumer).seller.eu_b2c_threshold_exceeded is False

    settings.TAX_EU_B2C_THRESHOLD_EXCEEDED = ["de"]
    forced = context_for(seller, consumer, lines=E_SERVICE)
    assert forced.seller.eu_b2c_threshold_exceeded is True
    assert calculate(forced).lines[0].place_of_supply == "FR"

    settings.TAX_EU_B2C_THRESHOLD_EXCEEDED = [str(seller.public_id).upper()]
    assert context_for(seller, consumer).seller.eu_b2c_threshold_exceeded is True
    other = LegalEntityFactory(country="DE")
    assert tax_seller(other, on=TAX_POINT)["eu_b2c_threshold_exceeded"] is False


def test_certificate_valid_on_the_tax_point_exempts_with_its_reason(seller):
    body = customer_in("DE")
    certificate(body)

    result = calculate(context_for(seller, body))

    (line,) = result.lines
    assert (line.category, line.rate) == ("E", Decimal("0"))
    assert line.exemption_reason_code == "VATEX-EU-151-1B"
    assert line.exemption_reason == "Supply to an international body (Art. 151(1)(b))"
    assert "EXEMPTION-CERTIFICATE" in result.rules_fired
    assert result.tax_amount == Decimal("0.00")


def test_certificate_without_own_text_prints_the_codes_text(seller):
    body = customer_in("DE")
    certificate(body, reason="", country="")

    (line,) = calculate(context_for(seller, body)).lines

    assert line.exemption_reason == "Exempt based on article 151, section 1 (b) of Council Directive 2006/112/EC"


def test_expired_certificate_does_not_apply_and_the_engine_says_why(seller):
    body = customer_in("DE")
    certificate(body, reference="IO-2025", valid_from=dt.date(2025, 1, 1), valid_to=dt.date(2025, 12, 31))

    result = calculate(context_for(seller, body))

    assert (result.lines[0].category, result.lines[0].rate) == ("S", Decimal("19"))
    assert result.warnings == ("Exemption certificate IO-2025 expired on 2025-12-31; it does not apply.",)


def test_a_renewed_certificate_applies_without_warnings_about_the_old_one(seller):
    body = customer_in("DE")
    certificate(body, reference="IO-2025", valid_from=dt.date(2025, 1, 1), valid_to=dt.date(2025, 12, 31))
    certificate(body, reference="IO-2026", valid_from=dt.date(2026, 1, 1), valid_to=None)

    context = context_for(seller, body)
    result = calculate(context)

    assert [c.reference for c in context.buyer.exemption_certificates] == ["IO-2026"]
    assert result.lines[0].category == "E" and result.warnings == ()


def test_context_json_form_round_trips_and_is_stable(seller):
    customer = customer_in("FR", vat="FR40303265045")
    certificate(customer, country="FR")
    data = tax_context_data(
        legal_entity=seller,
        customer=customer,
        lines=SERVICE,
        tax_point=TAX_POINT,
        currency="USD",
        eur_rate=Decimal("0.92"),
    )

    assert data["eur_rate"] == "0.92" and data["tax_point"] == "2026-05-04"
    assert data["buyer"]["exemption_certificates"][0]["valid_to"] == "2026-12-31"
    context = context_for(seller, customer, eur_rate=Decimal("0.92"))
    assert context.eur_rate == Decimal("0.92")
    assert context.sha256() == context_for(seller, customer, eur_rate=Decimal("0.92")).sha256()


def test_building_the_context_reads_a_constant_number_of_queries_and_writes_nothing(seller):
    customer = customer_in("FR", vat="FR40303265045")
    certificate(customer)

    def count() -> tuple[int, list[str]]:
        fresh, entity = Customer.objects.get(pk=customer.pk), type(seller).objects.get(pk=seller.pk)
        with CaptureQueriesContext(connection) as captured:
            context_for(entity, fresh)
        return len(captured), [q["sql"] for q in captured]

    few, _ = count()
    for year in range(2020, 2026):
        certificate(customer, reference=f"OLD-{year}", valid_from=dt.date(year, 1, 1), valid_to=dt.date(year, 12, 31))
    AddressFactory(customer=customer, kind="shipping", country="BE")
    many, statements = count()

    assert few == many == 4  # seller registrations; buyer addresses, registrations, certificates
    assert all(sql.lstrip().upper().startswith("SELECT") for sql in statements)


def test_prefetched_relations_are_not_fetched_again(seller, django_assert_num_queries):
    customer = customer_in("FR", vat="FR40303265045")
    customer = Customer.objects.prefetch_related("addresses", "registrations", "exemption_certificates").get(
        pk=customer.pk
    )
    entity = type(seller).objects.prefetch_related("registrations").get(pk=seller.pk)

    with django_assert_num_queries(0):
        context_for(entity, customer)


# --- the threshold registry -------------------------------------------------------------------------------


def test_no_source_means_no_sales():
    assert thresholds.b2c_sales_eur(seller_key="any", year=2026) == Decimal("0")


def test_sources_are_summed_and_registered_once():
    def first(**_):
        return Decimal("100.10")

    def second(**_):
        return 50

    with thresholds.b2c_sales_source(first), thresholds.b2c_sales_source(second):
        thresholds.register_b2c_sales_source(first)  # again: no double counting
        assert thresholds.b2c_sales_eur(seller_key="s", year=2026) == Decimal("150.10")
    assert thresholds.b2c_sales_eur(seller_key="s", year=2026) == Decimal("0")


def test_a_source_that_returns_a_float_is_refused():
    with thresholds.b2c_sales_source(lambda **_: 100.1), pytest.raises(TypeError, match="finite Decimal"):
        thresholds.b2c_sales_eur(seller_key="s", year=2026)


def test_context_manager_leaves_an_already_registered_source_registered():
    def source(**_):
        return Decimal("1")

    thresholds.register_b2c_sales_source(source)
    try:
        with thresholds.b2c_sales_source(source):
            pass
        assert thresholds.b2c_sales_eur(seller_key="s", year=2026) == Decimal("1")
    finally:
        thresholds.unregister_b2c_sales_source(source)
    assert thresholds.b2c_sales_eur(seller_key="s", year=2026) == Decimal("0")


@pytest.mark.parametrize(
    ("setting", "country", "key", "expected"),
    [
        ([], "DE", "k", False),
        (["DE"], "de", "k", True),
        ([" fr "], "FR", "k", True),
        (["EL"], "GR", "k", True),
        (["3F2A0C9E-0000-4000-8000-000000000001"], "DE", "3f2a0c9e-0000-4000-8000-000000000001", True),
        (["FR"], "DE", "k", False),
        ([""], "", "", False),
    ],
)
def test_threshold_forced_reads_the_setting(settings, setting, country, key, expected):
    settings.TAX_EU_B2C_THRESHOLD_EXCEEDED = setting
    assert thresholds.threshold_forced(country, key) is expected
