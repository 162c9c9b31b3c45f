"""Queue tasks of the customers app (django-q2). Each takes IDs, re-fetches, and is safe to run twice."""

from __future__ import annotations

import hashlib

from django.core.files.base import ContentFile
from django.db import transaction

from backbone.history import set_reason

from .lock_objects import quote_for_update
from .models import Quote
from .quote_pdf import render_quote_pdf


def _quote_for_pdf(quote_id: int) -> Quote | None:
    return (
        Quote.objects.select_related("deal__legal_entity", "deal__customer")
        .prefetch_related(
            "lines",
            "milestones",
            "deal__legal_entity__registrations",
            "deal__customer__addresses",
            "deal__customer__registrations",
            "deal__customer__contacts",
        )
        .filter(pk=quote_id)
        .first()
    )


def quote_pdf_render(quote_id: int) -> bool:
    """Render a sent (or accepted) quote's PDF and store it once with its SHA-256. Returns whether it stored
    one: a draft has none yet, and a quote that has its PDF keeps it (a retried task changes nothing)."""
    quote = _quote_for_pdf(quote_id)
    if quote is None or quote.status == Quote.Status.DRAFT or quote.pdf:
        return False
    pdf = render_quote_pdf(quote)  # outside the lock: rendering takes a moment
    with transaction.atomic():
        locked = quote_for_update(pk=quote_id)
        if locked.pdf:
            return False  # another run stored it meanwhile
        locked.pdf.save(f"{quote.deal.number}-v{quote.version}.pdf", ContentFile(pdf), save=False)
        locked.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
        set_reason(locked, "Quote PDF rendered")
        locked.save(update_fields=["pdf", "pdf_sha256", "updated_at"])
    return True
