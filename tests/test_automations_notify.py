"""The notify step (an in-app notification to a member, the record's owner or a team, with merge fields),
and ``{{agent.*}}`` in automated texts naming the record's owner."""

from __future__ import annotations

import pytest
from django.urls import reverse

from campaigns.automations import engine
from campaigns.models import Automation, StepRun
from campaigns.services import do_create_automation, do_set_automation_status
from crm.models import Lead
from messaging.inbox import events
from messaging.models import Message, Notification
from tenancy.models import Role
from tests import factories_send
from tests.automation_helpers import daytime_number, template
from tests.factories import MembershipFactory, TeamFactory

line = factories_send.line
fast_rates = factories_send.fast_rates
inline_tasks = factories_send.inline_tasks

pytestmark = pytest.mark.django_db(transaction=True)

NOTE = 'Call {{first_name}} today ({{custom.source|default:"no source"}}), {{owner.first_name}}'


def notify_automation(org, admin, **step):
    """(A custom field is known once a record has it: tests create their leads first.)"""
    automation = do_create_automation(
        org,
        admin,
        name="Hot lead",
        # Run through the API below; the record type makes a lead's fields mergeable.
        trigger={"type": "record_created", "record_type": "lead"},
        steps=[{"type": "notify", "text": NOTE, **step}],
    )
    return do_set_automation_status(automation, admin, Automation.Status.ACTIVE)


def lead(org, owner=None, **fields):
    return Lead.objects.create(
        organization=org,
        first_name="Dana",
        mobile_phone=daytime_number(),
        owner=owner,
        custom_fields={"source": "open house"},
        **fields,
    )


def run(api, automation, record):
    response = api.post(
        f"/api/v1/automations/{automation.pk}/run",
        {"record": {"type": record.record_type, "id": record.pk}},
        format="json",
    )
    assert response.status_code == 202, response.json()
    return response.json()


def test_the_records_owner_finds_the_note_in_the_bell_with_a_link_to_the_record(
    org_a, alice, aaron, client_for, inline_tasks, monkeypatch
):
    pushed = []
    monkeypatch.setattr(events, "publish_notification_created", pushed.append)
    dana = lead(org_a, owner=aaron)
    automation = notify_automation(org_a, alice, user="owner")
    assert run(client_for(alice), automation, dana)["status"] == "completed"

    mine = client_for(aaron).get("/api/v1/notifications").json()
    mine = mine["results"] if isinstance(mine, dict) else mine
    assert len(mine) == 1
    note = mine[0]
    assert note["kind"] == "automation" and note["conversation_id"] is None
    assert note["preview"] == f"Hot lead: Call Dana today (open house), {aaron.first_name}"
    assert note["link"] == reverse("crm-lead-detail", args=[dana.pk])
    assert note["actions"] == ["view"]
    # Pushed live to the owner only (their own preferences decide on a desktop notification or a sound).
    assert [n.recipient_id for n in pushed] == [aaron.pk]
    others = client_for(alice).get("/api/v1/notifications").json()
    assert (others["results"] if isinstance(others, dict) else others) == []
    detail = StepRun.objects.get(automation=automation, step_type="notify").detail
    assert detail == f"Notified {aaron.get_full_name()}"


def test_a_team_note_reaches_its_active_members_only(org_a, alice, aaron, inline_tasks, client_for):
    team = TeamFactory(organization=org_a, name="Closers")
    gone = MembershipFactory(organization=org_a, role=Role.AGENT, is_active=False)
    team.members.add(aaron.memberships.get(organization=org_a), gone)
    dana = lead(org_a)
    automation = notify_automation(org_a, alice, team=team.pk)
    run(client_for(alice), automation, dana)
    assert list(Notification.objects.values_list("recipient_id", "kind")) == [(aaron.pk, "automation")]


def test_a_member_is_notified_by_name_and_a_missing_owner_is_a_logged_skip(
    org_a, alice, aaron, inline_tasks, client_for
):
    dana, kim = lead(org_a), lead(org_a, owner=None)
    named = notify_automation(org_a, alice, user=aaron.pk)
    run(client_for(alice), named, dana)
    assert Notification.objects.filter(recipient=aaron, kind="automation").count() == 1

    to_owner = notify_automation(org_a, alice, user="owner")
    enrollment = run(client_for(alice), to_owner, kim)
    assert enrollment["status"] == "completed"
    skipped = StepRun.objects.get(automation=to_owner, step_type="notify")
    assert (skipped.result, skipped.detail) == ("skipped", "The record has no owner")
    assert Notification.objects.count() == 1


