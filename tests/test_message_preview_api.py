"""POST /api/v1/messages/preview: encoding, segments and offending characters for any member."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

URL = "/api/v1/messages/preview"


def test_agent_previews_a_body_with_smart_quotes(aaron_client):
    response = aaron_client.post(URL, {"body": "It’s “ready” — see you…"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "body": "It’s “ready” — see you…",
        "encoding": "UCS-2",
        "segments": 1,
        "characters": 23,
        "characters_left": 47,
        "segment_limit": 70,
        "offending_characters": [
            {"char": "’", "replacement": "'", "count": 1},
            {"char": "“", "replacement": '"', "count": 1},
            {"char": "”", "replacement": '"', "count": 1},
            {"char": "—", "replacement": "-", "count": 1},
            {"char": "…", "replacement": "...", "count": 1},
        ],
        "body_with_replacements": 'It\'s "ready" - see you...',
        "missing_fields": [],
    }


def test_plain_text_is_gsm7_with_nothing_to_replace(alice_client):
    data = alice_client.post(URL, {"body": "a" * 161}, format="json").json()
    assert (data["encoding"], data["segments"], data["characters"], data["characters_left"]) == (
        "GSM-7",
        2,
        161,
        145,
    )
    assert data["segment_limit"] == 153
    assert data["offending_characters"] == []


def test_emoji_count_two_and_have_no_replacement(alice_client):
    data = alice_client.post(URL, {"body": "Hi 👍"}, format="json").json()
    assert (data["encoding"], data["characters"]) == ("UCS-2", 5)
    assert data["offending_characters"] == [{"char": "👍", "replacement": None, "count": 1}]


def test_empty_body_is_allowed_for_media_only_messages(alice_client):
    data = alice_client.post(URL, {"body": ""}, format="json").json()
    assert (data["segments"], data["characters"], data["characters_left"]) == (1, 0, 160)


def test_whitespace_is_counted_not_trimmed(alice_client):
    assert alice_client.post(URL, {"body": "  hi \n"}, format="json").json()["characters"] == 6


def test_over_1600_characters_is_refused_in_plain_words(alice_client):
    response = alice_client.post(URL, {"body": "a" * 1601}, format="json")
    assert response.status_code == 400
    assert response.json() == {"body": ["A message can be at most 1,600 characters."]}


def test_missing_body_and_unknown_fields_are_400(alice_client):
    assert alice_client.post(URL, {}, format="json").status_code == 400
    response = alice_client.post(URL, {"body": "hi", "bodyy": "x"}, format="json")
    assert response.status_code == 400
    assert "bodyy" in response.json()


def test_api_token_works(token_client_for, aaron, org_a):
    response = token_client_for(aaron, org_a).post(URL, {"body": "hello"}, format="json")
    assert response.status_code == 200
    assert response.json()["encoding"] == "GSM-7"


def test_outsider_org_member_gets_their_own_preview(bob_client):
    # Nothing org-owned is read here, so another organization's member simply gets an answer.
    assert bob_client.post(URL, {"body": "x"}, format="json").status_code == 200


def test_anonymous_and_org_less_users_are_refused(db):
    assert APIClient().post(URL, {"body": "x"}, format="json").status_code in (401, 403)
    loner = get_user_model().objects.create_user("loner", "loner@example.test", "pw-123456789")
    client = APIClient()
    client.force_login(loner)
    assert client.post(URL, {"body": "x"}, format="json").status_code == 403


def test_get_is_not_allowed(alice_client):
    assert alice_client.get(URL).status_code == 405


def test_endpoint_is_in_the_api_schema(alice_client):
    schema = alice_client.get("/api/schema/?format=json").json()
    assert "post" in schema["paths"]["/api/v1/messages/preview"]
