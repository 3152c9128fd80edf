"""``GET/POST /api/v1/consent``: read and change the consent of one customer number in the organization.

Thin view over ``messaging.services.consent`` (``do_change_consent`` is the one way to change consent; every
change lands in the ledger). Who may do what (docs/messaging.md "Consent"):

- any member (admin or agent) reads the state and ledger of a number, and may restrict texting it:
  ``opt_out`` (a customer asked by phone or e-mail), ``block``, ``do_not_contact``;
- only admins lift a restriction: ``opt_in``, ``unblock``, ``allow_contact`` (re-subscribing someone is a
  compliance decision; Twilio still refuses sends with 21610 until the person texts START itself).

The method recorded is ``api`` for API-token requests and ``agent`` for signed-in users.
"""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.texting import try_organization_phone
from messaging.models import ConsentEvent, ConsentState
from messaging.services.consent import REFUSALS, do_change_consent
from quicksend.api import StrictSerializer

Action = ConsentEvent.Action
MEMBER_ACTIONS = (Action.OPT_OUT, Action.BLOCK, Action.DO_NOT_CONTACT)
ADMIN_ACTIONS = (Action.OPT_IN, Action.UNBLOCK, Action.ALLOW_CONTACT)
LEDGER_LIMIT = 100


class ConsentChangeSerializer(StrictSerializer):
    phone_number = serializers.CharField(max_length=40, help_text="Any format; normalized to E.164.")
    action = serializers.ChoiceField(choices=[(a.value, a.label) for a in (*MEMBER_ACTIONS, *ADMIN_ACTIONS)])
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class ConsentEventSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = ConsentEvent
        fields = ["id", "action", "method", "keyword", "actor", "message", "note", "created_at"]

    def get_actor(self, event) -> str | None:
        return event.actor.get_username() if event.actor_id else None


class ConsentStateSerializer(serializers.Serializer):
    phone_number = serializers.CharField(help_text="E.164.")
    opted_out = serializers.BooleanField()
    blocked = serializers.BooleanField(help_text="Texts are still stored but raise no notifications.")
    do_not_contact = serializers.BooleanField()
    can_text = serializers.BooleanField()
    refusal = serializers.CharField(allow_null=True, help_text="Why it cannot be texted, in plain words.")
    events = ConsentEventSerializer(
        many=True, help_text=f"The ledger, newest first (at most {LEDGER_LIMIT})."
    )


def _normalize(org, raw: str) -> str:
    e164 = try_organization_phone(org.pk, raw or "")
    if e164 is None:
        raise ValidationError({"phone_number": ["This is not a valid phone number."]})
    return e164


def _state(org, e164: str) -> dict:
    state = ConsentState.objects.filter(organization=org, phone_number=e164).first()
    flags = {f: bool(state and getattr(state, f)) for f in ("opted_out", "blocked", "do_not_contact")}
    refusal = next((REFUSALS[f] for f in ("opted_out", "do_not_contact", "blocked") if flags[f]), None)
    events = (
        ConsentEvent.objects.filter(Q(organization=org), phone_number=e164)
        .select_related("actor")
        .order_by("-id")[:LEDGER_LIMIT]
    )
    return {"phone_number": e164, **flags, "can_text": refusal is None, "refusal": refusal, "events": events}


EXAMPLE_STATE = {
    "phone_number": "+14155550123",
    "opted_out": True,
    "blocked": False,
    "do_not_contact": False,
    "can_text": False,
    "refusal": REFUSALS["opted_out"],
    "events": [
        {
            "id": 7,
            "action": "opt_out",
            "method": "keyword",
            "keyword": "STOP",
            "actor": None,
            "message": 1042,
            "note": "",
            "created_at": "2026-11-22T09:00:00Z",
        }
    ],
}


class ConsentView(APIView):
    """The consent of one number: opted out, blocked, do-not-contact, and the ledger of every change."""

    @extend_schema(
        summary="Read the consent of a number",
        parameters=[
            OpenApiParameter(
                "phone_number", str, required=True, description="Any format; normalized to E.164."
            )
        ],
        responses={200: ConsentStateSerializer},
        examples=[OpenApiExample("Opted out by keyword", value=EXAMPLE_STATE, response_only=True)],
    )
    def get(self, request):
        e164 = _normalize(request.org, request.query_params.get("phone_number", ""))
        return Response(ConsentStateSerializer(_state(request.org, e164)).data)

    @extend_schema(
        summary="Change the consent of a number",
        description=(
            "Members (agents too) may `opt_out`, `block` and `do_not_contact`; only admins may `opt_in`, "
            "`unblock` and `allow_contact`. Recorded in the ledger with method `api` (API token) or `agent` "
            "(signed-in user)."
        ),
        request=ConsentChangeSerializer,
        responses={201: ConsentStateSerializer},
        examples=[
            OpenApiExample(
                "Mark do-not-contact",
                value={
                    "phone_number": "(415) 555-0123",
                    "action": "do_not_contact",
                    "note": "Asked by phone",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request):
        serializer = ConsentChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        e164 = _normalize(request.org, data["phone_number"])
        if data["action"] in ADMIN_ACTIONS and not request.membership.is_admin:
            raise PermissionDenied("Only admins can lift an opt-out, a block or a do-not-contact mark.")
        method = ConsentEvent.Method.API if request.auth is not None else ConsentEvent.Method.AGENT
        do_change_consent(request.org, e164, data["action"], method, actor=request.user, note=data["note"])
        return Response(
            ConsentStateSerializer(_state(request.org, e164)).data, status=status.HTTP_201_CREATED
        )
