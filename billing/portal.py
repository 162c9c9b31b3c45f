"""Client portal links: signed, expiring, no login.

A link carries the invoice's public ID and the time it was made, signed with ``SECRET_KEY`` (Django's
``signing``, salted for this purpose). It opens the invoice for ``settings.PORTAL_LINK_MAX_AGE_DAYS`` days
from when it was made; a tampered token and an expired one are told apart so the page can say which.
Only issued invoices and credit notes have portal links.

The token is short because it is printed on the PDF and typed from paper now and then: the public ID in
base 62 (22 characters), the time in base 62 (6) and an HMAC-SHA256 cut to 128 bits (22), joined by dots —
about 52 characters instead of the 100 of ``signing.dumps``. 128 bits of HMAC are far beyond guessing; the
signature is still checked in constant time by Django's signer, with ``SECRET_KEY_FALLBACKS`` honoured.

Every opening of a link (the page, the PDF download, a dispute) is recorded as a ``PortalVisit``.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.core import signing
from django.urls import reverse

from backbone.errors import DomainError, NotPermitted

from .models import Invoice, PortalVisit

SALT = "billing.portal.invoice"
SEPARATOR = "."
SIGNATURE_LENGTH = 22  # base64 characters: 132 bits of the HMAC-SHA256


class PortalLinkInvalid(DomainError):
    """The token was not made by us (tampered, truncated) or names no issued invoice."""

    status_code = 404
    code = "portal_link_invalid"


class PortalLinkExpired(DomainError):
    """The token is genuine but older than the allowed age."""

    status_code = 410
    code = "portal_link_expired"


INVALID_MESSAGE = "This link is not valid. Check that it was copied whole."
EXPIRED_MESSAGE = "This link has expired. Ask us for a new one; the invoice itself is unchanged."


class PortalSigner(signing.TimestampSigner):
    """Django's timestamp signer with a shorter signature (see the module's docstring)."""

    def __init__(self) -> None:
        super().__init__(salt=SALT, sep=SEPARATOR)

    def signature(self, value, key=None) -> str:
        return super().signature(value, key)[:SIGNATURE_LENGTH]


def max_age() -> dt.timedelta:
    return dt.timedelta(days=settings.PORTAL_LINK_MAX_AGE_DAYS)


def has_portal_link(invoice: Invoice) -> bool:
    return invoice.status == Invoice.Status.ISSUED


def portal_token(invoice: Invoice) -> str:
    if not has_portal_link(invoice):
        raise NotPermitted("Only an issued invoice has a portal link.")
    return PortalSigner().sign(signing.b62_encode(invoice.public_id.int))


def portal_path(invoice: Invoice) -> str:
    return reverse("billing:portal", kwargs={"token": portal_token(invoice)})


def _absolute(path: str) -> str:
    return f"{settings.SITE_URL.rstrip('/')}{path}"


def portal_url(invoice: Invoice) -> str:
    """The absolute link put in emails and on the PDF."""
    return _absolute(portal_path(invoice))


def portal_link(invoice: Invoice) -> tuple[str, dt.datetime]:
    """A fresh absolute link and when it stops working (finance copies it from the invoice's page)."""
    token = portal_token(invoice)
    return _absolute(reverse("billing:portal", kwargs={"token": token})), portal_expires_at(token)


def portal_expires_at(token: str) -> dt.datetime:
    """When a token stops working (call after ``invoice_public_id_for`` accepted it)."""
    made = signing.b62_decode(token.rsplit(SEPARATOR, 2)[1])
    return dt.datetime.fromtimestamp(made, tz=dt.UTC) + max_age()


def invoice_public_id_for(token: str) -> uuid.UUID:
    """The public ID a token names; raises PortalLinkExpired or PortalLinkInvalid."""
    try:
        value = PortalSigner().unsign(str(token), max_age=max_age())
    except signing.SignatureExpired as exc:
        raise PortalLinkExpired(EXPIRED_MESSAGE) from exc
    except (signing.BadSignature, ValueError) as exc:
        raise PortalLinkInvalid(INVALID_MESSAGE) from exc
    try:
        return uuid.UUID(int=signing.b62_decode(value))
    except ValueError as exc:
        raise PortalLinkInvalid(INVALID_MESSAGE) from exc


def portal_invoice(token: str) -> Invoice:
    """The issued invoice (or credit note) a portal token opens, with what its page shows alongside; raises
    PortalLinkExpired or PortalLinkInvalid (a genuine token of an invoice that is not issued is invalid too:
    it cannot be made, so it was not made by us)."""
    public_id = invoice_public_id_for(token)
    invoice = (
        Invoice.objects.select_related("legal_entity", "customer", "credited_invoice")
        .filter(public_id=public_id, status=Invoice.Status.ISSUED)
        .first()
    )
    if invoice is None:
        raise PortalLinkInvalid(INVALID_MESSAGE)
    return invoice


class VisitAction:
    VIEW = "view"
    DOWNLOAD = "download"
    DISPUTE = "dispute"


def portal_visit_record(*, invoice: Invoice, action: str, user_agent: str = "") -> PortalVisit:
    """One opening of the portal link, for finance to see that the client looked (no personal data beyond the
    browser's name)."""
    return PortalVisit.objects.create(invoice=invoice, action=action, user_agent=str(user_agent or "")[:200])
