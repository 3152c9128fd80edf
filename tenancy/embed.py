"""Launch tokens and embed sessions: how a CRM page gets a member's record widget without our login.

A trusted step (our API called with an API token, a Salesforce Canvas signed request, a HubSpot v3-signed
request) mints a **launch token**: signed with the organization's own key (HMAC-SHA256), valid 60 seconds at
most, naming the organization, the CRM user, one record (type + external id) or one phone number, our
audience, and a unique id (``jti``) stored in ``LaunchToken`` so it can be exchanged once. The embed page
receives it in its URL fragment (never sent to a server, so never in an access log or a Referer) and
exchanges it once for an **embed session** (``EmbedSession``): a random key kept in a partitioned
``__Host-`` cookie, or only in the page's memory when the browser refuses even that. The session reaches that
one member's view of that one record and nothing else (``tenancy.embed_auth``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from quicksend import realtime
from quicksend.errors import DomainError
from tenancy import audit
from tenancy.models import (
    Crm,
    CrmUserMapping,
    EmbedSession,
    EmbedSettings,
    LaunchToken,
    Membership,
    Organization,
)

TOKEN_PREFIX = "qsl"  # noqa: S105 (a marker, not a secret)
SESSION_KEY_PREFIX = "qse_"
LAUNCH_TOKEN_SECONDS = 60
EMBED_SESSION_HOURS = 8
COOKIE_NAME = "__Host-qs_embed"
# Claims a token may carry; anything else makes it malformed.
_CLAIMS = {"v", "org", "crm", "sub", "email", "rt", "rid", "ph", "name", "aud", "iat", "exp", "jti"}

# Where each CRM serves the pages that frame the widget, by region (offered in Settings → Integrations).
# Salesforce and Dynamics add the customer's own domain: the admin types it (e.g. https://acme.lightning.force.com).
KNOWN_ORIGINS: dict[str, list[tuple[str, str]]] = {
    Crm.HUBSPOT: [
        ("https://app.hubspot.com", "HubSpot (US)"),
        ("https://app-eu1.hubspot.com", "HubSpot (EU)"),
        ("https://app-na2.hubspot.com", "HubSpot (US, na2)"),
    ],
    Crm.ZOHO: [
        ("https://crm.zoho.com", "Zoho CRM (US)"),
        ("https://crm.zoho.eu", "Zoho CRM (EU)"),
        ("https://crm.zoho.in", "Zoho CRM (India)"),
        ("https://crm.zoho.com.au", "Zoho CRM (Australia)"),
        ("https://crm.zoho.jp", "Zoho CRM (Japan)"),
        ("https://crm.zohocloud.ca", "Zoho CRM (Canada)"),
        # The widget bundle is served from Zoho's app-content domain and frames our page in turn.
        ("https://*.zappsusercontent.com", "Zoho widgets (US)"),
        ("https://*.zappsusercontent.eu", "Zoho widgets (EU)"),
        ("https://*.zappsusercontent.in", "Zoho widgets (India)"),
    ],
    Crm.SALESFORCE: [],
    Crm.DYNAMICS: [],
}
# Suffixes of a customer's own CRM domain that the admin types (https://<yours>.<suffix>).
CUSTOM_DOMAIN_SUFFIXES = {
    Crm.SALESFORCE: [".lightning.force.com", ".my.salesforce.com", ".visualforce.com", ".force.com"],
    Crm.DYNAMICS: [".crm.dynamics.com", ".crm4.dynamics.com", ".crm11.dynamics.com", ".crm3.dynamics.com"],
}


class EmbedRefused(DomainError):
    """A launch or an embed session refused; ``code`` tells the page which state to show."""

    def __init__(self, message: str, *, code: str, status: int = 403, extra: dict | None = None):
        super().__init__(message, http_status=status)
        self.code = code
        self.extra = extra or {}

    def details(self) -> dict:
        return {"code": self.code, **self.extra}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def audience() -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/embed"


def settings_for(org: Organization) -> EmbedSettings:
    """The organization's embed settings, created with a fresh signing key the first time."""
    found, created = EmbedSettings.objects.get_or_create(organization=org)
    if not found.signing_key:
        found.set_secret("signing_key", secrets.token_urlsafe(32))
        found.save(update_fields=["signing_key", "updated_at"])
    return found


def do_rotate_signing_key(org: Organization) -> None:
    """A new signing key: every launch token not yet exchanged stops working."""
    found = settings_for(org)
    found.set_secret("signing_key", secrets.token_urlsafe(32))
    found.save(update_fields=["signing_key", "updated_at"])


