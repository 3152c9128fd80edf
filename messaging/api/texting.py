"""REST API behind the texting widget (the record page's thread and composer, also mounted by the inbox).

- ``GET /api/v1/texting?record_type=lead&record_id=12`` (or ``?conversation=7``): everything the composer
  needs before the first keystroke, in one request: who the texts go to, whether they may be texted (and if
  not, why and what to do), the numbers this member may send from with the one to preselect, the
  conversations with this person the member may see, the attachment limits and the member's composer
  preferences.
- ``GET/PUT /api/v1/me/composer-settings``: the member's own composer preferences (Enter sends or not).
- ``GET /api/v1/media/{id}``: a message's attachment for a signed-in member who may see its conversation.

The messages themselves come from the inbox API (``/conversations/{id}/messages``) and the live events: one
message shape for both.
"""

from __future__ import annotations

from django.db.models import F, FilteredRelation, Q
from django.db.models.functions import Coalesce
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.access import access_record
from crm.models import RecordType, RecordTypeConfig, model_for
from crm.phones import format_for_display
from crm.texting import texting
from messaging.access import default_sender_for, numbers_usable_by
from messaging.inbox.api.messages import newest_page
from messaging.inbox.api.serializers import CONVERSATION_ROW_FIELDS, _id, conversation_items
from messaging.inbox.visibility import visible_conversations
from messaging.media import validation as media_rules
from messaging.models import ConsentState, MemberMessagingSettings, MessageMedia
from messaging.services.consent import REFUSALS
from messaging.services.numbers import do_set_composer_settings
from messaging.services.sending import current_thread_number
from quicksend.api import StrictSerializer
from quicksend.bounded_ids import ID_SCHEMA

CONVERSATIONS_SHOWN = 20

# What the agent can do about each refusal, in plain words (the reason itself comes from the rule's owner).
NEXT_STEPS = {
    "opted_out": "Only they can turn texts back on, by replying START; an admin can record consent they gave "
    "another way.",
    "do_not_contact": "An admin can lift the do-not-contact mark if they agree to be texted.",
    "blocked": "An admin can unblock this number.",
    "record_do_not_contact": "Edit the record and clear “Do not contact” once they agree to be texted.",
    "compliance": "Edit the record and turn the field on once they agree to be texted.",
    "no_number": "Edit the record and add a mobile number.",
    "no_sender_admin": "Connect a Twilio account and its numbers in Settings → Twilio.",
    "no_sender": "Ask an admin to assign you a number to send from.",
}


def _refusal(code: str, reason: str) -> dict:
    return {"code": code, "reason": reason, "next_step": NEXT_STEPS[code]}


def _record_refusal(answer, record) -> dict | None:
    """The CRM's answer (``crm.texting``) as a refusal with its code and what to do."""
    if answer.allowed:
        return None
    if getattr(record, "do_not_contact", False):
        return _refusal("record_do_not_contact", answer.reason)
    if not answer.number:
        return _refusal("no_number", answer.reason)
    return _refusal("compliance", answer.reason)


def _consent(org, e164: str) -> tuple[dict, dict | None]:
    state = ConsentState.objects.filter(organization=org, phone_number=e164).first() if e164 else None
    flags = {f: bool(state and getattr(state, f)) for f in ("opted_out", "blocked", "do_not_contact")}
    for flag in ("opted_out", "do_not_contact", "blocked"):
        if flags[flag]:
            return flags, _refusal(flag, REFUSALS[flag])
    return flags, None


def _number_item(number) -> dict:
    return {
        "id": number.pk,
        "phone_number": number.phone_number,
        "label": number.label,
        "display_name": number.display_name,
        "mms_capable": number.mms_capable,
    }


def media_limits() -> dict:
    """The attachment rules of ``messaging.media`` for the composer to check before uploading."""
    return {
        "max_items": media_rules.MAX_ITEMS,
        "max_total_bytes": media_rules.MAX_TOTAL_BYTES,
        "max_image_bytes": media_rules.MAX_FULLY_SUPPORTED_BYTES,
        "max_other_bytes": media_rules.MAX_OTHER_BYTES,
        "full_size_types": sorted(media_rules.FULLY_SUPPORTED),
        "accepted_types": sorted(media_rules.ACCEPTED - media_rules.UNVERIFIABLE),
    }


