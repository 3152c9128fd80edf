"""The CRM REST API: CRUD for every record type, upsert by external id, phone search, reassignment,
record-type settings. Every test that touches an object proves Globex's Bob gets 404."""

from __future__ import annotations

import pytest

from crm import services
from crm.models import Account, Contact, Lead, RecordType
from tenancy.models import Organization
from tests.factories import TeamFactory
from tests.factories_crm import AccountFactory, LeadFactory

PAYLOADS = {
    "leads": {"first_name": "Maria", "last_name": "Lopez", "mobile_phone": "(415) 555-0134"},
    "contacts": {"first_name": "Justin", "mobile_phone": "+44 7911 123456", "allow_sms": False},
    "accounts": {"name": "Reed Holdings", "main_phone": "212-555-0199"},
    "cases": {"subject": "Lockbox broken"},
    "opportunities": {"name": "12 Elm St", "amount": "450000.00"},
}


@pytest.mark.django_db
@pytest.mark.parametrize("plural", list(PAYLOADS))
def test_member_can_create_read_update_delete_each_record_type_and_outsider_gets_404(
    plural, aaron_client, aaron, bob_client
):
    created = aaron_client.post(f"/api/v1/{plural}", PAYLOADS[plural], format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["owner"] == aaron.pk  # the creator owns it by default
    pk = body["id"]
    assert aaron_client.get(f"/api/v1/{plural}/{pk}").status_code == 200
    assert aaron_client.get(f"/api/v1/{plural}").json()["results"][0]["id"] == pk
    for method in ("get", "patch", "delete"):
        assert getattr(bob_client, method)(f"/api/v1/{plural}/{pk}", {}, format="json").status_code == 404
    assert bob_client.get(f"/api/v1/{plural}").json()["results"] == []
    changed = aaron_client.patch(f"/api/v1/{plural}/{pk}", {"custom_fields": {"tier": "gold"}}, format="json")
    assert changed.status_code == 200 and changed.json()["custom_fields"] == {"tier": "gold"}
    # Agents delete only their own records, and only where the organization allows it.
    assert aaron_client.delete(f"/api/v1/{plural}/{pk}").status_code == 403
    Organization.objects.filter(memberships__user=aaron).update(agents_may_delete_records=True)
    assert aaron_client.delete(f"/api/v1/{plural}/{pk}").status_code == 204
    assert aaron_client.get(f"/api/v1/{plural}/{pk}").status_code == 404


@pytest.mark.django_db
def test_phones_come_back_raw_and_e164(alice_client):
    body = alice_client.post("/api/v1/leads", PAYLOADS["leads"], format="json").json()
    assert body["mobile_phone"] == "(415) 555-0134"
    assert body["mobile_phone_e164"] == "+14155550134"


@pytest.mark.django_db
def test_invalid_phone_is_400_naming_field_and_value(alice_client):
    response = alice_client.post(
        "/api/v1/contacts", {"first_name": "A", "mobile_phone": "555-12"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"mobile_phone": ["'555-12' is not a valid phone number for Contact mobile."]}


@pytest.mark.django_db
def test_unknown_fields_are_400_naming_them(alice_client):
    response = alice_client.post("/api/v1/leads", {"first_name": "A", "mobiel": "1"}, format="json")
    assert response.status_code == 400
    assert "mobiel" in response.json()
    assert alice_client.post(
        "/api/v1/leads", {"first_name": "A", "mobile_phone_e164": "+1"}, format="json"
    ).json()


@pytest.mark.django_db
def test_e164_fields_are_read_only(alice_client):
    response = alice_client.post(
        "/api/v1/leads", {"first_name": "A", "mobile_phone_e164": "+14155550100"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["mobile_phone_e164"] == ""


@pytest.mark.django_db
def test_another_organizations_ids_in_a_payload_are_refused(alice_client, bob, org_b, bob_client):
    foreign_account = AccountFactory(organization=org_b)
    foreign_team = TeamFactory(organization=org_b)
    for payload in (
        {"subject": "x", "account": foreign_account.pk},
        {"subject": "x", "owner": bob.pk},
        {"subject": "x", "team": foreign_team.pk},
    ):
        response = alice_client.post("/api/v1/cases", payload, format="json")
        assert response.status_code == 400, payload
        assert "Not found" in str(response.json())
    assert bob_client.get(f"/api/v1/accounts/{foreign_account.pk}").status_code == 200


@pytest.mark.django_db
def test_status_must_be_one_of_the_types_statuses(alice_client):
    response = alice_client.post("/api/v1/leads", {"first_name": "A", "status": "won"}, format="json")
    assert response.status_code == 400 and "status" in response.json()


@pytest.mark.django_db
def test_put_by_external_id_creates_then_updates(alice_client, bob_client):
    url = "/api/v1/contacts/by-external-id/hubspot-1842"
    created = alice_client.put(url, {"first_name": "Justin", "mobile_phone": "+14155550100"}, format="json")
    assert created.status_code == 201
    assert created.json()["external_id"] == "hubspot-1842"
    updated = alice_client.put(url, {"last_name": "Reed"}, format="json")
    assert updated.status_code == 200
    assert updated.json()["id"] == created.json()["id"]
    assert updated.json()["first_name"] == "Justin"  # fields not sent are kept
    assert Contact.objects.count() == 1
    assert alice_client.get(url).json()["last_name"] == "Reed"
    # Bob's organization has no such contact: reading is 404, an empty PUT never creates.
    assert bob_client.get(url).status_code == 404
    assert bob_client.put(url, {}, format="json").status_code == 404
    assert bob_client.delete(url).status_code == 405


@pytest.mark.django_db
def test_put_by_external_id_in_another_org_creates_that_orgs_own_record(alice_client, bob_client, org_b):
    url = "/api/v1/leads/by-external-id/42"
    alice_client.put(url, {"first_name": "Alice's"}, format="json")
    response = bob_client.put(url, {"first_name": "Bob's"}, format="json")
    assert response.status_code == 201
    assert Lead.objects.get(organization=org_b).first_name == "Bob's"
    assert alice_client.get(url).json()["first_name"] == "Alice's"


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["(415) 555-0134", "+14155550134", "415.555.0134", "+1 415 555 0134"])
def test_phone_search_accepts_any_format(alice_client, query, org_a, alice):
    services.do_create_record(
        org_a, alice, RecordType.LEAD, {"first_name": "Hit", "home_phone": "4155550134"}
    )
    services.do_create_record(
        org_a, alice, RecordType.LEAD, {"first_name": "Miss", "home_phone": "4155550135"}
    )
    results = alice_client.get("/api/v1/leads", {"phone": query}).json()["results"]
    assert [r["first_name"] for r in results] == ["Hit"]


@pytest.mark.django_db
def test_phone_search_never_crosses_organizations(bob_client, org_a, alice):
    services.do_create_record(
        org_a, alice, RecordType.LEAD, {"first_name": "Hit", "mobile_phone": "4155550134"}
    )
    assert bob_client.get("/api/v1/leads", {"phone": "4155550134"}).json()["results"] == []
    assert bob_client.get("/api/v1/phone-matches", {"phone": "4155550134"}).json() == []


@pytest.mark.django_db
def test_phone_matches_lists_records_of_all_types_by_priority(alice_client, org_a, alice):
    lead = services.do_create_record(
        org_a, alice, RecordType.LEAD, {"first_name": "L", "mobile_phone": "4155550134"}
    )
    contact = services.do_create_record(
        org_a, alice, RecordType.CONTACT, {"first_name": "C", "home_phone": "4155550134"}
    )
    body = alice_client.get("/api/v1/phone-matches", {"phone": "+1 (415) 555-0134"}).json()
    assert [(r["record_type"], r["id"]) for r in body] == [("contact", contact.pk), ("lead", lead.pk)]


@pytest.mark.django_db
def test_search_filter_and_sort(alice_client, org_a, alice, aaron):
    team = TeamFactory(organization=org_a)
    services.do_create_record(org_a, alice, RecordType.LEAD, {"first_name": "Zed", "last_name": "Alpha"})
    services.do_create_record(
        org_a,
        alice,
        RecordType.LEAD,
        {"first_name": "Amy", "last_name": "Beta", "owner": aaron, "team": team},
    )
    services.do_create_record(
        org_a, alice, RecordType.LEAD, {"first_name": "Bo", "last_name": "Gamma", "company": "Initech"}
    )
    names = lambda r: [x["last_name"] for x in r.json()["results"]]  # noqa: E731
    assert names(alice_client.get("/api/v1/leads", {"sort": "name"})) == ["Alpha", "Beta", "Gamma"]
    assert names(alice_client.get("/api/v1/leads", {"q": "initech"})) == ["Gamma"]
    assert names(alice_client.get("/api/v1/leads", {"owner": aaron.pk})) == ["Beta"]
    assert names(alice_client.get("/api/v1/leads", {"team": team.pk})) == ["Beta"]
    assert names(alice_client.get("/api/v1/leads", {"status": "new", "sort": "oldest"})) == [
        "Alpha",
        "Beta",
        "Gamma",
    ]


@pytest.mark.django_db
def test_cursor_pagination_walks_every_record_once(alice_client, org_a):
    LeadFactory.create_batch(7, organization=org_a)
    seen, url = [], "/api/v1/leads?page_size=3&sort=name"
    while url:
        body = alice_client.get(url).json()
        seen += [r["id"] for r in body["results"]]
        url = body["next"]
    assert sorted(seen) == sorted(Lead.objects.values_list("id", flat=True))


@pytest.mark.django_db
@pytest.mark.parametrize("plural", ["leads", "contacts", "cases", "opportunities", "accounts"])
def test_list_query_count_does_not_grow_with_rows(
    plural, alice_client, org_a, alice, django_assert_num_queries
):
    record_type = {
        "leads": "lead",
        "contacts": "contact",
        "accounts": "account",
        "cases": "case",
        "opportunities": "opportunity",
    }[plural]
    account = services.do_create_record(org_a, alice, RecordType.ACCOUNT, {"name": "A"})

    def add(n):
        for _ in range(n):
            data = dict(PAYLOADS[plural])
            data.pop("mobile_phone", None)
            data.pop("main_phone", None)
            if plural in ("cases", "opportunities", "contacts"):
                data["account"] = account
            services.do_create_record(org_a, alice, record_type, data)

    add(2)
    alice_client.get(f"/api/v1/{plural}")  # the first request stores the organization in the session
    # session, user, membership (tenant), the page of records (owner/team/related joined)
    with django_assert_num_queries(4):
        assert alice_client.get(f"/api/v1/{plural}").status_code == 200
    add(8)
    with django_assert_num_queries(4):
        alice_client.get(f"/api/v1/{plural}")


@pytest.mark.django_db
def test_reassign_one_and_in_bulk(alice_client, aaron, org_a, alice, bob_client):
    team = TeamFactory(organization=org_a)
    leads = [
        services.do_create_record(org_a, alice, RecordType.LEAD, {"first_name": f"L{i}"}) for i in range(3)
    ]
    one = alice_client.post(
        f"/api/v1/leads/{leads[0].pk}/reassign", {"owner": aaron.pk, "team": team.pk}, format="json"
    )
    assert one.status_code == 200 and one.json()["owner"] == aaron.pk and one.json()["team"] == team.pk
    bulk = alice_client.post(
        "/api/v1/leads/reassign", {"ids": [x.pk for x in leads], "owner": aaron.pk}, format="json"
    )
    assert bulk.json() == {"reassigned": 2}
    assert set(Lead.objects.values_list("owner", flat=True)) == {aaron.pk}
    assert Lead.objects.get(pk=leads[0].pk).team == team  # team kept when not sent
    assert (
        bob_client.post(
            f"/api/v1/leads/{leads[0].pk}/reassign", {"owner": aaron.pk}, format="json"
        ).status_code
        == 404
    )


@pytest.mark.django_db
def test_bulk_reassign_with_a_foreign_id_changes_nothing(alice_client, aaron, org_a, alice, org_b, bob):
    mine = services.do_create_record(org_a, alice, RecordType.LEAD, {"first_name": "Mine"})
    theirs = services.do_create_record(org_b, bob, RecordType.LEAD, {"first_name": "Theirs"})
    response = alice_client.post(
        "/api/v1/leads/reassign", {"ids": [mine.pk, theirs.pk], "owner": aaron.pk}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"ids": [f"Not found: {theirs.pk}."]}
    assert Lead.objects.get(pk=mine.pk).owner == alice
    assert Lead.objects.get(pk=theirs.pk).owner == bob


@pytest.mark.django_db
def test_record_type_settings_admin_changes_agent_reads(alice_client, aaron_client, bob_client):
    configs = alice_client.get("/api/v1/record-types").json()
    assert [c["record_type"] for c in configs] == ["contact", "lead", "account", "case", "opportunity"]
    response = alice_client.patch(
        "/api/v1/record-types/lead", {"priority": 0, "sms_phone_field": "home_phone"}, format="json"
    )
    assert response.status_code == 200, response.content
    pk = response.json()["id"]
    assert alice_client.get("/api/v1/record-types").json()[0]["record_type"] == "lead"
    assert aaron_client.get(f"/api/v1/record-types/{pk}").status_code == 200
    assert aaron_client.patch(f"/api/v1/record-types/{pk}", {"priority": 3}, format="json").status_code == 403
    assert bob_client.get(f"/api/v1/record-types/{pk}").status_code == 404
    assert bob_client.patch(f"/api/v1/record-types/{pk}", {"priority": 3}, format="json").status_code == 404
    bad = alice_client.patch(
        "/api/v1/record-types/account", {"sms_phone_field": "mobile_phone"}, format="json"
    )
    assert bad.status_code == 400 and "sms_phone_field" in bad.json()


@pytest.mark.django_db
def test_token_client_sees_only_its_organization(token_client_for, bob, org_b, org_a, alice):
    services.do_create_record(org_a, alice, RecordType.LEAD, {"first_name": "A"})
    client = token_client_for(bob, org_b)
    assert client.get("/api/v1/leads").json()["results"] == []
    assert client.post("/api/v1/leads", {"first_name": "B"}, format="json").status_code == 201
    assert Lead.objects.filter(organization=org_b).count() == 1


@pytest.mark.django_db
def test_every_crm_endpoint_is_in_the_schema(alice_client):
    paths = alice_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    for plural in PAYLOADS:
        for suffix in ("", "/{id}", "/{id}/reassign", "/reassign", "/by-external-id/{external_id}"):
            assert f"/api/v1/{plural}{suffix}" in paths, suffix
    for path in (
        "/api/v1/imports",
        "/api/v1/imports/{id}",
        "/api/v1/imports/{id}/report",
        "/api/v1/phone-matches",
    ):
        assert path in paths
    assert paths["/api/v1/leads"]["post"]["requestBody"]["content"]["application/json"]["examples"]


@pytest.mark.django_db
def test_account_related_records(alice_client, org_a, alice):
    account = services.do_create_record(org_a, alice, RecordType.ACCOUNT, {"name": "A"})
    contact = alice_client.post("/api/v1/contacts", {"first_name": "C", "account": account.pk}, format="json")
    assert contact.status_code == 201
    assert Account.objects.get(pk=account.pk).contacts.count() == 1


@pytest.mark.django_db
def test_duplicate_external_id_is_a_field_error(alice_client):
    alice_client.post("/api/v1/leads", {"first_name": "A", "external_id": "x1"}, format="json")
    response = alice_client.post("/api/v1/leads", {"first_name": "B", "external_id": "x1"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"external_id": ["Another lead already has the external id 'x1'."]}