def _sign(key: str, payload: str) -> str:
    return _b64(hmac.new(key.encode(), payload.encode(), hashlib.sha256).digest())


def normalize_external_id(crm: str, value: str) -> str:
    """A CRM's record id as we store it: Dynamics writes GUIDs as ``{ABC…}``, we keep ``abc…``."""
    value = (value or "").strip()
    if crm == Crm.DYNAMICS:
        value = value.strip("{}").lower()
    return value


def _printable(value) -> str:
    """Claims end up in text columns: no NUL or other control characters."""
    return "".join(ch for ch in str(value or "") if ch.isprintable())


@transaction.atomic
def do_mint_launch_token(
    org: Organization,
    *,
    crm: str,
    crm_user_id: str,
    email: str = "",
    record_type: str = "",
    external_id: str = "",
    phone: str = "",
    name: str = "",
) -> str:
    """A signed, single-use launch token for one CRM user and one record (or number), valid 60 seconds.
    The caller has already established that the request comes from the organization's CRM."""
    if crm not in Crm.values:
        raise DomainError(f"Unknown CRM '{crm}'.", field="crm")
    if not crm_user_id and not email:
        raise DomainError("Say which CRM user is looking (their id or email).", field="crm_user_id")
    now = int(timezone.now().timestamp())
    jti = secrets.token_urlsafe(18)
    claims = {
        "v": 1,
        "org": org.pk,
        "crm": crm,
        "sub": _printable(crm_user_id)[:120],
        "email": _printable(email).strip().lower()[:254],
        "rt": record_type,
        "rid": normalize_external_id(crm, external_id)[:120],
        "ph": phone,
        "name": _printable(name)[:200],
        "aud": audience(),
        "iat": now,
        "exp": now + LAUNCH_TOKEN_SECONDS,
        "jti": jti,
    }
    LaunchToken.objects.create(
        organization=org,
        jti=jti,
        crm=crm,
        expires_at=timezone.now() + timedelta(seconds=LAUNCH_TOKEN_SECONDS),
    )
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    key = settings_for(org).get_secret("signing_key")
    return f"{TOKEN_PREFIX}.{payload}.{_sign(key, f'{TOKEN_PREFIX}.{payload}')}"


_INVALID = "This link to QuickSend is not valid. Open the record again in your CRM."


def verify_launch_token(token: str, org: Organization) -> dict:
    """The claims of a launch token of ``org``: signature (the organization's key), audience, lifetime. It is
    not consumed here (``consume_launch_token``)."""
    parts = (token or "").split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or len(token) > 4096:
        raise EmbedRefused(_INVALID, code="invalid")
    try:
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, UnicodeDecodeError):
        raise EmbedRefused(_INVALID, code="invalid")
    if not isinstance(claims, dict) or set(claims) != _CLAIMS or claims.get("v") != 1:
        raise EmbedRefused(_INVALID, code="invalid")
    if claims["org"] != org.pk:
        raise EmbedRefused("This link belongs to another organization.", code="wrong_org")
    key = settings_for(org).get_secret("signing_key")
    if not hmac.compare_digest(_sign(key, f"{parts[0]}.{parts[1]}"), parts[2]):
        raise EmbedRefused(_INVALID, code="invalid")
    now = timezone.now().timestamp()
    if (
        claims["aud"] != audience()
        or not isinstance(claims["exp"], int)
        or not isinstance(claims["iat"], int)
    ):
        raise EmbedRefused(_INVALID, code="invalid")
    if claims["exp"] - claims["iat"] > LAUNCH_TOKEN_SECONDS:
        raise EmbedRefused(_INVALID, code="invalid")
    if now >= claims["exp"]:
        raise EmbedRefused(
            "This link to QuickSend has expired. Open the record again in your CRM.", code="expired"
        )
    return claims


def consume_launch_token(org: Organization, jti: str) -> None:
    """Mark the token used: a conditional UPDATE, so of two concurrent exchanges only one wins."""
    used = LaunchToken.objects.filter(
        organization=org, jti=jti, used_at__isnull=True, expires_at__gt=timezone.now()
    ).update(used_at=timezone.now())
    if used != 1:
        raise EmbedRefused(
            "This link to QuickSend was already used. Open the record again in your CRM.", code="replayed"
        )


