"""The inbox API: conversation list (filters, search, keyset pages, constant query count), detail, thread,
actions, notifications, My Messages (list and CSV), settings — and outsiders always get 404."""

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.inbox import actions as inbox
from messaging.models import Conversation, InboxSettings, Message, MessageSession, Notification
from tenancy.models import Role
from tests.factories import MembershipFactory, TeamFactory
from tests.factories_crm import LeadFactory
from tests.factories_messaging import MessageFactory, PhoneNumberFactory, TwilioAccountFactory, store_inbound


@pytest.fixture
def number(org_a):
    return PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a))


@pytest.fixture
def amy(org_a):
    return MembershipFactory(organization=org_a, role=Role.AGENT, user__username="amy").user


@pytest.fixture
def inbound(django_capture_on_commit_callbacks):
    def send(number, customer="+12025550147", body="Hello"):
        with django_capture_on_commit_callbacks(execute=True):
            return store_inbound(number, customer, body)

    return send


def make_conversations(number, n, prefix="+1202555", **kwargs):
    now = timezone.now()
    rows = []
    for i in range(n):
        c = Conversation.objects.create(
            organization=number.organization,
            phone_number=number,
            customer_number=f"{prefix}{i:04d}",
            last_message_at=now - timedelta(minutes=i),
            last_message_preview=f"preview {i}",
            **kwargs,
        )
        rows.append(c)
    return rows


@pytest.mark.django_db
def test_list_pages_newest_first_with_a_keyset_cursor(alice_client, number):
    made = make_conversations(number, 7)
    first = alice_client.get("/api/v1/conversations?page_size=3").json()
    assert [c["id"] for c in first["results"]] == [c.pk for c in made[:3]]
    second = alice_client.get(f"/api/v1/conversations?page_size=3&cursor={first['next']}").json()
    assert [c["id"] for c in second["results"]] == [c.pk for c in made[3:6]]
    third = alice_client.get(f"/api/v1/conversations?page_size=3&cursor={second['next']}").json()
    assert [c["id"] for c in third["results"]] == [made[6].pk] and third["next"] is None


@pytest.mark.django_db
def test_list_query_count_is_constant(alice, alice_client, number, django_assert_max_num_queries):
    make_conversations(number, 3, owner=alice)
    with django_assert_max_num_queries(8) as few:
        alice_client.get("/api/v1/conversations")
    lead_ids = [LeadFactory(organization=number.organization).pk for _ in range(30)]
    for i, c in enumerate(make_conversations(number, 30, prefix="+1303555", owner=alice)):
        Conversation.objects.filter(pk=c.pk).update(record_type="lead", record_id=lead_ids[i])
    with django_assert_max_num_queries(len(few.captured_queries) + 1):  # + one query for the leads' names
        body = alice_client.get("/api/v1/conversations").json()
    assert len(body["results"]) == 33
    assert body["results"][0]["record_name"]


@pytest.mark.django_db
def test_list_filters_by_number_status_owner_team_mine_and_unread(
    org_a, alice, aaron, aaron_client, alice_client, number, inbound
):
    other_number = PhoneNumberFactory(account=number.account)
    team = TeamFactory(organization=org_a)
    team.members.add(aaron.memberships.get())
    mine, teams, archived, on_other = make_conversations(number, 4)
    Conversation.objects.filter(pk=mine.pk).update(owner=aaron)
    Conversation.objects.filter(pk=teams.pk).update(team=team)
    Conversation.objects.filter(pk=archived.pk).update(status="archived")
    Conversation.objects.filter(pk=on_other.pk).update(phone_number=other_number)
    unread = inbound(number, "+12025559999").conversation

    def ids(client, query):
        return {c["id"] for c in client.get(f"/api/v1/conversations?{query}").json()["results"]}

    assert ids(alice_client, "") == {mine.pk, teams.pk, on_other.pk, unread.pk}
    assert ids(alice_client, "status=archived") == {archived.pk}
    assert ids(alice_client, "status=all") == {mine.pk, teams.pk, archived.pk, on_other.pk, unread.pk}
    assert ids(alice_client, f"number={other_number.pk}") == {on_other.pk}
    assert ids(aaron_client, "owner=me") == {mine.pk}
    assert ids(alice_client, f"owner={aaron.pk}") == {mine.pk}
    assert ids(alice_client, f"team={team.pk}") == {teams.pk}
    assert ids(aaron_client, "mine=true") == {mine.pk, teams.pk}
    assert ids(aaron_client, "unread=true") == {unread.pk}
    item = aaron_client.get(f"/api/v1/conversations/{unread.pk}").json()
    assert item["unread"] == 1 and item["last_message"]["preview"] == "Hello"


