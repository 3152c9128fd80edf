"""Signed, expiring URLs of outbound media that Twilio fetches (no login: the signature is the access)."""

urlpatterns: list = []
