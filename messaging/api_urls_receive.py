"""API routes of the messaging app's receive area (mounted under /api/v1/)."""

from django.urls import path

from messaging.api_consent import ConsentView

urlpatterns: list = [
    path("consent", ConsentView.as_view(), name="consent"),
]