def map_crm_user(org: Organization, crm: str, crm_user_id: str, email: str) -> Membership:
    """The active member a CRM user is: an explicit mapping first, else the same email (when the
    organization allows it and exactly one member has it). ``EmbedRefused(code="unmapped")`` otherwise."""
    memberships = Membership.objects.select_related("user", "organization").filter(
        organization=org, is_active=True, user__is_active=True
    )
    mapping = (
        CrmUserMapping.objects.filter(organization=org, crm=crm, crm_user_id=crm_user_id).first()
        if crm_user_id
        else None
    )
    if mapping is not None:
        found = memberships.filter(user_id=mapping.user_id).first()
        if found is not None:
            return found
    elif email and settings_for(org).match_users_by_email:
        matches = list(memberships.filter(user__email__iexact=email)[:2])
        if len(matches) == 1:
            return matches[0]
    raise EmbedRefused(
        "You do not have a QuickSend account in this organization yet. Ask your QuickSend admin to add you "
        "or to link your CRM user in Settings → Integrations.",
        code="unmapped",
        extra={"crm": Crm(crm).label, "crm_user_id": crm_user_id, "email": email},
    )


def hash_session_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class EmbedScope:
    """What an embed session may reach."""

    session_id: int
    org_id: int
    user_id: int
    record_type: str
    record_id: int | None
    phone: str


@transaction.atomic
def do_open_embed_session(
    membership: Membership,
    claims: dict,
    *,
    record_type: str,
    record_id: int | None,
    phone: str,
) -> tuple[EmbedSession, str]:
    """A new embed session for ``membership``'s user on one record: ``(session, key)``. The key is shown
    once (cookie or page memory); only its hash is stored."""
    key = SESSION_KEY_PREFIX + secrets.token_urlsafe(32)
    session = EmbedSession.objects.create(
        organization=membership.organization,
        user=membership.user,
        crm=claims["crm"],
        record_type=record_type,
        external_id=claims["rid"],
        record_id=record_id,
        phone=phone,
        name_hint=claims.get("name", ""),
        key_hash=hash_session_key(key),
        expires_at=timezone.now() + timedelta(hours=EMBED_SESSION_HOURS),
    )
    return session, key


def do_attach_record(session: EmbedSession, record_type: str, record_id: int, phone: str) -> None:
    """The record created from the embed page becomes the session's record."""
    EmbedSession.objects.filter(pk=session.pk, record_id__isnull=True).update(
        record_type=record_type, record_id=record_id, phone=phone or session.phone
    )


