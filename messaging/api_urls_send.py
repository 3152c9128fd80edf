"""API routes of the messaging app's send area (mounted under /api/v1/)."""

urlpatterns: list = []
