"""``Authorization: Token qs_…`` for integrations. The token fixes the organization of the request."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions

from tenancy.models import ApiToken, Membership, hash_token


class ApiTokenAuthentication(authentication.TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key):
        token = (
            ApiToken.objects.select_related("user", "organization")
            .filter(key_hash=hash_token(key), revoked_at__isnull=True)
            .first()
        )
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked API token.")
        membership = (
            Membership.objects.select_related("organization")
            .filter(user=token.user, organization=token.organization, is_active=True)
            .first()
        )
        if membership is None:
            raise exceptions.AuthenticationFailed(
                "This token's user is no longer a member of its organization."
            )
        # Touch last_used_at at most once a minute to keep the hot path write-free.
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token._membership = membership
        return token.user, token

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            user, token = result
            # The token decides the tenant, whatever the session says.
            request._request.org = token.organization
            request._request.membership = token._membership
        return result