def live_session(key: str) -> tuple[EmbedSession, Membership] | None:
    """The embed session of ``key`` with its member, if it is still valid: not expired or revoked, the user
    active and still an active member of the organization."""
    if not key or not key.startswith(SESSION_KEY_PREFIX) or len(key) > 100:
        return None
    session = (
        EmbedSession.objects.select_related("user")
        .filter(key_hash=hash_session_key(key), revoked_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
    if session is None or not session.user.is_active:
        return None
    membership = (
        Membership.objects.select_related("organization")
        .filter(user_id=session.user_id, organization_id=session.organization_id, is_active=True)
        .first()
    )
    if membership is None:
        return None
    return session, membership


def scope_of(session: EmbedSession) -> EmbedScope:
    return EmbedScope(
        session.pk,
        session.organization_id,
        session.user_id,
        session.record_type,
        session.record_id,
        session.phone,
    )


def do_end_embed_sessions(org: Organization, user=None) -> int:
    """Revoke the organization's (or one member's) embed sessions."""
    sessions = EmbedSession.objects.filter(organization=org, revoked_at__isnull=True)
    if user is not None:
        sessions = sessions.filter(user=user)
    user_ids = set(sessions.values_list("user_id", flat=True))
    ended = sessions.update(revoked_at=timezone.now())
    # Their open sockets check again now and close.
    realtime.publish_access_changed(user_ids=user_ids)
    return ended


def purge_expired(before=None) -> dict:
    """Delete used or expired launch tokens and ended sessions (periodic)."""
    now = before or timezone.now()
    tokens, _ = LaunchToken.objects.filter(expires_at__lt=now - timedelta(minutes=5)).delete()
    sessions, _ = EmbedSession.objects.filter(Q(expires_at__lt=now) | Q(revoked_at__isnull=False)).delete()
    return {"launch_tokens": tokens, "sessions": sessions}


def set_embed_cookie(response, key: str) -> None:
    """The embed session's cookie: ``__Host-`` (Secure, Path=/, no Domain), HttpOnly, SameSite=None so the
    CRM's frame sends it, Partitioned (CHIPS) so browsers that block third-party cookies keep it, in the
    CRM site's partition only. Django does not write ``Partitioned``: the header is written here."""
    max_age = EMBED_SESSION_HOURS * 3600
    # Django's own cookies are written from response.cookies, each its own header; this one rides beside them.
    response.headers["Set-Cookie"] = (
        f"{COOKIE_NAME}={key}; Max-Age={max_age}; Path=/; Secure; HttpOnly; SameSite=None; Partitioned"
    )


def normalize_origin(value: str) -> str:
    """``scheme://host[:port]`` in lowercase, or DomainError: the only form a frame-ancestors source and a
    postMessage origin may take."""
    from urllib.parse import urlsplit

    text = (value or "").strip().rstrip("/").lower()
    parts = urlsplit(text)
    host = parts.hostname or ""
    # One leading wildcard label is allowed (https://*.zappsusercontent.com): CSP and our postMessage check
    # both read it as "any subdomain of".
    wildcard_ok = host.startswith("*.") and host.count(".") >= 2 and "*" not in host[1:]
    if (
        parts.scheme not in ("https", "http")
        or not host
        or parts.path
        or parts.query
        or ("*" in text and not wildcard_ok)
    ):
        raise DomainError(f"'{value}' is not an origin (https://host, no path).", field="allowed_origins")
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1"):
        raise DomainError(f"'{value}' must use https.", field="allowed_origins")
    return f"{parts.scheme}://{parts.netloc}"


def allowed_origins(org: Organization | None) -> list[str]:
    if org is None:
        return []
    found = EmbedSettings.objects.filter(organization=org).values_list("allowed_origins", flat=True).first()
    return list(found or [])


def socket_identity(key: str):
    """``quicksend.consumers.EMBED["session"]``: ``(user, org_id, scope)`` of a live embed session."""
    found = live_session(key)
    if found is None:
        return None
    session, membership = found
    return session.user, membership.organization_id, scope_of(session)


@transaction.atomic
def do_save_embed_settings(
    org: Organization,
    actor,
    *,
    allowed_origins: list[str],
    match_users_by_email: bool,
    hubspot_portal_id: str = "",
    salesforce_consumer_secret: str | None = None,
    hubspot_client_secret: str | None = None,
) -> EmbedSettings:
    """Save Settings → Integrations. A secret left None keeps its stored value; "" clears it."""
    origins = sorted({normalize_origin(o) for o in allowed_origins if o.strip()})
    found = settings_for(org)
    portal = (hubspot_portal_id or "").strip()
    if portal and not portal.isdigit():
        raise DomainError(
            "The HubSpot account id is a number (Settings → Account in HubSpot).", field="hubspot_portal_id"
        )
    if portal and EmbedSettings.objects.filter(hubspot_portal_id=portal).exclude(pk=found.pk).exists():
        raise DomainError("Another organization uses this HubSpot account.", field="hubspot_portal_id")
    changes = {
        "allowed_origins": origins,
        "match_users_by_email": match_users_by_email,
        "hubspot_portal_id": portal,
    }
    found.allowed_origins = origins
    found.match_users_by_email = match_users_by_email
    found.hubspot_portal_id = portal
    for field, value in (
        ("salesforce_consumer_secret", salesforce_consumer_secret),
        ("hubspot_client_secret", hubspot_client_secret),
    ):
        if value is not None:
            found.set_secret(field, value.strip())
            changes[field] = "changed" if value.strip() else "cleared"
    found.save()
    audit.record(org, actor, "embed.settings_changed", found, changes)
    return found


@transaction.atomic
def do_add_crm_user_mapping(org: Organization, actor, *, crm: str, crm_user_id: str, user) -> CrmUserMapping:
    crm_user_id = normalize_external_id(crm, crm_user_id)
    if not crm_user_id:
        raise DomainError("Give the user's id in the CRM.", field="crm_user_id")
    if not Membership.objects.filter(organization=org, user=user, is_active=True).exists():
        raise DomainError("Choose an active member.", field="user")
    mapping, _ = CrmUserMapping.objects.update_or_create(
        organization=org, crm=crm, crm_user_id=crm_user_id, defaults={"user": user}
    )
    audit.record(
        org, actor, "embed.user_linked", mapping, {"crm": crm, "crm_user_id": crm_user_id, "user": user.pk}
    )
    return mapping


@transaction.atomic
def do_delete_crm_user_mapping(mapping: CrmUserMapping, actor) -> None:
    audit.record(mapping.organization, actor, "embed.user_unlinked", mapping)
    mapping.delete()
