"""The templates API and its rules: who sees, creates, changes, duplicates and deletes which template;
bodies checked on save; search and filters for the composer; isolation between organizations."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from templates_app import services
from templates_app.models import MessageTemplate
from tenancy.models import AuditLog, Membership
from tests.factories_crm import LeadFactory

URL = "/api/v1/templates"


def _membership(user):
    return Membership.objects.get(user=user)


def _shared(org, **kwargs):
    values = {"name": "Welcome", "body": "Hi {{first_name}}", "record_type": "lead", **kwargs}
    return MessageTemplate.objects.create(organization=org, **values)


def test_admin_creates_a_shared_template_agent_sees_it_but_cannot_change_it(alice_client, aaron_client):
    response = alice_client.post(
        URL,
        {"name": "Hello", "body": "Hi {{first_name}}", "record_type": "lead", "shortcode": "/Hello"},
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["visibility"], data["status"], data["shortcode"], data["owner"]) == (
        "shared",
        "published",
        "hello",
        None,
    )
    assert data["usage_count"] == 0 and data["last_used_at"] is None and data["can_manage"] is True
    template_id = data["id"]
    seen = aaron_client.get(f"{URL}/{template_id}").json()
    assert seen["can_manage"] is False
    assert [t["id"] for t in aaron_client.get(URL).json()["results"]] == [template_id]
    assert aaron_client.patch(f"{URL}/{template_id}", {"body": "z"}, format="json").status_code == 403
    assert aaron_client.delete(f"{URL}/{template_id}").status_code == 403
    changed = alice_client.patch(f"{URL}/{template_id}", {"body": "Hey {{first_name}}"}, format="json")
    assert changed.status_code == 200 and changed.json()["body"] == "Hey {{first_name}}"
    assert AuditLog.objects.filter(action="template.updated").exists()
    assert alice_client.delete(f"{URL}/{template_id}").status_code == 204
    assert not MessageTemplate.objects.exists()


def test_agent_may_create_only_personal_templates(aaron, aaron_client, alice_client):
    refused = aaron_client.post(URL, {"name": "x", "body": "y", "visibility": "shared"}, format="json")
    assert refused.status_code == 403
    assert "Only an admin can create a shared template" in refused.json()["detail"]
    with pytest.raises(ValidationError) as too_long:
        services.do_create_template(
            _membership(aaron).organization, _membership(aaron), name="x", body="y" * 1601
        )
    assert too_long.value.message_dict["body"] == ["A template can be at most 1,600 characters (1,601 now)."]
    created = aaron_client.post(URL, {"name": "Mine", "body": "Thanks! {{agent.first_name}}"}, format="json")
    assert created.status_code == 201, created.content
    assert (created.json()["visibility"], created.json()["owner"]) == ("personal", aaron.pk)
    template_id = created.json()["id"]
    # Nobody else sees a personal template, not even an admin.
    assert alice_client.get(f"{URL}/{template_id}").status_code == 404
    assert alice_client.get(URL).json()["results"] == []
    # Its owner manages it, but cannot share it with everyone.
    assert aaron_client.patch(f"{URL}/{template_id}", {"status": "draft"}, format="json").status_code == 200
    share = aaron_client.patch(f"{URL}/{template_id}", {"visibility": "shared"}, format="json")
    assert share.status_code == 403
    assert aaron_client.delete(f"{URL}/{template_id}").status_code == 204


def test_admin_shares_a_personal_template_and_takes_a_shared_one_personal(alice, alice_client):
    mine = alice_client.post(
        URL, {"name": "Mine", "body": "Hello", "visibility": "personal"}, format="json"
    ).json()
    assert mine["owner"] == alice.pk
    shared = alice_client.patch(f"{URL}/{mine['id']}", {"visibility": "shared"}, format="json").json()
    assert (shared["visibility"], shared["owner"]) == ("shared", None)


def test_agents_see_shared_drafts_nowhere(org_a, alice_client, aaron_client):
    draft = _shared(org_a, status="draft")
    published = _shared(org_a, name="Ready")
    assert [t["id"] for t in aaron_client.get(URL).json()["results"]] == [published.pk]
    assert aaron_client.get(f"{URL}/{draft.pk}").status_code == 404
    assert aaron_client.post(f"{URL}/{draft.pk}/duplicate").status_code == 404
    assert {t["id"] for t in alice_client.get(URL).json()["results"]} == {draft.pk, published.pk}


def test_role_rules_hold_in_the_service(org_a, alice, aaron):
    admin, agent = _membership(alice), _membership(aaron)
    shared = services.do_create_template(org_a, admin, name="S", body="Hi {{first_name}}", record_type="lead")
    assert shared.visibility == "shared"
    with pytest.raises(PermissionDenied):
        services.do_update_template(shared, agent, body="changed")
    with pytest.raises(PermissionDenied):
        services.do_delete_template(shared, agent)
    with pytest.raises(PermissionDenied):
        services.do_create_template(org_a, agent, name="A", body="b", visibility="shared")
    personal = services.do_create_template(org_a, agent, name="P", body="b")
    assert personal.visibility == "personal" and personal.owner == aaron
    with pytest.raises(PermissionDenied):
        services.do_update_template(personal, admin, body="admins do not edit personal templates")
    assert services.access_template(org_a, agent, personal.pk) == personal
    assert list(services.usable_templates(org_a, agent, "lead")) == [personal, shared]
    assert list(services.usable_templates(org_a, agent, "account")) == [personal]


def test_duplicate_makes_a_draft_copy_agents_copy_is_personal(org_a, alice_client, aaron, aaron_client):
    original = _shared(org_a, shortcode="welcome")
    copy = aaron_client.post(f"{URL}/{original.pk}/duplicate").json()
    assert (copy["name"], copy["status"], copy["visibility"], copy["owner"], copy["shortcode"]) == (
        "Welcome (copy)",
        "draft",
        "personal",
        aaron.pk,
        "",
    )
    admin_copy = alice_client.post(f"{URL}/{original.pk}/duplicate")
    assert admin_copy.status_code == 201 and admin_copy.json()["visibility"] == "shared"


def test_unknown_merge_field_is_refused_naming_it(alice_client, org_a):
    response = alice_client.post(
        URL, {"name": "x", "body": "Hi {{frist_name}}", "record_type": "lead"}, format="json"
    )
    assert response.status_code == 400
    refusal = response.json()["body"][0]
    assert refusal.startswith("Unknown merge field {{frist_name}}: did you mean {{first_name}}?")
    template = _shared(org_a)
    response = alice_client.patch(f"{URL}/{template.pk}", {"record_type": "account"}, format="json")
    assert response.status_code == 400 and "{{first_name}}" in response.json()["body"][0]
    malformed = alice_client.post(URL, {"name": "x", "body": "Hi {{first name}}"}, format="json")
    assert malformed.status_code == 400 and "is not a merge field" in malformed.json()["body"][0]


def test_a_custom_field_is_known_once_a_record_of_the_type_has_it(alice_client, org_a, org_b):
    body = {"name": "x", "body": "Met you at the {{custom.source}}", "record_type": "lead"}
    LeadFactory(organization=org_b, custom_fields={"source": "other org"})
    assert alice_client.post(URL, body, format="json").status_code == 400
    LeadFactory(organization=org_a, custom_fields={"source": "open house"})
    assert alice_client.post(URL, body, format="json").status_code == 201


def test_bad_input_is_400_naming_the_field(alice_client, org_a):
    _shared(org_a, shortcode="welcome")
    cases = [
        ({"name": " ", "body": "x"}, "name"),
        ({"name": "x", "body": "x", "shortcode": "Welcome"}, "shortcode"),
        ({"name": "x", "body": "x", "shortcode": "two words"}, "shortcode"),
        ({"name": "x", "body": "x", "record_type": "boat"}, "record_type"),
        ({"name": "x", "body": "x", "status": "live"}, "status"),
    ]
    for payload, field in cases:
        response = alice_client.post(URL, payload, format="json")
        assert response.status_code == 400, (payload, response.content)
        assert field in response.json(), (payload, response.json())
    taken = alice_client.post(URL, {"name": "x", "body": "x", "shortcode": "welcome"}, format="json").json()
    assert taken["shortcode"] == ["/welcome is already used by another template."]


def test_list_search_and_filters_for_the_composer(org_a, alice, aaron_client):
    _shared(org_a, name="Open house welcome", shortcode="welcome")
    _shared(org_a, name="Case update", record_type="case", body="About {{subject}}", shortcode="case")
    _shared(org_a, name="Reminder", record_type="", body="See you tomorrow", shortcode="remind")

    def names(query):
        return [t["name"] for t in aaron_client.get(URL + query).json()["results"]]

    assert names("?search=/wel") == ["Open house welcome"]
    assert names("?search=tomorrow") == ["Reminder"]
    assert names("?record_type=lead") == ["Open house welcome", "Reminder"]
    assert names("?visibility=personal") == []
    assert names("?status=published&visibility=shared") == ["Case update", "Open house welcome", "Reminder"]
    bad = aaron_client.get(URL + "?record_type=boat&status=live")
    assert bad.status_code == 400 and set(bad.json()) == {"record_type", "status"}


def test_merge_fields_list_the_types_fields_with_custom_ones(alice_client, aaron_client, org_a):
    LeadFactory(organization=org_a, custom_fields={"source": "open house"})
    fields = {f["name"]: f for f in aaron_client.get(f"{URL}/merge-fields?record_type=lead").json()}
    assert fields["first_name"]["group"] == "record"
    assert fields["custom.source"]["group"] == "custom"
    assert fields["agent.first_name"]["group"] == "agent" and fields["org.name"]["group"] == "org"
    anywhere = {f["name"] for f in aaron_client.get(f"{URL}/merge-fields").json()}
    assert "first_name" not in anywhere and "org.name" in anywhere
    assert alice_client.get(f"{URL}/merge-fields?record_type=boat").status_code == 400


def test_render_previews_an_unsaved_body_on_a_record(alice, alice_client, bob_client, org_a):
    alice.first_name = "Alice"
    alice.save()
    lead = LeadFactory(organization=org_a, first_name="", custom_fields={"source": "open house"})
    payload = {
        "body": 'Hi {{first_name|default:"there"}}, {{agent.first_name}} of {{org.name}} ({{custom.source}}) '
        "{{company}} {{nope}}",
        "record": {"type": "lead", "id": lead.pk},
    }
    lead.company = ""
    lead.save()
    data = alice_client.post(f"{URL}/render", payload, format="json").json()
    assert data["text"] == "Hi there, Alice of Acme (open house)  "
    assert data["missing_fields"] == ["company", "nope"]
    assert len(data["problems"]) == 1 and "{{nope}}" in data["problems"][0]
    assert bob_client.post(f"{URL}/render", payload, format="json").status_code == 404
    wrong_type = {**payload, "record_type": "case"}
    assert alice_client.post(f"{URL}/render", wrong_type, format="json").status_code == 400


def test_outsider_gets_404_on_templates(alice_client, bob_client, org_a):
    template_id = alice_client.post(URL, {"name": "t", "body": "b"}, format="json").json()["id"]
    assert bob_client.get(f"{URL}/{template_id}").status_code == 404
    assert bob_client.patch(f"{URL}/{template_id}", {"body": "x"}, format="json").status_code == 404
    assert bob_client.post(f"{URL}/{template_id}/duplicate").status_code == 404
    assert bob_client.delete(f"{URL}/{template_id}").status_code == 404
    assert bob_client.get(URL).json()["results"] == []
    assert MessageTemplate.objects.get(pk=template_id).body == "b"


def test_token_clients_work_like_sessions(alice, org_a, token_client_for):
    client = token_client_for(alice, org_a)
    assert client.post(URL, {"name": "t", "body": "b"}, format="json").status_code == 201
    assert len(client.get(URL).json()["results"]) == 1


@pytest.mark.django_db
def test_list_is_a_constant_number_of_queries(org_a, alice_client, django_assert_max_num_queries):
    for index in range(30):
        _shared(org_a, name=f"T{index}", shortcode=f"t{index}")
    with django_assert_max_num_queries(8):
        assert len(alice_client.get(URL).json()["results"]) == 30


@pytest.mark.django_db
def test_every_templates_operation_is_described_in_the_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operations = [
        (method, path, op)
        for path, ops in schema["paths"].items()
        if path.startswith("/api/v1/templates")
        for method, op in ops.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(operations) == 9
    for method, path, op in operations:
        assert op["tags"] == ["Templates"] and op["summary"], (method, path)
    template = schema["components"]["schemas"]["MessageTemplate"]["properties"]
    assert template["visibility"]["allOf"][0]["$ref"].endswith("/TemplateVisibilityEnum")
