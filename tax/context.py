"""The input and output of a tax calculation: plain, frozen data that any engine reads and writes.

An engine sees only these objects, never models, so that a calculation is a pure function of its
context and the rate data, and so that the very same context can be stored as evidence and
recomputed years later (``manage.py tax_recheck``). ``to_dict``/``from_dict`` give the canonical
JSON form: Decimals and dates as strings, so the stored SHA-256 is stable.

Amounts are in the document currency; percentages are percent (``Decimal("19")`` is 19 %).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, fields, is_dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from backbone.errors import ValidationFailed


class SupplyKind:
    GENERAL_SERVICE = "general_service"
    ELECTRONIC_SERVICE = "electronic_service"
    GOODS = "goods"
    CHOICES = [
        (GENERAL_SERVICE, "General service"),
        (ELECTRONIC_SERVICE, "Electronically supplied service"),
        (GOODS, "Goods"),
    ]
    VALUES = frozenset(value for value, _ in CHOICES)


class LineKind:
    """EN 16931 distinguishes invoice lines (BG-25) from document-level allowances (BG-20) and charges (BG-21)."""

    LINE = "line"
    ALLOWANCE = "allowance"  # a discount: amount given positive, subtracted from the taxable base
    CHARGE = "charge"  # a surcharge: added to the taxable base
    CHOICES = [(LINE, "Line"), (ALLOWANCE, "Discount (allowance)"), (CHARGE, "Charge")]
    VALUES = frozenset(value for value, _ in CHOICES)


# What a product's own category asks for: the engine may override it (reverse charge, export...).
PRODUCT_CATEGORIES = frozenset({"S", "AA", "Z", "E"})
# Which rate of the jurisdiction a reduced-rate (AA) line takes; "reduced" is the main reduced rate.
REDUCED_RATE_KINDS = ("reduced", "reduced_2", "reduced_3", "super_reduced", "parking")


@dataclass(frozen=True)
class Registration:
    """A VAT registration and what is known of its validity.

    ``valid`` is True when the number passed validation (format and checksum, or VIES when ``source`` is
    "vies"), False when it failed, None when nobody checked.
    """

    country: str
    number: str
    valid: bool | None = None
    source: str = "format"  # "format" (python-stdnum) or "vies"
    checked_on: dt.date | None = None
    consultation_number: str = ""  # VIES request identifier, when the check was online


@dataclass(frozen=True)
class ExemptionCertificate:
    reference: str
    reason_code: str  # a VATEX code
    valid_from: dt.date
    valid_to: dt.date | None = None  # inclusive; None = open-ended
    country: str | None = None  # where it exempts; None = wherever the place of supply is
    reason: str = ""  # free text printed next to the code; the code's text when empty

    def covers(self, day: dt.date, country: str) -> bool:
        if self.country and self.country != country:
            return False
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True)
class Seller:
    country: str
    registrations: tuple[Registration, ...] = ()
    oss_registered: bool = False
    # Cross-border B2C sales of electronically supplied services (and distance sales of goods) to other EU
    # countries in EUR, before this document: the EUR 10,000 threshold of Art. 59c is judged on them.
    eu_b2c_sales_current_year_eur: Decimal = Decimal("0")
    eu_b2c_sales_previous_year_eur: Decimal = Decimal("0")
    # Forced by setting or by the seller's choice (Art. 59c(3) opt-in): buyer's country from the first euro.
    eu_b2c_threshold_exceeded: bool = False


@dataclass(frozen=True)
class Buyer:
    country: str
    is_business: bool = True
    registrations: tuple[Registration, ...] = ()
    exemption_certificates: tuple[ExemptionCertificate, ...] = ()


@dataclass(frozen=True)
class Line:
    id: str
    net_amount: Decimal
    category: str = "S"  # the product's category: S, AA, Z or E
    supply_kind: str = SupplyKind.GENERAL_SERVICE
    kind: str = LineKind.LINE
    rate_kind: str = "reduced"  # for AA lines: which of the jurisdiction's reduced rates
    exemption_reason_code: str = ""  # for E lines: the VATEX code; VATEX-EU-132 when empty
    description: str = ""


@dataclass(frozen=True)
class TaxContext:
    seller: Seller
    buyer: Buyer
    lines: tuple[Line, ...]
    tax_point: dt.date
    currency: str
    # EUR value of one unit of the document currency; needed only to judge the EUR 10,000 threshold.
    eur_rate: Decimal | None = None

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    def canonical_json(self) -> str:
        return canonical_json(self.to_dict())

    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaxContext:
        """Build a context from its JSON form; every problem is reported under a flat key (``lines.1.net_amount``)."""
        reader = _Reader()
        context = reader.context(data)
        if reader.errors:
            first = next(iter(reader.errors.values()))[0]
            count = sum(len(messages) for messages in reader.errors.values())
            message = first if count == 1 else f"{first} (and {count - 1} more problem{'s' if count > 2 else ''})"
            raise ValidationFailed(message, errors=reader.errors)
        return context


@dataclass(frozen=True)
class LineResult:
    line_id: str
    kind: str
    net_amount: Decimal  # rounded to the currency's minor unit; allowances negative
    category: str
    rate: Decimal
    place_of_supply: str
    rule: str
    exemption_reason_code: str = ""
    exemption_reason: str = ""


@dataclass(frozen=True)
class CategoryTotal:
    """One row of the VAT breakdown (EN 16931 BG-23): per category, rate and exemption reason."""

    category: str
    rate: Decimal
    taxable_amount: Decimal
    tax_amount: Decimal
    exemption_reason_code: str = ""
    exemption_reason: str = ""


@dataclass(frozen=True)
class TaxResult:
    currency: str
    lines: tuple[LineResult, ...]
    breakdown: tuple[CategoryTotal, ...]
    net_amount: Decimal
    tax_amount: Decimal
    gross_amount: Decimal
    place_of_supply: str  # the country when all lines agree, "" when they differ (see each line)
    legal_notes: tuple[str, ...]
    rules_fired: tuple[str, ...]
    warnings: tuple[str, ...]
    engine: str
    engine_version: str
    rate_data_version: str

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaxResult:
        return cls(
            currency=data["currency"],
            lines=tuple(
                LineResult(**{**row, "net_amount": Decimal(row["net_amount"]), "rate": Decimal(row["rate"])})
                for row in data["lines"]
            ),
            breakdown=tuple(
                CategoryTotal(
                    **{
                        **row,
                        "rate": Decimal(row["rate"]),
                        "taxable_amount": Decimal(row["taxable_amount"]),
                        "tax_amount": Decimal(row["tax_amount"]),
                    }
                )
                for row in data["breakdown"]
            ),
            net_amount=Decimal(data["net_amount"]),
            tax_amount=Decimal(data["tax_amount"]),
            gross_amount=Decimal(data["gross_amount"]),
            place_of_supply=data["place_of_supply"],
            legal_notes=tuple(data["legal_notes"]),
            rules_fired=tuple(data["rules_fired"]),
            warnings=tuple(data["warnings"]),
            engine=data["engine"],
            engine_version=data["engine_version"],
            rate_data_version=data["rate_data_version"],
        )


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def canonical_json(data: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text: the form whose SHA-256 is stored as evidence."""
    return json.dumps(_plain(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class _Reader:
    """Reads the JSON form of a context, collecting every problem instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def error(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)

    def _get(self, data: Any, key: str, path: str, *, required: bool = True, default: Any = None) -> Any:
        if not isinstance(data, dict):
            return default
        value = data.get(key)
        if value is None or value == "":
            if required:
                self.error(path, f"{_label(path)} is missing.")
            return default
        return value

    def country(self, data: Any, key: str, path: str, *, required: bool = True) -> str:
        value = self._get(data, key, path, required=required, default="")
        if not value:
            return ""
        code = str(value).strip().upper()
        if code == "EL":
            code = "GR"
        if len(code) != 2 or not code.isalpha():
            self.error(path, f"{_label(path)} must be a two-letter ISO country code, not '{value}'.")
            return ""
        return code

    def decimal(self, data: Any, key: str, path: str, *, required: bool = True, default: Decimal | None = None):
        value = self._get(data, key, path, required=required, default=None)
        if value is None:
            return default
        if isinstance(value, float):
            value = repr(value)
        try:
            number = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            self.error(path, f"{_label(path)} must be a number, not '{value}'.")
            return default
        if not number.is_finite():
            self.error(path, f"{_label(path)} must be a finite number.")
            return default
        return number

    def date(self, data: Any, key: str, path: str, *, required: bool = True) -> dt.date | None:
        value = self._get(data, key, path, required=required, default=None)
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.error(path, f"{_label(path)} must be a date as YYYY-MM-DD, not '{value}'.")
            return None

    def boolean(self, data: Any, key: str, default: bool) -> bool:
        if not isinstance(data, dict) or data.get(key) is None:
            return default
        value = data[key]
        if isinstance(value, str):
            return value.strip().lower() in {"1", "true", "yes", "on"}
        return bool(value)

    def rows(self, data: Any, key: str, path: str) -> list[dict]:
        """The list under ``key``, each row an object; anything else is an error at its own key, never skipped."""
        rows = data.get(key) if isinstance(data, dict) else None
        if rows is None:
            return []
        if not isinstance(rows, list):
            self.error(path, f"{_label(path)} must be a list.")
            return []
        result = []
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                self.error(f"{path}.{index}", f"Entry {index + 1} of {key.replace('_', ' ')} must be an object.")
                row = {}
            result.append(row)
        return result

    def validity(self, row: dict) -> bool | None:
        """True, False or None (not checked); the strings "true"/"false" of a form mean what they say."""
        value = row.get("valid")
        if isinstance(value, str):
            text = value.strip().lower()
            return None if text in {"", "null", "none"} else text in {"1", "true", "yes", "on"}
        return None if value is None else bool(value)

    def registrations(self, data: Any, path: str) -> tuple[Registration, ...]:
        result = []
        for index, row in enumerate(self.rows(data, "registrations", f"{path}.registrations")):
            at = f"{path}.registrations.{index}"
            valid = self.validity(row)
            result.append(
                Registration(
                    country=self.country(row, "country", f"{at}.country"),
                    number=str(self._get(row, "number", f"{at}.number", default="")).strip().upper(),
                    valid=valid,
                    source=str(row.get("source") or "format"),
                    checked_on=self.date(row, "checked_on", f"{at}.checked_on", required=False),
                    consultation_number=str(row.get("consultation_number") or ""),
                )
            )
        return tuple(result)

    def certificates(self, data: Any, path: str) -> tuple[ExemptionCertificate, ...]:
        from tax.vatex import CATEGORY_OF_CODE, VATEX

        result = []
        for index, row in enumerate(self.rows(data, "exemption_certificates", f"{path}.exemption_certificates")):
            at = f"{path}.exemption_certificates.{index}"
            code = str(self._get(row, "reason_code", f"{at}.reason_code", default="")).strip().upper()
            if code and code not in VATEX:
                self.error(f"{at}.reason_code", f"'{code}' is not a VATEX exemption reason code.")
            elif code in CATEGORY_OF_CODE:
                self.error(
                    f"{at}.reason_code", f"{code} belongs to category {CATEGORY_OF_CODE[code]}, not to an exemption."
                )
            valid_from = self.date(row, "valid_from", f"{at}.valid_from")
            valid_to = self.date(row, "valid_to", f"{at}.valid_to", required=False)
            if valid_from and valid_to and valid_to < valid_from:
                self.error(f"{at}.valid_to", "The certificate's end date is before its start date.")
            result.append(
                ExemptionCertificate(
                    reference=str(self._get(row, "reference", f"{at}.reference", default="")),
                    reason_code=code,
                    valid_from=valid_from or dt.date.min,
                    valid_to=valid_to,
                    country=self.country(row, "country", f"{at}.country", required=False) or None,
                    reason=str(row.get("reason") or ""),
                )
            )
        return tuple(result)

    def line(self, row: Any, index: int) -> Line:
        from tax.vatex import CATEGORY_OF_CODE, VATEX

        at = f"lines.{index}"
        if not isinstance(row, dict):
            self.error(at, f"Line {index + 1} must be an object.")
            row = {}
        category = str(self._get(row, "category", f"{at}.category", required=False, default="S")).strip().upper()
        if category not in PRODUCT_CATEGORIES:
            self.error(
                f"{at}.category",
                f"'{category}' is not a product tax category; use S (standard), AA (reduced), Z (zero) or E (exempt).",
            )
        supply_kind = str(self._get(row, "supply_kind", f"{at}.supply_kind", required=False, default="general_service"))
        if supply_kind not in SupplyKind.VALUES:
            self.error(
                f"{at}.supply_kind",
                f"'{supply_kind}' is not a supply kind; use general_service, electronic_service or goods.",
            )
        kind = str(self._get(row, "kind", f"{at}.kind", required=False, default=LineKind.LINE))
        if kind not in LineKind.VALUES:
            self.error(f"{at}.kind", f"'{kind}' is not a line kind; use line, allowance or charge.")
        rate_kind = str(self._get(row, "rate_kind", f"{at}.rate_kind", required=False, default="reduced"))
        if rate_kind not in REDUCED_RATE_KINDS:
            self.error(
                f"{at}.rate_kind",
                f"'{rate_kind}' is not a reduced rate kind; use one of {', '.join(REDUCED_RATE_KINDS)}.",
            )
        code = (
            str(self._get(row, "exemption_reason_code", f"{at}.exemption_reason_code", required=False, default=""))
            .strip()
            .upper()
        )
        if code and code not in VATEX:
            self.error(f"{at}.exemption_reason_code", f"'{code}' is not a VATEX exemption reason code.")
        elif code in CATEGORY_OF_CODE:
            self.error(
                f"{at}.exemption_reason_code",
                f"{code} belongs to category {CATEGORY_OF_CODE[code]}; the engine decides that category itself.",
            )
        net = self.decimal(row, "net_amount", f"{at}.net_amount", default=Decimal("0"))
        if kind in (LineKind.ALLOWANCE, LineKind.CHARGE) and net < 0:
            self.error(
                f"{at}.net_amount",
                f"The amount of {_KIND_NAMES[kind]} is given as a positive number; its kind decides the sign.",
            )
        return Line(
            id=str(row.get("id") or index + 1),
            net_amount=net,
            category=category,
            supply_kind=supply_kind,
            kind=kind,
            rate_kind=rate_kind,
            exemption_reason_code=code,
            description=str(row.get("description") or ""),
        )

    def context(self, data: Any) -> TaxContext:
        if not isinstance(data, dict):
            self.error("context", "The tax context must be a JSON object.")
            data = {}
        seller_data = data.get("seller")
        if not isinstance(seller_data, dict):
            self.error("seller", "The seller is missing.")
            seller_data = {}
        buyer_data = data.get("buyer")
        if not isinstance(buyer_data, dict):
            self.error("buyer", "The buyer is missing.")
            buyer_data = {}
        seller = Seller(
            country=self.country(seller_data, "country", "seller.country"),
            registrations=self.registrations(seller_data, "seller"),
            oss_registered=self.boolean(seller_data, "oss_registered", False),
            eu_b2c_sales_current_year_eur=self.decimal(
                seller_data,
                "eu_b2c_sales_current_year_eur",
                "seller.eu_b2c_sales_current_year_eur",
                required=False,
                default=Decimal("0"),
            ),
            eu_b2c_sales_previous_year_eur=self.decimal(
                seller_data,
                "eu_b2c_sales_previous_year_eur",
                "seller.eu_b2c_sales_previous_year_eur",
                required=False,
                default=Decimal("0"),
            ),
            eu_b2c_threshold_exceeded=self.boolean(seller_data, "eu_b2c_threshold_exceeded", False),
        )
        buyer = Buyer(
            country=self.country(buyer_data, "country", "buyer.country"),
            is_business=self.boolean(buyer_data, "is_business", True),
            registrations=self.registrations(buyer_data, "buyer"),
            exemption_certificates=self.certificates(buyer_data, "buyer"),
        )
        rows = data.get("lines")
        if not isinstance(rows, list) or not rows:
            self.error("lines", "At least one line is needed.")
            rows = []
        lines = tuple(self.line(row, index) for index, row in enumerate(rows))
        ids = [line.id for line in lines]
        if len(set(ids)) != len(ids):
            self.error("lines", "Line ids must be unique within a document.")
        currency = str(self._get(data, "currency", "currency", default="")).strip().upper()
        return TaxContext(
            seller=seller,
            buyer=buyer,
            lines=lines,
            tax_point=self.date(data, "tax_point", "tax_point") or dt.date.min,
            currency=currency,
            eur_rate=self.decimal(data, "eur_rate", "eur_rate", required=False, default=None),
        )


_KIND_NAMES = {LineKind.ALLOWANCE: "a discount (allowance)", LineKind.CHARGE: "a charge"}

_LABELS = {
    "seller.country": "The seller's country",
    "buyer.country": "The buyer's country",
    "tax_point": "The tax point date",
    "currency": "The currency",
    "eur_rate": "The EUR exchange rate",
}


def _label(path: str) -> str:
    if path in _LABELS:
        return _LABELS[path]
    parts = path.split(".")
    name = parts[-1].replace("_", " ")
    if parts[0] == "lines" and len(parts) >= 2:
        return f"Line {int(parts[1]) + 1}'s {name}"
    return name.capitalize()


__all__ = [
    "Buyer",
    "CategoryTotal",
    "ExemptionCertificate",
    "Line",
    "LineKind",
    "LineResult",
    "Registration",
    "Seller",
    "SupplyKind",
    "TaxContext",
    "TaxResult",
    "canonical_json",
]
