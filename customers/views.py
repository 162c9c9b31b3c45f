"""Pages for customers, contacts, the catalog and our legal entities.

Thin on purpose: parse the request, check access through the selectors, call one service, render. Every
view declares the model permissions it needs (signed out → login, missing permission → 403); an object
outside the person's scope answers 404 through the ``access_*`` selectors.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from django.contrib import messages
from django.contrib.contenttypes.models import ContentType
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.text import slugify

from backbone.downloads import stored_file_response
from backbone.errors import DomainError
from backbone.models import ExternalId
from backbone.roles import is_read_only
from backbone.views import Guarded

from . import forms as f
from .filters import CustomerFilter, ProductFilter
from .models import Customer
from .selectors import (
    access_contact,
    access_customer,
    access_exemption_certificate,
    access_legal_entity,
    access_product,
    customer_can_create,
    customer_edit_scope,
    customer_history_visible,
    customer_list,
    customer_status_allowed,
    customers_visible_to,
    deal_can_create,
    deals_visible_to,
    exemption_certificate_actions,
    legal_entities_visible_to,
    legal_entity_with_details,
    products_visible_to,
)
from .services import (
    contact_create,
    contact_delete,
    contact_update,
    customer_create,
    customer_link_external_id,
    customer_set_status,
    customer_update,
    exemption_certificate_create,
    exemption_certificate_delete,
    exemption_certificate_update,
    legal_entity_create,
    legal_entity_update,
    product_create,
    product_update,
)

PAGE_SIZE = 25


def _paginate(request: HttpRequest, queryset):
    # A unique last sort key keeps pages stable when the chosen column has ties.
    ordering = list(queryset.query.order_by or queryset.model._meta.ordering)
    return Paginator(queryset.order_by(*ordering, "pk"), PAGE_SIZE).get_page(request.GET.get("page"))


def _is_filtered(request: HttpRequest) -> bool:
    return any(value for key, value in request.GET.items() if key not in ("page", "ordering"))


def _list_response(request: HttpRequest, template: str, partial: str, context: dict[str, Any]) -> HttpResponse:
    """The whole page, or only the results partial when htmx swaps the table (not on history restore)."""
    htmx = getattr(request, "htmx", None)
    only_partial = bool(htmx) and not htmx.history_restore_request
    response = render(request, partial if only_partial else template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


# --- customers ----------------------------------------------------------------------------------------


class CustomerListView(Guarded):
    permission_required = ("customers.view_customer",)

    def get(self, request):
        filterset = CustomerFilter(request.GET, queryset=customer_list(user=request.user))
        page_obj = _paginate(request, filterset.qs)
        context = {
            "filter": filterset,
            "page_obj": page_obj,
            "customers": page_obj.object_list,
            "is_filtered": _is_filtered(request),
            "can_create": customer_can_create(user=request.user),
            "current_ordering": request.GET.get("ordering", ""),
        }
        return _list_response(
            request, "customers/customer_list.html", "customers/partials/customer_table.html", context
        )


def _nested_formsets(request, *, customer: Customer | None):
    """The three inline formsets of the customer page: bound on POST, pre-filled with its rows on edit."""
    specs = (
        ("addresses", f.address_formset, f.address_initial),
        ("registrations", f.registration_formset, f.registration_initial),
        ("contacts", f.contact_formset, f.contact_initial),
    )
    formsets = {}
    for prefix, factory, initial in specs:
        formset_class = factory(extra=1 if customer is None else 0)
        if request.method == "POST":
            formsets[prefix] = formset_class(request.POST, prefix=prefix)
        else:
            formsets[prefix] = formset_class(prefix=prefix, initial=initial(customer) if customer else None)
    return formsets


class CustomerFormMixin:
    template_name = "customers/customer_form.html"

    def render_form(self, request, *, form, formsets, customer=None, status=200, summary=""):
        context = {
            "form": form,
            "formsets": formsets,
            "customer": customer,
            "scope": form.scope,
            "error_summary": summary,
        }
        return render(request, self.template_name, context, status=status)

    def submit(self, request, *, form, formsets, customer=None):
        """Validate the page, call the one service, map its errors back on refusal."""
        if not all([form.is_valid(), *(fs.is_valid() for fs in formsets.values())]):  # every error at once
            return self.render_form(
                request,
                form=form,
                formsets=formsets,
                customer=customer,
                status=400,
                summary="The customer was not saved. Please correct the fields marked below.",
            )
        sent = {prefix: fs.rows() for prefix, fs in formsets.items()}
        rows = {prefix: pair[0] for prefix, pair in sent.items()}
        try:
            if customer is None:
                customer = customer_create(user=request.user, data=form.service_data(), **rows)
                messages.success(request, f"Customer {customer.number} {customer.display_name} was created.")
            else:
                customer = customer_update(
                    user=request.user,
                    customer=customer,
                    data=form.service_data(),
                    reason=form.cleaned_data.get("reason", ""),
                    **rows,
                )
                messages.success(request, f"Customer {customer.number} was saved.")
        except DomainError as exc:
            f.apply_domain_errors(exc, form, {prefix: (formsets[prefix], pair[1]) for prefix, pair in sent.items()})
            return self.render_form(
                request,
                form=form,
                formsets=formsets,
                customer=customer,
                status=exc.status_code,
                summary=exc.message,
            )
        return redirect("customers:customer-detail", public_id=customer.public_id)


class CustomerCreateView(CustomerFormMixin, Guarded):
    permission_required = ("customers.add_customer",)
    writes = True

    def get(self, request):
        form = f.CustomerForm(user=request.user)
        return self.render_form(request, form=form, formsets=_nested_formsets(request, customer=None))

    def post(self, request):
        form = f.CustomerForm(request.POST, user=request.user)
        return self.submit(request, form=form, formsets=_nested_formsets(request, customer=None))


class CustomerEditView(CustomerFormMixin, Guarded):
    permission_any = ("customers.change_customer", "customers.change_customer_billing")
    writes = True

    def get(self, request, public_id):
        customer = access_customer(user=request.user, public_id=public_id, for_edit=True)
        scope = customer_edit_scope(user=request.user, customer=customer)
        form = f.CustomerForm(user=request.user, scope=scope, instance=customer)
        return self.render_form(
            request, form=form, formsets=_nested_formsets(request, customer=customer), customer=customer
        )

    def post(self, request, public_id):
        customer = access_customer(user=request.user, public_id=public_id, for_edit=True)
        scope = customer_edit_scope(user=request.user, customer=customer)
        form = f.CustomerForm(request.POST, user=request.user, scope=scope, instance=customer)
        return self.submit(request, form=form, formsets=_nested_formsets(request, customer=customer), customer=customer)


def _customer_detail(request, customer: Customer, *, external_id_form=None, status: int = 200) -> HttpResponse:
    scope = customer_edit_scope(user=request.user, customer=customer)
    external_ids = ExternalId.objects.filter(
        content_type=ContentType.objects.get_for_model(Customer), object_id=customer.pk
    ).order_by("system")
    context = {
        "customer": customer,
        "scope": scope,
        "can_edit": scope is not None,
        "transitions": [
            s for s in Customer.Status if customer_status_allowed(user=request.user, customer=customer, status=s)
        ],
        "addresses": customer.addresses.all(),
        "registrations": customer.registrations.all(),
        "contacts": customer.contacts.all(),
        "subsidiaries": customers_visible_to(request.user).filter(parent=customer).order_by("display_name"),
        "parent_visible": bool(customer.parent_id)
        and customers_visible_to(request.user).filter(pk=customer.parent_id).exists(),
        "external_ids": external_ids,
        "external_id_form": external_id_form or (f.ExternalIdForm() if scope else None),
        "show_history": customer_history_visible(user=request.user, customer=customer),
        **_certificate_context(request.user, customer),
        **_deal_context(request.user, customer),
    }
    return render(request, "customers/customer_detail.html", context, status=status)


def _certificate_context(user, customer: Customer) -> dict[str, Any]:
    """The "Tax exemption certificates" card: each certificate with its validity today, and what the
    person may do with them."""
    if not user.has_perm("customers.view_exemptioncertificate"):
        return {"show_certificates": False}
    today = timezone.localdate()
    return {
        "show_certificates": True,
        "certificate_rows": [(c, c.validity_on(today)) for c in customer.exemption_certificates.all()],
        "certificate_actions": exemption_certificate_actions(user=user, customer=customer),
    }


def _deal_context(user, customer: Customer) -> dict[str, Any]:
    """The "Deals" card: the customer's deals the person may see, newest first."""
    if not user.has_perm("customers.view_deal"):
        return {"show_deals": False}
    return {
        "show_deals": True,
        "deals": list(deals_visible_to(user).filter(customer=customer).select_related("stage")[:10]),
        "can_open_deal": deal_can_create(user=user) and customer.status != Customer.Status.ARCHIVED,
    }