@pytest.mark.django_db
def test_search_by_number_in_any_format_record_name_and_message_text(alice_client, number, inbound):
    by_number = inbound(number, "+12025550147", "about the boiler").conversation
    by_text = inbound(number, "+12025550148", "the KEYS are under the mat").conversation
    lead = LeadFactory(organization=number.organization, first_name="Zebedee", last_name="Quirk")
    by_record = inbound(number, "+12025550149", "hi").conversation
    Conversation.objects.filter(pk=by_record.pk).update(record_type="lead", record_id=lead.pk)

    def ids(q):
        return {c["id"] for c in alice_client.get("/api/v1/conversations", {"q": q}).json()["results"]}

    assert ids("(202) 555-0147") == {by_number.pk}
    assert ids("+1 202 555 0147") == {by_number.pk}
    assert ids("550148") == {by_text.pk}  # part of a number
    assert ids("ref0148") == set()  # letters and digits are text, not a number
    assert ids("keys are") == {by_text.pk}
    assert ids("zebedee") == {by_record.pk}
    assert ids("nothing like this") == set()


@pytest.mark.django_db
def test_thread_is_newest_first_with_before_and_after_cursors(
    alice_client, number, django_assert_max_num_queries
):
    conversation = make_conversations(number, 1)[0]
    messages = [MessageFactory(conversation=conversation, body=f"m{i}") for i in range(5)]
    base = f"/api/v1/conversations/{conversation.pk}/messages"
    with django_assert_max_num_queries(8):
        page = alice_client.get(f"{base}?page_size=2").json()
    assert [m["body"] for m in page["results"]] == ["m4", "m3"] and page["after"] is None
    older = alice_client.get(f"{base}?page_size=2&before={page['before']}").json()
    assert [m["body"] for m in older["results"]] == ["m2", "m1"]
    newer = alice_client.get(f"{base}?page_size=2&after={older['before']}").json()
    assert [m["body"] for m in newer["results"]] == ["m3", "m2"]
    assert len(messages) == 5


@pytest.mark.django_db
def test_thread_filters_by_session(alice_client, number, inbound):
    first = inbound(number, body="yesterday")
    conversation = first.conversation
    two_days_ago = timezone.now() - timedelta(days=2)
    Message.objects.filter(pk=first.pk).update(created_at=two_days_ago)
    MessageSession.objects.filter(conversation=conversation).update(
        started_at=two_days_ago, ends_at=two_days_ago + timedelta(days=1)
    )
    inbound(number, body="today")
    sessions = alice_client.get(f"/api/v1/conversations/{conversation.pk}/sessions").json()
    assert len(sessions) == 2
    old = sessions[-1]["id"]
    page = alice_client.get(f"/api/v1/conversations/{conversation.pk}/messages?session={old}").json()
    assert [m["body"] for m in page["results"]] == ["yesterday"]


@pytest.mark.django_db
def test_outsiders_get_404_on_every_conversation_route(bob_client, number, inbound):
    conversation = inbound(number).conversation
    base = f"/api/v1/conversations/{conversation.pk}"
    assert bob_client.get(base).status_code == 404
    assert bob_client.get(f"{base}/messages").status_code == 404
    assert bob_client.get(f"{base}/sessions").status_code == 404
    for action in ("assign", "reassign", "archive", "reopen", "read", "accept", "dismiss", "block", "sync"):
        assert bob_client.post(f"{base}/{action}", {}, format="json").status_code == 404, action
    assert bob_client.post(f"{base}/create-record", {"record_type": "case"}, format="json").status_code == 404
    assert bob_client.get("/api/v1/conversations").json()["results"] == []
    assert bob_client.get("/api/v1/messages").json()["results"] == []


@pytest.mark.django_db
def test_an_agent_sees_only_what_the_visibility_setting_allows(
    org_a, aaron, amy, aaron_client, alice_client, number, inbound
):
    theirs = inbound(number, "+12025550101").conversation
    inbox.do_accept_conversation(theirs, amy)
    InboxSettings.objects.create(organization=org_a, agent_visibility="own")
    assert aaron_client.get(f"/api/v1/conversations/{theirs.pk}").status_code == 404
    assert aaron_client.get(f"/api/v1/conversations/{theirs.pk}/messages").status_code == 404
    assert aaron_client.get("/api/v1/messages").json()["results"] == []
    assert alice_client.get(f"/api/v1/conversations/{theirs.pk}").status_code == 200  # admins see all
    # records: aaron owns the matched lead → he sees it.
    InboxSettings.objects.filter(organization=org_a).update(agent_visibility="records")
    lead = LeadFactory(organization=org_a, owner=aaron)
    Conversation.objects.filter(pk=theirs.pk).update(record_type="lead", record_id=lead.pk)
    assert aaron_client.get(f"/api/v1/conversations/{theirs.pk}").status_code == 200


