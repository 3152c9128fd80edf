"""The URLs Twilio calls (no CSRF, no trailing slash): /api/incoming-sms and /api/status-callback."""

from django.urls import path

from messaging.twilio import webhooks
from messaging.twilio.public_urls import INCOMING_SMS_PATH, STATUS_CALLBACK_PATH

urlpatterns: list = [
    path(INCOMING_SMS_PATH.lstrip("/"), webhooks.incoming_sms, name="twilio-incoming-sms"),
    path(STATUS_CALLBACK_PATH.lstrip("/"), webhooks.status_callback, name="twilio-status-callback"),
]
