"""API routes of the messaging app's receive area (mounted under /api/v1/)."""

urlpatterns: list = []