@pytest.mark.django_db
def test_assign_to_me_answers_409_until_confirmed(amy, aaron_client, number, inbound):
    conversation = inbound(number).conversation
    inbox.do_accept_conversation(conversation, amy)
    url = f"/api/v1/conversations/{conversation.pk}/assign"
    asked = aaron_client.post(url, {}, format="json")
    assert asked.status_code == 409
    assert asked.json()["needs_confirmation"] is True and asked.json()["owner_id"] == amy.pk
    done = aaron_client.post(url, {"confirm": True}, format="json")
    assert done.status_code == 200 and done.json()["owner"]["name"]
    assert aaron_client.post(url, {"confirm": True, "typo": 1}, format="json").status_code == 400


@pytest.mark.django_db
def test_actions_through_the_api(alice, aaron, amy, aaron_client, alice_client, number, inbound):
    conversation = inbound(number).conversation
    base = f"/api/v1/conversations/{conversation.pk}"
    assert aaron_client.post(f"{base}/accept").json()["owner"]["id"] == aaron.pk
    assert aaron_client.post(f"{base}/read").json()["unread"] == 0
    assert aaron_client.post(f"{base}/archive").json()["status"] == "archived"
    assert aaron_client.post(f"{base}/reopen").json()["status"] == "open"
    moved = aaron_client.post(f"{base}/reassign", {"user": amy.pk}, format="json")
    assert moved.status_code == 200 and moved.json()["owner"]["id"] == amy.pk
    assert aaron_client.post(f"{base}/reassign", {"user": aaron.pk}, format="json").status_code == 403
    assert alice_client.post(f"{base}/dismiss").json()["dismissed"] is True
    assert alice_client.post(f"{base}/block").json()["status"] == "archived"
    bulk = alice_client.post(
        "/api/v1/conversations/bulk-reassign", {"ids": [conversation.pk], "user": aaron.pk}, format="json"
    )
    assert bulk.json() == {"changed": 1}


@pytest.mark.django_db
def test_reassign_refuses_a_user_or_team_of_another_organization(alice_client, bob, org_b, number, inbound):
    conversation = inbound(number).conversation
    url = f"/api/v1/conversations/{conversation.pk}/reassign"
    assert alice_client.post(url, {"user": bob.pk}, format="json").status_code == 400
    foreign_team = TeamFactory(organization=org_b)
    assert alice_client.post(url, {"team": foreign_team.pk}, format="json").status_code == 400


@pytest.mark.django_db
def test_create_record_through_the_api(alice_client, number, inbound):
    conversation = inbound(number).conversation
    url = f"/api/v1/conversations/{conversation.pk}/create-record"
    made = alice_client.post(url, {"record_type": "case", "fields": {"subject": "Leak"}}, format="json")
    assert made.status_code == 201
    detail = alice_client.get(f"/api/v1/conversations/{conversation.pk}").json()
    assert detail["regarding_type"] == "case" and detail["regarding_id"] == made.json()["record_id"]
    assert detail["regarding_name"] == "Leak"
    refused = alice_client.post(url, {"record_type": "lead", "fields": {"last_name": "X"}}, format="json")
    assert refused.status_code == 400


@pytest.mark.django_db
def test_record_owner_change_needs_an_explicit_carry_over_choice(
    alice, aaron, amy, alice_client, number, inbound
):
    lead = LeadFactory(organization=number.organization, owner=aaron)
    conversation = inbound(number).conversation
    Conversation.objects.filter(pk=conversation.pk).update(record_type="lead", record_id=lead.pk, owner=aaron)
    url = "/api/v1/conversations/record-owner-change"
    payload = {"record_type": "lead", "record_id": lead.pk, "new_owner": amy.pk}
    assert alice_client.post(url, payload, format="json").status_code == 400  # carry_over is required
    assert alice_client.post(url, {**payload, "carry_over": True}, format="json").json() == {"changed": 1}
    conversation.refresh_from_db()
    assert conversation.owner == amy


@pytest.mark.django_db
def test_an_unrelated_agent_cannot_end_a_records_conversations(aaron, amy, number, inbound, client_for):
    lead = LeadFactory(organization=number.organization, owner=aaron)
    conversation = inbound(number).conversation
    Conversation.objects.filter(pk=conversation.pk).update(record_type="lead", record_id=lead.pk, owner=aaron)
    payload = {"record_type": "lead", "record_id": lead.pk, "new_owner": aaron.pk, "carry_over": False}
    url = "/api/v1/conversations/record-owner-change"
    assert client_for(amy).post(url, payload, format="json").status_code == 403
    conversation.refresh_from_db()
    assert conversation.is_current
    # The conversation's owner (handing it over) may.
    assert client_for(aaron).post(url, {**payload, "new_owner": amy.pk}, format="json").status_code == 200


