from django.urls import path, re_path

from . import views

app_name = "tax"

urlpatterns = [
    path("rates/", views.RateTableView.as_view(), name="rate-table"),
    path("rates/new/", views.TaxRateCreateView.as_view(), name="rate-create"),
    re_path(r"^rates/(?P<country>[A-Za-z]{2})/$", views.JurisdictionDetailView.as_view(), name="jurisdiction-detail"),
    path("preview/", views.TaxPreviewView.as_view(), name="preview"),
    path("evidence/", views.CalculationListView.as_view(), name="calculation-list"),
    path("evidence/<uuid:public_id>/", views.CalculationDetailView.as_view(), name="calculation-detail"),
]
