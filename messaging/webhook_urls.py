"""The URLs Twilio calls (no CSRF, no trailing slash): /api/incoming-sms and /api/status-callback."""

urlpatterns: list = []
