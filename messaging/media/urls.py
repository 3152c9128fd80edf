"""Signed, expiring URLs of outbound media that Twilio fetches (no login: the signature is the access)."""

from django.urls import path

from messaging.media.signed_urls import serve_signed_media

urlpatterns = [
    path("media/out/<str:token>/<str:name>", serve_signed_media, name="outbound-media"),
]
