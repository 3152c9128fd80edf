"""POST /api/v1/messages and GET /api/v1/messages/{id}; signed media URLs."""

from __future__ import annotations

import base64

import pytest
from django.core import signing

from messaging.inbox.conversations import get_or_create_conversation
from messaging.media.signed_urls import media_for_token, signed_media_url
from messaging.models import Conversation, Message, MessageMedia
from messaging.services.consent import do_change_consent
from tests import factories_send, receive_helpers
from tests.factories_crm import LeadFactory
from tests.factories_send import PDF, PNG, connect_line
from tests.receive_helpers import inbound_params, post_inbound

URL = "/api/v1/messages"
CUSTOMER = "+12065550177"
line = factories_send.line
fast_rates = factories_send.fast_rates
inline_tasks = factories_send.inline_tasks
eager_tasks = receive_helpers.eager_tasks
_fresh_token_cache = receive_helpers._fresh_token_cache


@pytest.fixture(autouse=True)
def _tasks_run_inline(inline_tasks):
    pass


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def api(token_client_for, alice, org_a):
    return token_client_for(alice, org_a)


def test_api_send_returns_201_pending_and_the_message_reaches_the_sandbox(
    api, line, twilio_sandbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(URL, {"to": CUSTOMER, "body": "Hello"}, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["status"], data["source"], data["to_number"], data["body"]) == (
        "pending",
        "api",
        CUSTOMER,
        "Hello",
    )
    polled = api.get(f"{URL}/{data['id']}").json()
    assert polled["sid"] == twilio_sandbox.messages(line.sid)[0]["sid"]
    assert polled["status"] in ("queued", "sending", "sent", "delivered")


def test_idempotency_key_header_returns_the_first_message_and_sends_once(
    api, line, twilio_sandbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post(URL, {"to": CUSTOMER, "body": "Once"}, format="json", HTTP_IDEMPOTENCY_KEY="abc")
        again = api.post(URL, {"to": CUSTOMER, "body": "Once"}, format="json", HTTP_IDEMPOTENCY_KEY="abc")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert len(twilio_sandbox.messages(line.sid)) == 1


def test_stop_refuses_the_api_send_with_400_and_nothing_reaches_the_sandbox(
    api, org_a, line, twilio_sandbox, django_capture_on_commit_callbacks
):
    do_change_consent(org_a, CUSTOMER, "opt_out", "api")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(URL, {"to": CUSTOMER, "body": "Hi"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "This number has opted out (replied STOP) and cannot be texted until it replies START.",
        "field": "to",
    }
    assert Message.objects.count() == 0 and twilio_sandbox.messages(line.sid) == []


def test_send_to_a_record_and_a_conversation_of_the_org(api, org_a, line, django_capture_on_commit_callbacks):
    lead = LeadFactory(organization=org_a, mobile_phone="+12065550170")
    conversation, _ = get_or_create_conversation(line.number, "+12065550171")
    with django_capture_on_commit_callbacks(execute=True):
        by_record = api.post(URL, {"record": {"type": "lead", "id": lead.pk}, "body": "a"}, format="json")
        by_conv = api.post(URL, {"conversation": conversation.pk, "body": "b"}, format="json")
    assert by_record.status_code == 201 and by_record.json()["to_number"] == "+12065550170"
    assert by_conv.status_code == 201 and by_conv.json()["conversation"] == conversation.pk


def test_a_reply_to_a_record_goes_from_the_number_they_texted_after_the_default_changed(
    api, client, org_a, org_b, line, twilio_sandbox, eager_tasks, django_capture_on_commit_callbacks
):
    lead = LeadFactory(organization=org_a, mobile_phone=CUSTOMER)
    b_line = connect_line(twilio_sandbox, org_b)
    with django_capture_on_commit_callbacks(execute=True):
        texted = post_inbound(
            client, line.token, inbound_params(line.sid, CUSTOMER, line.number.phone_number)
        )
        # The same person texting another organization later changes nothing for this one.
        other = post_inbound(
            client, b_line.token, inbound_params(b_line.sid, CUSTOMER, b_line.number.phone_number)
        )
    assert (texted.status_code, other.status_code) == (200, 200)
    thread = Conversation.objects.get(organization=org_a, customer_number=CUSTOMER)
    new_default = connect_line(twilio_sandbox, org_a, default=True)
    with django_capture_on_commit_callbacks(execute=True):
        reply = api.post(URL, {"record": {"type": "lead", "id": lead.pk}, "body": "Yes"}, format="json")
    assert reply.status_code == 201, reply.content
    assert reply.json()["from_number"] == line.number.phone_number
    assert reply.json()["conversation"] == thread.pk
    assert Conversation.objects.filter(organization=org_a, customer_number=CUSTOMER).count() == 1
    assert [m["from"] for m in twilio_sandbox.messages(line.sid) if m["direction"] != "inbound"] == [
        line.number.phone_number
    ]
    assert twilio_sandbox.messages(new_default.sid) == []


def test_outsider_ids_get_404_or_400_and_never_send(
    org_a, org_b, bob, token_client_for, line, twilio_sandbox, django_capture_on_commit_callbacks
):
    b_line = connect_line(twilio_sandbox, org_b)
    lead = LeadFactory(organization=org_a, mobile_phone="+12065550170")
    conversation, _ = get_or_create_conversation(line.number, "+12065550171")
    api_b = token_client_for(bob, org_b)
    with django_capture_on_commit_callbacks(execute=True):
        record = api_b.post(URL, {"record": {"type": "lead", "id": lead.pk}, "body": "x"}, format="json")
        conv = api_b.post(URL, {"conversation": conversation.pk, "body": "x"}, format="json")
        sender = api_b.post(URL, {"to": CUSTOMER, "from": str(line.number.pk), "body": "x"}, format="json")
        sender_e164 = api_b.post(
            URL, {"to": CUSTOMER, "from": line.number.phone_number, "body": "x"}, format="json"
        )
    assert (record.status_code, conv.status_code) == (404, 404)
    assert (sender.status_code, sender_e164.status_code) == (400, 400)
    assert "not one of this organization's numbers" in sender.json()["detail"]
    assert Message.objects.count() == 0
    assert twilio_sandbox.messages(line.sid) == [] and twilio_sandbox.messages(b_line.sid) == []


def test_outsider_cannot_read_a_message(api, bob_client, line, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        message_id = api.post(URL, {"to": CUSTOMER, "body": "Private"}, format="json").json()["id"]
    assert bob_client.get(f"{URL}/{message_id}").status_code == 404
    assert api.get(f"{URL}/{message_id}").status_code == 200


def test_unknown_fields_and_bad_input_are_400_naming_them(api, line):
    response = api.post(URL, {"to": CUSTOMER, "body": "x", "sender": 1}, format="json")
    assert response.status_code == 400 and "sender" in response.json()
    response = api.post(URL, {"to": CUSTOMER, "body": "x" * 1601}, format="json")
    assert response.json()["body"] == ["A message can be at most 1,600 characters."]
    assert api.post(URL, {"record": {"type": "pony", "id": 1}, "body": "x"}, format="json").status_code == 400


def test_the_same_path_lists_my_messages_and_sends(api):
    # One view answers both methods: GET is the inbox's "My Messages", POST sends.
    listed = api.get(URL)
    assert listed.status_code == 200
    assert "results" in listed.json()


# --- media -------------------------------------------------------------------------------------------------

# One small valid file per family of accepted types, by signature.
SAMPLES = {
    "image/png": ("a.png", PNG),
    "image/jpeg": ("a.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32 + b"\xff\xd9"),
    "image/gif": ("a.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
    "application/pdf": ("a.pdf", PDF),
    "text/vcard": ("a.vcf", b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann\r\nEND:VCARD\r\n"),
    "text/calendar": ("a.ics", b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"),
    "audio/mpeg": ("a.mp3", b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\x00" * 32),
    "video/mp4": ("a.mp4", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 16),
}


@pytest.mark.parametrize("content_type", sorted(SAMPLES))
def test_media_goes_out_as_a_signed_url_serving_the_sniffed_type(
    api, client, line, twilio_sandbox, content_type, settings, django_capture_on_commit_callbacks
):
    from messaging.media.validation import sniff

    name, data = SAMPLES[content_type]
    assert sniff(data) == content_type  # the sample really is what it claims
    payload = {"to": CUSTOMER, "body": "", "media": [{"filename": name, "content_base64": b64(data)}]}
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(URL, payload, format="json")
    assert response.status_code == 201, response.content
    media = MessageMedia.objects.get(message_id=response.json()["id"])
    assert (media.content_type, media.size) == (content_type, len(data))
    sent = twilio_sandbox.messages(line.sid)[0]
    assert len(sent["media"]) == 1
    url = sent["media"][0]["url"]  # what Twilio was given to fetch
    assert url.startswith(settings.PUBLIC_BASE_URL + "/media/out/")
    path = url.removeprefix(settings.PUBLIC_BASE_URL)
    got = client.get(path)
    assert got.status_code == 200 and got["Content-Type"] == content_type
    assert b"".join(got.streaming_content) == data
    head = client.head(path)
    assert head.status_code == 200 and head["Content-Type"] == content_type
    assert head["Content-Length"] == str(len(data))


def test_multipart_upload_is_accepted(api, line, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("plan.png", PNG, content_type="image/png")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(URL, {"to": CUSTOMER, "body": "plan", "media": [upload]}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["media"][0]["content_type"] == "image/png"


def test_mislabeled_and_oversized_media_are_refused(api, line):
    mislabeled = {"filename": "photo.png", "content_type": "image/png", "content_base64": b64(PDF)}
    response = api.post(URL, {"to": CUSTOMER, "media": [mislabeled]}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "media"
    assert "labelled as a PNG image but its content is a PDF" in response.json()["detail"]
    big = {"filename": "big.pdf", "content_base64": b64(PDF + b"0" * 600_000)}
    response = api.post(URL, {"to": CUSTOMER, "media": [big]}, format="json")
    assert response.status_code == 400 and "at most 500 KB" in response.json()["detail"]
    assert Message.objects.count() == 0


def test_forged_and_expired_media_tokens_are_404(
    api, client, line, settings, django_capture_on_commit_callbacks
):
    payload = {"to": CUSTOMER, "media": [{"filename": "a.png", "content_base64": b64(PNG)}]}
    with django_capture_on_commit_callbacks(execute=True):
        message_id = api.post(URL, payload, format="json").json()["id"]
    media = MessageMedia.objects.get(message_id=message_id)
    good = signed_media_url(media).removeprefix(settings.PUBLIC_BASE_URL)
    token = good.split("/")[3]
    other = signing.TimestampSigner(salt="something else").sign(str(media.pk))
    assert client.get(good.replace(token, other)).status_code == 404
    assert client.get(good.replace(token, token[:-2] + "xx")).status_code == 404
    assert client.get(good.replace(token, str(media.pk))).status_code == 404
    settings.QUICKSEND_MEDIA_URL_MAX_AGE = -1  # every token is now older than its lifetime
    assert client.get(good).status_code == 404
    with pytest.raises(Exception):  # noqa: B017, PT011 - Http404
        media_for_token(token)


def test_retrieve_makes_a_constant_number_of_queries(
    api, line, django_assert_num_queries, django_capture_on_commit_callbacks
):
    payload = {"to": CUSTOMER, "media": [{"filename": "a.png", "content_base64": b64(PNG)}] * 3}
    with django_capture_on_commit_callbacks(execute=True):
        message_id = api.post(URL, payload, format="json").json()["id"]
    # the token with its membership (one query), the message, its media (however many items)
    with django_assert_num_queries(3):
        assert len(api.get(f"{URL}/{message_id}").json()["media"]) == 3


def test_the_answer_is_what_drf_builds_and_its_fields_are_built_once(api, line, monkeypatch):
    from rest_framework import serializers

    from messaging.api.sending import MessageMediaSerializer, MessageSerializer

    payload = {"to": CUSTOMER, "body": "Hi", "media": [{"filename": "a.png", "content_base64": b64(PNG)}]}
    answer = api.post(URL, payload, format="json").json()
    message = Message.objects.get(pk=answer["id"])

    class PlainMedia(serializers.ModelSerializer):
        class Meta:
            model = MessageMedia
            fields = MessageMediaSerializer.Meta.fields

    class Plain(serializers.ModelSerializer):  # DRF's own: its fields built per instance
        media = PlainMedia(many=True, read_only=True)

        class Meta:
            model = Message
            fields = MessageSerializer.Meta.fields

    assert MessageSerializer(message).data == Plain(message).data
    assert answer == dict(Plain(message).data) | {"status": answer["status"]}

    built = []
    build = serializers.ModelSerializer.get_fields
    monkeypatch.setattr(
        serializers.ModelSerializer, "get_fields", lambda self: built.append(self) or build(self)
    )
    assert MessageSerializer(message).data == Plain(message).data
    assert [type(s) for s in built] == [Plain, PlainMedia]  # none for the shared ones
