"""The rules engine against Council Directive 2006/112/EC and EN 16931, one scenario per row.

Every scenario runs ``RulesEngine().calculate`` with the rates of the shipped data file
(``tax/data/vat_rates.json``), so rate-change boundary dates are those of the real data. No database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest

from backbone.errors import ValidationFailed
from tax.context import (
    Buyer,
    ExemptionCertificate,
    Line,
    LineKind,
    Registration,
    Seller,
    SupplyKind,
    TaxContext,
)
from tax.rates import RateBook
from tax.rules import RULES, RulesEngine

GENERAL = SupplyKind.GENERAL_SERVICE
ESS = SupplyKind.ELECTRONIC_SERVICE
GOODS = SupplyKind.GOODS

# A few valid numbers (format and check digit) and one that fails its check digit.
DE_VAT = "DE123456788"
DE_VAT_BAD_CHECKSUM = "DE123456789"
FR_VAT = "FR40303265045"
AT_VAT = "ATU13585627"

ART_196 = "Reverse charge: the recipient is liable for the VAT (Art. 196"


@pytest.fixture(scope="module")
def book() -> RateBook:
    return RateBook.from_file()


def D(value: str) -> Decimal:
    return Decimal(value)


def day(iso: str) -> dt.date:
    return dt.date.fromisoformat(iso)


def vat(country: str, number: str, valid: bool | None = True, source: str = "vies") -> Registration:
    return Registration(country=country, number=number, valid=valid, source=source)


def business(country: str, *registrations: Registration, certificates=()) -> Buyer:
    return Buyer(country=country, is_business=True, registrations=registrations, exemption_certificates=certificates)


def consumer(country: str) -> Buyer:
    return Buyer(country=country, is_business=False)


def cert(
    valid_from: str,
    valid_to: str | None = None,
    *,
    country: str | None = None,
    code: str = "VATEX-EU-151-1E",
    reason: str = "",
    reference: str = "CERT-1",
) -> ExemptionCertificate:
    return ExemptionCertificate(
        reference=reference,
        reason_code=code,
        valid_from=day(valid_from),
        valid_to=day(valid_to) if valid_to else None,
        country=country,
        reason=reason,
    )


def line(amount: str = "100.00", **kwargs) -> Line:
    return Line(id=kwargs.pop("id", "1"), net_amount=D(amount), **kwargs)


def context(seller, buyer, *lines, tax_point="2025-06-01", currency="EUR", eur_rate=None) -> TaxContext:
    return TaxContext(
        seller=seller if isinstance(seller, Seller) else Seller(country=seller),
        buyer=buyer,
        lines=tuple(lines) or (line(),),
        tax_point=day(tax_point),
        currency=currency,
        eur_rate=D(eur_rate) if eur_rate else None,
    )


@dataclass(frozen=True)
class Scenario:
    id: str
    context: TaxContext
    category: str
    rate: str
    tax: str
    place: str
    rule: str  # the place-of-supply rule every line carries
    note: str | None  # a substring of the legal notes; None: the document carries no legal note
    also_fired: tuple[str, ...] = ()
    not_fired: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # one substring per expected warning, and no other warning
    exemption_code: str = ""

    def __str__(self) -> str:
        return self.id


S = Scenario
SCENARIOS = [
    # --- B2B general services (Art. 44, Art. 196) ---------------------------------------------------
    S("de-de-b2b-domestic-standard", context("DE", business("DE")), "S", "19", "19.00", "DE", "DOMESTIC", None),
    S(
        "fr-de-b2b-vies-valid-reverse-charge",
        context("FR", business("DE", vat("DE", DE_VAT))),
        "AE",
        "0",
        "0.00",
        "DE",
        "EU-B2B-SERVICE-REVERSE-CHARGE",
        ART_196,
        not_fired=("VAT-ID-FORMAT-CHECKED",),
        exemption_code="VATEX-EU-AE",
    ),
    S(
        "fr-de-b2b-unchecked-vat-id-validated-by-engine",
        context("FR", business("DE", vat("DE", DE_VAT, valid=None, source="format"))),
        "AE",
        "0",
        "0.00",
        "DE",
        "EU-B2B-SERVICE-REVERSE-CHARGE",
        ART_196,
        also_fired=("VAT-ID-FORMAT-CHECKED",),
        exemption_code="VATEX-EU-AE",
    ),
    S(
        "de-at-b2b-electronic-service-reverse-charge",
        context("DE", business("AT", vat("AT", AT_VAT)), line(supply_kind=ESS)),
        "AE",
        "0",
        "0.00",
        "AT",
        "EU-B2B-SERVICE-REVERSE-CHARGE",
        "Art. 196, Council Directive 2006/112/EC",
        not_fired=("EU-B2C-THRESHOLD-EXCEEDED", "EU-B2C-THRESHOLD-CROSSED"),
        exemption_code="VATEX-EU-AE",
    ),
    S(
        "de-us-b2b-service-not-subject",
        context("DE", business("US")),
        "O",
        "0",
        "0.00",
        "US",
        "EU-B2B-SERVICE-OUTSIDE-EU",
        "Not subject to EU VAT: the place of supply is US, outside the EU",
        exemption_code="VATEX-EU-O",
    ),
    S(
        "de-ch-b2b-electronic-service-not-subject",
        context("DE", business("CH"), line(supply_kind=ESS)),
        "O",
        "0",
        "0.00",
        "CH",
        "EU-B2B-SERVICE-OUTSIDE-EU",
        "the place of supply is CH, outside the EU",
        exemption_code="VATEX-EU-O",
    ),
    # --- B2C general services (Art. 45) -----------------------------------------------------------------
    S(
        "de-fr-b2c-general-service-seller-country",
        context("DE", consumer("FR"), line("250.00")),
        "S",
        "19",
        "47.50",
        "DE",
        "EU-B2C-SERVICE-SELLER-COUNTRY",
        None,
    ),
    S(
        "de-us-b2c-general-service-seller-country",
        context("DE", consumer("US")),
        "S",
        "19",
        "19.00",
        "DE",
        "EU-B2C-SERVICE-SELLER-COUNTRY",
        None,
    ),
    # --- B2C electronically supplied services: the EUR 10,000 threshold (Art. 58, 59c) ------------------
    S(
        "fr-de-b2c-ess-9500-plus-400-stays-seller-country",
        context(Seller("FR", eu_b2c_sales_current_year_eur=D("9500")), consumer("DE"), line("400.00", supply_kind=ESS)),
        "S",
        "20",
        "80.00",
        "FR",
        "EU-B2C-ESS-BELOW-THRESHOLD",
        None,
        not_fired=("EU-B2C-THRESHOLD-CROSSED", "EU-B2C-THRESHOLD-EXCEEDED"),
    ),
    S(
        "fr-de-b2c-ess-9500-plus-500-reaches-but-does-not-exceed",
        context(Seller("FR", eu_b2c_sales_current_year_eur=D("9500")), consumer("DE"), line("500.00", supply_kind=ESS)),
        "S",
        "20",
        "100.00",
        "FR",
        "EU-B2C-ESS-BELOW-THRESHOLD",
        None,
        not_fired=("EU-B2C-THRESHOLD-CROSSED",),
    ),
    S(
        "fr-de-b2c-ess-9500-plus-600-crosses-mid-year",
        context(Seller("FR", eu_b2c_sales_current_year_eur=D("9500")), consumer("DE"), line("600.00", supply_kind=ESS)),
        "S",
        "19",
        "114.00",
        "DE",
        "EU-B2C-ESS-BUYER-COUNTRY",
        None,
        also_fired=("EU-B2C-THRESHOLD-CROSSED",),
        not_fired=("EU-B2C-THRESHOLD-EXCEEDED",),
        warnings=("to EUR 10100.00, above the EUR 10,000 threshold", "registered for VAT in DE or for the OSS"),
    ),
    S(
        "fr-de-b2c-ess-crossing-oss-registered",
        context(
            Seller("FR", oss_registered=True, eu_b2c_sales_current_year_eur=D("9999.99")),
            consumer("DE"),
            line("0.01", id="a", supply_kind=ESS),
            line("0.01", id="b", supply_kind=ESS),
        ),
        "S",
        "19",
        "0.00",
        "DE",
        "EU-B2C-ESS-BUYER-COUNTRY",
        "VAT of DE declared under the One-Stop Shop",
        also_fired=("EU-B2C-THRESHOLD-CROSSED",),
        warnings=("to EUR 10000.01",),
    ),
    S(
        "fr-de-b2c-ess-previous-year-above-threshold",
        context(
            Seller("FR", oss_registered=True, eu_b2c_sales_previous_year_eur=D("10000.01")),
            consumer("DE"),
            line(supply_kind=ESS),
        ),
        "S",
        "19",
        "19.00",
        "DE",
        "EU-B2C-ESS-BUYER-COUNTRY",
        "One-Stop Shop (Art. 369a",
        also_fired=("EU-B2C-THRESHOLD-EXCEEDED",),
        not_fired=("EU-B2C-THRESHOLD-CROSSED",),
    ),
    S(
        "fr-de-b2c-ess-current-year-already-above",
        context(Seller("FR", eu_b2c_sales_current_year_eur=D("10500")), consumer("DE"), line(supply_kind=ESS)),
        "S",
        "19",
        "19.00",
        "DE",
        "EU-B2C-ESS-BUYER-COUNTRY",
        None,
        also_fired=("EU-B2C-THRESHOLD-EXCEEDED",),
        not_fired=("EU-B2C-THRESHOLD-CROSSED",),
        warnings=("registered for VAT in DE or for the OSS",),
    ),
    S(
        "fr-de-b2c-ess-forced-from-first-euro",
        context(
            Seller("FR", oss_registered=True, eu_b2c_threshold_exceeded=True), consumer("DE"), line(supply_kind=ESS)
        ),
        "S",
        "19",
        "19.00",
        "DE",
        "EU-B2C-ESS-BUYER-COUNTRY",
        "VAT of DE declared under the One-Stop Shop",
        also_fired=("EU-B2C-THRESHOLD-EXCEEDED",),
    ),
    S(
        "fr-de-b2c-ess-gbp-document-stays-below-at-eur-rate",
        context(
            Seller("FR", eu_b2c_sales_current_year_eur=D("9500")),
            consumer("DE"),
            line("600.00", supply_kind=ESS),
            currency="GBP",
            eur_rate="0.80",  # GBP 600 = EUR 480 → EUR 9,980
        ),
        "S",
        "20",
        "120.00",
        "FR",
        "EU-B2C-ESS-BELOW-THRESHOLD",
        None,
        not_fired=("EU-B2C-THRESHOLD-CROSSED",),
    ),
    S(
        "fr-de-b2c-ess-gbp-document-crosses-at-eur-rate",
        context(
            Seller("FR", oss_registered=True, eu_b2c_sales_current_year_eur=D("9500")),
            consumer("DE"),
            line("600.00", supply_kind=ESS),
            currency="GBP",
            eur_rate="0.90",  # GBP 600 = EUR 540 → EUR 10,040
        ),
        "S",
        "19",
        "114.00",
        "DE",
        "EU-B2C-ESS-BUYER-COUNTRY",
        "One-Stop Shop",
        also_fired=("EU-B2C-THRESHOLD-CROSSED",),
        warnings=("to EUR 10040.00",),
    ),
    S(
        "fr-ee-b2c-ess-forced-takes-estonian-rate-after-change",
        context(
            Seller("FR", oss_registered=True, eu_b2c_threshold_exceeded=True),
            consumer("EE"),
            line(supply_kind=ESS),
            tax_point="2025-07-01",
        ),
        "S",
        "24",
        "24.00",
        "EE",
        "EU-B2C-ESS-BUYER-COUNTRY",
        "VAT of EE declared under the One-Stop Shop",
    ),
    S(
        "de-us-b2c-ess-not-subject",
        context("DE", consumer("US"), line(supply_kind=ESS)),
        "O",
        "0",
        "0.00",
        "US",
        "EU-B2C-ESS-OUTSIDE-EU",
        "Not subject to EU VAT",
        exemption_code="VATEX-EU-O",
    ),
    # --- Business buyers without a usable VAT ID are consumers --------------------------------------------
    S(
        "fr-de-vat-id-checksum-fails-treated-as-b2c",
        context("FR", business("DE", vat("DE", DE_VAT_BAD_CHECKSUM, valid=None, source="format"))),
        "S",
        "20",
        "20.00",
        "FR",
        "EU-B2C-SERVICE-SELLER-COUNTRY",
        None,
        also_fired=("BUYER-TREATED-AS-CONSUMER",),
        not_fired=("VAT-ID-FORMAT-CHECKED", "EU-B2B-SERVICE-REVERSE-CHARGE"),
        warnings=("DE123456789 fails validation",),
    ),
    S(
        "fr-de-vat-id-explicitly-invalid-ess-below-threshold",
        context("FR", business("DE", vat("DE", DE_VAT, valid=False)), line(supply_kind=ESS)),
        "S",
        "20",
        "20.00",
        "FR",
        "EU-B2C-ESS-BELOW-THRESHOLD",
        None,
        also_fired=("BUYER-TREATED-AS-CONSUMER",),
        warnings=("DE123456788 is not valid; the supply is treated as B2C",),
    ),
    S(
        "fr-de-business-without-vat-id-treated-as-b2c",
        context("FR", business("DE")),
        "S",
        "20",
        "20.00",
        "FR",
        "EU-B2C-SERVICE-SELLER-COUNTRY",
        None,
        also_fired=("BUYER-TREATED-AS-CONSUMER",),
        warnings=("has no VAT ID of DE",),
    ),
    S(
        "de-at-goods-invalid-vat-id-distance-sale-not-k",
        context("DE", business("AT", vat("AT", AT_VAT, valid=False)), line(supply_kind=GOODS)),
        "S",
        "19",
        "19.00",
        "DE",
        "EU-GOODS-DISTANCE-SALE-SELLER-COUNTRY",
        None,
        also_fired=("BUYER-TREATED-AS-CONSUMER",),
        not_fired=("EU-GOODS-INTRA-COMMUNITY",),
        warnings=("is not valid",),
    ),
    # --- Exemption certificates -------------------------------------------------------------------------
    S(
        "de-de-exemption-certificate-valid",
        context("DE", business("DE", certificates=(cert("2025-01-01", "2025-12-31"),))),
        "E",
        "0",
        "0.00",
        "DE",
        "DOMESTIC",
        "(exemption certificate CERT-1)",
        also_fired=("EXEMPTION-CERTIFICATE",),
        exemption_code="VATEX-EU-151-1E",
    ),
    S(
        "de-de-exemption-certificate-last-day-inclusive-own-reason",
        context(
            "DE",
            business("DE", certificates=(cert("2025-01-01", "2025-06-01", country="DE", reason="Diplomatic mission"),)),
        ),
        "E",
        "0",
        "0.00",
        "DE",
        "DOMESTIC",
        "Exempt from VAT: Diplomatic mission (exemption certificate CERT-1)",
        also_fired=("EXEMPTION-CERTIFICATE",),
        exemption_code="VATEX-EU-151-1E",
    ),
    S(
        "de-de-exemption-certificate-expired-standard-treatment",
        context("DE", business("DE", certificates=(cert("2024-01-01", "2025-05-31"),))),
        "S",
        "19",
        "19.00",
        "DE",
        "DOMESTIC",
        None,
        not_fired=("EXEMPTION-CERTIFICATE",),
        warnings=("CERT-1 expired on 2025-05-31",),
    ),
    S(
        "de-de-exemption-certificate-not-yet-valid",
        context("DE", business("DE", certificates=(cert("2025-06-02"),))),
        "S",
        "19",
        "19.00",
        "DE",
        "DOMESTIC",
        None,
        not_fired=("EXEMPTION-CERTIFICATE",),
        warnings=("CERT-1 is valid only from 2025-06-02",),
    ),
    S(
        "de-de-exemption-certificate-for-another-country",
        context("DE", business("DE", certificates=(cert("2025-01-01", country="FR"),))),
        "S",
        "19",
        "19.00",
        "DE",
        "DOMESTIC",
        None,
        not_fired=("EXEMPTION-CERTIFICATE",),
    ),
    # --- Product categories --------------------------------------------------------------------------------
    S(
        "de-de-reduced-rate",
        context("DE", business("DE"), line(category="AA")),
        "AA",
        "7",
        "7.00",
        "DE",
        "DOMESTIC",
        None,
        also_fired=("PRODUCT-REDUCED-RATE",),
    ),
    S(
        "fr-fr-reduced-2-rate",
        context("FR", consumer("FR"), line(category="AA", rate_kind="reduced_2")),
        "AA",
        "5.5",
        "5.50",
        "FR",
        "DOMESTIC",
        None,
        also_fired=("PRODUCT-REDUCED-RATE",),
    ),
    S(
        "fr-fr-super-reduced-rate",
        context("FR", consumer("FR"), line("1000.00", category="AA", rate_kind="super_reduced")),
        "AA",
        "2.1",
        "21.00",
        "FR",
        "DOMESTIC",
        None,
        also_fired=("PRODUCT-REDUCED-RATE",),
    ),
    S(
        "ie-ie-parking-rate",
        context("IE", consumer("IE"), line(category="AA", rate_kind="parking")),
        "AA",
        "13.5",
        "13.50",
        "IE",
        "DOMESTIC",
        None,
        also_fired=("PRODUCT-REDUCED-RATE",),
    ),
    S(
        "de-de-zero-rated",
        context("DE", business("DE"), line(category="Z")),
        "Z",
        "0",
        "0.00",
        "DE",
        "DOMESTIC",
        None,
        also_fired=("PRODUCT-ZERO-RATED",),
    ),
    S(
        "de-de-exempt-default-vatex-132",
        context("DE", consumer("DE"), line(category="E")),
        "E",
        "0",
        "0.00",
        "DE",
        "DOMESTIC",
        "Exempt from VAT: Exempt based on article 132 of Council Directive 2006/112/EC",
        also_fired=("PRODUCT-EXEMPT",),
        exemption_code="VATEX-EU-132",
    ),
    S(
        "de-de-exempt-explicit-code",
        context("DE", consumer("DE"), line(category="E", exemption_reason_code="VATEX-EU-132-1F")),
        "E",
        "0",
        "0.00",
        "DE",
        "DOMESTIC",
        "article 132, section 1 (f)",
        also_fired=("PRODUCT-EXEMPT",),
        exemption_code="VATEX-EU-132-1F",
    ),
    S(
        "fr-de-b2b-exempt-service-stays-exempt-not-reverse-charge",
        context("FR", business("DE", vat("DE", DE_VAT)), line(category="E")),
        "E",
        "0",
        "0.00",
        "DE",
        "EU-B2B-SERVICE-REVERSE-CHARGE",
        "Exempt based on article 132",
        also_fired=("PRODUCT-EXEMPT",),
        exemption_code="VATEX-EU-132",
    ),
    # --- Goods (Art. 138, 146, 33) ---------------------------------------------------------------------------
    S(
        "de-fr-goods-b2b-intra-community",
        context("DE", business("FR", vat("FR", FR_VAT)), line(supply_kind=GOODS)),
        "K",
        "0",
        "0.00",
        "DE",
        "EU-GOODS-INTRA-COMMUNITY",
        "Exempt intra-Community supply of goods (Art. 138",
        exemption_code="VATEX-EU-IC",
    ),
    S(
        "de-us-goods-export",
        context("DE", consumer("US"), line(supply_kind=GOODS)),
        "G",
        "0",
        "0.00",
        "DE",
        "EXPORT-GOODS",
        "Exempt export of goods outside the EU (Art. 146",
        exemption_code="VATEX-EU-G",
    ),
    S(
        "de-gb-goods-b2b-export",
        context("DE", business("GB"), line(supply_kind=GOODS)),
        "G",
        "0",
        "0.00",
        "DE",
        "EXPORT-GOODS",
        "Art. 146",
        exemption_code="VATEX-EU-G",
    ),
    S(
        "de-fr-goods-b2c-distance-sale-below-threshold",
        context("DE", consumer("FR"), line(supply_kind=GOODS)),
        "S",
        "19",
        "19.00",
        "DE",
        "EU-GOODS-DISTANCE-SALE-SELLER-COUNTRY",
        None,
    ),
    S(
        "de-fr-goods-b2c-distance-sale-above-threshold",
        context(
            Seller("DE", oss_registered=True, eu_b2c_sales_previous_year_eur=D("25000")),
            consumer("FR"),
            line(supply_kind=GOODS),
        ),
        "S",
        "20",
        "20.00",
        "FR",
        "EU-GOODS-DISTANCE-SALE-BUYER-COUNTRY",
        "VAT of FR declared under the One-Stop Shop",
        also_fired=("EU-B2C-THRESHOLD-EXCEEDED",),
    ),
    S(
        "de-fr-goods-b2c-distance-sale-crossing-with-goods",
        context(
            Seller("DE", oss_registered=True, eu_b2c_sales_current_year_eur=D("9950")),
            consumer("FR"),
            line("50.01", supply_kind=GOODS, category="AA", rate_kind="reduced_2"),
        ),
        "AA",
        "5.5",
        "2.75",
        "FR",
        "EU-GOODS-DISTANCE-SALE-BUYER-COUNTRY",
        "One-Stop Shop",
        also_fired=("EU-B2C-THRESHOLD-CROSSED", "PRODUCT-REDUCED-RATE"),
        warnings=("to EUR 10000.01",),
    ),
    # --- Rate changes on their boundary dates (tax/data/vat_rates.json) --------------------------------------
    S(
        "sk-standard-20-on-2024-12-31",
        context("SK", consumer("SK"), tax_point="2024-12-31"),
        "S",
        "20",
        "20.00",
        "SK",
        "DOMESTIC",
        None,
    ),
    S(
        "sk-standard-23-on-2025-01-01",
        context("SK", consumer("SK"), tax_point="2025-01-01"),
        "S",
        "23",
        "23.00",
        "SK",
        "DOMESTIC",
        None,
    ),
    S(
        "sk-reduced-10-on-2024-12-31",
        context("SK", consumer("SK"), line(category="AA"), tax_point="2024-12-31"),
        "AA",
        "10",
        "10.00",
        "SK",
        "DOMESTIC",
        None,
    ),
    S(
        "sk-reduced-19-on-2025-01-01",
        context("SK", consumer("SK"), line(category="AA"), tax_point="2025-01-01"),
        "AA",
        "19",
        "19.00",
        "SK",
        "DOMESTIC",
        None,
    ),
    S(
        "ee-standard-22-on-2025-06-30",
        context("EE", consumer("EE"), tax_point="2025-06-30"),
        "S",
        "22",
        "22.00",
        "EE",
        "DOMESTIC",
        None,
    ),
    S(
        "ee-standard-24-on-2025-07-01",
        context("EE", consumer("EE"), tax_point="2025-07-01"),
        "S",
        "24",
        "24.00",
        "EE",
        "DOMESTIC",
        None,
    ),
    S(
        "ee-reduced-9-on-2024-12-31",
        context("EE", consumer("EE"), line(category="AA"), tax_point="2024-12-31"),
        "AA",
        "9",
        "9.00",
        "EE",
        "DOMESTIC",
        None,
    ),
    S(
        "ee-reduced-13-on-2025-01-01",
        context("EE", consumer("EE"), line(category="AA"), tax_point="2025-01-01"),
        "AA",
        "13",
        "13.00",
        "EE",
        "DOMESTIC",
        None,
    ),
    S(
        "ro-standard-19-on-2025-07-31",
        context("RO", consumer("RO"), tax_point="2025-07-31", currency="RON"),
        "S",
        "19",
        "19.00",
        "RO",
        "DOMESTIC",
        None,
    ),
    S(
        "ro-standard-21-on-2025-08-01",
        context("RO", consumer("RO"), tax_point="2025-08-01", currency="RON"),
        "S",
        "21",
        "21.00",
        "RO",
        "DOMESTIC",
        None,
    ),
    S(
        "ro-reduced-9-on-2025-07-31",
        context("RO", consumer("RO"), line(category="AA"), tax_point="2025-07-31", currency="RON"),
        "AA",
        "9",
        "9.00",
        "RO",
        "DOMESTIC",
        None,
    ),
    S(
        "ro-reduced-11-on-2025-08-01",
        context("RO", consumer("RO"), line(category="AA"), tax_point="2025-08-01", currency="RON"),
        "AA",
        "11",
        "11.00",
        "RO",
        "DOMESTIC",
        None,
    ),
    S(
        "fi-reduced-14-on-2025-12-31",
        context("FI", consumer("FI"), line(category="AA"), tax_point="2025-12-31"),
        "AA",
        "14",
        "14.00",
        "FI",
        "DOMESTIC",
        None,
    ),
    S(
        "fi-reduced-13.5-on-2026-01-01",
        context("FI", consumer("FI"), line("33.33", category="AA"), tax_point="2026-01-01"),
        "AA",
        "13.5",
        "4.50",  # 33.33 x 13.5 % = 4.49955
        "FI",
        "DOMESTIC",
        None,
    ),
    S(
        "lt-reduced-9-on-2025-12-31",
        context("LT", consumer("LT"), line(category="AA"), tax_point="2025-12-31"),
        "AA",
        "9",
        "9.00",
        "LT",
        "DOMESTIC",
        None,
    ),
    S(
        "lt-reduced-12-on-2026-01-01",
        context("LT", consumer("LT"), line(category="AA"), tax_point="2026-01-01"),
        "AA",
        "12",
        "12.00",
        "LT",
        "DOMESTIC",
        None,
    ),
    S(
        "at-super-reduced-4.9-from-2026-07-01",
        context("AT", consumer("AT"), line(category="AA", rate_kind="super_reduced"), tax_point="2026-07-01"),
        "AA",
        "4.9",
        "4.90",
        "AT",
        "DOMESTIC",
        None,
    ),
    # --- Sellers outside the EU: own rates at home, outside the scope for foreign business buyers ----------
    S(
        "gb-gb-domestic-standard",
        context("GB", business("GB"), currency="GBP"),
        "S",
        "20",
        "20.00",
        "GB",
        "DOMESTIC",
        None,
    ),
    S(
        "gb-de-b2b-outside-scope",
        context("GB", business("DE", vat("DE", DE_VAT)), currency="GBP"),
        "O",
        "0",
        "0.00",
        "DE",
        "NONEU-B2B-SERVICE-OUTSIDE-SCOPE",
        "Outside the scope of GB VAT",
        exemption_code="VATEX-EU-O",
    ),
    S(
        "gb-fr-b2c-general-service-gb-vat",
        context("GB", consumer("FR"), currency="GBP"),
        "S",
        "20",
        "20.00",
        "GB",
        "NONEU-B2C-SERVICE-SELLER-COUNTRY",
        None,
    ),
    S(
        "gb-us-goods-export",
        context("GB", business("US"), line(supply_kind=GOODS), currency="GBP"),
        "G",
        "0",
        "0.00",
        "GB",
        "EXPORT-GOODS",
        "Export of goods: no GB VAT charged",
        exemption_code="VATEX-EU-G",
    ),
    S(
        "gb-fr-b2c-ess-french-vat-non-union-oss",
        context("GB", consumer("FR"), line(supply_kind=ESS), currency="GBP"),
        "S",
        "20",
        "20.00",
        "FR",
        "NONEU-B2C-ESS-BUYER-COUNTRY",
        None,
        warnings=("registered for VAT in FR or for the non-Union OSS",),
    ),
    S(
        "gb-us-b2c-ess-outside-scope",
        context("GB", consumer("US"), line(supply_kind=ESS), currency="GBP"),
        "O",
        "0",
        "0.00",
        "US",
        "NONEU-B2C-ESS-OUTSIDE-SCOPE",
        "Outside the scope of GB VAT: the place of supply is US",
        exemption_code="VATEX-EU-O",
    ),
    S(
        "ch-ch-domestic-standard",
        context("CH", business("CH"), currency="CHF"),
        "S",
        "8.1",
        "8.10",
        "CH",
        "DOMESTIC",
        None,
    ),
    S(
        "ch-ch-reduced-rate",
        context("CH", consumer("CH"), line(category="AA"), currency="CHF"),
        "AA",
        "2.6",
        "2.60",
        "CH",
        "DOMESTIC",
        None,
    ),
    S(
        "ch-ch-accommodation-rate",
        context("CH", consumer("CH"), line(category="AA", rate_kind="reduced_2"), currency="CHF"),
        "AA",
        "3.8",
        "3.80",
        "CH",
        "DOMESTIC",
        None,
    ),
    S(
        "ch-de-b2b-outside-scope",
        context("CH", business("DE", vat("DE", DE_VAT)), currency="CHF"),
        "O",
        "0",
        "0.00",
        "DE",
        "NONEU-B2B-SERVICE-OUTSIDE-SCOPE",
        "Outside the scope of CH VAT",
        exemption_code="VATEX-EU-O",
    ),
    S(
        "gb-ch-b2b-outside-scope-no-vat-id-needed",
        context("GB", business("CH"), currency="GBP"),
        "O",
        "0",
        "0.00",
        "CH",
        "NONEU-B2B-SERVICE-OUTSIDE-SCOPE",
        "Outside the scope of GB VAT",
        not_fired=("BUYER-TREATED-AS-CONSUMER",),
        exemption_code="VATEX-EU-O",
    ),
    S(
        "no-no-domestic-standard",
        context("NO", business("NO"), currency="NOK"),
        "S",
        "25",
        "25.00",
        "NO",
        "DOMESTIC",
        None,
    ),
]


def test_scenario_table_is_broad_and_unambiguous():
    assert len(SCENARIOS) >= 45
    assert len({scenario.id for scenario in SCENARIOS}) == len(SCENARIOS)
    fired = {scenario.rule for scenario in SCENARIOS} | {rule for s in SCENARIOS for rule in s.also_fired}
    # Every rule of the engine is exercised by at least one scenario.
    assert set(RULES) - fired == set()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_scenario(scenario: Scenario, book: RateBook):
    result = RulesEngine().calculate(scenario.context, rates=book)

    assert [(row.category, row.rate) for row in result.breakdown] == [(scenario.category, Decimal(scenario.rate))]
    assert result.tax_amount == Decimal(scenario.tax)
    assert result.breakdown[0].tax_amount == Decimal(scenario.tax)
    assert result.breakdown[0].exemption_reason_code == scenario.exemption_code
    assert result.place_of_supply == scenario.place
    assert {(item.category, item.place_of_supply, item.rule) for item in result.lines} == {
        (scenario.category, scenario.place, scenario.rule)
    }
    assert scenario.rule in result.rules_fired
    for rule in scenario.also_fired:
        assert rule in result.rules_fired
    for rule in scenario.not_fired:
        assert rule not in result.rules_fired
    assert set(result.rules_fired) <= set(RULES)

    notes = " | ".join(result.legal_notes)
    if scenario.note is None:
        assert result.legal_notes == ()
    else:
        assert scenario.note in notes

    assert len(result.warnings) == len(scenario.warnings), result.warnings
    for expected in scenario.warnings:
        assert any(expected in warning for warning in result.warnings), (expected, result.warnings)

    net = sum((item.net_amount for item in result.lines), Decimal("0"))
    assert result.net_amount == net
    assert result.gross_amount == net + result.tax_amount


# --- EN 16931 rounding -----------------------------------------------------------------------------------


def test_category_tax_is_rounded_once_on_the_sum_of_line_nets(book):
    """BR-CO-17: three lines of 0.33 at 19 % → base 0.99, tax 0.19 (rounding each line's tax would give 0.18)."""
    lines = [line("0.33", id=str(n)) for n in range(3)]
    result = RulesEngine().calculate(context("DE", business("DE"), *lines), rates=book)
    assert [(row.taxable_amount, row.tax_amount) for row in result.breakdown] == [(D("0.99"), D("0.19"))]
    assert result.tax_amount == D("0.19")
    assert result.gross_amount == D("1.18")


def test_line_nets_are_rounded_half_up_before_they_are_summed(book):
    lines = [line("10.005", id="a"), line("10.004", id="b"), line("-0.005", id="c")]
    result = RulesEngine().calculate(context("DE", business("DE"), *lines), rates=book)
    assert [item.net_amount for item in result.lines] == [D("10.01"), D("10.00"), D("-0.01")]
    assert result.net_amount == D("20.00")
    assert result.tax_amount == D("3.80")


def test_each_category_and_rate_is_its_own_breakdown_row_and_the_document_tax_is_their_sum(book):
    lines = [
        line("0.05", id="s1"),
        line("0.05", id="s2"),  # S 19 %: 0.10 → 0.019 → 0.02 (per line: 0.01 + 0.01)
        line("0.07", id="aa1", category="AA"),
        line("0.07", id="aa2", category="AA"),  # AA 7 %: 0.14 → 0.0098 → 0.01 (per line: 0.00 + 0.00)
        line("3.00", id="z", category="Z"),
        line("5.00", id="e", category="E"),
    ]
    result = RulesEngine().calculate(context("DE", consumer("DE"), *lines), rates=book)
    rows = [(row.category, row.rate, row.taxable_amount, row.tax_amount) for row in result.breakdown]
    assert rows == [
        ("S", D("19"), D("0.10"), D("0.02")),
        ("AA", D("7"), D("0.14"), D("0.01")),
        ("Z", D("0"), D("3.00"), D("0.00")),
        ("E", D("0"), D("5.00"), D("0.00")),
    ]
    assert result.tax_amount == D("0.03")
    assert result.net_amount == D("8.24")


def test_allowance_reduces_and_charge_increases_the_base_of_its_category(book):
    lines = [
        line("100.00", id="1"),
        line("10.00", id="discount", kind=LineKind.ALLOWANCE),
        line("4.99", id="shipping", kind=LineKind.CHARGE),
        line("50.00", id="books", category="AA"),
        line("5.00", id="books-discount", category="AA", kind=LineKind.ALLOWANCE),
    ]
    result = RulesEngine().calculate(context("DE", business("DE"), *lines), rates=book)
    assert [item.net_amount for item in result.lines] == [D("100.00"), D("-10.00"), D("4.99"), D("50.00"), D("-5.00")]
    rows = [(row.category, row.taxable_amount, row.tax_amount) for row in result.breakdown]
    # S: 94.99 x 19 % = 18.0481; AA: 45.00 x 7 % = 3.15
    assert rows == [("S", D("94.99"), D("18.05")), ("AA", D("45.00"), D("3.15"))]
    assert result.net_amount == D("139.99")
    assert result.tax_amount == D("21.20")
    assert result.gross_amount == D("161.19")


def test_credit_note_lines_round_half_away_from_zero(book):
    lines = [line("-0.33", id=str(n)) for n in range(3)]
    result = RulesEngine().calculate(context("DE", business("DE"), *lines), rates=book)
    assert [(row.taxable_amount, row.tax_amount) for row in result.breakdown] == [(D("-0.99"), D("-0.19"))]
    assert result.gross_amount == D("-1.18")


def test_credit_note_for_a_reverse_charge_supply_stays_reverse_charge(book):
    ctx = context("FR", business("DE", vat("DE", DE_VAT)), line("-100.00"))
    result = RulesEngine().calculate(ctx, rates=book)
    assert [(row.category, row.taxable_amount, row.tax_amount) for row in result.breakdown] == [
        ("AE", D("-100.00"), D("0.00"))
    ]


def test_jpy_has_no_minor_unit(book):
    """333.4 JPY rounds to 333 per line; 999 x 19 % = 189.81 → 190 (rounding per line would give 3 x 63 = 189)."""
    lines = [line("333.4", id=str(n)) for n in range(3)]
    result = RulesEngine().calculate(context("DE", business("DE"), *lines, currency="JPY"), rates=book)
    assert [item.net_amount for item in result.lines] == [D("333")] * 3
    assert result.breakdown[0].taxable_amount == D("999")
    assert result.tax_amount == D("190")
    assert result.tax_amount.as_tuple().exponent == 0
    assert result.to_dict()["gross_amount"] == "1189"


def test_jpy_half_yen_rounds_up(book):
    result = RulesEngine().calculate(context("DE", business("DE"), line("0.5"), currency="jpy"), rates=book)
    assert result.currency == "JPY"
    assert result.net_amount == D("1")
    assert result.tax_amount == D("0")


def test_bhd_has_three_decimals_whatever_the_sellers_country(book):
    """A German seller invoicing in Bahraini dinar: 12.345 x 19 % = 2.34555 → 2.346 (not 2.35)."""
    lines = [line("12.3445", id="a"), line("0.0005", id="b")]
    result = RulesEngine().calculate(context("DE", business("DE"), *lines, currency="BHD"), rates=book)
    assert [item.net_amount for item in result.lines] == [D("12.345"), D("0.001")]
    assert result.breakdown[0].taxable_amount == D("12.346")
    assert result.tax_amount == D("2.346")  # 12.346 x 19 % = 2.34574
    assert result.to_dict()["tax_amount"] == "2.346"


def test_mixed_places_of_supply_leave_the_document_place_empty(book):
    ctx = context(
        Seller("FR", oss_registered=True, eu_b2c_threshold_exceeded=True),
        consumer("DE"),
        line("100.00", id="consulting"),
        line("100.00", id="download", supply_kind=ESS),
    )
    result = RulesEngine().calculate(ctx, rates=book)
    assert result.place_of_supply == ""
    assert {item.line_id: (item.place_of_supply, item.rate) for item in result.lines} == {
        "consulting": ("FR", D("20")),
        "download": ("DE", D("19")),
    }
    assert result.tax_amount == D("39.00")


# --- Bad input: ValidationFailed naming the problem, never a silent zero -------------------------------------


def _fails(ctx: TaxContext, book: RateBook) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        RulesEngine().calculate(ctx, rates=book)
    return caught.value


def test_missing_buyer_country(book):
    error = _fails(context("DE", business("")), book)
    assert "buyer's country is missing" in error.message
    assert "buyer.country" in error.errors


def test_missing_seller_country_and_seller_without_rates(book):
    assert "seller's country is missing" in _fails(context("", business("DE")), book).message
    error = _fails(context("US", business("DE")), book)
    assert "No VAT rates are known for the seller's country US" in error.message


def test_unknown_category(book):
    error = _fails(context("DE", business("DE"), line(category="X")), book)
    assert "'X' is not a product tax category" in error.message
    assert "lines.0.category" in error.errors


def test_unknown_supply_kind_and_line_kind(book):
    error = _fails(context("DE", consumer("FR"), line(supply_kind="software")), book)
    assert "'software' is not a supply kind" in error.message
    error = _fails(context("DE", consumer("DE"), line(kind="rebate")), book)
    assert "'rebate' is not a line kind" in error.message


def test_reduced_line_must_name_a_reduced_rate_kind(book):
    error = _fails(context("DE", consumer("DE"), line(category="AA", rate_kind="standard")), book)
    assert "'standard' is not a reduced rate kind" in error.message


def test_unknown_exemption_codes(book):
    error = _fails(context("DE", consumer("DE"), line(category="E", exemption_reason_code="VATEX-EU-999")), book)
    assert "'VATEX-EU-999' is not a VATEX exemption reason code" in error.message
    buyer = business("DE", certificates=(cert("2025-01-01", code="NOPE"),))
    error = _fails(context("DE", buyer), book)
    assert "'NOPE' is not a VATEX exemption reason code" in error.message
    assert "buyer.exemption_certificates.0.reason_code" in error.errors


def test_tax_point_before_the_rate_data(book):
    error = _fails(context("DE", consumer("DE"), tax_point="2019-01-01"), book)
    assert "Germany (DE)" in error.message
    assert "2019-01-01" in error.message
    assert "known from 2021-01-01" in error.message


@pytest.mark.parametrize(("country", "currency"), [("LU", "EUR"), ("CH", "CHF"), ("EE", "EUR")])
def test_tax_point_the_day_before_a_rate_starting_2024_01_01(book, country, currency):
    error = _fails(context(country, consumer(country), tax_point="2023-12-31", currency=currency), book)
    assert f"({country}) is in force on 2023-12-31" in error.message
    assert "known from 2024-01-01" in error.message
    assert "tax_point" in error.errors


def test_rate_kind_that_ended_without_successor(book):
    """Romania's 5 % second reduced rate ended on 2025-07-31 (merged into 11 %): asking for it later is an error."""
    ctx = context("RO", consumer("RO"), line(category="AA", rate_kind="reduced_2"), tax_point="2025-08-01")
    error = _fails(ctx, book)
    assert "Romania (RO)" in error.message
    assert "2025-08-01" in error.message
    assert "to 2025-07-31" in error.message


def test_rate_kind_the_country_does_not_have(book):
    error = _fails(context("DE", consumer("DE"), line(category="AA", rate_kind="super_reduced")), book)
    assert "Germany (DE) has no super-reduced VAT rate" in error.message


def test_rate_in_the_buyers_country_is_looked_up_on_the_tax_point(book):
    """Austria's 4.9 % starts on 2026-07-01; a B2C distance sale there the day before has no such rate."""
    ctx = context(
        Seller("DE", eu_b2c_threshold_exceeded=True),
        consumer("AT"),
        line(supply_kind=GOODS, category="AA", rate_kind="super_reduced"),
        tax_point="2026-06-30",
    )
    error = _fails(ctx, book)
    assert "Austria (AT)" in error.message
    assert "2026-06-30" in error.message


@pytest.mark.parametrize("currency", ["XYZ", "EURO", ""])
def test_unknown_currency(book, currency):
    error = _fails(context("DE", business("DE"), currency=currency), book)
    assert "currency" in error.errors
    assert (f"'{currency}'" if currency else "currency is missing") in error.message


@pytest.mark.parametrize("currency", ["XAU", "XXX", "XDR"])
def test_currency_without_minor_unit(book, currency):
    error = _fails(context("DE", business("DE"), currency=currency), book)
    assert f"'{currency}'" in error.message
    assert "minor unit" in error.message


@pytest.mark.parametrize("kind", [LineKind.ALLOWANCE, LineKind.CHARGE])
def test_negative_allowance_or_charge(book, kind):
    error = _fails(context("DE", business("DE"), line("100.00", id="1"), line("-5.00", id="2", kind=kind)), book)
    assert "given as a positive number" in error.message
    assert "lines.1.net_amount" in error.errors


def test_float_amount_is_refused(book):
    ctx = context("DE", business("DE"), Line(id="1", net_amount=19.99))  # type: ignore[arg-type]
    error = _fails(ctx, book)
    assert "lines.0.net_amount" in error.errors
    assert "float" in error.message


def test_no_lines(book):
    ctx = TaxContext(Seller("DE"), business("DE"), (), day("2025-06-01"), "EUR")
    assert "At least one line" in _fails(ctx, book).message


def test_threshold_in_another_currency_needs_the_eur_rate(book):
    ctx = context(
        Seller("FR", eu_b2c_sales_current_year_eur=D("9500")),
        consumer("DE"),
        line("600.00", supply_kind=ESS),
        currency="GBP",
    )
    error = _fails(ctx, book)
    assert "EUR exchange rate of GBP" in error.message
    assert "eur_rate" in error.errors


def test_threshold_already_exceeded_needs_no_eur_rate(book):
    ctx = context(
        Seller("FR", eu_b2c_sales_previous_year_eur=D("20000")),
        consumer("DE"),
        line("600.00", supply_kind=ESS),
        currency="GBP",
    )
    assert RulesEngine().calculate(ctx, rates=book).tax_amount == D("114.00")


@pytest.mark.parametrize("eur_rate", ["0", "-1.1"])
def test_eur_rate_must_be_positive(book, eur_rate):
    ctx = TaxContext(
        Seller("FR", eu_b2c_sales_current_year_eur=D("9500")),
        consumer("DE"),
        (line("600.00", supply_kind=ESS),),
        day("2025-06-01"),
        "GBP",
        eur_rate=D(eur_rate),
    )
    error = _fails(ctx, book)
    assert "eur_rate" in error.errors


@pytest.mark.parametrize(("tax_point", "message"), [(None, "tax point date is missing"), ("dt", "must be a date")])
def test_tax_point_must_be_a_date(book, tax_point, message):
    value = dt.datetime(2025, 6, 1, 12, 0) if tax_point == "dt" else tax_point
    ctx = TaxContext(Seller("DE"), business("DE"), (line(),), value, "EUR")  # type: ignore[arg-type]
    error = _fails(ctx, book)
    assert message in error.message
    assert "tax_point" in error.errors


def test_integer_amounts_are_exact_and_accepted(book):
    ctx = context(Seller("FR", eu_b2c_sales_current_year_eur=9500), consumer("DE"), Line("1", 600, supply_kind=ESS))  # type: ignore[arg-type]
    result = RulesEngine().calculate(ctx, rates=book)
    assert (result.place_of_supply, result.tax_amount) == ("DE", D("114.00"))
