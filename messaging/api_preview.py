"""``POST /api/v1/messages/preview``: what a body costs as SMS, before anyone sends it.

Thin view over ``messaging.segments.analyze`` (the one segment counter). Rendering a template against a
record (``{template, record}``) comes with the templates work.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging.segments import analyze, apply_gsm_replacements
from quicksend.api import StrictSerializer

# Twilio refuses longer bodies (error 21617).
MAX_BODY_CHARACTERS = 1600


class PreviewRequestSerializer(StrictSerializer):
    body = serializers.CharField(
        allow_blank=True,
        trim_whitespace=False,
        max_length=MAX_BODY_CHARACTERS,
        error_messages={"max_length": "A message can be at most 1,600 characters."},
    )


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


class MessagePreviewView(APIView):
    @extend_schema(
        summary="Preview a message: encoding, segments, characters left, characters forcing UCS-2",
        request=PreviewRequestSerializer,
        responses=PreviewSerializer,
        examples=[
            OpenApiExample("Smart quotes", value={"body": "It’s ready"}, request_only=True),
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
                },
            ),
        ],
    )
    def post(self, request):
        data = PreviewRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        info = analyze(data.validated_data["body"])
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
                }
            ).data
        )
