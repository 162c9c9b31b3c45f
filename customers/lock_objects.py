"""Row locks of the customers app. Lock order across apps: customer → project → invoice → lines → payment."""

from __future__ import annotations

from .models import Customer, ExemptionCertificate, LegalEntity, Product


def customer_for_update(*, pk: int) -> Customer:
    return Customer.objects.select_for_update(of=("self",)).get(pk=pk)


def product_for_update(*, pk: int) -> Product:
    return Product.objects.select_for_update(of=("self",)).get(pk=pk)


def legal_entity_for_update(*, pk: int) -> LegalEntity:
    return LegalEntity.objects.select_for_update(of=("self",)).get(pk=pk)


def exemption_certificate_for_update(*, pk: int) -> ExemptionCertificate:
    return ExemptionCertificate.objects.select_for_update(of=("self",)).select_related("customer").get(pk=pk)
