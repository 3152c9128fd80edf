"""POST /api/v1/messages/{id}/retry: a failed text goes out again with its text and every attachment (read
back from storage), once, through the same checks as a new text; outsiders and members who may not see the
conversation get 404."""

from __future__ import annotations

import base64

import pytest

from messaging.models import InboxSettings, Message, MessageMedia, MessageStatus
from messaging.services.consent import do_change_consent
from messaging.services.resending import do_retry_message
from tests import factories_send, receive_helpers
from tests.factories_send import PDF, PNG

URL = "/api/v1/messages"
CUSTOMER = "+12065550178"
line = factories_send.line
fast_rates = factories_send.fast_rates
inline_tasks = factories_send.inline_tasks
eager_tasks = receive_helpers.eager_tasks
_fresh_token_cache = receive_helpers._fresh_token_cache


@pytest.fixture(autouse=True)
def _tasks_run_inline(inline_tasks):
    pass


@pytest.fixture
def api(token_client_for, alice, org_a):
    return token_client_for(alice, org_a)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def failed_with_media(api, line, django_capture_on_commit_callbacks):
    """A text with a picture and a PDF that Twilio could not deliver."""
    payload = {
        "to": CUSTOMER,
        "body": "The floor plan and the contract",
        "media": [
            {"filename": "plan.png", "content_base64": b64(PNG)},
            {"filename": "contract.pdf", "content_base64": b64(PDF)},
        ],
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(URL, payload, format="json")
    assert response.status_code == 201, response.content
    message = Message.objects.get(pk=response.json()["id"])
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.FAILED, error_code=30003, error_message="The phone is unreachable."
    )
    message.refresh_from_db()
    return message


def test_retry_sends_the_text_again_with_every_attachment(
    api, line, failed_with_media, twilio_sandbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"{URL}/{failed_with_media.pk}/retry", {}, format="json")
    assert response.status_code == 201, response.content
    retried = Message.objects.get(pk=response.json()["id"])
    assert retried.pk != failed_with_media.pk
    assert (retried.body, retried.conversation_id, retried.num_media) == (
        "The floor plan and the contract",
        failed_with_media.conversation_id,
        2,
    )
    items = list(MessageMedia.objects.filter(message=retried).order_by("id"))
    assert [(m.filename, m.content_type, m.size) for m in items] == [
        ("plan.png", "image/png", len(PNG)),
        ("contract.pdf", "application/pdf", len(PDF)),
    ]
    assert [m.file.read() for m in items] == [PNG, PDF]
    # Twilio was handed both attachments of the new message.
    sent = [m for m in twilio_sandbox.messages(line.sid) if m["sid"] == retried.sid]
    assert len(sent) == 1 and len(sent[0]["media"]) == 2


def test_a_second_retry_returns_the_first_and_sends_nothing_more(
    api, line, failed_with_media, twilio_sandbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post(f"{URL}/{failed_with_media.pk}/retry", {}, format="json")
        again = api.post(f"{URL}/{failed_with_media.pk}/retry", {}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    assert len(twilio_sandbox.messages(line.sid)) == 2  # the original and one retry


def test_only_a_failed_text_can_be_retried(api, failed_with_media):
    Message.objects.filter(pk=failed_with_media.pk).update(status=MessageStatus.DELIVERED)
    response = api.post(f"{URL}/{failed_with_media.pk}/retry", {}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "Only a text that was not delivered can be sent again."


def test_retry_is_refused_when_the_person_opted_out_since(api, org_a, failed_with_media):
    do_change_consent(org_a, CUSTOMER, "opt_out", "api")
    response = api.post(f"{URL}/{failed_with_media.pk}/retry", {}, format="json")
    assert response.status_code == 400 and "opted out" in response.json()["detail"]
    assert Message.objects.filter(conversation=failed_with_media.conversation).count() == 1


def test_an_attachment_that_was_never_stored_is_named(alice, org_a, failed_with_media):
    MessageMedia.objects.filter(message=failed_with_media, filename="contract.pdf").update(file="")
    from messaging.services.sending import SendRefused

    with pytest.raises(SendRefused, match="contract.pdf of this text was not stored"):
        do_retry_message(failed_with_media, actor=alice, membership=alice.memberships.get(organization=org_a))


def test_outsiders_and_members_who_may_not_see_it_get_404(
    org_a, aaron, failed_with_media, token_client_for, bob, org_b
):
    from messaging.inbox.visibility import inbox_settings_for

    outsider = token_client_for(bob, org_b)
    assert outsider.post(f"{URL}/{failed_with_media.pk}/retry", {}, format="json").status_code == 404
    settings = inbox_settings_for(org_a)
    settings.agent_visibility = InboxSettings.Visibility.OWN
    settings.save()
    failed_with_media.conversation.owner = failed_with_media.sender
    failed_with_media.conversation.save()
    agent = token_client_for(aaron, org_a)
    assert agent.post(f"{URL}/{failed_with_media.pk}/retry", {}, format="json").status_code == 404
    assert Message.objects.filter(conversation=failed_with_media.conversation).count() == 1
