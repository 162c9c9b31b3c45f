"""Read queries shared by pages and the API; object access is decided here (missing and forbidden → 404)."""

from __future__ import annotations

from typing import Literal

from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet
from django.http import Http404
from guardian.shortcuts import get_objects_for_user

from backbone.roles import Role, has_role, is_read_only

from .models import (
    Address,
    BankAccount,
    Contact,
    Customer,
    ExemptionCertificate,
    LegalEntity,
    LegalEntityRegistration,
    Product,
)

EditScope = Literal["all", "billing"] | None

# Roles that see every customer (ROLES.md "customers, contacts: view" = all).
_SEE_ALL_CUSTOMERS = (Role.SALES, Role.FINANCE, Role.EXECUTIVE, Role.AUDITOR, Role.ADMIN)


def customers_visible_to(user) -> QuerySet[Customer]:
    """Customers a person may see: all for sales, finance, executives, auditors and admins; a project
    manager only those they hold an object permission on (the customers of their projects)."""
    if not getattr(user, "is_authenticated", False) or not user.has_perm("customers.view_customer"):
        return Customer.objects.none()
    if user.is_superuser or has_role(user, *_SEE_ALL_CUSTOMERS):
        return Customer.objects.all()
    return get_objects_for_user(
        user, "customers.view_customer", klass=Customer, accept_global_perms=False, with_superuser=False
    )


def customer_list(*, user) -> QuerySet[Customer]:
    """The customer list's base query: constant number of queries whatever the page size."""
    return (
        customers_visible_to(user)
        .select_related("owner", "parent")
        .prefetch_related(
            Prefetch(
                "addresses", queryset=Address.objects.filter(kind=Address.Kind.BILLING), to_attr="billing_addresses"
            )
        )
    )


def customer_with_details(queryset: QuerySet[Customer]) -> QuerySet[Customer]:
    return queryset.select_related("owner", "parent", "billing_entity").prefetch_related(
        "addresses", "registrations", "contacts", "exemption_certificates"
    )


def access_customer(*, user, public_id, for_edit: bool = False) -> Customer:
    """The customer with ``public_id`` if ``user`` may see it (and edit it, when asked); else 404."""
    try:
        customer = customer_with_details(customers_visible_to(user)).get(public_id=public_id)
    except (Customer.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such customer.") from exc
    if for_edit and customer_edit_scope(user=user, customer=customer) is None:
        raise Http404("No such customer.")
    return customer


def customer_edit_scope(*, user, customer: Customer) -> EditScope:
    """What ``user`` may change on ``customer``: everything, only the billing fields, or nothing.

    Sales reps edit the accounts they own (django-guardian object permission), finance edits the billing
    fields of every customer, admins edit all; auditors change nothing.
    """
    if not getattr(user, "is_authenticated", False) or is_read_only(user):
        return None
    if user.is_superuser or has_role(user, Role.ADMIN):
        return "all"
    if user.has_perm("customers.change_customer") and user.has_perm("customers.change_customer", customer):
        return "all"
    if user.has_perm("customers.change_customer_billing"):
        return "billing"
    return None


def customer_history_visible(*, user, customer: Customer) -> bool:
    """ROLES.md: history of "own records" for sales; all of it for finance, executives, auditors, admins."""
    return user.has_perm("backbone.view_auditentry") or customer_edit_scope(user=user, customer=customer) == "all"


def customer_status_allowed(*, user, customer: Customer, status: str) -> bool:
    """Whether ``user`` may move ``customer`` to ``status`` now: the transition table, narrowed for finance
    to putting an active customer on hold and releasing the hold."""
    scope = customer_edit_scope(user=user, customer=customer)
    if scope is None or not customer.can_transition_to(status):
        return False
    if scope == "billing":
        return {customer.status, status} == {Customer.Status.ACTIVE, Customer.Status.ON_HOLD}
    return True


def customer_can_create(*, user) -> bool:
    return not is_read_only(user) and user.has_perm("customers.add_customer")


def contacts_visible_to(user) -> QuerySet[Contact]:
    return Contact.objects.filter(customer__in=customers_visible_to(user)).select_related("customer")


def access_contact(*, user, public_id) -> Contact:
    try:
        return contacts_visible_to(user).get(public_id=public_id)
    except (Contact.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such contact.") from exc


def exemption_certificates_visible_to(user) -> QuerySet[ExemptionCertificate]:
    """Certificates of the customers a person may see, for holders of ``view_exemptioncertificate``."""
    if not getattr(user, "is_authenticated", False) or not user.has_perm("customers.view_exemptioncertificate"):
        return ExemptionCertificate.objects.none()
    return ExemptionCertificate.objects.filter(customer__in=customers_visible_to(user)).select_related("customer")


def access_exemption_certificate(*, user, public_id, for_action: str | None = None) -> ExemptionCertificate:
    """The certificate with ``public_id`` if ``user`` may see it (and ``for_action`` it: "change" or
    "delete"); else 404."""
    try:
        certificate = exemption_certificates_visible_to(user).get(public_id=public_id)
    except (ExemptionCertificate.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such exemption certificate.") from exc
    if for_action and for_action not in exemption_certificate_actions(user=user, customer=certificate.customer):
        raise Http404("No such exemption certificate.")
    return certificate


def exemption_certificate_actions(*, user, customer: Customer) -> frozenset[str]:
    """What ``user`` may do with ``customer``'s exemption certificates: a subset of add, change, delete.

    ROLES.md "tax rules, rates, exemptions": finance edits, admins do everything, the rest at most view.
    The model permission decides, narrowed to customers whose billing data the person may edit; auditors
    change nothing.
    """
    if customer_edit_scope(user=user, customer=customer) is None:
        return frozenset()
    return frozenset(
        verb for verb in ("add", "change", "delete") if user.has_perm(f"customers.{verb}_exemptioncertificate")
    )


def products_visible_to(user) -> QuerySet[Product]:
    if not getattr(user, "is_authenticated", False) or not user.has_perm("customers.view_product"):
        return Product.objects.none()
    return Product.objects.all()


def access_product(*, user, public_id) -> Product:
    try:
        return products_visible_to(user).get(public_id=public_id)
    except (Product.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such product.") from exc


def legal_entities_visible_to(user) -> QuerySet[LegalEntity]:
    if not getattr(user, "is_authenticated", False) or not user.has_perm("customers.view_legalentity"):
        return LegalEntity.objects.none()
    return LegalEntity.objects.all()


def legal_entity_with_details(queryset: QuerySet[LegalEntity]) -> QuerySet[LegalEntity]:
    return queryset.prefetch_related(
        Prefetch("registrations", queryset=LegalEntityRegistration.objects.order_by("country")),
        Prefetch("bank_accounts", queryset=BankAccount.objects.order_by("currency", "-is_default")),
    )


def access_legal_entity(*, user, public_id) -> LegalEntity:
    try:
        return legal_entity_with_details(legal_entities_visible_to(user)).get(public_id=public_id)
    except (LegalEntity.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such legal entity.") from exc


def sales_reps():
    """People who may own accounts: holders of the sales role (admins included for hand-overs)."""
    from django.contrib.auth import get_user_model

    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[Role.SALES, Role.ADMIN])
        .distinct()
        .order_by("first_name", "last_name", "username")
    )
