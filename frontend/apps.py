from django.apps import AppConfig


class FrontendConfig(AppConfig):
    name = "frontend"

    def ready(self) -> None:
        from tenancy.embed_auth import ROUTE_CHECKS

        # The embed page's own API: which record the session is about, and creating it.
        ROUTE_CHECKS["embed-context"] = lambda request, scope, kwargs: request.method == "GET"
        ROUTE_CHECKS["embed-record-create"] = lambda request, scope, kwargs: request.method == "POST"
