"""Root URLs. Each app owns its page routes and one API urls module (REST under /api/v1/), included here."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from quicksend import views

api_v1 = [
    path("", include("tenancy.api_urls")),
    path("", include("crm.api_urls")),
    path("", include("messaging.api.urls")),
    path("", include("templates_app.api_urls")),
    path("", include("campaigns.api_urls")),
    path("", include("frontend.embed.api_urls")),
]

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("livez", views.livez, name="livez"),
    path("admin/", admin.site.urls),
    path("", include("messaging.twilio.urls")),
    path("", include("messaging.media.urls")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    *([path("sandbox/", include("sandbox.urls"))] if settings.QUICKSEND_SANDBOX else []),
    path("", include("tenancy.urls")),
    path("", include("messaging.urls")),
    path("", include("crm.urls")),
    path("", include("templates_app.urls")),
    path("", include("campaigns.urls")),
    path("", include("frontend.embed.urls")),
    path("", include("frontend.urls")),
]
