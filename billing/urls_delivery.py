"""Routes of billing/delivery (included from billing/urls.py under the billing namespace)."""

from django.urls import path

from . import delivery_views

urlpatterns = [
    path("invoices/<uuid:public_id>/send/", delivery_views.InvoiceSendView.as_view(), name="invoice-send"),
    path(
        "invoices/<uuid:public_id>/messages/<uuid:message_id>/resend/",
        delivery_views.MessageResendView.as_view(),
        name="message-resend",
    ),
]
