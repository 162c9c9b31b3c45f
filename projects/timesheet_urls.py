"""Pages of the timesheet area (included by projects/urls.py under the projects namespace)."""

from django.urls import path

from . import timesheet_views as views

urlpatterns: list = [
    path("timesheet/", views.TimesheetView.as_view(), name="timesheet"),
    path("timesheet/cell/", views.TimesheetCellView.as_view(), name="timesheet-cell"),
    path("timesheet/row/", views.TimesheetRowView.as_view(), name="timesheet-row"),
    path("timesheet/row/add/", views.TimesheetRowAddView.as_view(), name="timesheet-row-add"),
    path("timesheet/row/remove/", views.TimesheetRowRemoveView.as_view(), name="timesheet-row-remove"),
    path("timesheet/copy/", views.TimesheetCopyView.as_view(), name="timesheet-copy"),
    path("timesheet/submit/", views.TimesheetSubmitView.as_view(), name="timesheet-submit"),
    path("approvals/", views.ApprovalQueueView.as_view(), name="approval-queue"),
    path("approvals/decide/", views.ApprovalDecideView.as_view(), name="approval-decide"),
]
