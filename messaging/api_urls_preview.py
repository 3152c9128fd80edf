"""Route of the message preview (mounted under /api/v1/ by the lead; see docs/messaging.md)."""

from django.urls import path

from messaging.api_preview import MessagePreviewView

urlpatterns = [
    path("messages/preview", MessagePreviewView.as_view(), name="messages-preview"),
]