def enter_sends(membership) -> bool:
    own = MemberMessagingSettings.objects.filter(membership=membership).values("enter_sends").first()
    return own["enter_sends"] if own else True


def texting_context(request, *, record=None, conversation_id: int | None = None, messages: int = 0) -> dict:
    """The widget's context for a record, or for one conversation (the inbox's pane). With ``messages``, the
    newest that many messages of the conversation to show first ride along (one request less before the
    thread can be drawn)."""
    org, membership = request.org, request.membership
    visible = visible_conversations(membership)
    refusal = None
    if conversation_id is not None:
        found = (
            visible.filter(pk=conversation_id).values("customer_number", "record_type", "record_id").first()
        )
        if found is None:
            raise Http404("Not found.")
        e164 = found["customer_number"]
        if found["record_type"] in RecordType.values and found["record_id"]:
            record = (
                model_for(found["record_type"])
                .objects.filter(organization=org, pk=found["record_id"])
                .first()
            )
        match = Q(pk=conversation_id) | Q(customer_number=e164)
    else:
        e164 = ""
        match = Q(record_type=record.record_type, record_id=record.pk)
    if record is not None:
        answer = texting(record, RecordTypeConfig.for_type(org.pk, record.record_type))
        refusal = _record_refusal(answer, record)
        if conversation_id is None:
            e164 = answer.number
            if e164:
                match |= Q(customer_number=e164)
    consent, consent_refusal = _consent(org, e164)
    refusal = consent_refusal or refusal
    numbers = list(numbers_usable_by(membership).select_related("account").order_by("label", "phone_number"))
    if not numbers and refusal is None:
        code = "no_sender_admin" if membership.is_admin else "no_sender"
        refusal = _refusal(code, "You have no number to send texts from.")
    rows = list(
        visible.filter(match)
        .annotate(mine=FilteredRelation("user_states", condition=Q(user_states__user=request.user)))
        .annotate(
            my_unread=Coalesce(F("mine__unread_count"), 0), my_dismissed=Coalesce(F("mine__dismissed"), False)
        )
        .order_by("-is_current", F("last_message_at").desc(nulls_last=True), "-pk")
        .values(*CONVERSATION_ROW_FIELDS)[:CONVERSATIONS_SHOWN]
    )
    names = {(record.record_type, record.pk): str(record)} if record is not None else {}
    conversations = conversation_items(rows, names)
    shown = conversation_id
    if shown is None and conversations:
        shown = conversations[0]["id"]
    default = default_sender_for(membership)
    reply = current_thread_number(org, membership, e164) if e164 else None
    return {
        "record": (
            {
                "type": record.record_type,
                "id": record.pk,
                "name": str(record),
                "url": record.get_absolute_url(),
            }
            if record is not None
            else None
        ),
        "customer_number": e164,
        "customer_number_display": format_for_display(e164) if e164 else "",
        "consent": consent,
        "can_text": refusal is None,
        "refusal": refusal,
        "numbers": [_number_item(n) for n in numbers],
        "default_number_id": default.pk if default is not None else None,
        "reply_number_id": reply.pk if reply is not None else None,
        "conversations": conversations,
        "conversation_id": shown,
        "messages": newest_page(shown, messages) if messages and shown is not None else None,
        "limits": media_limits(),
        "preferences": {"enter_sends": enter_sends(membership)},
        "time_zone": org.time_zone,  # times are shown in it, wherever the widget is mounted
    }


_REFUSAL = inline_serializer(
    "TextingRefusal",
    {
        "code": serializers.CharField(),
        "reason": serializers.CharField(),
        "next_step": serializers.CharField(),
    },
    allow_null=True,
)


