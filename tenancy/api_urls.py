from django.urls import path
from rest_framework.routers import SimpleRouter

from tenancy import api

router = SimpleRouter(trailing_slash=False)
router.register("members", api.MemberViewSet, basename="member")
router.register("invitations", api.InvitationViewSet, basename="invitation")
router.register("teams", api.TeamViewSet, basename="team")
router.register("tokens", api.ApiTokenViewSet, basename="api-token")
router.register("audit-log", api.AuditLogViewSet, basename="audit-log")

urlpatterns = [path("me", api.MeView.as_view(), name="api-me"), *router.urls]
