"""API routes of the templates_app app (mounted under /api/v1/)."""

from rest_framework.routers import SimpleRouter

from templates_app.api import MessageTemplateViewSet

router = SimpleRouter(trailing_slash=False)
router.register("templates", MessageTemplateViewSet, basename="template")

urlpatterns = [*router.urls]
