"""Shared fixtures. The cast (healthchecks' habit): Acme's admin Alice and agent Aaron; Globex's admin Bob."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tenancy.models import Role
from tenancy.services import do_create_api_token
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytest_plugins = ["tests.plugins.servers", "tests.plugins.browser", "tests.plugins.sandbox"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(request, settings):
    # PBKDF2's cost is the point in production and pure waste in tests. Browser tests log in through a
    # separate server process with the production hashers, so they keep them.
    if request.node.get_closest_marker("browser") is None:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_send_buckets():
    # The send buckets and numbers' own rates are keyed by number id, which SQLite hands out again after a
    # rollback, and PostgreSQL again in the next run's fresh test database (the own rates in Redis never
    # expire): a number must not inherit another test's debt or rate.
    from django.conf import settings

    from messaging.services import throttle

    throttle._local.state.clear()
    throttle._local.rates.clear()
    if settings.CONFIG.redis_url:
        import redis

        client = redis.Redis.from_url(settings.CONFIG.redis_url)
        stale = [
            key
            for kind in ("send-rate", "send-throttle")
            for key in client.scan_iter(throttle._key("*", kind))
        ]
        if stale:
            client.delete(*stale)


@pytest.fixture(autouse=True)
def _no_queued_hand_overs():
    # The list of single sends waiting for the hand-over drain, and its flag, outlive a test (Redis, or this
    # process): a later test's drain must not find another test's ids (the ids are handed out again).
    from messaging.services import hand_over
    from quicksend import queue

    queue.pop_items(hand_over.HAND_OVER_LIST, 1_000_000)
    queue.drain_started(hand_over.HAND_OVER_FLAG)


def clear_own_cache() -> None:
    """Empty this test process's cache. Not ``cache.clear()``: on Redis that is FLUSHDB, which would also
    empty the Celery broker's queues and every other test process's keys in the same database."""
    from django.conf import settings
    from django.core.cache import cache

    if not settings.CONFIG.redis_url:
        cache.clear()
        return
    import redis

    client = redis.Redis.from_url(settings.CONFIG.redis_url)
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def _empty_org_cache():
    # The per-process configuration cache must not carry one test's organizations into the next (SQLite
    # hands out the same ids again after a rollback).
    from quicksend import org_cache

    org_cache.clear()


@pytest.fixture
def org_a(db):
    return OrganizationFactory(name="Acme", slug="acme")


@pytest.fixture
def org_b(db):
    return OrganizationFactory(name="Globex", slug="globex")


@pytest.fixture
def alice(org_a):
    return MembershipFactory(
        organization=org_a, role=Role.ADMIN, user__username="alice", user__email="alice@acme.test"
    ).user


@pytest.fixture
def aaron(org_a):
    return MembershipFactory(
        organization=org_a, role=Role.AGENT, user__username="aaron", user__email="aaron@acme.test"
    ).user


@pytest.fixture
def bob(org_b):
    return MembershipFactory(
        organization=org_b, role=Role.ADMIN, user__username="bob", user__email="bob@globex.test"
    ).user


def _client_for(user):
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def client_for():
    """``client_for(user)``: a logged-in session client (pages and API)."""
    return _client_for


@pytest.fixture
def token_client_for():
    """``token_client_for(user, org)``: an API client authenticated with a fresh API token."""

    def make(user, org):
        _token, key = do_create_api_token(user, org, "test")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return make


@pytest.fixture
def alice_client(alice):
    return _client_for(alice)


@pytest.fixture
def aaron_client(aaron):
    return _client_for(aaron)


@pytest.fixture
def bob_client(bob):
    return _client_for(bob)


@pytest.fixture
def user_factory(db):
    return UserFactory
