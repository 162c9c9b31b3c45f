"""Pages of the expense area, the locked periods and a project's team (included by projects/urls.py under
the projects namespace)."""

from django.urls import path

from . import expense_views as v

urlpatterns: list = [
    path("expenses/", v.ExpenseListView.as_view(), name="expense-list"),
    path("expenses/new/", v.ExpenseCreateView.as_view(), name="expense-create"),
    path("expenses/submit-week/", v.ExpenseSubmitWeekView.as_view(), name="expense-submit-week"),
    path("expenses/<uuid:public_id>/edit/", v.ExpenseEditView.as_view(), name="expense-edit"),
    path("expenses/<uuid:public_id>/delete/", v.ExpenseDeleteView.as_view(), name="expense-delete"),
    path("expenses/<uuid:public_id>/receipt/", v.ExpenseReceiptView.as_view(), name="expense-receipt"),
    path("periods/", v.PeriodListView.as_view(), name="period-list"),
    path("periods/lock/", v.PeriodLockView.as_view(), name="period-lock"),
    path("<uuid:public_id>/team/", v.ProjectTeamView.as_view(), name="project-team"),
    path("<uuid:public_id>/team/add/", v.ProjectTeamAddView.as_view(), name="project-team-add"),
    path("team-members/<uuid:public_id>/", v.ProjectTeamMemberView.as_view(), name="project-team-member"),
    path("team-members/<uuid:public_id>/remove/", v.ProjectTeamRemoveView.as_view(), name="project-team-remove"),
]