class CustomerDetailView(Guarded):
    permission_required = ("customers.view_customer",)

    def get(self, request, public_id):
        return _customer_detail(request, access_customer(user=request.user, public_id=public_id))


class CustomerStatusView(Guarded):
    """POST only: move the customer along its lifecycle (archiving needs a reason)."""

    permission_any = ("customers.change_customer", "customers.change_customer_billing")
    writes = True

    def post(self, request, public_id):
        customer = access_customer(user=request.user, public_id=public_id, for_edit=True)
        form = f.StatusForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose a valid status.")
            return redirect("customers:customer-detail", public_id=customer.public_id)
        try:
            customer = customer_set_status(
                user=request.user,
                customer=customer,
                status=form.cleaned_data["status"],
                reason=form.cleaned_data["reason"],
            )
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{customer.display_name} is now {customer.get_status_display().lower()}.")
        return redirect("customers:customer-detail", public_id=customer.public_id)


class CustomerExternalIdView(Guarded):
    """POST only: anchor the customer to an upstream system's ID (written once, never changed)."""

    permission_any = ("customers.change_customer", "customers.change_customer_billing")
    writes = True

    def post(self, request, public_id):
        customer = access_customer(user=request.user, public_id=public_id, for_edit=True)
        form = f.ExternalIdForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                link = customer_link_external_id(user=request.user, customer=customer, **form.cleaned_data)
            except DomainError as exc:
                f.apply_domain_errors(exc, form)
                status = exc.status_code  # a duplicate or an already-linked system is a conflict: 409, as in the API
            else:
                messages.success(request, f"Linked {link.system} ID {link.external_id}.")
                return redirect("customers:customer-detail", public_id=customer.public_id)
        return _customer_detail(request, customer, external_id_form=form, status=status)