class TextingContextView(APIView):
    @extend_schema(
        summary="What the texting widget needs for a record or a conversation",
        description=(
            "Give `record_type` and `record_id`, or `conversation`. `refusal` says why the composer is "
            "disabled (codes: opted_out, do_not_contact, blocked, record_do_not_contact, compliance, "
            "no_number, no_sender, no_sender_admin) and what to do; `conversation_id` is the conversation to "
            "show first (the current one, most recently active); `reply_number_id` the number a reply goes "
            "from (the person's most recent thread on a number you may use), `default_number_id` the sender "
            "of a first text."
        ),
        parameters=[
            OpenApiParameter("record_type", OpenApiTypes.STR, enum=list(RecordType.values)),
            OpenApiParameter("record_id", ID_SCHEMA),
            OpenApiParameter("conversation", ID_SCHEMA),
            OpenApiParameter(
                "messages",
                {"type": "integer", "minimum": 0, "maximum": 200},
                description="Also return the newest N (≤ 200) messages of `conversation_id`, as the first "
                "page of GET /conversations/{id}/messages.",
            ),
        ],
        responses=inline_serializer(
            "TextingContext",
            {
                "record": serializers.DictField(allow_null=True),
                "customer_number": serializers.CharField(),
                "customer_number_display": serializers.CharField(),
                "consent": serializers.DictField(child=serializers.BooleanField()),
                "can_text": serializers.BooleanField(),
                "refusal": _REFUSAL,
                "numbers": serializers.ListField(child=serializers.DictField()),
                "default_number_id": serializers.IntegerField(allow_null=True),
                "reply_number_id": serializers.IntegerField(allow_null=True),
                "conversations": serializers.ListField(child=serializers.DictField()),
                "conversation_id": serializers.IntegerField(allow_null=True),
                "messages": serializers.DictField(allow_null=True),
                "limits": serializers.DictField(),
                "preferences": serializers.DictField(),
                "time_zone": serializers.CharField(
                    help_text="The organization's time zone (IANA name): times are shown in it."
                ),
            },
        ),
    )
    def get(self, request):
        params = request.query_params
        messages = 0
        if params.get("messages"):
            raw = params["messages"]
            if not (raw.isascii() and raw.isdigit() and 0 <= int(raw) <= 200):
                raise ValidationError({"messages": "A whole number from 0 to 200."})
            messages = int(raw)
        if params.get("conversation"):
            conversation_id = _id(params["conversation"], "conversation")
            return Response(texting_context(request, conversation_id=conversation_id, messages=messages))
        record_type = params.get("record_type", "")
        if record_type not in RecordType.values:
            raise ValidationError({"record_type": f"One of {', '.join(RecordType.values)}."})
        record = access_record(request.org, record_type, _id(params.get("record_id"), "record_id"))
        return Response(texting_context(request, record=record, messages=messages))


class ComposerSettingsSerializer(StrictSerializer):
    enter_sends = serializers.BooleanField(
        help_text="True: Enter sends and Shift+Enter starts a new line. False: Enter starts a new line and "
        "Ctrl+Enter (⌘+Enter) sends."
    )


class ComposerSettingsView(APIView):
    @extend_schema(summary="Your composer preferences", responses=ComposerSettingsSerializer)
    def get(self, request):
        return Response({"enter_sends": enter_sends(request.membership)})

    @extend_schema(
        summary="Change your composer preferences",
        request=ComposerSettingsSerializer,
        responses=ComposerSettingsSerializer,
    )
    def put(self, request):
        serializer = ComposerSettingsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        do_set_composer_settings(request.membership, request.user, **serializer.validated_data)
        return Response({"enter_sends": enter_sends(request.membership)})


_INLINE_KINDS = ("image/", "video/", "audio/")


class MessageMediaView(APIView):
    isolation_model = MessageMedia

    @extend_schema(
        summary="An attachment of a message in a conversation you may see",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    def get(self, request, pk: int):
        media = (
            MessageMedia.objects.filter(
                organization=request.org,
                pk=pk,
                message__conversation__in=visible_conversations(request.membership).values("pk"),
            )
            .exclude(file="")
            .first()
        )
        if media is None:
            raise Http404("Not found.")
        try:
            handle = media.file.open("rb")
        except FileNotFoundError:
            raise Http404("Not found.")
        inline = media.content_type.startswith(_INLINE_KINDS)
        response = FileResponse(
            handle,
            content_type=media.content_type,
            as_attachment=not inline,
            filename=media.filename or f"attachment-{media.pk}",
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, max-age=3600"
        # A stored file is shown as itself, never run as a page of ours.
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response
