"""Filters and ids from the outside: a bad date or an id past 64 bits is a 400 naming the parameter (the
form's error on pages), never a 500."""

import pytest

from quicksend.bounded_ids import MAX_ID, parse_id
from tenancy import audit
from tenancy.models import AuditLog, Team
from tests.factories_crm import LeadFactory

HUGE = str(MAX_ID + 1)  # 9223372036854775808


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["2026-13-45", "2026-02-30", "yesterday", "2026-01-01T25:00"])
@pytest.mark.parametrize("name", ["since", "until"])
def test_audit_api_refuses_a_bad_date_naming_the_parameter(alice_client, name, value):
    response = alice_client.get(f"/api/v1/audit-log?{name}={value}")
    assert response.status_code == 400
    assert "YYYY-MM-DD" in response.json()[name][0]


@pytest.mark.django_db
def test_audit_page_shows_a_bad_date_as_the_forms_error(alice_client):
    response = alice_client.get("/settings/audit/?until=2026-13-45")
    assert response.status_code == 200
    assert b"Until: Enter a date (YYYY-MM-DD)" in response.content
    assert b'aria-invalid="true"' in response.content


@pytest.mark.django_db
def test_audit_dates_still_filter(alice_client, alice, org_a):
    audit.record(org_a, alice, "team.created", object_type="tenancy.team", object_id="1")
    assert len(alice_client.get("/api/v1/audit-log?since=2000-01-01").json()["results"]) == 1
    assert alice_client.get("/api/v1/audit-log?until=2000-01-01").json()["results"] == []
    assert alice_client.get("/api/v1/audit-log?since=2000-01-01T10:00:00Z").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("value", [HUGE, "-1", "abc", "1e3"])
def test_audit_actor_out_of_range_is_a_400_naming_it(alice_client, value):
    response = alice_client.get(f"/api/v1/audit-log?actor={value}")
    assert response.status_code == 400
    assert "actor" in response.json()


@pytest.mark.django_db
def test_audit_page_with_an_out_of_range_actor_or_cursor_answers(alice_client):
    assert alice_client.get(f"/settings/audit/?actor={HUGE}").status_code == 200
    response = alice_client.get(f"/settings/audit/?before={HUGE}")
    assert response.status_code == 200
    assert b"Nothing matches" in response.content


@pytest.mark.django_db
def test_audit_page_shows_system_for_an_entry_without_actor(alice_client, org_a):
    audit.record(org_a, None, "conversation.closed", object_type="messaging.conversation", object_id="9")
    response = alice_client.get("/settings/audit/")
    assert response.status_code == 200
    assert b"<td>System</td>" in response.content
    assert b"conversation.closed" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("plural", ["leads", "contacts"])
@pytest.mark.parametrize("name", ["owner", "team"])
def test_record_list_refuses_an_out_of_range_owner_or_team(alice_client, plural, name):
    response = alice_client.get(f"/api/v1/{plural}?{name}={HUGE}")
    assert response.status_code == 400
    assert name in response.json()


@pytest.mark.django_db
def test_record_list_owner_filter_still_works(alice_client, alice, aaron, org_a, org_b):
    mine = LeadFactory(organization=org_a, owner=aaron)
    LeadFactory(organization=org_a, owner=alice)
    nobody = LeadFactory(organization=org_a, owner=None)
    LeadFactory(organization=org_b, owner=None)
    ids = [r["id"] for r in alice_client.get(f"/api/v1/leads?owner={aaron.pk}").json()["results"]]
    assert ids == [mine.pk]
    ids = [r["id"] for r in alice_client.get("/api/v1/leads?owner=none").json()["results"]]
    assert ids == [nobody.pk]


@pytest.mark.django_db
def test_record_list_page_shows_an_out_of_range_filter_as_an_error(alice_client, org_a):
    LeadFactory(organization=org_a)
    response = alice_client.get(f"/crm/leads/?owner={HUGE}")
    assert response.status_code == 200
    assert b"owner must be a whole number" in response.content
    assert b"No leads match" in response.content


@pytest.mark.django_db
def test_team_member_ids_out_of_range_is_a_400_naming_the_field(alice_client, alice, org_a, bob):
    team = Team.objects.create(organization=org_a, name="West")
    before = AuditLog.objects.count()
    response = alice_client.patch(f"/api/v1/teams/{team.pk}", {"member_ids": [int(HUGE)]}, format="json")
    assert response.status_code == 400
    assert "member_ids" in response.json()
    assert AuditLog.objects.count() == before
    created = alice_client.post("/api/v1/teams", {"name": "East", "member_ids": [int(HUGE)]}, format="json")
    assert created.status_code == 400 and "member_ids" in created.json()