# --- contacts -----------------------------------------------------------------------------------------


def _contact_for_edit(user, public_id):
    contact = access_contact(user=user, public_id=public_id)
    if customer_edit_scope(user=user, customer=contact.customer) is None:
        raise Http404("No such contact.")
    return contact


class ContactFormMixin:
    def render_form(self, request, *, form, customer, contact=None, status=200):
        context = {"form": form, "customer": customer, "contact": contact}
        return render(request, "customers/contact_form.html", context, status=status)


class ContactCreateView(ContactFormMixin, Guarded):
    permission_required = ("customers.add_contact",)
    writes = True

    def get(self, request, public_id):
        customer = access_customer(user=request.user, public_id=public_id, for_edit=True)
        return self.render_form(request, form=f.ContactForm(), customer=customer)

    def post(self, request, public_id):
        customer = access_customer(user=request.user, public_id=public_id, for_edit=True)
        form = f.ContactForm(request.POST)
        if form.is_valid():
            try:
                contact = contact_create(user=request.user, customer=customer, data=form.row_data(f.ContactForm.FIELDS))
            except DomainError as exc:
                f.apply_domain_errors(exc, form)
                return self.render_form(request, form=form, customer=customer, status=exc.status_code)
            messages.success(request, f"Contact {contact.full_name} was added.")
            return redirect("customers:customer-detail", public_id=customer.public_id)
        return self.render_form(request, form=form, customer=customer, status=400)


