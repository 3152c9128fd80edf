"""API routes of the messaging app (mounted under /api/v1/)."""

urlpatterns: list = []
