"""API routes of the templates_app app (mounted under /api/v1/)."""

urlpatterns: list = []
