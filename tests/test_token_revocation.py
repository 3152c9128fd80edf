"""An API token stops working on the very next request after it is revoked (or its user loses access), in
every server process: nothing about a token is remembered between requests."""

import pytest
import requests

from tenancy import services
from tenancy.models import ApiToken


def _me(server, key: str) -> requests.Response:
    return requests.get(f"{server.base_url}/api/v1/me", headers={"Authorization": f"Token {key}"}, timeout=10)


@pytest.fixture
def two_worker_server(transactional_db, tmp_path):
    from tests.plugins.servers import start_asgi_server

    server = start_asgi_server(tmp_path, workers=2)
    yield server
    server.stop()


def test_revoked_token_is_refused_by_every_process_on_the_next_request(two_worker_server, alice, org_a, bob):
    _token, key = services.do_create_api_token(alice, org_a, "crm sync")
    _bob_token, bob_key = services.do_create_api_token(bob, bob.memberships.get().organization, "globex")
    # Several requests, so both worker processes have served (and could have remembered) the token.
    assert {_me(two_worker_server, key).status_code for _ in range(8)} == {200}
    revoke = requests.delete(
        f"{two_worker_server.base_url}/api/v1/tokens/{_token.pk}",
        headers={"Authorization": f"Token {key}"},
        timeout=10,
    )
    assert revoke.status_code == 204
    answers = [_me(two_worker_server, key) for _ in range(8)]
    assert {r.status_code for r in answers} == {401}
    assert "revoked" in answers[0].json()["detail"]
    # Another organization's token is untouched, and cannot revoke Alice's (404, like a missing one).
    assert _me(two_worker_server, bob_key).status_code == 200
    other = requests.delete(
        f"{two_worker_server.base_url}/api/v1/tokens/{_token.pk}",
        headers={"Authorization": f"Token {bob_key}"},
        timeout=10,
    )
    assert other.status_code == 404


def test_deactivated_member_or_user_loses_token_access_at_once(two_worker_server, alice, aaron, org_a):
    _token, key = services.do_create_api_token(aaron, org_a, "script")
    assert {_me(two_worker_server, key).status_code for _ in range(6)} == {200}
    services.do_set_member_active(aaron.memberships.get(), alice, False)
    assert {_me(two_worker_server, key).status_code for _ in range(6)} == {401}
    services.do_set_member_active(aaron.memberships.get(), alice, True)
    assert _me(two_worker_server, key).status_code == 200
    aaron.is_active = False
    aaron.save(update_fields=["is_active"])
    assert {_me(two_worker_server, key).status_code for _ in range(6)} == {401}
    assert ApiToken.objects.get(pk=_token.pk).revoked_at is None
