"""Routes of billing/drafts (included from billing/urls.py under the billing namespace)."""

from django.urls import path

from . import draft_views as v

urlpatterns = [
    path("invoices/<uuid:public_id>/draft/header/", v.DraftHeaderView.as_view(), name="invoice-draft-header"),
    path("invoices/<uuid:public_id>/draft/lines/add/", v.DraftLineAddView.as_view(), name="invoice-draft-line-add"),
    path(
        "invoices/<uuid:public_id>/draft/discounts/add/",
        v.DraftDiscountAddView.as_view(),
        name="invoice-draft-discount-add",
    ),
    path(
        "invoices/<uuid:public_id>/draft/lines/<uuid:line_id>/",
        v.DraftLineRowView.as_view(),
        name="invoice-draft-line",
    ),
    path(
        "invoices/<uuid:public_id>/draft/lines/<uuid:line_id>/edit/",
        v.DraftLineEditView.as_view(),
        name="invoice-draft-line-edit",
    ),
    path(
        "invoices/<uuid:public_id>/draft/lines/<uuid:line_id>/delete/",
        v.DraftLineDeleteView.as_view(),
        name="invoice-draft-line-delete",
    ),
    path("invoices/<uuid:public_id>/comments/", v.CommentAddView.as_view(), name="invoice-comment-add"),
]
