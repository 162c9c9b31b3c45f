"""The REST API, version 1 (included at ``/api/v1/``; schema at ``/api/schema/``, docs at ``/api/docs/``)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from backbone import api_outbox as backbone_api_outbox
from billing import api as billing_api
from customers import api as customers_api
from projects import api as projects_api
from projects import import_api, time_api
from tax import api as tax_api

app_name = "api"

# SimpleRouter, not DefaultRouter: an API root view has no model, so deny-by-default model permissions
# cannot apply to it; the interactive docs are the index.
router = SimpleRouter()
router.register("customers", customers_api.CustomerViewSet, basename="customer")
router.register("contacts", customers_api.ContactViewSet, basename="contact")
router.register("products", customers_api.ProductViewSet, basename="product")
router.register("legal-entities", customers_api.LegalEntityViewSet, basename="legal-entity")
router.register("deals", customers_api.DealViewSet, basename="deal")
router.register("quotes", customers_api.QuoteViewSet, basename="quote")
router.register("tax/jurisdictions", tax_api.JurisdictionViewSet, basename="tax-jurisdiction")
router.register("tax/rates", tax_api.TaxRateViewSet, basename="tax-rate")
router.register("tax/calculations", tax_api.TaxCalculationViewSet, basename="tax-calculation")
router.register("projects", projects_api.ProjectViewSet, basename="project")
router.register(
    r"projects/(?P<project_id>[^/.]+)/rate-card", projects_api.RateCardViewSet, basename="project-rate-card"
)
router.register(
    r"projects/(?P<project_id>[^/.]+)/budget-lines", projects_api.BudgetLineViewSet, basename="project-budget-line"
)
router.register(
    r"projects/(?P<project_id>[^/.]+)/milestones", projects_api.MilestoneViewSet, basename="project-milestone"
)
router.register(
    r"projects/(?P<project_id>[^/.]+)/billing-rules", projects_api.BillingRuleViewSet, basename="project-billing-rule"
)
router.register(
    r"projects/(?P<project_id>[^/.]+)/contract-versions",
    projects_api.ContractVersionViewSet,
    basename="project-contract-version",
)
router.register("change-orders", projects_api.ChangeOrderViewSet, basename="change-order")
time_api.register(router)
router.register("invoice-runs", billing_api.InvoiceRunViewSet, basename="invoice-run")
router.register("invoices", billing_api.InvoiceViewSet, basename="invoice")
router.register("outbox", backbone_api_outbox.OutboxViewSet, basename="outbox")

urlpatterns = [
    path("tax/preview/", tax_api.TaxPreviewView.as_view(), name="tax-preview"),
    path("deals/<uuid:id>/win/", projects_api.DealWinView.as_view(), name="deal-win"),
    path("time-entries/import/", import_api.TimeImportView.as_view(), name="time-entry-import"),
    *time_api.urlpatterns,
    *router.urls,
]
