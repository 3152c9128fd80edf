"""The REST side of the embedded record widget (docs/embed.md).

- ``POST /api/v1/embed/tokens`` (an admin's API token: Salesforce Apex, a Zoho connector, a Dynamics plug-in
  or flow, any other CRM): a launch token and the embed URL carrying it in its fragment.
- ``POST /api/v1/embed/hubspot/launch``: the same for a HubSpot app card's ``hubspot.fetch``, proved by
  HubSpot's v3 signature instead of an API token.
- ``POST /api/v1/embed/session``: the embed page exchanges its launch token, once, for an embed session
  (a partitioned cookie, and the key for the page's memory).
- ``GET /api/v1/embed/context`` and ``POST /api/v1/embed/record`` (embed sessions only): which record the
  session is about; create it when the CRM's record is not in QuickSend yet.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from frontend.embed import records
from quicksend.api import StrictSerializer
from quicksend.errors import DomainError
from tenancy.authentication import ApiTokenAuthentication
from tenancy.embed import (
    LAUNCH_TOKEN_SECONDS,
    EmbedRefused,
    consume_launch_token,
    do_attach_record,
    do_mint_launch_token,
    do_open_embed_session,
    map_crm_user,
    normalize_external_id,
    set_embed_cookie,
    verify_launch_token,
)
from tenancy.embed_signatures import verify_hubspot_v3
from tenancy.models import Crm, EmbedSession, EmbedSettings, Organization
from tenancy.permissions import IsOrgAdmin, IsOrgMember


def embed_url(org: Organization, record_type: str, external_id: str, phone: str, token: str) -> str:
    """The embed page of a record (or a number) with the launch token in its fragment: browsers never send a
    fragment to a server, so it is in no access log and no Referer."""
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    if external_id:
        path = reverse("embed-record", args=[org.slug, record_type, external_id])
    else:
        path = reverse("embed-phone", args=[org.slug, phone])
    return f"{base}{path}#launch={token}"


def mint(org: Organization, crm: str, data: dict) -> dict:
    """Mint for one record or number; the answer of every trusted launch step."""
    external_id = normalize_external_id(crm, data.get("external_id", ""))
    if "/" in external_id or not external_id.isprintable():
        raise DomainError("A record id cannot contain '/' or control characters.", field="external_id")
    phone = records.phone_of(org.pk, data["phone"]) if data.get("phone") else ""
    if not external_id and not phone:
        raise DomainError("Save the record first: it has no id yet.", field="external_id")
    record_type = records.record_type_for(crm, data.get("record_type") or "lead") if external_id else ""
    token = do_mint_launch_token(
        org,
        crm=crm,
        crm_user_id=data.get("crm_user_id", ""),
        email=data.get("email", ""),
        record_type=record_type,
        external_id=external_id,
        phone=phone,
        name=data.get("name", ""),
    )
    return {
        "token": token,
        "expires_in": LAUNCH_TOKEN_SECONDS,
        "url": embed_url(org, record_type, external_id, phone, token),
    }


class MintSerializer(StrictSerializer):
    crm = serializers.ChoiceField(choices=Crm.choices, default=Crm.GENERIC)
    crm_user_id = serializers.CharField(max_length=120, required=False, default="", allow_blank=True)
    email = serializers.EmailField(required=False, default="", allow_blank=True)
    record_type = serializers.CharField(
        max_length=40,
        required=False,
        default="",
        allow_blank=True,
        help_text="Ours (lead…) or the CRM's name.",
    )
    external_id = serializers.CharField(max_length=120, required=False, default="", allow_blank=True)
    phone = serializers.CharField(max_length=40, required=False, default="", allow_blank=True)
    name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


_LAUNCH = inline_serializer(
    "EmbedLaunch",
    {
        "token": serializers.CharField(),
        "expires_in": serializers.IntegerField(),
        "url": serializers.URLField(),
    },
)


class MintLaunchTokenView(APIView):
    authentication_classes = [ApiTokenAuthentication]
    permission_classes = [IsOrgAdmin]

    @extend_schema(
        summary="A launch token for the embedded record widget",
        description="For a CRM server-side step (Apex, a Zoho connector, a Dynamics plug-in or flow, your "
        "own backend) with an admin's API token: the CRM user (`crm_user_id` and/or `email`) and the record "
        "(`record_type` + `external_id`, or `phone`). The token is valid 60 seconds and exchanged once; "
        "open `url` in the CRM's frame.",
        request=MintSerializer,
        responses={201: _LAUNCH},
    )
    def post(self, request):
        serializer = MintSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return Response(mint(request.org, data["crm"], data), status=201)


class HubSpotCardSerializer(StrictSerializer):
    objectId = serializers.CharField(max_length=120)  # noqa: N815 (HubSpot's names)
    objectTypeId = serializers.CharField(max_length=40)  # noqa: N815


class HubSpotLaunchView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="A launch URL for a HubSpot app card (hubspot.fetch, v3-signed)",
        request=HubSpotCardSerializer,
        responses={201: _LAUNCH},
    )
    def post(self, request):
        params = request.query_params
        portal = params.get("portalId", "")
        found = (
            EmbedSettings.objects.select_related("organization").filter(hubspot_portal_id=portal).first()
            if portal.isascii() and portal.isdigit()
            else None
        )
        if found is None:
            raise Http404("Not found.")
        uri = settings.PUBLIC_BASE_URL.rstrip("/") + request.get_full_path()
        verify_hubspot_v3(
            found.get_secret("hubspot_client_secret"),
            method=request.method,
            uri=uri,
            body=request.body,
            signature=request.headers.get("X-HubSpot-Signature-v3", ""),
            timestamp=request.headers.get("X-HubSpot-Request-Timestamp", ""),
        )
        serializer = HubSpotCardSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        card = serializer.validated_data
        data = {
            "crm_user_id": params.get("userId", ""),
            "email": params.get("userEmail", ""),
            "record_type": card["objectTypeId"],
            "external_id": card["objectId"],
        }
        return Response(mint(found.organization, Crm.HUBSPOT, data), status=201)


_CONTEXT_FIELDS = {
    "state": serializers.ChoiceField(choices=["ready", "missing"]),
    "record": serializers.DictField(allow_null=True),
    "record_type": serializers.CharField(),
    "external_id": serializers.CharField(),
    "phone": serializers.CharField(),
    "name": serializers.CharField(),
    "can_create": serializers.BooleanField(),
}
_CONTEXT = inline_serializer("EmbedContext", _CONTEXT_FIELDS)
_SESSION = inline_serializer(
    "EmbedSession",
    {"key": serializers.CharField(), "expires_in": serializers.IntegerField(), **_CONTEXT_FIELDS},
)


class ExchangeSerializer(StrictSerializer):
    token = serializers.CharField(max_length=4096)
    org = serializers.SlugField(max_length=60)
    record_type = serializers.CharField(max_length=40, required=False, default="", allow_blank=True)
    external_id = serializers.CharField(max_length=120, required=False, default="", allow_blank=True)
    phone = serializers.CharField(max_length=40, required=False, default="", allow_blank=True)


def _own_origin(request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser's cross-site request
    ours = urlsplit(settings.PUBLIC_BASE_URL)
    return origin.rstrip("/").lower() in (
        f"{ours.scheme}://{ours.netloc}".lower(),
        f"{request.scheme}://{request.get_host()}".lower(),
    )


def _context(session: EmbedSession, record) -> dict:
    return {
        "state": "ready" if record is not None else "missing",
        "record": {"type": record.record_type, "id": record.pk, "name": str(record)} if record else None,
        "record_type": session.record_type,
        "external_id": session.external_id,
        "phone": session.phone,
        "name": session.name_hint,
        "can_create": record is None and (session.record_type or "lead") in records.CREATABLE,
    }


def _page_matches(org: Organization, claims: dict, data: dict) -> bool:
    if claims["rid"]:
        wanted = normalize_external_id(claims["crm"], data["external_id"])
        return (claims["rt"], claims["rid"]) == (data["record_type"], wanted)
    try:
        phone = records.phone_of(org.pk, data["phone"]) if data["phone"] else ""
    except DomainError:
        return False
    return not data["external_id"] and bool(phone) and phone == claims["ph"]


class EmbedSessionView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Exchange a launch token for an embed session (once)",
        request=ExchangeSerializer,
        responses={201: _SESSION},
    )
    def post(self, request):
        if not _own_origin(request):
            raise EmbedRefused("Not allowed from this page.", code="origin")
        serializer = ExchangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        org = Organization.objects.filter(slug=data["org"]).first()
        if org is None:
            raise Http404("Not found.")
        claims = verify_launch_token(data["token"], org)
        # The page's address must name what the token names: an id edited in the address reaches nothing.
        if not _page_matches(org, claims, data):
            raise EmbedRefused("This link does not match the record on the page.", code="mismatch")
        consume_launch_token(org, claims["jti"])
        membership = map_crm_user(org, claims["crm"], claims["sub"], claims["email"])
        record, phone = records.find_record(org, claims["rt"], claims["rid"], claims["ph"])
        session, key = do_open_embed_session(
            membership,
            claims,
            record_type=record.record_type if record is not None else claims["rt"],
            record_id=record.pk if record is not None else None,
            phone=phone,
        )
        body = {"key": key, "expires_in": int((session.expires_at - session.created_at).total_seconds())}
        response = Response({**body, **_context(session, record)}, status=201)
        set_embed_cookie(response, key)
        return response


class IsEmbedSession(BasePermission):
    def has_permission(self, request, view):
        return IsOrgMember().has_permission(request, view) and hasattr(request._request, "embed_scope")


def _session_and_record(request):
    scope = request._request.embed_scope
    session = EmbedSession.objects.get(pk=scope.session_id)
    record = None
    if session.record_id is not None:
        from crm.models import model_for

        record = model_for(session.record_type).objects.filter(organization=request.org, pk=session.record_id)
        record = record.first()
    return session, record


class EmbedContextView(APIView):
    permission_classes = [IsEmbedSession]

    @extend_schema(
        summary="The record of this embed session", responses=inline_serializer("EmbedContext", {})
    )
    def get(self, request):
        session, record = _session_and_record(request)
        return Response(_context(session, record))


class EmbedRecordView(APIView):
    permission_classes = [IsEmbedSession]

    @extend_schema(
        summary="Create this embed session's record in QuickSend",
        responses=inline_serializer("EmbedRecord", {}),
    )
    def post(self, request):
        session, record = _session_and_record(request)
        if record is None:
            record = records.do_create_embedded_record(request.org, request.user, session)
            do_attach_record(session, record.record_type, record.pk, session.phone)
            session.refresh_from_db()
        return Response(_context(session, record), status=201)
