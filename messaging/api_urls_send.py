"""API routes of the messaging app's send area (mounted under /api/v1/).

``messages/{id}`` (GET) polls one message. Sending (``POST messages``) shares its path with the inbox's
"My Messages" list, so both methods live on one view, ``messaging.api_inbox_messages.MessagesView``
(routed in messaging/api_urls_inbox.py).
"""

from django.urls import path

from messaging.api_send import SendMessageViewSet

urlpatterns = [
    path("messages/<int:pk>", SendMessageViewSet.as_view({"get": "retrieve"}), name="message-detail"),
]
