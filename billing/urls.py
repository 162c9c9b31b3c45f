from django.urls import include, path

from . import credit_views, document_views, views

app_name = "billing"

urlpatterns = [
    path("invoices/", views.InvoiceListView.as_view(), name="invoice-list"),
    path("invoices/<uuid:public_id>/", views.InvoiceDetailView.as_view(), name="invoice-detail"),
    path("invoices/<uuid:public_id>/approve/", views.InvoiceApproveView.as_view(), name="invoice-approve"),
    path(
        "invoices/<uuid:public_id>/return-to-draft/",
        views.InvoiceReturnToDraftView.as_view(),
        name="invoice-return-to-draft",
    ),
    path("invoices/<uuid:public_id>/issue/", views.InvoiceIssueView.as_view(), name="invoice-issue"),
    path("invoices/<uuid:public_id>/discard/", views.InvoiceDiscardView.as_view(), name="invoice-discard"),
    path("invoices/<uuid:public_id>/credit/", credit_views.CreditNoteCreateView.as_view(), name="credit-note-create"),
    path("invoices/<uuid:public_id>/pdf/", document_views.InvoicePdfView.as_view(), name="invoice-pdf"),
    path("runs/", views.RunListView.as_view(), name="run-list"),
    path("runs/start/", views.RunStartView.as_view(), name="run-start"),
    path("runs/<uuid:public_id>/", views.RunDetailView.as_view(), name="run-detail"),
    path("runs/<uuid:public_id>/progress/", views.RunProgressView.as_view(), name="run-progress"),
    path("runs/<uuid:public_id>/retry/", views.RunRetryView.as_view(), name="run-retry"),
    # Draft editing and review, delivery (send, Outbox links) and the client portal each keep their routes in
    # their own module.
    path("", include("billing.urls_drafts")),
    path("", include("billing.urls_delivery")),
    path("", include("billing.urls_portal")),
]
