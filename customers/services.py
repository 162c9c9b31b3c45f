"""Every write of customers, contacts, the catalog and our legal entities.

Services validate the whole input first and save nothing unless all of it is valid; errors are collected
under flat keys (``legal_name``, ``addresses``, ``addresses.1.country``) so a page can put each message
next to its input and the API can return them as JSON.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.files import File
from django.db import IntegrityError, models, transaction
from django.db.models.fields.files import FieldFile
from django.utils import timezone
from django_countries import countries
from guardian.shortcuts import assign_perm, remove_perm

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.history import stamp
from backbone.money import CURRENCY_CODES
from backbone.roles import Role, has_role, require_writer
from backbone.services import external_id_link, sequence_next
from tax.registrations import RegistrationInvalid, validate_bic, validate_iban, validate_vat
from tax.vatex import CATEGORY_OF_CODE, VATEX, exemption_codes_for_category_e

from .lock_objects import (
    customer_for_update,
    exemption_certificate_for_update,
    legal_entity_for_update,
    product_for_update,
)
from .models import (
    Address,
    BankAccount,
    Contact,
    Customer,
    ExemptionCertificate,
    LegalEntity,
    LegalEntityRegistration,
    Product,
    TaxRegistration,
)
from .selectors import (
    customer_edit_scope,
    customer_status_allowed,
    customers_visible_to,
    exemption_certificate_actions,
)
from .uploads import decoded_image_format as _decoded_image_format
from .uploads import file_problem
from .validation import _Errors, _full_clean

CORE_FIELDS = ("legal_name", "display_name", "kind", "owner", "parent", "notes")
BILLING_FIELDS = (
    "billing_entity",
    "default_currency",
    "payment_terms_days",
    "early_discount_percent",
    "early_discount_days",
    "invoice_language",
    "delivery_channel",
    "consolidation",
    "purchase_order_required",
    "einvoice_endpoint",
)
CUSTOMER_FIELDS = CORE_FIELDS + BILLING_FIELDS
ADDRESS_FIELDS = ("kind", "label", "line1", "line2", "postal_code", "city", "region", "country")
REGISTRATION_FIELDS = ("kind", "country", "number")
CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "job_title",
    "role",
    "receives_invoices",
    "receives_reminders",
    "is_active",
)
DEFAULT_REASON = {"create": "Created", "update": "Edited"}


def _check_country(errors: _Errors, key: str, value: Any) -> str:
    code = str(value or "").strip().upper()
    if not code:
        errors.add(key, "Choose a country.")
    elif code not in countries:
        errors.add(key, f"'{value}' is not an ISO 3166 country code (e.g. DE, FR, GB).")
    return code


# --- customers ----------------------------------------------------------------------------------------


def _validate_addresses(errors: _Errors, rows: Sequence[Mapping[str, Any]]) -> list[Address]:
    built = []
    for index, row in enumerate(rows):
        prefix = f"addresses.{index}."
        address = Address(**{f: row[f] for f in ADDRESS_FIELDS if f in row and f != "country"})
        address.country = _check_country(errors, f"{prefix}country", row.get("country"))
        _full_clean(errors, prefix, address, exclude=["customer", "country"])
        built.append(address)
    billing = [a for a in built if a.kind == Address.Kind.BILLING]
    if not billing:
        errors.add("addresses", "A billing address is required: add an address of kind 'Billing'.")
    elif len(billing) > 1:
        errors.add("addresses", "Only one billing address is allowed; mark the others as 'Delivery' or 'Other'.")
    return built


def _validate_registrations(errors: _Errors, rows: Sequence[Mapping[str, Any]]) -> list[TaxRegistration]:
    built, seen = [], set()
    for index, row in enumerate(rows):
        prefix = f"registrations.{index}."
        country = _check_country(errors, f"{prefix}country", row.get("country"))
        registration = TaxRegistration(kind=row.get("kind") or TaxRegistration.Kind.VAT, country=country)
        number = str(row.get("number") or "").strip()
        if not number:
            errors.add(f"{prefix}number", "Enter the VAT number.")
        elif country in countries:
            try:
                parsed = validate_vat(number, country)
            except RegistrationInvalid as exc:
                errors.add(f"{prefix}number", str(exc))
            else:
                registration.number = parsed.number
                registration.validated_at = timezone.now()
        if (registration.kind, country) in seen:
            errors.add(f"{prefix}country", f"There is already a {country} VAT number for this customer.")
        seen.add((registration.kind, country))
        built.append(registration)
    return built


def _validate_contacts(errors: _Errors, rows: Sequence[Mapping[str, Any]]) -> list[Contact]:
    built, emails = [], set()
    for index, row in enumerate(rows):
        prefix = f"contacts.{index}."
        contact = Contact(**{f: row[f] for f in CONTACT_FIELDS if f in row})
        contact.email = (contact.email or "").strip().lower()
        _full_clean(errors, prefix, contact, exclude=["customer"])
        if contact.email and contact.email in emails:
            errors.add(f"{prefix}email", f"{contact.email} is listed twice; each contact needs its own email.")
        emails.add(contact.email)
        built.append(contact)
    return built


def _validate_customer_fields(errors: _Errors, customer: Customer, *, user) -> None:
    if not (customer.display_name or "").strip():
        customer.display_name = (customer.legal_name or "").strip()[:120]
    if customer.default_currency not in CURRENCY_CODES:
        errors.add("default_currency", f"'{customer.default_currency}' is not a currency Throughline bills in.")
    _full_clean(errors, "", customer, exclude=["number", "owner", "parent", "billing_entity"])
    if customer.owner_id and not has_role(customer.owner, Role.SALES, Role.ADMIN):
        errors.add("owner", f"{customer.owner.get_username()} is not a sales rep; only sales reps own accounts.")
    if customer.parent_id:
        if customer.pk and customer.parent_id == customer.pk:
            errors.add("parent", "A customer cannot be its own parent.")
        elif not customers_visible_to(user).filter(pk=customer.parent_id).exists():
            errors.add("parent", "The parent customer does not exist or is not visible to you.")
        elif customer.pk:
            ancestor, depth = customer.parent, 0
            while ancestor is not None and depth < 50:
                if ancestor.pk == customer.pk:
                    errors.add("parent", "That parent would make a loop in the customer group.")
                    break
                ancestor, depth = ancestor.parent, depth + 1
    if customer.early_discount_percent and not customer.early_discount_days:
        errors.add("early_discount_days", "Say within how many days the early-payment discount applies.")
    if customer.early_discount_days and customer.early_discount_days >= customer.payment_terms_days:
        errors.add("early_discount_days", "The discount period must be shorter than the payment terms.")


def _set_owner_permission(customer: Customer, *, old_owner, new_owner) -> None:
    if old_owner is not None and old_owner != new_owner:
        remove_perm("customers.change_customer", old_owner, customer)
    if new_owner is not None:
        assign_perm("customers.change_customer", new_owner, customer)


@transaction.atomic
def customer_create(
    *,
    user,
    data: Mapping[str, Any],
    addresses: Sequence[Mapping[str, Any]],
    registrations: Sequence[Mapping[str, Any]] = (),
    contacts: Sequence[Mapping[str, Any]] = (),
    external_ids: Sequence[Mapping[str, str]] = (),
    reason: str = "",
) -> Customer:
    """Create a customer with its addresses, registrations and contacts, all or nothing.

    The creator owns the account unless ``data['owner']`` names another sales rep (admins only).
    """
    require_writer(user)
    if not user.has_perm("customers.add_customer"):
        raise NotPermitted("Your role cannot create customers.")
    errors = _Errors()
    customer = Customer(**{f: data[f] for f in CUSTOMER_FIELDS if f in data and data[f] is not None})
    if "status" in data and data["status"] not in (None, "", Customer.Status.PROSPECT, Customer.Status.ACTIVE):
        errors.add("status", "A new customer starts as a prospect or active.")
    customer.status = data.get("status") or Customer.Status.PROSPECT
    if customer.owner_id is None and has_role(user, Role.SALES):
        customer.owner = user
    if customer.owner_id and customer.owner_id != user.pk and not (user.is_superuser or has_role(user, Role.ADMIN)):
        errors.add("owner", "You can only create accounts that you own; an admin can hand them over.")
    _validate_customer_fields(errors, customer, user=user)
    built_addresses = _validate_addresses(errors, addresses)
    built_registrations = _validate_registrations(errors, registrations)
    built_contacts = _validate_contacts(errors, contacts)
    errors.raise_if_any("The customer was not saved.")

    reason = reason or DEFAULT_REASON["create"]
    customer.number = sequence_next(key="customer", prefix="CUST")
    stamp(customer, actor=user, reason=reason).save()
    for child in (*built_addresses, *built_registrations, *built_contacts):
        child.customer = customer
        stamp(child, actor=user, reason=reason).save()
    _set_owner_permission(customer, old_owner=None, new_owner=customer.owner)
    for link in external_ids:
        external_id_link(
            obj=customer, system=link.get("system", ""), external_id=link.get("external_id", ""), user=user
        )
    return customer


def _plan_children(
    *,
    parent_field: str,
    parent: models.Model,
    manager,
    built: list,
    rows: Sequence[Mapping[str, Any]],
    fields: Sequence[str],
    errors: _Errors,
    prefix: str,
) -> list[tuple[str, models.Model]]:
    """Plan the replacement of a parent's child rows by ``rows``, matched by ``public_id``.

    Rows that did not change are left alone (no save, no history record); rows missing from ``rows`` are
    deleted. Returns (action, instance) pairs; nothing is written here so that all errors surface first.
    """
    existing = {str(child.public_id): child for child in manager.all()}
    plan, kept = [], set()
    for index, (row, fresh) in enumerate(zip(rows, built, strict=True)):
        key = str(row.get("public_id") or "")
        if key:
            current = existing.get(key)
            if current is None:
                errors.add(
                    f"{prefix}.{index}.public_id",
                    f"This {manager.model._meta.verbose_name} does not belong to the record being edited.",
                )
                continue
            kept.add(key)
            if all(getattr(current, field) == getattr(fresh, field) for field in fields):
                continue
            for field in fields:
                setattr(current, field, getattr(fresh, field))
            if hasattr(fresh, "validated_at"):
                current.validated_at = fresh.validated_at
            plan.append(("save", current))
        else:
            setattr(fresh, parent_field, parent)
            plan.append(("save", fresh))
    for key, child in existing.items():
        if key not in kept:
            plan.append(("delete", child))
    return plan


def _apply_plan(plan: list[tuple[str, models.Model]], *, user, reason: str, what: str) -> None:
    """Write a child plan: deletes first, then saves. Values swapped between two existing rows (two
    contacts exchanging emails, the billing and delivery address exchanging kinds) would collide with a
    uniqueness rule half-way; that is refused as a whole with a message instead of an error page."""
    try:
        with transaction.atomic():
            for action, child in sorted(plan, key=lambda item: item[0] != "delete"):
                stamp(child, actor=user, reason=reason)
                if action == "delete":
                    child.delete()
                else:
                    child.save()
    except IntegrityError as exc:
        raise Conflict(
            f"The {what} could not be saved: two rows would briefly hold the same unique value (for example "
            "two contacts exchanging emails, or two addresses exchanging the billing role). Save the change in "
            "two steps."
        ) from exc


@transaction.atomic
def customer_update(
    *,
    user,
    customer: Customer,
    data: Mapping[str, Any],
    addresses: Sequence[Mapping[str, Any]] | None = None,
    registrations: Sequence[Mapping[str, Any]] | None = None,
    contacts: Sequence[Mapping[str, Any]] | None = None,
    reason: str = "",
) -> Customer:
    """Change a customer; nested lists, when given, replace the current rows (matched by ``public_id``).

    Finance may change only the billing fields and the nested billing data; asking for more is refused
    with the names of the fields.
    """
    require_writer(user)
    scope = customer_edit_scope(user=user, customer=customer)
    if scope is None:
        raise NotPermitted("You cannot edit this customer.")
    customer = customer_for_update(pk=customer.pk)
    errors = _Errors()
    allowed = CUSTOMER_FIELDS if scope == "all" else BILLING_FIELDS
    changed = {
        f: v
        for f, v in data.items()
        if f in CUSTOMER_FIELDS
        and getattr(customer, f if f not in ("owner", "parent", "billing_entity") else f"{f}_id")
        != (getattr(v, "pk", v))
    }
    refused = sorted(set(changed) - set(allowed))
    if refused:
        raise NotPermitted(
            "Finance can change only the billing fields of a customer; not: " + ", ".join(refused) + ".",
            errors={field: ["Only the account owner or an admin can change this."] for field in refused},
        )
    old_owner = customer.owner
    for field, value in changed.items():
        setattr(customer, field, value)
    if "owner" in changed and not (user.is_superuser or has_role(user, Role.ADMIN) or old_owner == user):
        errors.add("owner", "Only the current owner or an admin can hand an account over.")
    _validate_customer_fields(errors, customer, user=user)
    plans = []
    if addresses is not None:
        built = _validate_addresses(errors, addresses)
        plans += _plan_children(
            parent_field="customer",
            parent=customer,
            manager=customer.addresses,
            built=built,
            rows=addresses,
            fields=ADDRESS_FIELDS,
            errors=errors,
            prefix="addresses",
        )
    if registrations is not None:
        built = _validate_registrations(errors, registrations)
        plans += _plan_children(
            parent_field="customer",
            parent=customer,
            manager=customer.registrations,
            built=built,
            rows=registrations,
            fields=REGISTRATION_FIELDS,
            errors=errors,
            prefix="registrations",
        )
    if contacts is not None:
        built = _validate_contacts(errors, contacts)
        plans += _plan_children(
            parent_field="customer",
            parent=customer,
            manager=customer.contacts,
            built=built,
            rows=contacts,
            fields=CONTACT_FIELDS,
            errors=errors,
            prefix="contacts",
        )
    errors.raise_if_any("The customer was not saved.")

    reason = reason or DEFAULT_REASON["update"]
    if changed:
        stamp(customer, actor=user, reason=reason).save()
    _apply_plan(plans, user=user, reason=reason, what="customer")
    if "owner" in changed:
        _set_owner_permission(customer, old_owner=old_owner, new_owner=customer.owner)
    return customer


@transaction.atomic
def customer_set_status(*, user, customer: Customer, status: str, reason: str = "") -> Customer:
    """Move a customer along its lifecycle (prospect → active → on hold / archived)."""
    require_writer(user)
    if customer_edit_scope(user=user, customer=customer) is None:
        raise NotPermitted("You cannot change the status of this customer.")
    if status not in Customer.Status.values:
        raise ValidationFailed(f"'{status}' is not a customer status.", field="status")
    customer = customer_for_update(pk=customer.pk)
    if customer.status == status:
        return customer
    if customer_edit_scope(user=user, customer=customer) == "billing" and not customer_status_allowed(
        user=user, customer=customer, status=status
    ):
        raise NotPermitted(
            "Finance can put an active customer on hold and release the hold; the account owner "
            "or an admin makes every other status change.",
            field="status",
        )
    if not customer.can_transition_to(status):
        raise TransitionNotAllowed(
            f"A customer cannot go from {customer.get_status_display()} to {Customer.Status(status).label}.",
            field="status",
        )
    if status == Customer.Status.ARCHIVED and not reason.strip():
        raise ValidationFailed("Say why the customer is archived.", field="reason")
    customer.status = status
    stamp(customer, actor=user, reason=reason or f"Status → {Customer.Status(status).label}")
    customer.save(update_fields=["status", "updated_at"])
    return customer


@transaction.atomic
def customer_link_external_id(*, user, customer: Customer, system: str, external_id: str):
    require_writer(user)
    if customer_edit_scope(user=user, customer=customer) is None:
        raise NotPermitted("You cannot link external IDs to this customer.")
    return external_id_link(obj=customer, system=system, external_id=external_id, user=user)


# --- contacts -----------------------------------------------------------------------------------------


@transaction.atomic
def contact_create(*, user, customer: Customer, data: Mapping[str, Any], reason: str = "") -> Contact:
    require_writer(user)
    if customer_edit_scope(user=user, customer=customer) is None:
        raise NotPermitted("You cannot add contacts to this customer.")
    errors = _Errors()
    (contact,) = _validate_contacts(errors, [data])
    if contact.email and customer.contacts.filter(email=contact.email).exists():
        errors.add("contacts.0.email", f"{contact.email} is already a contact of this customer.")
    errors.errors = {key.removeprefix("contacts.0."): value for key, value in errors.errors.items()}
    errors.raise_if_any("The contact was not saved.")
    contact.customer = customer
    stamp(contact, actor=user, reason=reason or DEFAULT_REASON["create"]).save()
    return contact


@transaction.atomic
def contact_update(*, user, contact: Contact, data: Mapping[str, Any], reason: str = "") -> Contact:
    require_writer(user)
    if customer_edit_scope(user=user, customer=contact.customer) is None:
        raise NotPermitted("You cannot edit this contact.")
    merged = {f: getattr(contact, f) for f in CONTACT_FIELDS} | {f: v for f, v in data.items() if f in CONTACT_FIELDS}
    errors = _Errors()
    (fresh,) = _validate_contacts(errors, [merged])
    if fresh.email and contact.customer.contacts.filter(email=fresh.email).exclude(pk=contact.pk).exists():
        errors.add("contacts.0.email", f"{fresh.email} is already a contact of this customer.")
    errors.errors = {key.removeprefix("contacts.0."): value for key, value in errors.errors.items()}
    errors.raise_if_any("The contact was not saved.")
    for field in CONTACT_FIELDS:
        setattr(contact, field, getattr(fresh, field))
    stamp(contact, actor=user, reason=reason or DEFAULT_REASON["update"]).save()
    return contact


@transaction.atomic
def contact_delete(*, user, contact: Contact, reason: str = "") -> None:
    require_writer(user)
    if customer_edit_scope(user=user, customer=contact.customer) is None:
        raise NotPermitted("You cannot delete this contact.")
    stamp(contact, actor=user, reason=reason or "Deleted").delete()


# --- catalog ------------------------------------------------------------------------------------------

PRODUCT_FIELDS = (
    "code",
    "name",
    "description",
    "kind",
    "unit",
    "default_price_amount",
    "currency",
    "pricing_rule",
    "revenue_account",
    "default_tax_category",
    "revenue_recognition",
    "is_active",
)


def _validate_product(errors: _Errors, product: Product) -> None:
    product.code = (product.code or "").strip().upper()
    if product.currency not in CURRENCY_CODES:
        errors.add("currency", f"'{product.currency}' is not a currency Throughline bills in.")
    _full_clean(errors, "", product)
    if product.code and Product.objects.filter(code=product.code).exclude(pk=product.pk).exists():
        errors.add("code", f"The code {product.code} is already used by another product.")
    if product.pricing_rule == Product.PricingRule.RATE_CARD and product.kind != Product.Kind.SERVICE:
        errors.add("pricing_rule", "Only services are priced from the project's rate card.")


@transaction.atomic
def product_create(*, user, data: Mapping[str, Any], reason: str = "") -> Product:
    require_writer(user)
    if not user.has_perm("customers.add_product"):
        raise NotPermitted("Your role cannot add products to the catalog.")
    errors = _Errors()
    product = Product(**{f: data[f] for f in PRODUCT_FIELDS if f in data and data[f] is not None})
    _validate_product(errors, product)
    errors.raise_if_any("The product was not saved.")
    stamp(product, actor=user, reason=reason or DEFAULT_REASON["create"]).save()
    return product


@transaction.atomic
def product_update(*, user, product: Product, data: Mapping[str, Any], reason: str = "") -> Product:
    require_writer(user)
    if not user.has_perm("customers.change_product"):
        raise NotPermitted("Your role cannot change the catalog.")
    product = product_for_update(pk=product.pk)
    for field in PRODUCT_FIELDS:
        if field in data and data[field] is not None:
            setattr(product, field, data[field])
    errors = _Errors()
    _validate_product(errors, product)
    errors.raise_if_any("The product was not saved.")
    stamp(product, actor=user, reason=reason or DEFAULT_REASON["update"]).save()
    return product


# --- our legal entities -------------------------------------------------------------------------------

LEGAL_ENTITY_FIELDS = (
    "legal_name",
    "short_name",
    "line1",
    "line2",
    "postal_code",
    "city",
    "region",
    "country",
    "default_currency",
    "email",
    "website",
    "company_register",
    "logo",
    "brand_colour",
    "invoice_prefix",
    "invoice_number_padding",
    "invoice_numbers_restart_yearly",
    "is_active",
)
LEGAL_REGISTRATION_FIELDS = ("kind", "country", "number", "is_oss_registered")
BANK_ACCOUNT_FIELDS = ("bank_name", "account_holder", "iban", "bic", "currency", "is_default")

LOGO_MAX_BYTES = 1024 * 1024
LOGO_FORMATS = {"PNG", "JPEG"}


def _validate_logo(errors: _Errors, logo) -> None:
    """A new logo must be a real PNG or JPEG (checked by decoding it, not by its name) of at most 1 MB.
    SVG is refused: served from media it could carry script."""
    if not logo or (getattr(logo, "_committed", True) and not hasattr(logo, "content_type")):
        return
    size = getattr(logo, "size", 0) or 0
    if size > LOGO_MAX_BYTES:
        errors.add("logo", f"The logo is {size // 1024} KB; the limit is {LOGO_MAX_BYTES // 1024} KB.")
        return
    if _decoded_image_format(logo) not in LOGO_FORMATS:
        errors.add("logo", "A logo must be a PNG or JPEG image.")


def _validate_entity_children(
    errors: _Errors, registrations: Sequence[Mapping[str, Any]], bank_accounts: Sequence[Mapping[str, Any]]
) -> tuple[list[LegalEntityRegistration], list[BankAccount]]:
    regs, seen = [], set()
    for index, row in enumerate(registrations):
        prefix = f"registrations.{index}."
        country = _check_country(errors, f"{prefix}country", row.get("country"))
        reg = LegalEntityRegistration(
            kind=row.get("kind") or LegalEntityRegistration.Kind.VAT,
            country=country,
            number=str(row.get("number") or "").strip(),
            is_oss_registered=bool(row.get("is_oss_registered")),
        )
        if not reg.number:
            errors.add(f"{prefix}number", "Enter the registration number.")
        elif reg.kind == LegalEntityRegistration.Kind.VAT and country in countries:
            try:
                reg.number = validate_vat(reg.number, country).number
            except RegistrationInvalid as exc:
                errors.add(f"{prefix}number", str(exc))
        if (reg.kind, country) in seen:
            errors.add(f"{prefix}country", f"There is already a {reg.get_kind_display()} for {country}.")
        seen.add((reg.kind, country))
        regs.append(reg)
    accounts, defaults, ibans = [], set(), set()
    for index, row in enumerate(bank_accounts):
        prefix = f"bank_accounts.{index}."
        account = BankAccount(**{f: row[f] for f in BANK_ACCOUNT_FIELDS if f in row and row[f] is not None})
        try:
            account.iban = validate_iban(account.iban)
        except RegistrationInvalid as exc:
            errors.add(f"{prefix}iban", str(exc))
        try:
            account.bic = validate_bic(account.bic)
        except RegistrationInvalid as exc:
            errors.add(f"{prefix}bic", str(exc))
        if account.currency not in CURRENCY_CODES:
            errors.add(f"{prefix}currency", f"'{account.currency}' is not a currency Throughline bills in.")
        _full_clean(errors, prefix, account, exclude=["legal_entity", "iban", "bic"])
        if account.iban in ibans:
            errors.add(f"{prefix}iban", "This IBAN is listed twice.")
        ibans.add(account.iban)
        if account.is_default:
            if account.currency in defaults:
                errors.add(f"{prefix}is_default", f"Only one default bank account per currency ({account.currency}).")
            defaults.add(account.currency)
        accounts.append(account)
    return regs, accounts


def _validate_entity(errors: _Errors, entity: LegalEntity) -> None:
    entity.country = _check_country(errors, "country", entity.country)
    if entity.default_currency not in CURRENCY_CODES:
        errors.add("default_currency", f"'{entity.default_currency}' is not a currency Throughline bills in.")
    entity.invoice_prefix = (entity.invoice_prefix or "").strip().upper()
    _full_clean(errors, "", entity, exclude=["country", "logo"])
    _validate_logo(errors, entity.logo)
    if LegalEntity.objects.filter(legal_name=entity.legal_name).exclude(pk=entity.pk).exists():
        errors.add("legal_name", "Another legal entity already has this legal name.")
    if (
        entity.invoice_prefix
        and LegalEntity.objects.filter(invoice_prefix=entity.invoice_prefix).exclude(pk=entity.pk).exists()
    ):
        errors.add("invoice_prefix", f"The invoice prefix {entity.invoice_prefix} is already used by another entity.")


@transaction.atomic
def legal_entity_create(
    *,
    user,
    data: Mapping[str, Any],
    registrations: Sequence[Mapping[str, Any]] = (),
    bank_accounts: Sequence[Mapping[str, Any]] = (),
    reason: str = "",
) -> LegalEntity:
    require_writer(user)
    if not user.has_perm("customers.add_legalentity"):
        raise NotPermitted("Only finance and admins manage legal entities.")
    errors = _Errors()
    entity = LegalEntity(**{f: data[f] for f in LEGAL_ENTITY_FIELDS if f in data and data[f] is not None})
    _validate_entity(errors, entity)
    regs, accounts = _validate_entity_children(errors, registrations, bank_accounts)
    errors.raise_if_any("The legal entity was not saved.")
    reason = reason or DEFAULT_REASON["create"]
    stamp(entity, actor=user, reason=reason).save()
    for child in (*regs, *accounts):
        child.legal_entity = entity
        stamp(child, actor=user, reason=reason).save()
    return entity


@transaction.atomic
def legal_entity_update(
    *,
    user,
    entity: LegalEntity,
    data: Mapping[str, Any],
    registrations: Sequence[Mapping[str, Any]] | None = None,
    bank_accounts: Sequence[Mapping[str, Any]] | None = None,
    reason: str = "",
) -> LegalEntity:
    """Change a legal entity; nested lists, when given, replace its registrations and bank accounts."""
    require_writer(user)
    if not user.has_perm("customers.change_legalentity"):
        raise NotPermitted("Only finance and admins manage legal entities.")
    entity = legal_entity_for_update(pk=entity.pk)
    for field in LEGAL_ENTITY_FIELDS:
        if field in data and data[field] is not None:
            setattr(entity, field, data[field])
    errors = _Errors()
    _validate_entity(errors, entity)
    regs, accounts = _validate_entity_children(
        errors,
        registrations if registrations is not None else [],
        bank_accounts if bank_accounts is not None else [],
    )
    plans = []
    if registrations is not None:
        plans += _plan_children(
            parent_field="legal_entity",
            parent=entity,
            manager=entity.registrations,
            built=regs,
            rows=registrations,
            fields=LEGAL_REGISTRATION_FIELDS,
            errors=errors,
            prefix="registrations",
        )
    if bank_accounts is not None:
        plans += _plan_children(
            parent_field="legal_entity",
            parent=entity,
            manager=entity.bank_accounts,
            built=accounts,
            rows=bank_accounts,
            fields=BANK_ACCOUNT_FIELDS,
            errors=errors,
            prefix="bank_accounts",
        )
    errors.raise_if_any("The legal entity was not saved.")
    reason = reason or DEFAULT_REASON["update"]
    stamp(entity, actor=user, reason=reason).save()
    _apply_plan(plans, user=user, reason=reason, what="legal entity")
    return entity


# --- tax exemption certificates -----------------------------------------------------------------------

CERTIFICATE_FIELDS = ("reference", "reason_code", "reason", "country", "valid_from", "valid_to", "document", "note")
CERTIFICATE_DOCUMENT_MAX_BYTES = 5 * 1024 * 1024
# Extension → (the format the content must decode as, the content types a browser may declare for it).
CERTIFICATE_DOCUMENT_TYPES = {
    ".pdf": ("PDF", {"application/pdf", "application/x-pdf"}),
    ".jpg": ("JPEG", {"image/jpeg", "image/pjpeg"}),
    ".jpeg": ("JPEG", {"image/jpeg", "image/pjpeg"}),
    ".png": ("PNG", {"image/png", "image/x-png"}),
}
_CERTIFICATE_VERBS = {"add": "add", "change": "change", "delete": "delete"}


def certificate_document_problem(upload) -> str | None:
    """Why ``upload`` cannot be a certificate's document, or None when it can.

    Like the legal entity logo, the content is checked by what it is (the PDF signature, or Pillow decoding
    the image), and here the name's extension and the declared content type must agree with it: a PDF, JPEG
    or PNG of at most 5 MB. The admin's form calls this too, so there is one rule with one message.
    """
    return file_problem(upload, types=CERTIFICATE_DOCUMENT_TYPES, max_bytes=CERTIFICATE_DOCUMENT_MAX_BYTES)


def _is_new_upload(value: Any) -> bool:
    """A file given to the service (an upload), as opposed to the document already stored on the row."""
    return isinstance(value, File) and not isinstance(value, FieldFile)


def _require_certificate_permission(user, customer: Customer, verb: str) -> None:
    require_writer(user)
    if verb not in exemption_certificate_actions(user=user, customer=customer):
        raise NotPermitted(f"Only finance and admins {_CERTIFICATE_VERBS[verb]} tax exemption certificates.")


def _validate_certificate(errors: _Errors, certificate: ExemptionCertificate, data: Mapping[str, Any]) -> None:
    """Set ``data`` (only the keys present) on ``certificate`` and check the whole certificate."""
    if "reference" in data:
        certificate.reference = str(data["reference"] or "").strip()
    if not certificate.reference:
        errors.add("reference", "Enter the certificate's number or reference.")
    if "reason_code" in data:
        certificate.reason_code = str(data["reason_code"] or "").strip().upper()
    code = certificate.reason_code
    if not code:
        errors.add("reason_code", "Choose the VATEX exemption reason code the certificate grants.")
    elif code in CATEGORY_OF_CODE:
        errors.add(
            "reason_code",
            f"{code} ({VATEX[code]}) is decided by the tax engine from the parties, not granted by a certificate; "
            "choose an exemption code such as VATEX-EU-151-1B.",
        )
    elif code not in dict(exemption_codes_for_category_e()):
        errors.add("reason_code", f"'{code}' is not a VATEX exemption reason code.")
    for field in ("reason", "note"):
        if field in data:
            setattr(certificate, field, str(data[field] or "").strip())
    if "country" in data:
        given = str(data["country"] or "").strip()
        certificate.country = _check_country(errors, "country", given) if given else ""
    for field in ("valid_from", "valid_to"):
        if field in data:
            setattr(certificate, field, data[field] or None)
    if certificate.valid_from is None:
        errors.add("valid_from", "Enter the first day the certificate is valid.")
    _full_clean(
        errors,
        "",
        certificate,
        exclude=["customer", "created_by", "reference", "reason_code", "country", "document"]
        + (["valid_from"] if certificate.valid_from is None else []),
    )
    start, end = certificate.valid_from, certificate.valid_to
    if isinstance(start, dt.date) and isinstance(end, dt.date) and end < start:
        errors.add(
            "valid_to",
            f"The last day of validity ({end.isoformat()}) is before the first ({start.isoformat()}).",
        )
    if "document" in data:
        document = data["document"]
        if _is_new_upload(document):
            problem = certificate_document_problem(document)
            if problem:
                errors.add("document", problem)
            else:
                certificate.document = document
        elif not document:
            certificate.document = ""  # removed; the stored file stays for the history
        # else: the stored document, unchanged


@transaction.atomic
def exemption_certificate_create(
    *, user, customer: Customer, data: Mapping[str, Any], reason: str = ""
) -> ExemptionCertificate:
    """Record a customer's tax exemption certificate (finance and admins); the tax engine applies it to
    supplies whose tax point falls within its validity."""
    _require_certificate_permission(user, customer, "add")
    errors = _Errors()
    certificate = ExemptionCertificate(customer=customer)
    _validate_certificate(errors, certificate, {field: data.get(field) for field in CERTIFICATE_FIELDS})
    errors.raise_if_any("The exemption certificate was not saved.")
    certificate.created_by = user
    stamp(certificate, actor=user, reason=reason or DEFAULT_REASON["create"]).save()
    return certificate


@transaction.atomic
def exemption_certificate_update(
    *, user, certificate: ExemptionCertificate, data: Mapping[str, Any], reason: str = ""
) -> ExemptionCertificate:
    """Change a certificate; keys absent from ``data`` keep their value. ``document``: a new upload
    replaces the stored one, an empty value removes it, the stored file itself keeps it."""
    _require_certificate_permission(user, certificate.customer, "change")
    certificate = exemption_certificate_for_update(pk=certificate.pk)
    before = {field: getattr(certificate, field) for field in CERTIFICATE_FIELDS}
    errors = _Errors()
    _validate_certificate(errors, certificate, {field: data[field] for field in CERTIFICATE_FIELDS if field in data})
    errors.raise_if_any("The exemption certificate was not saved.")
    if all(getattr(certificate, field) == value for field, value in before.items()):
        return certificate  # nothing changed: no save, no history record
    stamp(certificate, actor=user, reason=reason or DEFAULT_REASON["update"]).save()
    return certificate


@transaction.atomic
def exemption_certificate_delete(*, user, certificate: ExemptionCertificate, reason: str = "") -> None:
    """Remove a certificate recorded in error. The history keeps it, and its document stays in storage so
    that the history's pointer to it still leads somewhere; an expired certificate is better left in place."""
    _require_certificate_permission(user, certificate.customer, "delete")
    certificate = exemption_certificate_for_update(pk=certificate.pk)
    stamp(certificate, actor=user, reason=reason or "Deleted").delete()


# --- deals, quotes (customers.deals holds them; imported here so that callers find every write in one place)

from .deals import (  # noqa: E402, F401  (re-exported)
    ATTACHMENT_MAX_BYTES,
    ATTACHMENT_TYPES,
    DEAL_FIELDS,
    LINE_FIELDS,
    MILESTONE_FIELDS,
    QUOTE_FIELDS,
    deal_close_won,
    deal_create,
    deal_move_stage,
    deal_update,
    quote_accept,
    quote_attachment_add,
    quote_attachment_remove,
    quote_create,
    quote_draft_lines,
    quote_line_net_amount,
    quote_new_version,
    quote_send,
    quote_tax_preview,
    quote_update,
)
