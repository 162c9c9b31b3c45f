from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import views

admin.site.site_header = "Throughline administration"
admin.site.site_title = "Throughline admin"

urlpatterns = [
    path("", views.home, name="home"),
    path("", include("backbone.urls")),
    path("customers/", include("customers.urls")),
    path("projects/", include("projects.urls")),
    path("tax/", include("tax.urls")),
    path("billing/", include("billing.urls")),
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
