"""API routes of the campaigns app (mounted under /api/v1/)."""

from rest_framework.routers import SimpleRouter

from campaigns.api import AutomationViewSet

router = SimpleRouter(trailing_slash=False)
router.register("automations", AutomationViewSet, basename="automation")

urlpatterns = [*router.urls]
