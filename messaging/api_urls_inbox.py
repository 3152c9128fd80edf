"""API routes of the messaging app's inbox area (mounted under /api/v1/)."""

urlpatterns: list = []
