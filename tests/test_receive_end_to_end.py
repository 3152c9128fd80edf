"""End to end through real components: the Twilio sandbox (over HTTP) posts signed webhooks to the app served
by uvicorn; in production mode a real Celery worker processes them. Inbound MMS with every accepted media
type; out-of-order and duplicated status callbacks."""

from __future__ import annotations

import pytest
from django.conf import settings

from messaging.inbox.conversations import get_or_create_conversation
from messaging.models import STATUS_RANK, Message, MessageMedia
from messaging.twilio.public_urls import INCOMING_SMS_PATH, STATUS_CALLBACK_PATH
from tests import receive_helpers
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory
from tests.plugins import servers
from tests.plugins.servers import wait_until
from tests.test_media import ACCEPTED_FILES

_fresh_token_cache = receive_helpers._fresh_token_cache


@pytest.fixture
def app_server(request, tmp_path, monkeypatch, twilio_sandbox, transactional_db):
    """The app under uvicorn whose PUBLIC_BASE_URL is its own address, talking to the test's sandbox; in
    production mode with a Celery worker process."""
    port = servers.free_port()
    monkeypatch.setattr(servers, "free_port", lambda: port)
    env = {"TWILIO_API_BASE_URL": twilio_sandbox.base_url, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    server = servers.start_asgi_server(tmp_path, extra_env=env)
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        request.getfixturevalue("celery_worker_process")
    yield server
    server.stop()


@pytest.fixture
def sandbox_line(twilio_sandbox, app_server, org_a):
    """A sandbox account and number connected to org A, the number's SMS URL pointing at the app."""
    sid, token = twilio_sandbox.new_account()
    number = twilio_sandbox.add_number(sid, sms_url=app_server.base_url + INCOMING_SMS_PATH)
    account = TwilioAccountFactory(organization=org_a, account_sid=sid, auth_token=token)
    phone = PhoneNumberFactory(account=account, phone_number=number["phone_number"])
    return {"sid": sid, "token": token, "account": account, "number": phone, "server": app_server}


def _unique_files():
    seen, files = set(), []
    for name, declared, data, expected in ACCEPTED_FILES:
        if expected not in seen:
            seen.add(expected)
            files.append((name, declared or expected, data, expected))
    return files


@pytest.mark.django_db(transaction=True)
def test_inbound_mms_with_every_accepted_media_type_is_stored_with_its_content(twilio_sandbox, sandbox_line):
    files = _unique_files()
    customer = "+12025550166"
    batches = [files[i : i + 10] for i in range(0, len(files), 10)]
    for n, batch in enumerate(batches):
        answer = twilio_sandbox.inbound(
            customer,
            sandbox_line["number"].phone_number,
            f"batch {n}",
            media=[(d, data) for _, d, data, _ in batch],
        )
        assert answer["webhook"]["status_code"] == 200, answer
    wait_until(
        lambda: Message.objects.filter(from_number=customer).count() == len(batches),
        timeout=60,
        message="the inbound messages were not all processed",
    )
    media = list(MessageMedia.objects.filter(message__from_number=customer).order_by("message_id", "id"))
    assert len(media) == len(files)
    for item, (_name, _declared, data, expected) in zip(media, files, strict=True):
        assert item.error == "" and item.size == len(data)
        assert item.content_type == expected
        with item.file.open("rb") as fh:
            assert fh.read() == data
    messages = Message.objects.filter(from_number=customer)
    assert {m.conversation_id for m in messages} == {messages[0].conversation_id}  # one thread
    assert all(m.num_media == len(batch) for m, batch in zip(messages.order_by("id"), batches, strict=True))


@pytest.mark.django_db(transaction=True)
def test_out_of_order_and_duplicate_callbacks_from_the_sandbox_end_in_the_right_final_status(
    twilio_sandbox, sandbox_line
):
    sid, token = sandbox_line["sid"], sandbox_line["token"]
    twilio_sandbox.behaviour(sid, rates={"local": 200}, delay_ms=[0, 3], out_of_order=1, duplicates=1)
    recipients = ["+12025550170", "+15005553003", "+15005553005", "+15005553007", "+12025550171"] * 4
    client = twilio_sandbox.client(sid, token)
    ours = []
    for to in recipients:
        conversation, _ = get_or_create_conversation(sandbox_line["number"], to)
        # Stored first without a SID, like the send pipeline: the callbacks carry our id (?m=) and may beat
        # the send response, so nothing here stores the SID.
        message = Message.objects.create(
            organization=sandbox_line["account"].organization,
            conversation=conversation,
            account=sandbox_line["account"],
            direction="outbound",
            source="api",
            from_number=sandbox_line["number"].phone_number,
            to_number=to,
            body="Your viewing is confirmed",
        )
        created = client.messages.create(
            to=to,
            from_=sandbox_line["number"].phone_number,
            body=message.body,
            status_callback=f"{sandbox_line['server'].base_url}{STATUS_CALLBACK_PATH}?m={message.pk}",
        )
        ours.append((message.pk, created.sid))

    def sandbox_final(message_sid):
        found = twilio_sandbox.message(sid, message_sid)
        return found if STATUS_RANK.get(found["status"], 0) >= 60 and len(found["callbacks"]) >= 2 else None

    wait_until(lambda: all(sandbox_final(s) for _, s in ours), timeout=60, message="sandbox did not finish")
    expected = {pk: twilio_sandbox.message(sid, s) for pk, s in ours}
    # Some callbacks really did arrive late or twice.
    callbacks = [c for m in expected.values() for c in m["callbacks"]]
    assert any(c.get("duplicate") for c in callbacks)

    def settled():
        rows = {m.pk: m for m in Message.objects.filter(pk__in=expected)}
        return all(rows[pk].status == e["status"] for pk, e in expected.items())

    wait_until(settled, timeout=60, message="statuses did not settle")
    for message in Message.objects.filter(pk__in=expected):
        final = expected[message.pk]
        assert message.sid == final["sid"]
        assert message.status == final["status"]
        assert message.error_code == (int(final["error_code"]) if final.get("error_code") else None)
        if message.status == "delivered":
            assert message.delivered_at and message.sent_at
        else:
            assert message.failed_at and message.error_message
    assert all(callback.get("http_status") == 200 for callback in callbacks)


@pytest.mark.django_db(transaction=True)
def test_the_app_starts_under_uvicorn_with_several_workers(tmp_path):
    # uvicorn --workers N (N > 1, as in the Dockerfile) imports the app inside its event loop; the start-up
    # database check must not trip Django's SynchronousOnlyOperation there.
    server = servers.start_asgi_server(tmp_path, workers=2)
    try:
        import requests

        assert requests.get(server.base_url + "/livez", timeout=5).status_code == 200
        assert "SynchronousOnlyOperation" not in server.log()
    finally:
        server.stop()


@pytest.mark.django_db(transaction=True)
def test_when_twilio_answers_keywords_itself_quicksend_records_consent_and_adds_no_reply(
    twilio_sandbox, sandbox_line
):
    """The sandbox, like Twilio with Advanced Opt-Out, answers STOP/HELP itself and sends OptOutType: the app
    records the consent and does not send the organization's reply on top (it would be a duplicate, and a
    text after STOP is refused with 21610)."""
    from messaging.models import ConsentState, MessagingSettings
    from messaging.services.consent import contact_refusal

    org = sandbox_line["account"].organization
    MessagingSettings.objects.update_or_create(
        organization=org,
        defaults={
            "help_reply": "Acme: reply STOP to opt out.",
            "opt_out_reply": "Acme: you are unsubscribed.",
        },
    )
    customer = "+12025550188"
    ours = sandbox_line["number"].phone_number
    twilio_sandbox.inbound(customer, ours, "help")
    twilio_sandbox.inbound(customer, ours, "STOP")
    wait_until(
        lambda: ConsentState.objects.filter(phone_number=customer, opted_out=True).exists(), timeout=60
    )
    wait_until(lambda: Message.objects.filter(from_number=customer).count() == 2, timeout=60)
    assert "opted out" in contact_refusal(org, customer)
    assert not Message.objects.filter(to_number=customer, source=Message.Source.AUTO_REPLY).exists()

    def replies():
        return [m["body"] for m in twilio_sandbox.received(customer)]

    # Twilio's own confirmation arrives; the organization's reply is not added.
    wait_until(lambda: any("successfully been unsubscribed" in body for body in replies()), timeout=30)
    assert "Acme: you are unsubscribed." not in replies()
    assert "Acme: reply STOP to opt out." not in replies()