def test_a_step_that_runs_again_after_a_crash_notifies_once(org_a, alice, aaron, monkeypatch):
    from campaigns import tasks

    monkeypatch.setattr(tasks.advance_enrollment, "delay", lambda *args, **kwargs: None)
    dana = lead(org_a, owner=aaron)
    automation = notify_automation(org_a, alice, user="owner")
    enrollment = engine.enroll(automation, record=dana, trigger_key="run:1")
    assert engine.advance(enrollment.pk) == "completed"
    assert engine.advance(enrollment.pk) == "completed"
    assert Notification.objects.filter(recipient=aaron).count() == 1


@pytest.mark.parametrize(
    ("step", "field", "words"),
    [
        ({"user": "owner", "text": "Call {{frist_name}}"}, "steps[0].text", "did you mean {{first_name}}"),
        ({"user": "owner", "text": "Hi {{first name}}"}, "steps[0].text", "is not a merge field"),
        ({"team": 999999, "text": "Hi"}, "steps[0].team", "Choose one of your organization's teams."),
        ({"user": "owner", "team": 1, "text": "Hi"}, "steps[0].team", "not both"),
        ({"user": 999999, "text": "Hi"}, "steps[0].user", "Choose a member"),
        ({"user": "owner", "text": ""}, "steps[0].text", "This is required."),
    ],
)
def test_a_notify_step_is_checked_on_save_naming_the_part_at_fault(
    org_a, alice, client_for, step, field, words
):
    response = client_for(alice).post(
        "/api/v1/automations",
        {
            "name": "Bad note",
            "trigger": {"type": "record_created", "record_type": "lead"},
            "steps": [{"type": "notify", **step}],
        },
        format="json",
    )
    assert response.status_code == 400, response.json()
    assert field in response.json() and words in " ".join(response.json()[field])


def test_another_organizations_team_cannot_be_notified(org_a, org_b, alice, client_for):
    theirs = TeamFactory(organization=org_b, name="Globex sales")
    response = client_for(alice).post(
        "/api/v1/automations",
        {
            "name": "x",
            "trigger": {"type": "manual"},
            "steps": [{"type": "notify", "team": theirs.pk, "text": "Hi"}],
        },
        format="json",
    )
    assert response.status_code == 400 and "steps[0].team" in response.json()


def test_changing_the_trigger_checks_the_notes_merge_fields_again(org_a, alice, client_for):
    api = client_for(alice)
    created = api.post(
        "/api/v1/automations",
        {
            "name": "Note",
            "trigger": {"type": "record_created", "record_type": "lead"},
            "steps": [{"type": "notify", "user": "owner", "text": "Call {{first_name}}"}],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    # Any record: only the agent, owner and organization fields exist.
    changed = api.patch(
        f"/api/v1/automations/{created.json()['id']}", {"trigger": {"type": "manual"}}, format="json"
    )
    assert changed.status_code == 400 and "steps[0].text" in changed.json()


def test_the_dry_run_shows_who_would_be_notified_and_the_note(org_a, alice, aaron, client_for):
    dana = lead(org_a, owner=aaron)
    automation = notify_automation(org_a, alice, user="owner")
    answer = (
        client_for(alice)
        .post(
            f"/api/v1/automations/{automation.pk}/test",
            {"record": {"type": "lead", "id": dana.pk}},
            format="json",
        )
        .json()
    )
    step = answer["steps"][0]
    assert step["text"] == f"Hot lead: Call Dana today (open house), {aaron.first_name}"
    assert step["would"] == f"Notify {aaron.get_full_name()} in the app"
    assert not Notification.objects.exists()


def test_agent_fields_in_an_automated_text_name_the_records_owner(
    org_a, alice, aaron, line, inline_tasks, client_for
):
    welcome = template(org_a, "Hi {{first_name}}, {{agent.first_name}} {{agent.last_name}} here.")
    automation = do_create_automation(
        org_a,
        alice,
        name="Welcome",
        trigger={"type": "record_created", "record_type": "lead"},
        steps=[{"type": "send_template", "template": welcome.pk}],
    )
    do_set_automation_status(automation, alice, Automation.Status.ACTIVE)
    dana = lead(org_a, owner=aaron)
    expected = f"Hi Dana, {aaron.first_name} {aaron.last_name} here."
    preview = client_for(alice).post(
        f"/api/v1/automations/{automation.pk}/test",
        {"record": {"type": "lead", "id": dana.pk}},
        format="json",
    )
    assert preview.json()["steps"][0]["text"] == expected
    run(client_for(alice), automation, dana)
    message = Message.objects.get(organization=org_a, direction="outbound")
    assert message.body == expected
    # The automation sent it, not the owner: the thread names the automation.
    assert message.sender_id is None and message.source_label == "Welcome"
