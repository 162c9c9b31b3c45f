from django.urls import path

from . import views

app_name = "customers"

urlpatterns = [
    path("", views.CustomerListView.as_view(), name="customer-list"),
    path("new/", views.CustomerCreateView.as_view(), name="customer-create"),
    path("<uuid:public_id>/", views.CustomerDetailView.as_view(), name="customer-detail"),
    path("<uuid:public_id>/edit/", views.CustomerEditView.as_view(), name="customer-edit"),
    path("<uuid:public_id>/status/", views.CustomerStatusView.as_view(), name="customer-status"),
    path("<uuid:public_id>/external-ids/", views.CustomerExternalIdView.as_view(), name="customer-external-id"),
    path("<uuid:public_id>/contacts/new/", views.ContactCreateView.as_view(), name="contact-create"),
    path("contacts/<uuid:public_id>/edit/", views.ContactEditView.as_view(), name="contact-edit"),
    path("contacts/<uuid:public_id>/delete/", views.ContactDeleteView.as_view(), name="contact-delete"),
    path(
        "<uuid:public_id>/exemption-certificates/new/",
        views.ExemptionCertificateCreateView.as_view(),
        name="exemption-certificate-create",
    ),
    path(
        "exemption-certificates/<uuid:public_id>/edit/",
        views.ExemptionCertificateEditView.as_view(),
        name="exemption-certificate-edit",
    ),
    path(
        "exemption-certificates/<uuid:public_id>/delete/",
        views.ExemptionCertificateDeleteView.as_view(),
        name="exemption-certificate-delete",
    ),
    path(
        "exemption-certificates/<uuid:public_id>/document/",
        views.ExemptionCertificateDocumentView.as_view(),
        name="exemption-certificate-document",
    ),
    path("catalog/", views.ProductListView.as_view(), name="product-list"),
    path("catalog/new/", views.ProductCreateView.as_view(), name="product-create"),
    path("catalog/<uuid:public_id>/", views.ProductDetailView.as_view(), name="product-detail"),
    path("catalog/<uuid:public_id>/edit/", views.ProductEditView.as_view(), name="product-edit"),
    path("legal-entities/", views.LegalEntityListView.as_view(), name="legal-entity-list"),
    path("legal-entities/new/", views.LegalEntityCreateView.as_view(), name="legal-entity-create"),
    path("legal-entities/<uuid:public_id>/", views.LegalEntityDetailView.as_view(), name="legal-entity-detail"),
    path("legal-entities/<uuid:public_id>/edit/", views.LegalEntityEditView.as_view(), name="legal-entity-edit"),
]
