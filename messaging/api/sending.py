"""REST API of sending: ``POST /api/v1/messages`` (send) and ``GET /api/v1/messages/{id}`` (poll its status).

Thin: parse, scope every id to the organization, call ``do_send_message``, serialize. The list
``GET /api/v1/messages`` ("My Messages") belongs to the inbox; this viewset deliberately defines no list.

Media: JSON with ``media: [{"filename", "content_type", "content_base64"}]``, or ``multipart/form-data`` with
the files in repeated ``media`` parts (then ``record`` is written ``"lead:12"``). Either way the type is
sniffed from the content (docs/messaging.md "Media").
"""

from __future__ import annotations

import base64
import binascii

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from crm.models import model_for
from messaging.api.serializers import RecordRefField, message_body_field
from messaging.inbox.visibility import visible_conversations
from messaging.media.validation import MAX_ITEMS, MAX_TOTAL_BYTES, MediaFile
from messaging.models import Conversation, Message, MessageMedia
from messaging.services.resending import do_retry_message, retry_key
from messaging.services.sending import do_send_message
from quicksend.api import FieldsBuiltOnceMixin, StrictSerializer
from quicksend.bounded_ids import BoundedIdField
from templates_app.services import access_template
from tenancy.access import get_in_org

_MAX_BASE64 = (MAX_TOTAL_BYTES * 4) // 3 + 16


class MediaUploadSerializer(StrictSerializer):
    filename = serializers.CharField(
        max_length=200, help_text="Shown to people; the type is not taken from it."
    )
    content_type = serializers.CharField(
        required=False, allow_blank=True, help_text="What you say it is; checked against the content."
    )
    content_base64 = serializers.CharField(max_length=_MAX_BASE64, help_text="The file, base64-encoded.")


class SendRequestSerializer(StrictSerializer):
    to = serializers.CharField(
        required=False,
        max_length=40,
        help_text="A phone number (E.164, or national: the contact type's country).",
    )
    record = RecordRefField(required=False, help_text='A CRM record: {"type": "lead", "id": 12}.')
    conversation = BoundedIdField(required=False, help_text="A conversation id: reply in it.")
    body = message_body_field()
    template = BoundedIdField(
        required=False,
        help_text="A template id (instead of body): rendered here for the record (or the conversation's, or "
        "the number's), as you.",
    )
    media = MediaUploadSerializer(many=True, required=False, max_length=MAX_ITEMS)

    def get_fields(self):
        fields = super().get_fields()
        # "from" is a Python keyword, so it is added here rather than declared.
        fields["from"] = serializers.CharField(
            required=False,
            max_length=40,
            help_text="The sender: our number id, its SID (PN…) or the number. Default: your default number, "
            "then the organization's.",
        )
        return fields


class MessageMediaSerializer(FieldsBuiltOnceMixin, serializers.ModelSerializer):
    class Meta:
        model = MessageMedia
        fields = ["id", "filename", "content_type", "size"]


class MessageSerializer(FieldsBuiltOnceMixin, serializers.ModelSerializer):
    media = MessageMediaSerializer(many=True, read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "conversation",
            "direction",
            "source",
            "status",
            "sid",
            "to_number",
            "from_number",
            "body",
            "num_segments",
            "encoding",
            "num_media",
            "media",
            "error_code",
            "error_message",
            "sender",
            "template",
            "created_at",
            "sent_at",
            "delivered_at",
            "failed_at",
        ]
        read_only_fields = fields


class SendRefusedSerializer(serializers.Serializer):
    """A refusal: ``detail`` and ``field``; malformed input answers ``{"<field>": [reasons]}``."""

    detail = serializers.CharField(required=False, help_text="Why, in plain words.")
    field = serializers.CharField(required=False, help_text="The input at fault ('' when none).")


_EXAMPLE_MESSAGE = {
    "id": 42,
    "conversation": 7,
    "direction": "outbound",
    "source": "api",
    "status": "pending",
    "sid": None,
    "to_number": "+14155550123",
    "from_number": "+14155550100",
    "body": "Your appointment is tomorrow at 10.",
    "num_segments": 1,
    "encoding": "GSM-7",
    "num_media": 0,
    "media": [],
    "error_code": None,
    "error_message": "",
    "sender": 3,
    "template": None,
    "created_at": "2026-01-05T10:00:00Z",
    "sent_at": None,
    "delivered_at": None,
    "failed_at": None,
}


def _media_from_request(request, data) -> tuple[dict, list[MediaFile]]:
    """Split uploaded files (multipart) or base64 items (JSON) off the payload."""
    if hasattr(data, "getlist"):  # a form: files come as repeated "media" parts
        files = request.FILES.getlist("media")
        plain = {k: data.get(k) for k in data.keys() if k != "media"}
        return plain, [MediaFile(f.name, f.read(), f.content_type) for f in files]
    return data, []


