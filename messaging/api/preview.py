"""``POST /api/v1/messages/preview``: what a body costs as SMS, before anyone sends it.

Thin view over ``messaging.segments.analyze`` (the one segment counter). With ``{template, record}`` the
template is first rendered against the record by ``templates_app.rendering.render`` (the one merge-field
renderer), as the sending user.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging.api.serializers import RecordRefField, message_body_field
from messaging.segments import MAX_BODY_CHARACTERS, analyze, apply_gsm_replacements, body_too_long
from quicksend.api import StrictSerializer
from quicksend.bounded_ids import BoundedIdField


class PreviewRequestSerializer(StrictSerializer):
    template = BoundedIdField(required=False, help_text="A template id (instead of body).")
    record = RecordRefField(
        required=False,
        help_text='The record to fill the template\'s merge fields from: {"type": "lead", "id": 12}.',
    )
    body = message_body_field()


class OffendingCharacterSerializer(serializers.Serializer):
    char = serializers.CharField(help_text="A character that forces UCS-2 (70 characters per segment).")
    replacement = serializers.CharField(
        allow_null=True,
        help_text='GSM-7 text to use instead; "" means the character can simply be removed; null: none.',
    )
    count = serializers.IntegerField(help_text="How many times it appears.")


class PreviewSerializer(serializers.Serializer):
    body = serializers.CharField()
    encoding = serializers.ChoiceField(choices=["GSM-7", "UCS-2"])
    segments = serializers.IntegerField(help_text="Segments Twilio will bill for.")
    characters = serializers.IntegerField(
        help_text="Characters used, in encoding units (GSM-7 extension characters and most emoji count 2)."
    )
    characters_left = serializers.IntegerField(help_text="Characters left before another segment starts.")
    segment_limit = serializers.IntegerField(
        help_text="Characters per segment: 160/153 (GSM-7), 70/67 (UCS-2)."
    )
    offending_characters = OffendingCharacterSerializer(many=True)
    body_with_replacements = serializers.CharField(
        help_text="The body with every offending character that has a GSM-7 stand-in replaced."
    )
    missing_fields = serializers.ListField(
        child=serializers.CharField(),
        help_text="Merge fields that rendered empty (unknown, or empty on this record); [] for a plain body.",
    )


def _body_to_preview(request, data: dict) -> tuple[str, tuple[str, ...]]:
    """The body as it would be sent: given as is, or the template rendered against the record."""
    from crm.models import model_for
    from templates_app.rendering import render
    from templates_app.services import access_template
    from tenancy.access import get_in_org

    if "template" not in data:
        if "record" in data:
            raise ValidationError({"record": ["A record is only used with a template."]})
        if "body" not in data:
            raise ValidationError({"body": ["Give a body, or a template (and a record)."]})
        return data["body"], ()
    if "body" in data:
        raise ValidationError({"body": ["Give a body or a template, not both."]})
    # Only a template the member can see (not someone else's personal one, nor a draft for an agent).
    template = access_template(request.org, request.membership, data["template"])
    record = None
    if "record" in data:
        ref = data["record"]  # checked by RecordRefField: a record type and an integer id
        record = get_in_org(model_for(ref["type"]).objects.all(), request.org, ref["id"])
        if template.record_type and template.record_type != record.record_type:
            raise ValidationError(
                {"template": [f"This template is for {template.get_record_type_display().lower()} records."]}
            )
    result = render(template.body, record, sender=request.user, org=request.org)
    if len(result.text) > MAX_BODY_CHARACTERS:
        raise ValidationError({"body": [body_too_long()]})
    return result.text, result.missing_fields


class MessagePreviewView(APIView):
    @extend_schema(
        summary="Preview a message: encoding, segments, characters left, characters forcing UCS-2",
        request=PreviewRequestSerializer,
        responses=PreviewSerializer,
        examples=[
            OpenApiExample("Smart quotes", value={"body": "It’s ready"}, request_only=True),
            OpenApiExample(
                "A template for a lead",
                value={"template": 3, "record": {"type": "lead", "id": 12}},
                request_only=True,
            ),
            OpenApiExample(
                "Smart quotes",
                response_only=True,
                value={
                    "body": "It’s ready",
                    "encoding": "UCS-2",
                    "segments": 1,
                    "characters": 10,
                    "characters_left": 60,
                    "segment_limit": 70,
                    "offending_characters": [{"char": "’", "replacement": "'", "count": 1}],
                    "body_with_replacements": "It's ready",
                    "missing_fields": [],
                },
            ),
        ],
    )
    def post(self, request):
        data = PreviewRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        body, missing = _body_to_preview(request, data.validated_data)
        info = analyze(body)
        return Response(
            PreviewSerializer(
                {
                    "body": info.body,
                    "encoding": info.encoding,
                    "segments": info.segments,
                    "characters": info.characters,
                    "characters_left": info.characters_left,
                    "segment_limit": info.segment_limit,
                    "offending_characters": info.offending_characters,
                    "body_with_replacements": apply_gsm_replacements(info.body),
                    "missing_fields": list(missing),
                }
            ).data
        )
