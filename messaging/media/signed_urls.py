"""Signed, expiring public URLs of outbound media: Twilio fetches each ``MediaUrl`` itself, without our
login, so the URL carries its own access (a ``TimestampSigner`` token naming the media row).

``signed_media_url(media)`` builds the URL under ``PUBLIC_BASE_URL``; ``serve_signed_media`` answers GET and
HEAD with the stored file and its sniffed Content-Type (Twilio refuses a Content-Type that does not match the
content), and 404 for a forged, expired or unknown token. Tokens live ``QUICKSEND_MEDIA_URL_MAX_AGE`` seconds
(default 12 h: Twilio may keep a message queued for up to its 10 h validity period before fetching).
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.http import FileResponse, Http404, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from messaging.models import MessageMedia

_SALT = "messaging.outbound-media"
DEFAULT_MAX_AGE = 12 * 3600


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=_SALT)


def max_age() -> int:
    return int(getattr(settings, "QUICKSEND_MEDIA_URL_MAX_AGE", DEFAULT_MAX_AGE))


def signed_media_url(media: MessageMedia) -> str:
    """The public URL Twilio fetches this media item from (valid for ``max_age()`` seconds)."""
    token = _signer().sign(str(media.pk))
    name = media.file.name.rsplit("/", 1)[-1] if media.file else f"{media.pk}"
    path = reverse("outbound-media", kwargs={"token": token, "name": name})
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def media_for_token(token: str) -> MessageMedia:
    """The media row a token names; Http404 when it is forged, expired or names nothing."""
    try:
        pk = int(_signer().unsign(token, max_age=max_age()))
    except (signing.BadSignature, ValueError):
        raise Http404("Not found.")
    media = MessageMedia.objects.filter(pk=pk).exclude(file="").first()
    if media is None:
        raise Http404("Not found.")
    return media


@require_http_methods(["GET", "HEAD"])
def serve_signed_media(request, token: str, name: str):
    media = media_for_token(token)
    try:
        handle = media.file.open("rb")
    except FileNotFoundError:
        raise Http404("Not found.")
    headers = {"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"}
    if request.method == "HEAD":
        handle.close()
        response = HttpResponse(b"", content_type=media.content_type, headers=headers)
        response["Content-Length"] = str(media.size or media.file.size)
        return response
    return FileResponse(handle, content_type=media.content_type, headers=headers)


serve_signed_media.isolation_model = MessageMedia
