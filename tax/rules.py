"""The built-in tax engine: place-of-supply rules of Council Directive 2006/112/EC and EN 16931 rounding.

Each decision names the rule that made it (``RULES`` below, with its legal basis), so that the evidence
stored with an invoice says *why* a line carries its category. The same rule set serves sellers outside
the EU (GB, CH, NO): their own country's rates at home, and "outside the scope" for foreign business buyers.

Assumptions worth knowing (the context does not carry them):
- goods are dispatched from the seller's country to the buyer's country;
- "general services" follow the general rules of Art. 44/45 — the special rules for land, transport,
  events or restaurant services (Art. 47 to 57) are not modelled;
- the EUR 10,000 threshold of Art. 59c counts cross-border B2C electronically supplied services and
  intra-EU distance sales of goods together, as the Directive does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from babel.numbers import is_currency

from backbone.errors import ValidationFailed
from backbone.money import MoneyError, quantize
from tax.context import (
    PRODUCT_CATEGORIES,
    REDUCED_RATE_KINDS,
    CategoryTotal,
    LineKind,
    LineResult,
    Registration,
    SupplyKind,
    TaxContext,
    TaxResult,
)
from tax.rates import RateBook
from tax.registrations import RegistrationInvalid, validate_vat
from tax.vatex import CATEGORY_OF_CODE, DEFAULT_EXEMPT_CODE, VATEX

EU_B2C_THRESHOLD_EUR = Decimal("10000")
_DIRECTIVE = "Council Directive 2006/112/EC"

# Rule id → what it decides and on which legal basis. Ids are stable: they are stored as evidence.
RULES: dict[str, str] = {
    "DOMESTIC": "Buyer in the seller's country: the seller's domestic rates apply.",
    "EU-B2B-SERVICE-REVERSE-CHARGE": "B2B service to another EU country: place of supply is the buyer's country "
    "(Art. 44); the buyer accounts for the VAT (Art. 196).",
    "EU-B2B-SERVICE-OUTSIDE-EU": "B2B service to a buyer outside the EU: place of supply is the buyer's country "
    "(Art. 44); not subject to EU VAT.",
    "EU-B2C-SERVICE-SELLER-COUNTRY": "B2C general service: place of supply is the seller's country (Art. 45).",
    "EU-B2C-ESS-BELOW-THRESHOLD": "B2C electronically supplied service to another EU country, seller's "
    "cross-border B2C sales within EUR 10,000: place of supply stays the seller's country (Art. 59c).",
    "EU-B2C-ESS-BUYER-COUNTRY": "B2C electronically supplied service to another EU country above the "
    "EUR 10,000 threshold: place of supply is the buyer's country (Art. 58).",
    "EU-B2C-ESS-OUTSIDE-EU": "Electronically supplied service to a consumer outside the EU: place of supply is "
    "the buyer's country (Art. 58); not subject to EU VAT.",
    "EU-B2C-THRESHOLD-CROSSED": "This document takes the seller's cross-border B2C sales above EUR 10,000 in the "
    "current year: from this supply on, the buyer's country applies (Art. 59c(1)).",
    "EU-B2C-THRESHOLD-EXCEEDED": "The seller's cross-border B2C sales exceeded EUR 10,000 in the current or "
    "previous year, or the seller opted for taxation in the buyer's country (Art. 59c).",
    "EU-GOODS-INTRA-COMMUNITY": "Goods to a business with a valid VAT ID in another EU country: exempt "
    "intra-Community supply (Art. 138).",
    "EU-GOODS-DISTANCE-SALE-SELLER-COUNTRY": "Goods to a consumer in another EU country within the EUR 10,000 "
    "threshold: the seller's country (Art. 59c).",
    "EU-GOODS-DISTANCE-SALE-BUYER-COUNTRY": "Goods to a consumer in another EU country above the EUR 10,000 "
    "threshold: the buyer's country (Art. 33).",
    "EXPORT-GOODS": "Goods dispatched to a buyer outside the seller's VAT area: exempt export (Art. 146 for EU "
    "sellers; zero-rated export at home for others).",
    "NONEU-B2B-SERVICE-OUTSIDE-SCOPE": "Seller outside the EU, service to a foreign business: outside the scope "
    "of the seller's VAT; the buyer accounts for any tax in its country.",
    "NONEU-B2C-SERVICE-SELLER-COUNTRY": "Seller outside the EU, general service to a foreign consumer: the "
    "seller's country.",
    "NONEU-B2C-ESS-BUYER-COUNTRY": "Seller outside the EU, electronically supplied service to a foreign "
    "consumer: the buyer's country from the first euro (Art. 58; non-Union OSS in the EU).",
    "NONEU-B2C-ESS-OUTSIDE-SCOPE": "Seller outside the EU, electronically supplied service to a consumer in a "
    "country without known rates: outside the scope of the seller's VAT.",
    "BUYER-TREATED-AS-CONSUMER": "The buyer is a business without a valid VAT ID of its country: the supply is "
    "treated as B2C.",
    "PRODUCT-EXEMPT": "The product is exempt by its nature (its category is E).",
    "PRODUCT-ZERO-RATED": "The product is zero-rated in the place-of-supply country (its category is Z).",
    "PRODUCT-REDUCED-RATE": "The product takes a reduced rate (its category is AA).",
    "EXEMPTION-CERTIFICATE": "The buyer holds an exemption certificate valid on the tax point date.",
    "VAT-ID-FORMAT-CHECKED": "The buyer's VAT ID was checked offline (format and check digit), not online.",
}

# ISO 4217 codes whose minor unit is "N.A." (precious metals, SDR, units of account, test and no-currency codes):
# Babel knows them as currencies but would silently round them to its default of two decimals.
_NO_MINOR_UNIT = frozenset({"XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX"})

_CATEGORY_ORDER = {"S": 0, "AA": 1, "Z": 2, "E": 3, "AE": 4, "K": 5, "G": 6, "O": 7}


@dataclass(frozen=True)
class _Outcome:
    treatment: str  # "taxable", "AE", "K", "G", "O"
    place_of_supply: str
    rule: str


class RulesEngine:
    """The default engine (``TAX_ENGINE = "tax.rules.RulesEngine"``)."""

    name = "throughline-rules"
    version = "1.0.0"

    def calculate(self, context: TaxContext, *, rates: RateBook) -> TaxResult:
        _check_context(context, rates)
        run = _Run(context, rates)
        return run.result(self)


def _check_context(context: TaxContext, rates: RateBook) -> None:
    errors: dict[str, list[str]] = {}
    if not context.seller.country:
        errors["seller.country"] = ["The seller's country is missing."]
    elif context.seller.country not in rates:
        errors["seller.country"] = [f"No VAT rates are known for the seller's country {context.seller.country}."]
    if not context.buyer.country:
        errors["buyer.country"] = ["The buyer's country is missing."]
    if not context.lines:
        errors["lines"] = ["At least one line is needed."]
    currency = (context.currency or "").upper()
    if not currency:
        errors["currency"] = ["The currency is missing."]
    elif not is_currency(currency) or currency in _NO_MINOR_UNIT:
        errors["currency"] = [f"'{context.currency}' is not an ISO 4217 currency with a known minor unit."]
    if not isinstance(context.tax_point, dt.date) or isinstance(context.tax_point, dt.datetime):
        errors["tax_point"] = [
            "The tax point date is missing." if context.tax_point is None else "The tax point must be a date."
        ]
    if context.eur_rate is not None and not (_is_amount(context.eur_rate) and context.eur_rate > 0):
        errors["eur_rate"] = [f"The EUR exchange rate must be a positive Decimal, not {context.eur_rate!r}."]
    for name in ("eu_b2c_sales_current_year_eur", "eu_b2c_sales_previous_year_eur"):
        value = getattr(context.seller, name)
        if not _is_amount(value):
            errors[f"seller.{name}"] = [f"The seller's {name.replace('_', ' ')} must be a Decimal, not {value!r}."]
    for index, line in enumerate(context.lines):
        _check_line(line, f"lines.{index}", errors)
    for index, certificate in enumerate(context.buyer.exemption_certificates):
        if certificate.reason_code not in VATEX or certificate.reason_code in CATEGORY_OF_CODE:
            errors[f"buyer.exemption_certificates.{index}.reason_code"] = [
                f"'{certificate.reason_code}' is not a VATEX exemption reason code of an exemption."
            ]
    if errors:
        first = next(iter(errors.values()))[0]
        raise ValidationFailed(first, errors=errors)


def _is_amount(value) -> bool:
    """A Decimal (or an int, which is exact); never a float, which cannot hold cents exactly."""
    if isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, Decimal) and value.is_finite()


def _check_line(line, at: str, errors: dict[str, list[str]]) -> None:
    """The checks of ``TaxContext.from_dict``, for contexts built in code: an unknown value is never guessed."""
    if not _is_amount(line.net_amount):
        kind = "a float" if isinstance(line.net_amount, float) else repr(line.net_amount)
        errors[f"{at}.net_amount"] = [f"Line {line.id}'s net amount must be a finite Decimal, not {kind}."]
    elif line.kind in (LineKind.ALLOWANCE, LineKind.CHARGE) and line.net_amount < 0:
        errors[f"{at}.net_amount"] = [f"Line {line.id}: the amount of a {line.kind} is given as a positive number."]
    if line.category not in PRODUCT_CATEGORIES:
        errors[f"{at}.category"] = [
            f"'{line.category}' is not a product tax category; use S (standard), AA (reduced), Z (zero) or E (exempt)."
        ]
    if line.supply_kind not in SupplyKind.VALUES:
        errors[f"{at}.supply_kind"] = [
            f"'{line.supply_kind}' is not a supply kind; use general_service, electronic_service or goods."
        ]
    if line.kind not in LineKind.VALUES:
        errors[f"{at}.kind"] = [f"'{line.kind}' is not a line kind; use line, allowance or charge."]
    if line.category == "AA" and line.rate_kind not in REDUCED_RATE_KINDS:
        errors[f"{at}.rate_kind"] = [
            f"'{line.rate_kind}' is not a reduced rate kind; use one of {', '.join(REDUCED_RATE_KINDS)}."
        ]
    if line.exemption_reason_code and line.exemption_reason_code not in VATEX:
        errors[f"{at}.exemption_reason_code"] = [
            f"'{line.exemption_reason_code}' is not a VATEX exemption reason code."
        ]
    elif line.exemption_reason_code in CATEGORY_OF_CODE:
        errors[f"{at}.exemption_reason_code"] = [
            f"{line.exemption_reason_code} belongs to category {CATEGORY_OF_CODE[line.exemption_reason_code]}; "
            "the engine decides that category itself."
        ]


class _Run:
    """One calculation: decisions per line, then the breakdown rounded by EN 16931."""

    def __init__(self, context: TaxContext, rates: RateBook) -> None:
        self.context = context
        self.rates = rates
        self.currency = context.currency.upper()
        self.seller = context.seller
        self.buyer = context.buyer
        self.day = context.tax_point
        self.rules: list[str] = []
        self.warnings: list[str] = []
        self.notes: list[str] = []
        self.seller_in_eu = rates.is_eu(self.seller.country)
        self.buyer_in_eu = rates.is_eu(self.buyer.country)
        self.domestic = self.seller.country == self.buyer.country
        self.b2b = self._judge_business()
        self._threshold: bool | None = None

    # --- facts about the parties -------------------------------------------------------------
    def fire(self, rule: str) -> None:
        if rule not in self.rules:
            self.rules.append(rule)

    def note(self, text: str) -> None:
        if text and text not in self.notes:
            self.notes.append(text)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def _registration_valid(self, registration: Registration) -> bool:
        if registration.valid is not None:
            return registration.valid
        try:
            validate_vat(registration.number, registration.country)
        except RegistrationInvalid as exc:
            self.warn(f"The buyer's VAT ID {registration.number} fails validation: {exc}")
            return False
        self.fire("VAT-ID-FORMAT-CHECKED")
        return True

    def _judge_business(self) -> bool:
        buyer = self.buyer
        if not buyer.is_business:
            return False
        if self.domestic or not self.buyer_in_eu:
            # Domestic: the VAT ID changes nothing. Outside the EU: business status is shown otherwise.
            return True
        own = [reg for reg in buyer.registrations if reg.country == buyer.country]
        for registration in own:
            if self._registration_valid(registration):
                return True
        if not own:
            self.warn(
                f"The buyer is a business in {buyer.country} but has no VAT ID of {buyer.country}; "
                "the supply is treated as B2C."
            )
        else:
            for registration in own:
                if registration.valid is False:
                    self.warn(f"The buyer's VAT ID {registration.number} is not valid; the supply is treated as B2C.")
        self.fire("BUYER-TREATED-AS-CONSUMER")
        return False

    def threshold_exceeded(self) -> bool:
        """Art. 59c: EU seller's cross-border B2C sales of the current or previous year above EUR 10,000."""
        if self._threshold is not None:
            return self._threshold
        seller = self.seller
        if seller.eu_b2c_threshold_exceeded or (
            max(seller.eu_b2c_sales_previous_year_eur, seller.eu_b2c_sales_current_year_eur) > EU_B2C_THRESHOLD_EUR
        ):
            self.fire("EU-B2C-THRESHOLD-EXCEEDED")
            self._threshold = True
            return True
        document_eur = self._document_cross_border_b2c_eur()
        total = seller.eu_b2c_sales_current_year_eur + document_eur
        self._threshold = total > EU_B2C_THRESHOLD_EUR
        if self._threshold:
            self.fire("EU-B2C-THRESHOLD-CROSSED")
            self.warn(
                f"This document takes the seller's cross-border B2C sales this year to EUR {quantize(total, 'EUR')}, "
                "above the EUR 10,000 threshold: VAT of the buyer's country applies from now on."
            )
        return self._threshold

    def _document_cross_border_b2c_eur(self) -> Decimal:
        amount = sum(
            (self._signed(line) for line in self.context.lines if line.supply_kind != SupplyKind.GENERAL_SERVICE),
            Decimal("0"),
        )
        if self.currency == "EUR":
            return amount
        if self.context.eur_rate is None:
            raise ValidationFailed(
                f"The EUR exchange rate of {self.currency} is needed to judge the EUR 10,000 threshold "
                "for cross-border sales to consumers.",
                field="eur_rate",
            )
        return amount * self.context.eur_rate

    def _signed(self, line) -> Decimal:
        amount = quantize(line.net_amount, self.currency)
        return -amount if line.kind == LineKind.ALLOWANCE else amount

    # --- place of supply ----------------------------------------------------------------------
    def outcome(self, supply_kind: str) -> _Outcome:
        seller, buyer = self.seller.country, self.buyer.country
        if self.domestic:
            return _Outcome("taxable", seller, "DOMESTIC")
        if self.seller_in_eu:
            return self._eu_seller(supply_kind, seller, buyer)
        return self._non_eu_seller(supply_kind, seller, buyer)

    def _eu_seller(self, supply_kind: str, seller: str, buyer: str) -> _Outcome:
        if supply_kind == SupplyKind.GOODS:
            if not self.buyer_in_eu:
                return _Outcome("G", seller, "EXPORT-GOODS")
            if self.b2b:
                return _Outcome("K", seller, "EU-GOODS-INTRA-COMMUNITY")
            if self.threshold_exceeded():
                return _Outcome("taxable", buyer, "EU-GOODS-DISTANCE-SALE-BUYER-COUNTRY")
            return _Outcome("taxable", seller, "EU-GOODS-DISTANCE-SALE-SELLER-COUNTRY")
        if self.b2b:
            if self.buyer_in_eu:
                return _Outcome("AE", buyer, "EU-B2B-SERVICE-REVERSE-CHARGE")
            return _Outcome("O", buyer, "EU-B2B-SERVICE-OUTSIDE-EU")
        if supply_kind == SupplyKind.ELECTRONIC_SERVICE:
            if not self.buyer_in_eu:
                return _Outcome("O", buyer, "EU-B2C-ESS-OUTSIDE-EU")
            if self.threshold_exceeded():
                return _Outcome("taxable", buyer, "EU-B2C-ESS-BUYER-COUNTRY")
            return _Outcome("taxable", seller, "EU-B2C-ESS-BELOW-THRESHOLD")
        return _Outcome("taxable", seller, "EU-B2C-SERVICE-SELLER-COUNTRY")

    def _non_eu_seller(self, supply_kind: str, seller: str, buyer: str) -> _Outcome:
        if supply_kind == SupplyKind.GOODS:
            return _Outcome("G", seller, "EXPORT-GOODS")
        if self.b2b:
            return _Outcome("O", buyer, "NONEU-B2B-SERVICE-OUTSIDE-SCOPE")
        if supply_kind == SupplyKind.ELECTRONIC_SERVICE:
            if buyer in self.rates:
                if not self.seller.oss_registered and self.rates.is_eu(buyer):
                    self.warn(
                        f"The seller must be registered for VAT in {buyer} or for the non-Union OSS scheme "
                        "to charge this VAT."
                    )
                elif not self.rates.is_eu(buyer):
                    self.warn(f"The seller must be registered for VAT in {buyer} to charge this VAT.")
                return _Outcome("taxable", buyer, "NONEU-B2C-ESS-BUYER-COUNTRY")
            return _Outcome("O", buyer, "NONEU-B2C-ESS-OUTSIDE-SCOPE")
        return _Outcome("taxable", seller, "NONEU-B2C-SERVICE-SELLER-COUNTRY")

    # --- category and rate ---------------------------------------------------------------------
    def line_result(self, line) -> LineResult:
        outcome = self.outcome(line.supply_kind)
        self.fire(outcome.rule)
        net = self._signed(line)
        pos = outcome.place_of_supply
        if outcome.treatment != "taxable":
            return self._zero_line(line, net, outcome)
        if outcome.rule == "EU-B2C-ESS-BUYER-COUNTRY" or (outcome.rule == "EU-GOODS-DISTANCE-SALE-BUYER-COUNTRY"):
            if self.seller.oss_registered:
                self.note(f"VAT of {pos} declared under the One-Stop Shop (Art. 369a–369k, {_DIRECTIVE}).")
            else:
                self.warn(f"The seller must be registered for VAT in {pos} or for the OSS scheme to charge this VAT.")
        certificate = self._certificate(pos)
        if certificate is not None:
            self.fire("EXEMPTION-CERTIFICATE")
            reason = certificate.reason or VATEX[certificate.reason_code]
            self.note(f"Exempt from VAT: {reason} (exemption certificate {certificate.reference}).")
            return LineResult(
                line.id, line.kind, net, "E", Decimal("0"), pos, outcome.rule, certificate.reason_code, reason
            )
        if line.category == "E":
            self.fire("PRODUCT-EXEMPT")
            code = line.exemption_reason_code or DEFAULT_EXEMPT_CODE
            self.note(f"Exempt from VAT: {VATEX[code]}.")
            return LineResult(line.id, line.kind, net, "E", Decimal("0"), pos, outcome.rule, code, VATEX[code])
        if line.category == "Z":
            self.fire("PRODUCT-ZERO-RATED")
            return LineResult(line.id, line.kind, net, "Z", Decimal("0"), pos, outcome.rule)
        if line.category == "AA":
            self.fire("PRODUCT-REDUCED-RATE")
            row = self.rates.rate(pos, line.rate_kind, self.day)
            return LineResult(line.id, line.kind, net, "AA", row.rate, pos, outcome.rule)
        row = self.rates.rate(pos, "standard", self.day)
        return LineResult(line.id, line.kind, net, "S", row.rate, pos, outcome.rule)

    def _certificate(self, country: str):
        valid = None
        for certificate in self.buyer.exemption_certificates:
            if certificate.covers(self.day, country):
                valid = valid or certificate
            elif certificate.country in (None, country) and certificate.valid_to and certificate.valid_to < self.day:
                self.warn(
                    f"Exemption certificate {certificate.reference} expired on {certificate.valid_to.isoformat()}; "
                    "it does not apply."
                )
            elif certificate.country in (None, country) and certificate.valid_from > self.day:
                self.warn(
                    f"Exemption certificate {certificate.reference} is valid only from "
                    f"{certificate.valid_from.isoformat()}; it does not apply."
                )
        return valid

    def _zero_line(self, line, net: Decimal, outcome: _Outcome) -> LineResult:
        seller = self.seller.country
        if outcome.treatment == "AE":
            if line.category == "E":
                self.fire("PRODUCT-EXEMPT")
                code = line.exemption_reason_code or DEFAULT_EXEMPT_CODE
                self.note(f"Exempt from VAT: {VATEX[code]}.")
                return LineResult(
                    line.id, line.kind, net, "E", Decimal("0"), outcome.place_of_supply, outcome.rule, code, VATEX[code]
                )
            self.note(f"Reverse charge: the recipient is liable for the VAT (Art. 196, {_DIRECTIVE}).")
            code = "VATEX-EU-AE"
        elif outcome.treatment == "K":
            self.note(f"Exempt intra-Community supply of goods (Art. 138, {_DIRECTIVE}).")
            code = "VATEX-EU-IC"
        elif outcome.treatment == "G":
            if self.seller_in_eu:
                self.note(f"Exempt export of goods outside the EU (Art. 146, {_DIRECTIVE}).")
            else:
                self.note(f"Export of goods: no {seller} VAT charged.")
            code = "VATEX-EU-G"
        else:
            if self.seller_in_eu:
                self.note(f"Not subject to EU VAT: the place of supply is {outcome.place_of_supply}, outside the EU.")
            else:
                self.note(
                    f"Outside the scope of {seller} VAT: the place of supply is {outcome.place_of_supply}; "
                    "the customer accounts for any tax due there."
                )
            code = "VATEX-EU-O"
        return LineResult(
            line.id,
            line.kind,
            net,
            outcome.treatment,
            Decimal("0"),
            outcome.place_of_supply,
            outcome.rule,
            code,
            VATEX[code],
        )

    # --- EN 16931 breakdown ---------------------------------------------------------------------
    def result(self, engine: RulesEngine) -> TaxResult:
        try:
            lines = tuple(self.line_result(line) for line in self.context.lines)
        except MoneyError as exc:
            raise ValidationFailed(str(exc), field="lines") from exc
        groups: dict[tuple[str, Decimal, str], list[LineResult]] = {}
        for line in lines:
            groups.setdefault((line.category, line.rate, line.exemption_reason_code), []).append(line)
        breakdown = []
        for (category, rate, code), members in sorted(
            groups.items(), key=lambda item: (_CATEGORY_ORDER[item[0][0]], -item[0][1], item[0][2])
        ):
            # BR-CO-17: the category's tax is computed once, on the sum of its rounded line nets.
            taxable = sum((member.net_amount for member in members), Decimal("0"))
            tax = quantize(taxable * rate / Decimal(100), self.currency)
            breakdown.append(
                CategoryTotal(category, rate, taxable, tax, code, members[0].exemption_reason if code else "")
            )
        net = sum((row.taxable_amount for row in breakdown), Decimal("0"))
        tax = sum((row.tax_amount for row in breakdown), Decimal("0"))
        places = {line.place_of_supply for line in lines}
        return TaxResult(
            currency=self.currency,
            lines=lines,
            breakdown=tuple(breakdown),
            net_amount=quantize(net, self.currency),
            tax_amount=quantize(tax, self.currency),
            gross_amount=quantize(net + tax, self.currency),
            place_of_supply=places.pop() if len(places) == 1 else "",
            legal_notes=tuple(self.notes),
            rules_fired=tuple(self.rules),
            warnings=tuple(self.warnings),
            engine=engine.name,
            engine_version=engine.version,
            rate_data_version=self.rates.version,
        )
