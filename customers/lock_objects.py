"""Row locks of the customers app. Lock order across apps: customer → project → invoice → lines → payment;
within the pipeline: deal → its quotes (by pk)."""

from __future__ import annotations

from .models import Customer, Deal, ExemptionCertificate, LegalEntity, Product, Quote


def customer_for_update(*, pk: int) -> Customer:
    return Customer.objects.select_for_update(of=("self",)).get(pk=pk)


def product_for_update(*, pk: int) -> Product:
    return Product.objects.select_for_update(of=("self",)).get(pk=pk)


def legal_entity_for_update(*, pk: int) -> LegalEntity:
    return LegalEntity.objects.select_for_update(of=("self",)).get(pk=pk)


def exemption_certificate_for_update(*, pk: int) -> ExemptionCertificate:
    return ExemptionCertificate.objects.select_for_update(of=("self",)).select_related("customer").get(pk=pk)


def deal_for_update(*, pk: int) -> Deal:
    """The deal row; every quote transition takes it first, so two accepts of one deal queue up here.

    No joins: PostgreSQL re-checks a row it waited for against the rows it was joined to when the statement
    began, so a deal whose stage another transaction just changed would not be found at all.
    """
    return Deal.objects.select_for_update(of=("self",)).get(pk=pk)


def quote_for_update(*, pk: int) -> Quote:
    return Quote.objects.select_for_update(of=("self",)).get(pk=pk)


def quotes_of_deal_for_update(*, deal_id: int) -> list[Quote]:
    return list(Quote.objects.filter(deal_id=deal_id).order_by("pk").select_for_update(of=("self",)))
