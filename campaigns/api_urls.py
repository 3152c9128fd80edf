"""API routes of the campaigns app (mounted under /api/v1/)."""

from rest_framework.routers import SimpleRouter

from campaigns.api import AutomationViewSet
from campaigns.drip.api import CampaignMediaViewSet, CampaignViewSet, KeywordOptInViewSet, SenderRateViewSet

router = SimpleRouter(trailing_slash=False)
router.register("automations", AutomationViewSet, basename="automation")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("campaign-media", CampaignMediaViewSet, basename="campaign-media")
router.register("campaign-sender-rates", SenderRateViewSet, basename="campaign-sender-rate")
router.register("keyword-optins", KeywordOptInViewSet, basename="keyword-optin")

urlpatterns = [*router.urls]
