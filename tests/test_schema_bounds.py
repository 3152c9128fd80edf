"""The OpenAPI schema says what the server accepts: every number a client may send (a payload field or a
query parameter) carries its minimum and maximum, and the server holds to them (a 400 naming the field)."""

import pytest

from messaging.models import InboxSettings

HUGE = 2**63 - 1


def _schema(client) -> dict:
    return client.get("/api/schema/", HTTP_ACCEPT="application/json").json()


def _unbounded_numbers(schema: dict) -> list[str]:
    found = []

    def check(where: str, prop: dict) -> None:
        if prop.get("readOnly"):
            return
        if prop.get("type") in ("integer", "number") and ("minimum" not in prop or "maximum" not in prop):
            found.append(where)
        if prop.get("type") == "array":
            check(where + "[]", prop.get("items", {}))

    for name, component in schema["components"]["schemas"].items():
        if not name.endswith("Request"):  # what clients send (the schema splits requests from responses)
            continue
        for field, prop in component.get("properties", {}).items():
            check(f"{name}.{field}", prop)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                check(f"{method.upper()} {path} ?{parameter['name']}", parameter.get("schema", {}))
    return found


@pytest.mark.django_db
def test_every_number_a_client_sends_has_bounds_in_the_schema(client):
    assert _unbounded_numbers(_schema(client)) == []


@pytest.mark.django_db
def test_the_inbox_settings_bounds_are_in_the_schema(client):
    props = _schema(client)["components"]["schemas"]["PatchedInboxSettingsRequest"]["properties"]
    assert (props["session_timeout_minutes"]["minimum"], props["session_timeout_minutes"]["maximum"]) == (
        1,
        30 * 24 * 60,
    )
    assert (props["idle_timeout_minutes"]["minimum"], props["idle_timeout_minutes"]["maximum"]) == (1, 10080)
    assert (props["auto_archive_days"]["minimum"], props["auto_archive_days"]["maximum"]) == (1, 3650)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field, value",
    [
        ("session_timeout_minutes", HUGE),
        ("session_timeout_minutes", 30 * 24 * 60 + 1),
        ("session_timeout_minutes", 0),
        ("idle_timeout_minutes", 7 * 24 * 60 + 1),
        ("idle_timeout_minutes", 0),
        ("auto_archive_days", 3651),
        ("auto_archive_days", 0),
        ("auto_archive_days", HUGE + 1),
    ],
)
def test_an_inbox_setting_out_of_bounds_is_refused_and_nothing_saved(alice_client, org_a, field, value):
    response = alice_client.patch("/api/v1/inbox-settings", {field: value}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not InboxSettings.objects.filter(organization=org_a).exists()


@pytest.mark.django_db
def test_inbox_settings_at_their_bounds_are_saved(alice_client, org_a, bob_client):
    payload = {"session_timeout_minutes": 30 * 24 * 60, "idle_timeout_minutes": 1, "auto_archive_days": 3650}
    response = alice_client.patch("/api/v1/inbox-settings", payload, format="json")
    assert response.status_code == 200, response.content
    saved = InboxSettings.objects.get(organization=org_a)
    assert (saved.session_timeout_minutes, saved.idle_timeout_minutes, saved.auto_archive_days) == (
        43200,
        1,
        3650,
    )
    # Another organization's admin changes only their own settings.
    assert (
        bob_client.patch("/api/v1/inbox-settings", {"idle_timeout_minutes": 9}, format="json").status_code
        == 200
    )
    saved.refresh_from_db()
    assert saved.idle_timeout_minutes == 1


@pytest.mark.django_db
def test_the_service_refuses_an_inbox_setting_out_of_bounds(alice, org_a):
    from django.core.exceptions import ValidationError

    from messaging.inbox.actions import do_save_inbox_settings

    with pytest.raises(ValidationError) as refused:
        do_save_inbox_settings(org_a, alice, session_timeout_minutes=HUGE)
    assert "session_timeout_minutes" in refused.value.message_dict


@pytest.mark.django_db
@pytest.mark.parametrize("value", [1001, -1, HUGE])
def test_a_record_type_priority_out_of_bounds_is_refused(alice_client, org_a, value):
    response = alice_client.patch("/api/v1/record-types/lead", {"priority": value}, format="json")
    assert response.status_code == 400, response.content
    assert "priority" in response.json()


@pytest.mark.django_db
def test_a_record_type_priority_at_its_bound_is_saved(alice_client, org_a):
    response = alice_client.patch("/api/v1/record-types/lead", {"priority": 1000}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["priority"] == 1000
