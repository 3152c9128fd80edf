"""API routes of the messaging app (mounted under /api/v1/)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from messaging import api

router = SimpleRouter(trailing_slash=False)
router.register("twilio-accounts", api.TwilioAccountViewSet, basename="twilio-account")
router.register("numbers", api.PhoneNumberViewSet, basename="phone-number")

urlpatterns = [
    path("messaging-settings", api.MessagingSettingsView.as_view(), name="messaging-settings"),
    path("me/default-number", api.MyDefaultNumberView.as_view(), name="my-default-number-api"),
    *router.urls,
]
