"""API routes of the embedded record widget (mounted under /api/v1/)."""

from django.urls import path

from frontend.embed import api

urlpatterns = [
    path("embed/tokens", api.MintLaunchTokenView.as_view(), name="embed-tokens"),
    path("embed/hubspot/launch", api.HubSpotLaunchView.as_view(), name="embed-hubspot-launch"),
    path("embed/session", api.EmbedSessionView.as_view(), name="embed-session"),
    path("embed/context", api.EmbedContextView.as_view(), name="embed-context"),
    path("embed/record", api.EmbedRecordView.as_view(), name="embed-record-create"),
]
