"""Pages of the import area (included by projects/urls.py under the projects namespace)."""

from django.urls import path

from . import import_views

urlpatterns: list = [
    path("import/time/", import_views.TimeImportView.as_view(), name="time-import"),
]
