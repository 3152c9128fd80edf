"""The OpenAPI schema documents every API route that exists."""

import re

import pytest
from django.urls import get_resolver

from tests.isolation import iter_url_routes


def _api_paths_from_urlconf() -> set[str]:
    from django.urls import URLPattern, URLResolver

    found = set()

    def walk(resolver, prefix):
        for entry in resolver.url_patterns:
            text = str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry, prefix + text)
            elif isinstance(entry, URLPattern):
                found.add(prefix + text)

    walk(get_resolver(), "")
    return {p for p in found if p.startswith("api/v1/")}


def _normalise(path: str) -> str:
    path = path.replace("^", "").replace("$", "").lstrip("/")
    path = re.sub(r"\(\?P<\w+>[^)]*\)", "{}", path)
    path = re.sub(r"<(?:\w+:)?\w+>", "{}", path)
    return re.sub(r"\{\w+\}", "{}", path)


@pytest.mark.django_db
def test_every_api_route_is_in_the_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    documented = {_normalise(p) for p in schema["paths"]}
    routed = {_normalise(p) for p in _api_paths_from_urlconf()}
    missing = sorted(routed - documented)
    assert not missing, f"API routes missing from the OpenAPI schema: {missing}"
    assert "api/v1/members/{}" in documented


@pytest.mark.django_db
def test_swagger_ui_is_served_without_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"cdn" not in response.content.lower()


def test_isolation_routes_are_buildable():
    routes, unbuildable = iter_url_routes()
    assert not unbuildable
    assert routes


@pytest.mark.django_db
def test_every_operation_has_a_summary_and_an_area_tag(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    declared = [tag["name"] for tag in schema["tags"]]
    problems = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            summary = operation.get("summary") or ""
            if not summary:
                problems.append(f"{where}: no summary")
            if re.search(r"\ba [aeio]", summary, re.IGNORECASE):  # "a account"; "a user" is right
                problems.append(f"{where}: {summary!r}")
            tags = operation.get("tags") or []
            if len(tags) != 1 or tags[0] not in declared or tags[0] == "v1":
                problems.append(f"{where}: tags {tags}")
    assert not problems, "\n".join(problems)
    assert {"Conversations", "Messages", "Twilio accounts", "Leads", "Organization"} <= set(declared)


@pytest.mark.django_db
def test_path_ids_carry_their_range_and_named_ids_are_text(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    def path_id(path):
        operation = schema["paths"][path]["get"]
        return next(p for p in operation["parameters"] if p["in"] == "path")["schema"]

    assert path_id("/api/v1/conversations/{id}") == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    assert path_id("/api/v1/record-types/{id}")["type"] == "string"
    assert path_id("/api/v1/twilio-accounts/{id}")["type"] == "string"


def _documented_ok(schema: dict, path: str, method: str = "get") -> dict:
    """The documented 200 body of an operation, resolvable on its own (components attached)."""
    body = schema["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    return {**body, "components": schema["components"]}


@pytest.mark.django_db
def test_answers_match_their_documented_shape(alice_client, org_a):
    from jsonschema import FormatChecker
    from openapi_schema_validator import OAS30Validator

    from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory, store_inbound

    number = PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a), sms_url="")
    conversation = store_inbound(number, "+12025550147", "Hello").conversation
    schema = alice_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path, url in [
        ("/api/v1/conversations", "/api/v1/conversations"),  # one page object, not an array of pages
        ("/api/v1/conversations/{id}/sessions", f"/api/v1/conversations/{conversation.pk}/sessions"),
        ("/api/v1/numbers/{id}", f"/api/v1/numbers/{number.pk}"),  # an empty SMS URL is text
        ("/api/v1/messaging-settings", "/api/v1/messaging-settings"),  # never saved: updated_at null
        ("/api/v1/record-types/{id}", "/api/v1/record-types/lead"),  # a default row: id null
    ]:
        response = alice_client.get(url)
        assert response.status_code == 200, (url, response.content)
        validator = OAS30Validator(_documented_ok(schema, path), format_checker=FormatChecker())
        errors = [e.message for e in validator.iter_errors(response.json())]
        assert not errors, (url, errors)


@pytest.mark.django_db
def test_every_component_has_one_definition(client, recwarn):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        from drf_spectacular.drainage import GENERATOR_STATS
        from drf_spectacular.generators import SchemaGenerator

        GENERATOR_STATS.reset()
        SchemaGenerator().get_schema(request=None, public=True)
        clashes = [w for w in GENERATOR_STATS._warn_cache if "identical names" in w]
    assert not clashes, clashes
