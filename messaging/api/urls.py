"""The REST API of messaging (mounted once under /api/v1/ by quicksend/urls.py): Twilio accounts and numbers,
the organization's messaging settings, sending, preview, consent, and the inbox's API."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from messaging.api import accounts, consent, preview, sending, texting
from messaging.inbox.api import urls as inbox_urls

router = SimpleRouter(trailing_slash=False)
router.register("twilio-accounts", accounts.TwilioAccountViewSet, basename="twilio-account")
router.register("numbers", accounts.PhoneNumberViewSet, basename="phone-number")

urlpatterns = [
    path("messaging-settings", accounts.MessagingSettingsView.as_view(), name="messaging-settings"),
    path("me/default-number", accounts.MyDefaultNumberView.as_view(), name="my-default-number-api"),
    # Sending (POST /messages) shares its path with "My Messages" (GET): both live on the inbox's
    # MessagesView; one message is polled here.
    path("messages/preview", preview.MessagePreviewView.as_view(), name="messages-preview"),
    path("messages/<int:pk>", sending.SendMessageViewSet.as_view({"get": "retrieve"}), name="message-detail"),
    path("messages/<int:pk>/retry", sending.RetryMessageView.as_view(), name="message-retry"),
    path("consent", consent.ConsentView.as_view(), name="consent"),
    # The texting widget's context, the member's composer settings, attachments for members.
    path("texting", texting.TextingContextView.as_view(), name="texting-context"),
    path("me/composer-settings", texting.ComposerSettingsView.as_view(), name="composer-settings"),
    path("media/<int:pk>", texting.MessageMediaView.as_view(), name="message-media"),
    path("", include(inbox_urls)),
    *router.urls,
]
