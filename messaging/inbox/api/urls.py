"""API routes of the messaging app's inbox area (mounted under /api/v1/)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from messaging.inbox.api import conversations as api_inbox_conversations
from messaging.inbox.api import messages as api_inbox_messages
from messaging.inbox.api import notifications as api_notifications
from messaging.inbox.api import settings as api_inbox

router = SimpleRouter(trailing_slash=False)
router.register("conversations", api_inbox_conversations.ConversationViewSet, basename="conversation")
router.register("notifications", api_notifications.NotificationViewSet, basename="notification")

urlpatterns = [
    # GET lists "My Messages", POST sends (one view for one path; see MessagesView).
    path("messages", api_inbox_messages.MessagesView.as_view(), name="my-messages"),
    path("messages/export", api_inbox_messages.MyMessagesExportView.as_view(), name="my-messages-export"),
    path("inbox-settings", api_inbox.InboxSettingsView.as_view(), name="inbox-settings"),
    path("history-sync", api_inbox.HistorySyncView.as_view(), name="history-sync"),
    *router.urls,
]
