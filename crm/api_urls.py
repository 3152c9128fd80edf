"""API routes of the crm app (mounted under /api/v1/)."""

urlpatterns: list = []