@pytest.mark.django_db
def test_record_owner_change_of_another_orgs_record_is_404(bob_client, bob, number):
    lead = LeadFactory(organization=number.organization)
    url = "/api/v1/conversations/record-owner-change"
    payload = {"record_type": "lead", "record_id": lead.pk, "new_owner": bob.pk, "carry_over": True}
    assert bob_client.post(url, payload, format="json").status_code == 404


@pytest.mark.django_db
def test_notifications_list_and_mark_read(
    aaron, aaron_client, bob_client, number, inbound, django_assert_max_num_queries
):
    for i in range(3):
        inbound(number, f"+1202555010{i}")
    with django_assert_max_num_queries(8):
        body = aaron_client.get("/api/v1/notifications").json()
    assert len(body["results"]) == 3 and {n["kind"] for n in body["results"]} == {"request"}
    first = body["results"][0]["id"]
    assert aaron_client.post(f"/api/v1/notifications/{first}/read").json()["is_read"] is True
    assert bob_client.post(f"/api/v1/notifications/{first}/read").status_code == 404
    assert aaron_client.post("/api/v1/notifications/read-all").json() == {"marked": 2}
    assert Notification.objects.filter(recipient=aaron, is_read=False).count() == 0


@pytest.mark.django_db
def test_my_messages_filters_sorts_and_exports_csv(
    alice_client, number, inbound, django_assert_max_num_queries
):
    inbound(number, "+12025550101", "=cmd|' /C calc'!A0")
    inbound(number, "+12025550102", "beta")
    inbound(number, "+12025550103", "alpha")
    with django_assert_max_num_queries(8):
        body = alice_client.get("/api/v1/messages?ordering=body").json()
    assert [m["body"] for m in body["results"]][:2] == ["=cmd|' /C calc'!A0", "alpha"]
    assert {"number", "customer_number", "body", "status", "direction", "created_at"} <= set(
        body["results"][0]
    )
    assert [
        m["body"] for m in alice_client.get("/api/v1/messages?customer=(202) 555-0102").json()["results"]
    ] == ["beta"]
    assert alice_client.get("/api/v1/messages?text=alp").json()["results"][0]["body"] == "alpha"
    assert alice_client.get("/api/v1/messages?direction=outbound").json()["results"] == []
    assert len(alice_client.get(f"/api/v1/messages?number={number.pk}").json()["results"]) == 3
    export = alice_client.get("/api/v1/messages/export?ordering=-customer_number")
    assert export["Content-Type"].startswith("text/csv")
    lines = b"".join(export.streaming_content).decode().splitlines()
    assert lines[0] == "created_at,direction,number,customer_number,status,body"  # the list's field names
    assert lines[1].endswith("beta") is False and "+12025550103" in lines[1]
    assert any(",'=cmd" in line for line in lines)  # a formula is defused


@pytest.mark.django_db
def test_inbox_settings_are_read_by_members_and_changed_by_admins(
    alice_client, aaron_client, bob_client, org_a
):
    assert aaron_client.get("/api/v1/inbox-settings").json()["idle_timeout_minutes"] == 5
    assert (
        aaron_client.patch("/api/v1/inbox-settings", {"idle_timeout_minutes": 1}, format="json").status_code
        == 403
    )
    changed = alice_client.patch(
        "/api/v1/inbox-settings", {"idle_timeout_minutes": 15, "agent_visibility": "team"}, format="json"
    )
    assert changed.status_code == 200
    assert InboxSettings.objects.get(organization=org_a).agent_visibility == "team"
    assert bob_client.get("/api/v1/inbox-settings").json()["idle_timeout_minutes"] == 5  # Globex's own


@pytest.mark.django_db
def test_sync_now_is_queued_for_admins_only(alice_client, aaron_client, bob_client, number, monkeypatch):
    queued = []
    monkeypatch.setattr("messaging.inbox.tasks.sync_history_number.delay", lambda n: queued.append(n))
    assert aaron_client.post("/api/v1/history-sync", {}, format="json").status_code == 403
    assert bob_client.post("/api/v1/history-sync", {"number": number.pk}, format="json").status_code == 404
    with_callbacks = alice_client.post("/api/v1/history-sync", {"number": number.pk}, format="json")
    assert with_callbacks.status_code == 202 and with_callbacks.json() == {"queued": [number.pk]}