@extend_schema_view(
    retrieve=extend_schema(
        summary="Get a message (poll its delivery status)",
        responses={200: MessageSerializer},
        examples=[OpenApiExample("A queued message", value={**_EXAMPLE_MESSAGE, "status": "queued"})],
    ),
)
class SendMessageViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Send messages and poll them. (The list of messages is the inbox's.)"""

    queryset = Message.objects.none()
    serializer_class = MessageSerializer
    lookup_value_regex = r"\d+"
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        return Message.objects.filter(organization=self.request.org).prefetch_related("media")

    @extend_schema(
        summary="Send a message (SMS or MMS)",
        description=(
            "Exactly one of `to`, `record` or `conversation`. The message is stored as `pending` and sent "
            "right after; poll `GET /api/v1/messages/{id}` (or listen to status events) for its status. "
            "Media: JSON `media: [{filename, content_type, content_base64}]` or multipart `media` files "
            "(≤ 10 items, ≤ 5 MB in total; the type is sniffed from the content). `Idempotency-Key` header: "
            "the same key within 24 h returns the first message (200, `Idempotent-Replayed: true`) instead "
            "of sending again. `template` instead of `body`: the template (one you can see, published) is "
            "rendered on the server for the record, the conversation's record or the number's record, and "
            "the message keeps its id in `template`. Refusals (opted out, do-not-contact, no usable sender, "
            "empty or too long body, a draft template, bad media, …) are 400 with the reason in plain words."
        ),
        request={"application/json": SendRequestSerializer, "multipart/form-data": SendRequestSerializer},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                required=False,
                description="Any string up to 100 characters; a retry with the same key never sends twice.",
            )
        ],
        responses={201: MessageSerializer, 200: MessageSerializer, 400: SendRefusedSerializer},
        examples=[
            OpenApiExample(
                "To a number",
                request_only=True,
                value={"to": "+14155550123", "body": "Your appointment is tomorrow at 10."},
            ),
            OpenApiExample(
                "To a lead, from a chosen number, with a picture",
                request_only=True,
                value={
                    "record": {"type": "lead", "id": 12},
                    "from": "+14155550100",
                    "body": "Here is the floor plan.",
                    "media": [
                        {"filename": "plan.png", "content_type": "image/png", "content_base64": "iVBO…"}
                    ],
                },
            ),
            OpenApiExample(
                "A template for a lead",
                request_only=True,
                value={"record": {"type": "lead", "id": 12}, "template": 3},
            ),
            OpenApiExample("Queued", response_only=True, status_codes=["201"], value=_EXAMPLE_MESSAGE),
            OpenApiExample(
                "Opted out",
                response_only=True,
                status_codes=["400"],
                value={
                    "detail": "This number has opted out (replied STOP) and cannot be texted until it "
                    "replies START.",
                    "field": "to",
                },
            ),
        ],
    )
    def create(self, request):
        raw, files = _media_from_request(request, request.data)
        payload = SendRequestSerializer(data=raw)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        org = request.org
        for item in data.get("media", []):
            try:
                content = base64.b64decode(item["content_base64"], validate=True)
            except (binascii.Error, ValueError):
                raise ValidationError({"media": [f"{item['filename']} is not valid base64."]})
            files.append(MediaFile(item["filename"], content, item.get("content_type") or None))
        record = conversation = None
        if "record" in data:
            ref = data["record"]
            record = get_in_org(model_for(ref["type"]).objects.all(), org, ref["id"])
        if "conversation" in data:
            conversation = get_in_org(
                Conversation.objects.select_related("phone_number"), org, data["conversation"]
            )
        template = None
        if "template" in data:
            template = access_template(org, request.membership, data["template"])
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > 100:
            raise ValidationError({"Idempotency-Key": ["At most 100 characters."]})
        message = do_send_message(
            org,
            actor=request.user,
            membership=request.membership,
            source=Message.Source.API,
            to=data.get("to"),
            record=record,
            conversation=conversation,
            from_number=data.get("from"),
            body=data.get("body", ""),
            media=files,
            idempotency_key=key,
            template=template,
            file_in_worker=True,  # the answer tells the sender; other agents hear of it from a worker
        )
        replayed = getattr(message, "replayed", False)
        response = Response(
            MessageSerializer(message).data,
            status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED,
        )
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class RetryRequestSerializer(StrictSerializer):
    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.CharField(
            required=False,
            max_length=40,
            help_text="The sender: our number id, its SID (PN…) or the number. Default: the conversation's.",
        )
        return fields


class RetryMessageView(GenericAPIView):
    """``POST /api/v1/messages/{id}/retry``: send a failed text again, with its attachments."""

    serializer_class = RetryRequestSerializer

    @extend_schema(
        summary="Send a failed message again (with its attachments)",
        description=(
            "The text and every attachment of a failed or undelivered outbound message, sent again as you "
            "through the same checks as a new message (opt-out, blocked, do-not-contact, …). Idempotent: a "
            "second retry of the same message returns the first (200, `Idempotent-Replayed: true`). A "
            "message of a conversation you may not see is a 404."
        ),
        request=RetryRequestSerializer,
        responses={201: MessageSerializer, 200: MessageSerializer, 400: SendRefusedSerializer},
    )
    def post(self, request, pk: int):
        payload = RetryRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        visible = visible_conversations(request.membership).values("pk")
        failed = get_in_org(
            Message.objects.filter(conversation__in=visible).select_related(
                "conversation__organization", "conversation__phone_number"
            ),
            request.org,
            pk,
        )
        first = Message.objects.filter(organization=request.org, idempotency_key=retry_key(failed)).exists()
        message = do_retry_message(
            failed,
            actor=request.user,
            membership=request.membership,
            from_number=payload.validated_data.get("from"),
        )
        response = Response(
            MessageSerializer(message).data, status=status.HTTP_200_OK if first else status.HTTP_201_CREATED
        )
        if first:
            response["Idempotent-Replayed"] = "true"
        return response
