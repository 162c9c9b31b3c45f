from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("history/", views.HistoryListView.as_view(), name="history"),
    path("history/verify/", views.HistoryVerifyView.as_view(), name="history-verify"),
    path("history/<int:pk>/", views.HistoryEntryView.as_view(), name="history-entry"),
    path("notifications/", views.NotificationListView.as_view(), name="notifications"),
    path("notifications/read/", views.NotificationReadView.as_view(), name="notification-read"),
]

urlpatterns += [
    path("outbox/", views.OutboxListView.as_view(), name="outbox"),
    path("outbox/<uuid:public_id>/", views.OutboxDetailView.as_view(), name="outbox-detail"),
    path("outbox/<uuid:public_id>/resend/", views.OutboxResendView.as_view(), name="outbox-resend"),
]
