from django.urls import path

from . import deal_views, views

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
    # deals, the pipeline, quotes
    path("deals/", deal_views.DealListView.as_view(), name="deal-list"),
    path("deals/new/", deal_views.DealCreateView.as_view(), name="deal-create"),
    path("deals/<uuid:public_id>/", deal_views.DealDetailView.as_view(), name="deal-detail"),
    path("deals/<uuid:public_id>/edit/", deal_views.DealEditView.as_view(), name="deal-edit"),
    path("deals/<uuid:public_id>/stage/", deal_views.DealStageView.as_view(), name="deal-stage"),
    path("deals/<uuid:public_id>/quotes/new/", deal_views.QuoteCreateView.as_view(), name="quote-create"),
    path(
        "deals/<uuid:public_id>/quotes/tax-preview/",
        deal_views.QuoteTaxPreviewView.as_view(),
        name="quote-tax-preview",
    ),
    path("pipeline/", deal_views.PipelineView.as_view(), name="pipeline"),
    path("quotes/<uuid:public_id>/", deal_views.QuoteDetailView.as_view(), name="quote-detail"),
    path("quotes/<uuid:public_id>/edit/", deal_views.QuoteEditView.as_view(), name="quote-edit"),
    path("quotes/<uuid:public_id>/send/", deal_views.QuoteSendView.as_view(), name="quote-send"),
    path("quotes/<uuid:public_id>/accept/", deal_views.QuoteAcceptView.as_view(), name="quote-accept"),
    path("quotes/<uuid:public_id>/new-version/", deal_views.QuoteNewVersionView.as_view(), name="quote-new-version"),
    path("quotes/<uuid:public_id>/pdf/", deal_views.QuotePdfView.as_view(), name="quote-pdf"),
    path(
        "quotes/<uuid:public_id>/attachments/new/",
        deal_views.QuoteAttachmentAddView.as_view(),
        name="quote-attachment-add",
    ),
    path(
        "quote-attachments/<uuid:public_id>/",
        deal_views.QuoteAttachmentDownloadView.as_view(),
        name="quote-attachment-download",
    ),
    path(
        "quote-attachments/<uuid:public_id>/delete/",
        deal_views.QuoteAttachmentDeleteView.as_view(),
        name="quote-attachment-delete",
    ),
]
