"""Set-up shared by the billing benchmarks (not a benchmark itself: ``make bench`` skips files starting with
``_``): people with their roles, a legal entity with a bank account, a customer, and invoices approved in bulk
or drafted with a chosen number of lines. Written directly where the code under test is something else."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group


@dataclass
class World:
    legal_entity: object
    customer: object
    finance: object
    executive: object


def person(username: str, role: str):
    """A user holding ``role`` (fresh from the database: empty permission caches)."""
    User = get_user_model()
    user = User.objects.filter(username=username).first() or User.objects.create_user(
        username=username, password="bench-pw-123"
    )
    user.groups.add(Group.objects.get_or_create(name=role)[0])  # made by the data migrations (or a test)
    return User.objects.get(pk=user.pk)


def _logo() -> bytes:
    """A small PNG logo (a 240 x 80 pixel block of the brand colour)."""
    import io

    from PIL import Image

    image = io.BytesIO()
    Image.new("RGB", (240, 80), "#0B7A75").save(image, format="PNG")
    return image.getvalue()


def billing_world(*, name: str, prefix: str, reverse_charge: bool = True) -> World:
    """A branded legal entity (logo and colour; ``prefix`` names its invoice series) with a EUR bank account,
    and a business customer in Ireland (with a valid VAT ID when ``reverse_charge``: the PDF then carries the
    reverse-charge note)."""
    from django.core.files.base import ContentFile

    from customers.models import TaxRegistration
    from tests.customers.factories import BankAccountFactory, CustomerFactory, LegalEntityFactory

    finance, executive = person("bench-finance", "finance"), person("bench-executive", "executive")
    entity = LegalEntityFactory(legal_name=name, invoice_prefix=prefix, brand_colour="#0B7A75")
    entity.logo.save(f"{prefix.lower()}-logo.png", ContentFile(_logo()), save=True)
    BankAccountFactory(legal_entity=entity, account_holder=name)
    customer = CustomerFactory(owner=finance, billing_entity=entity)
    if reverse_charge:
        TaxRegistration.objects.create(customer=customer, country="IE", number="IE6433435F")
    return World(legal_entity=entity, customer=customer, finance=finance, executive=executive)


def _invoice(world: World):
    from billing.models import Invoice

    return Invoice(
        legal_entity=world.legal_entity,
        customer=world.customer,
        currency="EUR",
        payment_terms_days=30,
        po_number="PO-4711",
        period_start=dt.date(2026, 3, 1),
        period_end=dt.date(2026, 3, 31),
        created_by=world.finance,
    )


def _line(invoice, position: int):
    from billing.models import InvoiceLine

    day = dt.date(2026, 3, 2) + dt.timedelta(days=position % 28)
    return InvoiceLine(
        invoice=invoice,
        position=position,
        kind="manual",
        description=f"Pipeline hardening and review with the data team, {day:%d %b}",
        phase="Build",
        labour_category="Senior consultant",
        quantity=Decimal("4"),
        unit="HUR",
        unit_price=Decimal("150.0000"),
        net_amount=Decimal("600.00"),
        service_start=day,
        service_end=day,
    )


def draft_invoice(world: World, *, lines: int):
    """A draft of ``lines`` lines (four hours of work a day each), refigured by the tax engine."""
    from billing.models import Invoice, InvoiceLine
    from billing.pricing import invoice_refigure

    invoice = _invoice(world)
    invoice.save()
    InvoiceLine.objects.bulk_create(_line(invoice, position) for position in range(1, lines + 1))
    invoice_refigure(invoice)
    return Invoice.objects.get(pk=invoice.pk)


def issued_invoice(world: World, *, lines: int):
    """A draft of ``lines`` lines approved by the executive and issued by finance through the services (the
    PDF task is not queued: the caller renders)."""
    from billing import issuing
    from billing.models import Invoice

    draft = draft_invoice(world, lines=lines)
    enqueue = issuing.invoice_pdf_enqueue
    issuing.invoice_pdf_enqueue = lambda invoice: None
    try:
        issuing.invoice_approve(actor=world.executive, invoice=draft)
        invoice = issuing.invoice_issue(actor=world.finance, invoice=Invoice.objects.get(pk=draft.pk))
    finally:
        issuing.invoice_pdf_enqueue = enqueue
    return Invoice.objects.select_related("legal_entity", "customer", "credited_invoice").get(pk=invoice.pk)


def approved_invoices(world: World, count: int) -> list[int]:
    """``count`` approved one-line invoices, built in bulk: one is refigured through the tax engine and the
    rest copy its figures, so issuing (which refigures again) finds the approved total. Returns their ids."""
    from billing.models import Invoice, InvoiceLine

    template = draft_invoice(world, lines=1)
    figured = template.lines.get()
    copies = [_invoice(world) for _ in range(count - 1)]
    for copy in copies:
        for name in ("net_total", "tax_total", "gross_total", "tax_breakdown", "legal_notes"):
            setattr(copy, name, getattr(template, name))
    Invoice.objects.bulk_create(copies)
    lines = [_line(copy, 1) for copy in copies]
    for made in lines:
        made.tax_category, made.tax_rate = figured.tax_category, figured.tax_rate
    InvoiceLine.objects.bulk_create(lines)
    pks = [template.pk] + [copy.pk for copy in copies]
    Invoice.objects.filter(pk__in=pks).update(status=Invoice.Status.APPROVED, approved_by=world.executive)
    return sorted(pks)