@pytest.mark.django_db
def test_outsider_cannot_patch_a_team_of_another_organization(alice_client, org_b):
    foreign = Team.objects.create(organization=org_b, name="Globex team")
    response = alice_client.patch(f"/api/v1/teams/{foreign.pk}", {"name": "Mine now"}, format="json")
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.name == "Globex team"


@pytest.mark.django_db
def test_record_owner_out_of_range_in_a_payload_is_a_400(alice_client):
    response = alice_client.post("/api/v1/leads", {"first_name": "Ann", "owner": int(HUGE)}, format="json")
    assert response.status_code == 400
    assert "owner" in response.json()
    bulk = alice_client.post("/api/v1/leads/reassign", {"ids": [int(HUGE)], "owner": 1}, format="json")
    assert bulk.status_code == 400 and "ids" in bulk.json()


@pytest.mark.parametrize("raw", ["0", "-5", HUGE, "", " ", "1.5", "٣", "²"])
def test_parse_id_refuses_what_the_database_cannot_store(raw):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as excinfo:
        parse_id(raw, "owner")
    assert "owner" in excinfo.value.message_dict


def test_parse_id_accepts_the_whole_range():
    assert parse_id("1", "x") == 1
    assert parse_id(str(MAX_ID), "x") == MAX_ID


@pytest.mark.django_db
def test_team_page_with_an_out_of_range_member_shows_the_forms_error(alice_client, org_a):
    response = alice_client.post("/settings/teams/", {"name": "West", "members": [HUGE]})
    assert response.status_code == 200
    assert f"“{HUGE}” is not a valid value.".encode() in response.content
    assert not Team.objects.filter(name="West").exists()


@pytest.mark.django_db
def test_bulk_reassign_page_with_an_out_of_range_id_changes_nothing(alice_client, alice, aaron, org_a, org_b):
    lead = LeadFactory(organization=org_a, owner=alice)
    foreign = LeadFactory(organization=org_b, owner=None)
    for ids in ([HUGE], [str(lead.pk), HUGE], [str(foreign.pk)]):
        response = alice_client.post("/crm/leads/reassign", {"ids": ids, "owner": aaron.pk}, follow=True)
        assert response.status_code == 200
        assert b"Select records of this organization" in response.content
    lead.refresh_from_db()
    foreign.refresh_from_db()
    assert (lead.owner, foreign.owner) == (alice, None)


@pytest.mark.django_db
@pytest.mark.parametrize("value", [1001, 2**40, 2**63, -1])
def test_record_type_priority_is_bounded_in_both_run_modes(alice_client, value):
    response = alice_client.patch("/api/v1/record-types/contact", {"priority": value}, format="json")
    assert response.status_code == 400
    assert "priority" in response.json()
    highest = alice_client.patch("/api/v1/record-types/contact", {"priority": 1000}, format="json")
    assert highest.status_code == 200


def test_schema_states_the_priority_bounds():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    priority = schema["components"]["schemas"]["PatchedRecordTypeConfigRequest"]["properties"]["priority"]
    assert (priority.get("minimum"), priority.get("maximum")) == (0, 1000)


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["q", "status", "phone"])
def test_record_list_refuses_a_nul_byte_naming_the_parameter(alice_client, name):
    # PostgreSQL cannot compare text holding NUL: without this check the query fails (a 500).
    response = alice_client.get(f"/api/v1/leads?{name}=a%00b")
    assert response.status_code == 400
    assert response.json() == {name: ["Null characters are not allowed."]}
    page = alice_client.get(f"/crm/leads/?{name}=a%00b")
    assert page.status_code == 200 and b"Null characters are not allowed." in page.content


@pytest.mark.django_db
def test_external_id_with_a_nul_byte_is_missing_or_refused(alice_client, bob_client):
    assert alice_client.get("/api/v1/leads/by-external-id/a%00b").status_code == 404
    response = alice_client.put("/api/v1/leads/by-external-id/a%00b", {"first_name": "Ann"}, format="json")
    assert response.status_code == 400 and "external_id" in response.json()
    assert bob_client.get("/api/v1/leads/by-external-id/a%00b").status_code == 404


@pytest.mark.django_db
def test_audit_text_filters_refuse_a_nul_byte(alice_client):
    response = alice_client.get("/api/v1/audit-log?action=member.%00")
    assert response.status_code == 400 and "action" in response.json()
