"""``Authorization: Token qs_…`` for integrations. The token fixes the organization of the request."""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone
from rest_framework import authentication, exceptions

from quicksend.prepared import Prepared
from tenancy.models import ApiToken, Membership, hash_token


def _token_membership(shape, *, key_hash: str):
    return (
        Membership.objects.select_related("user", "organization")
        .filter(
            user__api_tokens__key_hash=key_hash,
            user__api_tokens__revoked_at__isnull=True,
            organization=F("user__api_tokens__organization"),
        )
        .annotate(token_id=F("user__api_tokens__id"), token_used_at=F("user__api_tokens__last_used_at"))
        .filter(is_active=True, user__is_active=True)[:1]
    )


# Compiled once per process (quicksend.prepared): building it cost more CPU than running it. The stand-in
# is no token's hash.
_TOKEN_MEMBERSHIP = Prepared(_token_membership, key_hash="not a token hash")


class ApiTokenAuthentication(authentication.TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key):
        # One query on every API request: the token's active membership with its user and organization,
        # found through the token (revoked tokens, inactive users and ended memberships find nothing). The
        # token's own columns ride along as annotations.
        found = _TOKEN_MEMBERSHIP.first(key_hash=hash_token(key))
        if found is None:
            # Only now tell the two refusals apart (a rare path): a bad token, or a member no longer.
            token = (
                ApiToken.objects.select_related("user")
                .filter(key_hash=hash_token(key), revoked_at__isnull=True)
                .first()
            )
            if token is None or not token.user.is_active:
                raise exceptions.AuthenticationFailed("Invalid or revoked API token.")
            raise exceptions.AuthenticationFailed(
                "This token's user is no longer a member of its organization."
            )
        # Touch last_used_at at most once a minute to keep the hot path write-free.
        now = timezone.now()
        if found.token_used_at is None or (now - found.token_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=found.token_id).update(last_used_at=now)
        token = ApiToken(
            pk=found.token_id,
            user=found.user,
            organization=found.organization,
            last_used_at=found.token_used_at,
        )
        token._membership = found
        return found.user, token

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            user, token = result
            # The token decides the tenant, whatever the session says.
            request._request.org = token.organization
            request._request.membership = token._membership
        return result
