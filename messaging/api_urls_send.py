"""API routes of the messaging app's send area (mounted under /api/v1/).

``messages`` here answers POST (send) and ``messages/{id}`` GET (poll). The inbox's list (GET ``messages``)
must be merged into the same route: the lead joins them (see docs/messaging.md "Sending").
"""

from rest_framework.routers import SimpleRouter

from messaging.api_send import SendMessageViewSet

router = SimpleRouter(trailing_slash=False)
router.register("messages", SendMessageViewSet, basename="message")

urlpatterns = [*router.urls]
