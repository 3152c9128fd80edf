"""Test-only URLconf: the project's URLs plus the message preview, until the lead routes it in main."""

from django.urls import include, path

from quicksend.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("api/v1/", include("messaging.api_urls_preview")),
    *project_urlpatterns,
]
