"""Login throttling: per username and per client address, with a cool-off that always lifts the lock."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.test import Client
from django.utils import timezone

from tests.factories import PASSWORD, MembershipFactory


def _fail(client, username, times=1):
    for _ in range(times):
        client.post("/login/", {"username": username, "password": "wrong"})


@pytest.mark.django_db
def test_ten_failures_for_one_account_lock_it_from_every_address(alice):
    _fail(Client(REMOTE_ADDR="203.0.113.7"), "alice", 10)
    locked = Client(REMOTE_ADDR="198.51.100.20").post("/login/", {"username": "alice", "password": PASSWORD})
    assert locked.status_code == 429


@pytest.mark.django_db
def test_one_address_cannot_try_many_accounts(org_a, alice, aaron):
    attacker = Client(REMOTE_ADDR="203.0.113.7")
    for i in range(10):
        _fail(attacker, f"guess{i}@acme.test")
    # Aaron's right password from the attacker's address is refused: the address is locked...
    refused = attacker.post("/login/", {"username": "aaron", "password": PASSWORD})
    assert refused.status_code == 429
    # ...while Aaron himself, elsewhere, logs in (his account was never the target).
    ok = Client(REMOTE_ADDR="198.51.100.20").post("/login/", {"username": "aaron", "password": PASSWORD})
    assert ok.status_code == 302


@pytest.mark.django_db
def test_a_valid_login_does_not_reset_the_addresss_count(org_a, aaron):
    client = Client(REMOTE_ADDR="203.0.113.7")
    for i in range(9):
        _fail(client, f"guess{i}@acme.test")
    assert client.post("/login/", {"username": "aaron", "password": PASSWORD}).status_code == 302
    _fail(Client(REMOTE_ADDR="203.0.113.7"), "guess9@acme.test")
    assert (
        Client(REMOTE_ADDR="203.0.113.7")
        .post("/login/", {"username": "aaron", "password": PASSWORD})
        .status_code
        == 429
    )


@pytest.mark.django_db
def test_the_lock_lifts_after_the_cool_off(alice):
    _fail(Client(REMOTE_ADDR="203.0.113.7"), "alice", 10)
    client = Client(REMOTE_ADDR="198.51.100.20")
    assert client.post("/login/", {"username": "alice", "password": PASSWORD}).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=11))
    assert client.post("/login/", {"username": "alice", "password": PASSWORD}).status_code == 302


@pytest.mark.django_db
def test_hammering_a_locked_account_does_not_prolong_the_lock(alice):
    attacker = Client(REMOTE_ADDR="203.0.113.7")
    _fail(attacker, "alice", 10)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=6))
    _fail(Client(REMOTE_ADDR="192.0.2.55"), "alice", 20)  # refused while locked, and not counted
    # Five more minutes pass: eleven since the lock began, five since the hammering.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=5))
    ok = Client(REMOTE_ADDR="198.51.100.20").post("/login/", {"username": "alice", "password": PASSWORD})
    assert ok.status_code == 302


@pytest.mark.django_db
def test_the_locked_out_page_states_the_policy_without_saying_which_was_locked(alice):
    _fail(Client(REMOTE_ADDR="203.0.113.7"), "alice", 10)
    by_account = Client(REMOTE_ADDR="198.51.100.20").post("/login/", {"username": "alice", "password": "x"})
    attacker = Client(REMOTE_ADDR="192.0.2.1")
    for i in range(10):
        _fail(attacker, f"nobody{i}")
    by_address = attacker.post("/login/", {"username": "someone", "password": "x"})
    assert by_account.status_code == by_address.status_code == 429
    text = (
        "Logging in is paused for 10 minutes after 10 failed attempts for this account or from your network."
    )
    for response in (by_account, by_address):
        body = " ".join(response.content.decode().split())
        assert text in body
    assert by_account.content.replace(b"alice", b"") == by_address.content.replace(b"someone", b"")


@pytest.mark.django_db
def test_other_organizations_members_are_unaffected_by_a_lock_elsewhere(alice, org_b):
    bob = MembershipFactory(organization=org_b, user__username="bob").user
    _fail(Client(REMOTE_ADDR="203.0.113.7"), "alice", 10)
    ok = Client(REMOTE_ADDR="198.51.100.20").post("/login/", {"username": bob.username, "password": PASSWORD})
    assert ok.status_code == 302
