"""Online VAT number checks against the EU's VIES service: a pluggable adapter, off by default.

``TAX_VIES_ADAPTER`` names the adapter class (None = offline, format and checksum only). The adapter's
answer, with its date and VIES consultation number, becomes part of the tax context and so of the stored
evidence. This machine has no network; tests plug in a fake adapter at this edge.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from backbone.errors import DomainError


class ViesUnavailable(DomainError):
    status_code = 503
    code = "vies_unavailable"


@dataclass(frozen=True)
class ViesAnswer:
    country: str
    number: str
    valid: bool
    checked_on: dt.date
    consultation_number: str = ""
    name: str = ""
    address: str = ""


class ViesAdapter(Protocol):
    def check(self, *, country: str, number: str, requester: str = "") -> ViesAnswer: ...


class ViesRestAdapter:
    """The European Commission's VIES REST API (``check-vat-number``)."""

    url = "https://ec.europa.eu/taxation_customs/vies/rest-api/check-vat-number"
    timeout_seconds = 10

    def check(self, *, country: str, number: str, requester: str = "") -> ViesAnswer:
        prefix = "EL" if country == "GR" else country
        local = number[len(prefix) :] if number.upper().startswith(prefix) else number
        body = {"countryCode": prefix, "vatNumber": local}
        if requester:
            body.update({"requesterMemberStateCode": requester[:2], "requesterNumber": requester[2:]})
        request = urllib.request.Request(  # noqa: S310 (a fixed https URL)
            self.url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:  # noqa: S310
                data = json.load(response)
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            raise ViesUnavailable(f"VIES could not be reached to check {number}: {exc}") from exc
        if data.get("userError") not in (None, "VALID", "INVALID"):
            raise ViesUnavailable(f"VIES could not check {number} now ({data.get('userError')}); try again later.")
        return ViesAnswer(
            country=country,
            number=number,
            valid=bool(data.get("valid")),
            checked_on=dt.date.fromisoformat(str(data.get("requestDate", dt.date.today().isoformat()))[:10]),
            consultation_number=str(data.get("requestIdentifier") or ""),
            name=str(data.get("name") or ""),
            address=str(data.get("address") or ""),
        )


def get_vies_adapter() -> ViesAdapter | None:
    path = getattr(settings, "TAX_VIES_ADAPTER", None)
    return import_string(path)() if path else None
