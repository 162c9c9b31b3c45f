"""Routes of billing/portal (included from billing/urls.py under the billing namespace).

The client portal's three pages need no login (the signed token is the key); the dispute routes are the
finance panel's forms on the invoice's page.
"""

from django.urls import path

from . import portal_views as v

urlpatterns = [
    path("portal/<str:token>/", v.PortalView.as_view(), name="portal"),
    path("portal/<str:token>/pdf/", v.PortalPdfView.as_view(), name="portal-pdf"),
    path("portal/<str:token>/dispute/", v.PortalDisputeView.as_view(), name="portal-dispute"),
    path("invoices/<uuid:public_id>/disputes/record/", v.DisputeRecordView.as_view(), name="dispute-record"),
    path("disputes/<uuid:public_id>/resolve/", v.DisputeResolveView.as_view(), name="dispute-resolve"),
]