class ContactEditView(ContactFormMixin, Guarded):
    permission_required = ("customers.change_contact",)
    writes = True

    def get(self, request, public_id):
        contact = _contact_for_edit(request.user, public_id)
        form = f.ContactForm(initial={name: getattr(contact, name) for name in f.ContactForm.FIELDS})
        return self.render_form(request, form=form, customer=contact.customer, contact=contact)

    def post(self, request, public_id):
        contact = _contact_for_edit(request.user, public_id)
        form = f.ContactForm(request.POST)
        if form.is_valid():
            try:
                contact = contact_update(user=request.user, contact=contact, data=form.row_data(f.ContactForm.FIELDS))
            except DomainError as exc:
                f.apply_domain_errors(exc, form)
                return self.render_form(
                    request, form=form, customer=contact.customer, contact=contact, status=exc.status_code
                )
            messages.success(request, f"Contact {contact.full_name} was saved.")
            return redirect("customers:customer-detail", public_id=contact.customer.public_id)
        return self.render_form(request, form=form, customer=contact.customer, contact=contact, status=400)


class ContactDeleteView(Guarded):
    permission_required = ("customers.delete_contact",)
    writes = True

    def post(self, request, public_id):
        contact = _contact_for_edit(request.user, public_id)
        customer, name = contact.customer, contact.full_name
        try:
            contact_delete(user=request.user, contact=contact, reason=request.POST.get("reason", ""))
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Contact {name} was removed.")
        return redirect("customers:customer-detail", public_id=customer.public_id)


# --- tax exemption certificates -----------------------------------------------------------------------


class ExemptionCertificateFormMixin:
    def render_form(self, request, *, form, customer, certificate=None, status=200):
        can_delete = certificate is not None and "delete" in exemption_certificate_actions(
            user=request.user, customer=customer
        )
        context = {"form": form, "customer": customer, "certificate": certificate, "can_delete": can_delete}
        return render(request, "customers/exemption_certificate_form.html", context, status=status)


class ExemptionCertificateCreateView(ExemptionCertificateFormMixin, Guarded):
    permission_required = ("customers.add_exemptioncertificate",)
    writes = True

    def get(self, request, public_id):
        customer = access_customer(user=request.user, public_id=public_id, for_edit=True)
        return self.render_form(request, form=f.ExemptionCertificateForm(), customer=customer)

    def post(self, request, public_id):
        customer = access_customer(user=request.user, public_id=public_id, for_edit=True)
        form = f.ExemptionCertificateForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.render_form(request, form=form, customer=customer, status=400)
        try:
            certificate = exemption_certificate_create(
                user=request.user,
                customer=customer,
                data=form.service_data(),
                reason=form.cleaned_data.get("change_reason", ""),
            )
        except DomainError as exc:
            f.apply_domain_errors(exc, form)
            return self.render_form(request, form=form, customer=customer, status=exc.status_code)
        messages.success(request, f"Exemption certificate {certificate.reference} was added.")
        return redirect("customers:customer-detail", public_id=customer.public_id)


class ExemptionCertificateEditView(ExemptionCertificateFormMixin, Guarded):
    permission_required = ("customers.change_exemptioncertificate",)
    writes = True

    def get(self, request, public_id):
        certificate = access_exemption_certificate(user=request.user, public_id=public_id, for_action="change")
        form = f.ExemptionCertificateForm(instance=certificate)
        return self.render_form(request, form=form, customer=certificate.customer, certificate=certificate)

    def post(self, request, public_id):
        certificate = access_exemption_certificate(user=request.user, public_id=public_id, for_action="change")
        customer = certificate.customer
        form = f.ExemptionCertificateForm(request.POST, request.FILES, instance=certificate)
        if not form.is_valid():
            return self.render_form(request, form=form, customer=customer, certificate=certificate, status=400)
        try:
            certificate = exemption_certificate_update(
                user=request.user,
                certificate=certificate,
                data=form.service_data(),
                reason=form.cleaned_data.get("change_reason", ""),
            )
        except DomainError as exc:
            f.apply_domain_errors(exc, form)
            return self.render_form(
                request, form=form, customer=customer, certificate=certificate, status=exc.status_code
            )
        messages.success(request, f"Exemption certificate {certificate.reference} was saved.")
        return redirect("customers:customer-detail", public_id=customer.public_id)


