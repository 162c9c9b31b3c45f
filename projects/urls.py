from django.urls import path

from . import expense_urls, import_urls, milestone_views, timesheet_urls, views

app_name = "projects"

urlpatterns = [
    path("", views.ProjectListView.as_view(), name="project-list"),
    path("new/", views.ProjectCreateView.as_view(), name="project-create"),
    path("<uuid:public_id>/", views.ProjectDetailView.as_view(), name="project-detail"),
    path("<uuid:public_id>/status/", views.ProjectStatusView.as_view(), name="project-status"),
    path("<uuid:public_id>/versions/<int:number>/", views.VersionDetailView.as_view(), name="version-detail"),
    path("<uuid:public_id>/change-orders/new/", views.ChangeOrderCreateView.as_view(), name="change-order-create"),
    path("change-orders/<uuid:public_id>/", views.ChangeOrderDetailView.as_view(), name="change-order-detail"),
    path("change-orders/<uuid:public_id>/edit/", views.ChangeOrderEditView.as_view(), name="change-order-edit"),
    path("change-orders/<uuid:public_id>/submit/", views.ChangeOrderSubmitView.as_view(), name="change-order-submit"),
    path(
        "change-orders/<uuid:public_id>/approve/",
        views.ChangeOrderApproveView.as_view(),
        name="change-order-approve",
    ),
    path("change-orders/<uuid:public_id>/reject/", views.ChangeOrderRejectView.as_view(), name="change-order-reject"),
    path("deals/<uuid:public_id>/win/", views.DealWinView.as_view(), name="deal-win"),
    path(
        "<uuid:public_id>/milestones/<uuid:milestone_id>/",
        milestone_views.MilestoneAcceptView.as_view(),
        name="milestone-accept",
    ),
    path(
        "<uuid:public_id>/milestones/<uuid:milestone_id>/withdraw/",
        milestone_views.MilestoneWithdrawView.as_view(),
        name="milestone-withdraw",
    ),
    path(
        "<uuid:public_id>/milestones/<uuid:milestone_id>/document/",
        milestone_views.MilestoneDocumentView.as_view(),
        name="milestone-document",
    ),
    *timesheet_urls.urlpatterns,
    *expense_urls.urlpatterns,
    *import_urls.urlpatterns,
]
