"""URLs for bench/ingest_webhooks.py only: the app's URLs plus ``POST /bench/empty-twiml``, a view that
answers what the webhooks answer and does nothing else (same middleware, same server): the baseline."""

from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from messaging.twilio.webhooks import twiml_ok
from quicksend.urls import urlpatterns as app_urlpatterns


@csrf_exempt
@require_POST
def empty_twiml(request):
    return twiml_ok()


urlpatterns = [path("bench/empty-twiml", empty_twiml), *app_urlpatterns]