class ExemptionCertificateDeleteView(Guarded):
    """POST only: remove a certificate recorded in error (the history keeps it)."""

    permission_required = ("customers.delete_exemptioncertificate",)
    writes = True

    def post(self, request, public_id):
        certificate = access_exemption_certificate(user=request.user, public_id=public_id, for_action="delete")
        customer, reference = certificate.customer, certificate.reference
        try:
            exemption_certificate_delete(
                user=request.user, certificate=certificate, reason=request.POST.get("reason", "").strip()[:200]
            )
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Exemption certificate {reference} was removed.")
        return redirect("customers:customer-detail", public_id=customer.public_id)


class ExemptionCertificateDocumentView(Guarded):
    """The certificate's scan, for whoever may see the certificate. Served through this view, not from the
    media URL: the scan is a customer's tax document, and media files are not served in production."""

    permission_required = ("customers.view_customer", "customers.view_exemptioncertificate")

    def get(self, request, public_id):
        certificate = access_exemption_certificate(user=request.user, public_id=public_id)
        if not certificate.document:
            raise Http404("This certificate has no document.")
        suffix = PurePosixPath(certificate.document.name).suffix.lower()
        filename = f"{slugify(certificate.reference) or 'certificate'}{suffix}"
        return stored_file_response(certificate.document, filename=filename, missing="The document file is missing.")


# --- catalog ------------------------------------------------------------------------------------------


class ProductListView(Guarded):
    permission_required = ("customers.view_product",)

    def get(self, request):
        filterset = ProductFilter(request.GET, queryset=products_visible_to(request.user))
        page_obj = _paginate(request, filterset.qs)
        context = {
            "filter": filterset,
            "page_obj": page_obj,
            "products": page_obj.object_list,
            "is_filtered": _is_filtered(request),
            "can_create": request.user.has_perm("customers.add_product") and not is_read_only(request.user),
            "current_ordering": request.GET.get("ordering", ""),
        }
        return _list_response(request, "customers/product_list.html", "customers/partials/product_table.html", context)


class ProductDetailView(Guarded):
    permission_required = ("customers.view_product",)

    def get(self, request, public_id):
        product = access_product(user=request.user, public_id=public_id)
        can_edit = request.user.has_perm("customers.change_product") and not is_read_only(request.user)
        return render(request, "customers/product_detail.html", {"product": product, "can_edit": can_edit})


class ProductFormMixin:
    def render_form(self, request, *, form, product=None, status=200):
        return render(request, "customers/product_form.html", {"form": form, "product": product}, status=status)

    def submit(self, request, *, form, product=None):
        if not form.is_valid():
            return self.render_form(request, form=form, product=product, status=400)
        try:
            if product is None:
                product = product_create(user=request.user, data=form.service_data())
                messages.success(request, f"{product.code} was added to the catalog.")
            else:
                product = product_update(
                    user=request.user,
                    product=product,
                    data=form.service_data(),
                    reason=form.cleaned_data.get("reason", ""),
                )
                messages.success(request, f"{product.code} was saved.")
        except DomainError as exc:
            f.apply_domain_errors(exc, form)
            return self.render_form(request, form=form, product=product, status=exc.status_code)
        return redirect("customers:product-detail", public_id=product.public_id)


class ProductCreateView(ProductFormMixin, Guarded):
    permission_required = ("customers.add_product",)
    writes = True

    def get(self, request):
        return self.render_form(request, form=f.ProductForm())

    def post(self, request):
        return self.submit(request, form=f.ProductForm(request.POST))


class ProductEditView(ProductFormMixin, Guarded):
    permission_required = ("customers.change_product",)
    writes = True

    def get(self, request, public_id):
        product = access_product(user=request.user, public_id=public_id)
        return self.render_form(request, form=f.ProductForm(instance=product), product=product)

    def post(self, request, public_id):
        product = access_product(user=request.user, public_id=public_id)
        return self.submit(request, form=f.ProductForm(request.POST, instance=product), product=product)


# --- our legal entities -------------------------------------------------------------------------------


