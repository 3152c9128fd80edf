"""Sending a template: the send API renders it on the server for the record, the message remembers it, and
the template counts the use."""

from __future__ import annotations

import pytest

from messaging.inbox.conversations import get_or_create_conversation
from messaging.models import Message
from messaging.services.sending import SendRefused, do_send_message
from templates_app.models import MessageTemplate
from tests import factories_send
from tests.factories_crm import ContactFactory, LeadFactory

URL = "/api/v1/messages"
line = factories_send.line
fast_rates = factories_send.fast_rates
inline_tasks = factories_send.inline_tasks


@pytest.fixture(autouse=True)
def _tasks_run_inline(inline_tasks):
    pass


@pytest.fixture
def api(token_client_for, alice, org_a):
    alice.first_name = "Alice"
    alice.save()
    return token_client_for(alice, org_a)


def _template(org, **kwargs):
    values = {
        "name": "Welcome",
        "body": 'Hi {{first_name|default:"there"}}, {{agent.first_name}} from {{org.name}}.',
        "record_type": "lead",
        **kwargs,
    }
    return MessageTemplate.objects.create(organization=org, **values)


def test_send_by_template_renders_for_the_record_and_remembers_it(
    api, org_a, line, twilio_sandbox, django_capture_on_commit_callbacks
):
    lead = LeadFactory(organization=org_a, first_name="Zoë", mobile_phone="+12065550170")
    template = _template(org_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            URL, {"record": {"type": "lead", "id": lead.pk}, "template": template.pk}, format="json"
        )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["body"] == "Hi Zoë, Alice from Acme." and data["template"] == template.pk
    # "ë" is not GSM-7: the merged name is what made this message UCS-2.
    assert data["encoding"] == "UCS-2"
    assert Message.objects.get(pk=data["id"]).template == template
    assert twilio_sandbox.messages(line.sid)[0]["body"] == "Hi Zoë, Alice from Acme."
    template.refresh_from_db()
    assert template.usage_count == 1 and template.last_used_at is not None


def test_usage_counts_every_send_but_not_an_idempotent_replay(
    api, org_a, line, django_capture_on_commit_callbacks
):
    lead = LeadFactory(organization=org_a, mobile_phone="+12065550170")
    template = _template(org_a)
    payload = {"record": {"type": "lead", "id": lead.pk}, "template": template.pk}
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="k1").status_code == 201
        assert api.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="k1").status_code == 200
        assert api.post(URL, payload, format="json").status_code == 201
    template.refresh_from_db()
    assert template.usage_count == 2
    listed = api.get(f"/api/v1/templates/{template.pk}").json()
    assert listed["usage_count"] == 2 and listed["last_used_at"]


def test_a_conversation_sends_the_template_for_its_record(
    api, org_a, line, django_capture_on_commit_callbacks
):
    contact = ContactFactory(organization=org_a, first_name="Justin", mobile_phone="+12065550171")
    conversation, _ = get_or_create_conversation(
        line.number, "+12065550171", record_type="contact", record_id=contact.pk
    )
    template = _template(org_a, record_type="contact", body="Thanks {{first_name}}!")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(URL, {"conversation": conversation.pk, "template": template.pk}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["body"] == "Thanks Justin!"


def test_template_refusals_are_400_in_plain_words(api, org_a, line):
    lead = LeadFactory(organization=org_a, mobile_phone="+12065550170")
    record = {"type": "lead", "id": lead.pk}
    case_template = _template(org_a, name="Case update", record_type="case", body="About {{subject}}")
    draft = _template(org_a, name="Soon", status="draft")
    lead_template = _template(org_a, name="Lead one")

    def refusal(payload):
        response = api.post(URL, payload, format="json")
        assert response.status_code == 400, response.content
        return response.json()

    assert refusal({"record": record, "template": case_template.pk}) == {
        "detail": "“Case update” is for case records.",
        "field": "template",
    }
    assert refusal({"record": record, "template": draft.pk})["detail"] == (
        "“Soon” is a draft: publish it before sending it."
    )
    assert refusal({"record": record, "template": lead_template.pk, "body": "hi"})["field"] == "body"
    no_record = refusal({"to": "+12065550199", "template": lead_template.pk})
    assert no_record == {
        "detail": "“Lead one” fills in record fields: send it to a record.",
        "field": "template",
    }
    assert Message.objects.count() == 0


def test_agent_sends_only_templates_they_can_see_and_outsiders_get_404(
    org_a, org_b, aaron, bob, token_client_for, line, alice
):
    lead = LeadFactory(organization=org_a, mobile_phone="+12065550170")
    record = {"type": "lead", "id": lead.pk}
    someone_elses = _template(org_a, name="Alice's own", owner=alice)
    agent_api = token_client_for(aaron, org_a)
    assert (
        agent_api.post(URL, {"record": record, "template": someone_elses.pk}, format="json").status_code
        == 404
    )
    shared = _template(org_a)
    outsider = token_client_for(bob, org_b)
    assert outsider.post(URL, {"to": "+12065550170", "template": shared.pk}, format="json").status_code == 404
    assert Message.objects.count() == 0
    shared.refresh_from_db()
    assert shared.usage_count == 0


def test_the_service_renders_a_template_without_a_membership(org_a, alice, line):
    # What automations and campaigns do: no membership, an actor to sign as, a template instead of a body.
    lead = LeadFactory(organization=org_a, mobile_phone="+12065550172")
    template = _template(org_a, record_type="", body="{{agent.first_name}} of {{org.name}}: see you soon")
    alice.first_name = "Alice"
    message = do_send_message(
        org_a, actor=alice, source=Message.Source.AUTOMATION, record=lead, template=template
    )
    assert message.body == "Alice of Acme: see you soon" and message.template_id == template.pk
    with pytest.raises(SendRefused) as refused:
        do_send_message(
            org_a, actor=alice, source=Message.Source.API, record=lead, template=template, body="x"
        )
    assert refused.value.field == "body"


def test_a_template_costs_one_query_more_than_a_body(org_a, alice, line):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    template = _template(org_a, record_type="lead", body="Hi {{first_name}} from {{org.name}}")
    warm = LeadFactory(organization=org_a, mobile_phone="+12065550189")
    do_send_message(org_a, actor=alice, source=Message.Source.AUTOMATION, record=warm, body="caches filled")
    counts = []
    for index, kwargs in enumerate(({"body": "Hi there"}, {"template": template})):
        lead = LeadFactory(organization=org_a, mobile_phone=f"+1206555018{index}")
        with CaptureQueriesContext(connection) as captured:
            do_send_message(org_a, actor=alice, source=Message.Source.AUTOMATION, record=lead, **kwargs)
        counts.append(len(captured.captured_queries))
    # Rendering reads nothing more; the one extra statement counts the use.
    assert counts[1] == counts[0] + 1
