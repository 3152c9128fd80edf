from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from quicksend import health


@never_cache
def healthz(request):
    """200 when database, channel layer, broker and worker/scheduler are up; 503 naming what is down."""
    ok, body = health.report()
    return JsonResponse(body, status=200 if ok else 503)


@never_cache
def livez(request):
    """The process answers HTTP (for container liveness; says nothing of its dependencies)."""
    return JsonResponse({"status": "ok"})