class LegalEntityListView(Guarded):
    permission_required = ("customers.view_legalentity",)

    def get(self, request):
        page_obj = _paginate(request, legal_entity_with_details(legal_entities_visible_to(request.user)))
        context = {
            "page_obj": page_obj,
            "entities": page_obj.object_list,
            "can_create": request.user.has_perm("customers.add_legalentity") and not is_read_only(request.user),
        }
        return render(request, "customers/legal_entity_list.html", context)


class LegalEntityDetailView(Guarded):
    permission_required = ("customers.view_legalentity",)

    def get(self, request, public_id):
        entity = access_legal_entity(user=request.user, public_id=public_id)
        can_edit = request.user.has_perm("customers.change_legalentity") and not is_read_only(request.user)
        return render(request, "customers/legal_entity_detail.html", {"entity": entity, "can_edit": can_edit})


def _entity_formsets(request, *, entity=None):
    extra = 1 if entity is None else 0
    specs = (
        ("registrations", f.entity_registration_formset, f.entity_registration_initial),
        ("bank_accounts", f.bank_account_formset, f.bank_account_initial),
    )
    formsets = {}
    for prefix, factory, initial in specs:
        formset_class = factory(extra=extra)
        if request.method == "POST":
            formsets[prefix] = formset_class(request.POST, prefix=prefix)
        else:
            formsets[prefix] = formset_class(prefix=prefix, initial=initial(entity) if entity else None)
    return formsets


class LegalEntityFormMixin:
    def render_form(self, request, *, form, formsets, entity=None, status=200, summary=""):
        context = {"form": form, "formsets": formsets, "entity": entity, "error_summary": summary}
        return render(request, "customers/legal_entity_form.html", context, status=status)

    def submit(self, request, *, form, formsets, entity=None):
        if not all([form.is_valid(), *(fs.is_valid() for fs in formsets.values())]):  # every error at once
            return self.render_form(
                request,
                form=form,
                formsets=formsets,
                entity=entity,
                status=400,
                summary="The legal entity was not saved. Please correct the fields marked below.",
            )
        sent = {prefix: fs.rows() for prefix, fs in formsets.items()}
        rows = {prefix: pair[0] for prefix, pair in sent.items()}
        try:
            if entity is None:
                entity = legal_entity_create(user=request.user, data=form.service_data(), **rows)
                messages.success(request, f"{entity.short_name} was created.")
            else:
                entity = legal_entity_update(
                    user=request.user,
                    entity=entity,
                    data=form.service_data(),
                    reason=form.cleaned_data.get("reason", ""),
                    **rows,
                )
                messages.success(request, f"{entity.short_name} was saved.")
        except DomainError as exc:
            f.apply_domain_errors(exc, form, {prefix: (formsets[prefix], pair[1]) for prefix, pair in sent.items()})
            return self.render_form(
                request, form=form, formsets=formsets, entity=entity, status=exc.status_code, summary=exc.message
            )
        return redirect("customers:legal-entity-detail", public_id=entity.public_id)


class LegalEntityCreateView(LegalEntityFormMixin, Guarded):
    permission_required = ("customers.add_legalentity",)
    writes = True

    def get(self, request):
        return self.render_form(request, form=f.LegalEntityForm(), formsets=_entity_formsets(request))

    def post(self, request):
        form = f.LegalEntityForm(request.POST, request.FILES)
        return self.submit(request, form=form, formsets=_entity_formsets(request))


class LegalEntityEditView(LegalEntityFormMixin, Guarded):
    permission_required = ("customers.change_legalentity",)
    writes = True

    def get(self, request, public_id):
        entity = access_legal_entity(user=request.user, public_id=public_id)
        return self.render_form(
            request,
            form=f.LegalEntityForm(instance=entity),
            formsets=_entity_formsets(request, entity=entity),
            entity=entity,
        )

    def post(self, request, public_id):
        entity = access_legal_entity(user=request.user, public_id=public_id)
        form = f.LegalEntityForm(request.POST, request.FILES, instance=entity)
        return self.submit(request, form=form, formsets=_entity_formsets(request, entity=entity), entity=entity)
