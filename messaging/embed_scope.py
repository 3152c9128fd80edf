"""What an embed session may reach of messaging: its one record's texts, nothing else.

Registered in ``MessagingConfig.ready`` into ``tenancy.embed_auth.ROUTE_CHECKS`` (the API routes the record
widget calls; every other route is 404 to an embed session) and into the embed WebSocket's checks
(``quicksend.consumers``). Each check runs before the view, on top of the view's own organization and
visibility checks: an embed session is still its member, with that member's visibility.

A conversation is the record's when it is attached to the record, or is with the record's number.
"""

from __future__ import annotations

from django.db.models import Q

from crm.phones import InvalidPhoneNumber
from crm.texting import organization_phone
from messaging.models import Conversation, Message, MessageMedia
from tenancy.embed import EmbedScope
from tenancy.embed_auth import ROUTE_CHECKS


def record_conversations_q(scope: EmbedScope) -> Q:
    match = Q(pk__in=[])
    if scope.record_id is not None and scope.record_type:
        match |= Q(record_type=scope.record_type, record_id=scope.record_id)
    if scope.phone:
        match |= Q(customer_number=scope.phone)
    return match


def conversation_in_scope(scope: EmbedScope, conversation_id) -> bool:
    try:
        pk = int(conversation_id)
    except (TypeError, ValueError):
        return False
    return (
        Conversation.objects.filter(organization_id=scope.org_id, pk=pk)
        .filter(record_conversations_q(scope))
        .exists()
    )


def _is_record(scope: EmbedScope, record_type, record_id) -> bool:
    return (
        scope.record_id is not None
        and str(record_type) == scope.record_type
        and str(record_id) == str(scope.record_id)
    )


def _texting_context(request, scope, kwargs) -> bool:
    params = request.query_params
    if params.get("conversation"):
        return conversation_in_scope(scope, params["conversation"])
    return _is_record(scope, params.get("record_type"), params.get("record_id"))


def _conversation_read(request, scope, kwargs) -> bool:
    return request.method == "GET" and conversation_in_scope(scope, kwargs.get("pk"))


def _record_ref(value) -> tuple[str, str] | None:
    if isinstance(value, dict):
        return str(value.get("type")), str(value.get("id"))
    if isinstance(value, str) and ":" in value:  # multipart: "lead:12"
        kind, _, pk = value.partition(":")
        return kind, pk
    return None


def _number_is_scope(scope: EmbedScope, raw) -> bool:
    if not scope.phone or not isinstance(raw, str):
        return False
    try:
        return organization_phone(scope.org_id, raw) == scope.phone
    except InvalidPhoneNumber:
        return False


def _send(request, scope, kwargs) -> bool:
    if request.method != "POST":
        return False  # "My messages" lists the member's whole history
    data = request.data
    targets = [key for key in ("to", "record", "conversation") if key in data]
    if len(targets) != 1:
        return True  # the view refuses it with its own words; nothing is reached
    if "record" in data:
        ref = _record_ref(data["record"])
        return ref is not None and _is_record(scope, *ref)
    if "conversation" in data:
        return conversation_in_scope(scope, data["conversation"])
    return _number_is_scope(scope, data["to"])


def _preview(request, scope, kwargs) -> bool:
    if request.method != "POST":
        return False
    data = request.data
    if data.get("record") is not None:
        ref = _record_ref(data["record"])
        return ref is not None and _is_record(scope, *ref)
    if data.get("conversation") is not None:
        return conversation_in_scope(scope, data["conversation"])
    return True


def _message(request, scope, kwargs) -> bool:
    return (
        request.method == "GET"
        and Message.objects.filter(
            organization_id=scope.org_id,
            pk=kwargs.get("pk"),
            conversation__in=Conversation.objects.filter(record_conversations_q(scope)),
        ).exists()
    )


def _media(request, scope, kwargs) -> bool:
    return (
        request.method == "GET"
        and MessageMedia.objects.filter(
            organization_id=scope.org_id,
            pk=kwargs.get("pk"),
            message__conversation__in=Conversation.objects.filter(record_conversations_q(scope)),
        ).exists()
    )


def _consent(request, scope, kwargs) -> bool:
    if request.method == "GET":
        return _number_is_scope(scope, request.query_params.get("phone_number"))
    return request.method == "POST" and _number_is_scope(scope, request.data.get("phone_number"))


def _always(request, scope, kwargs) -> bool:
    return True


def _read_only(request, scope, kwargs) -> bool:
    return request.method == "GET"


def subscription_check(user, org_id, object_id, scope: EmbedScope) -> bool:
    """The embed socket's ``conv`` subscriptions: the record's conversations only (on top of the member's
    own visibility check, ``messaging.inbox.visibility.subscription_check``)."""
    from messaging.inbox.visibility import subscription_check as visible

    return conversation_in_scope(scope, object_id) and visible(user, org_id, object_id)


def event_allowed(event: dict, scope: EmbedScope, subscribed: set[int]) -> bool:
    """Whether an event sent to the member's own group concerns the record (no database: the payload says)."""
    kind = event.get("type")
    if kind == "conversation.updated":
        conversation = event.get("conversation") or {}
        if conversation.get("id") in subscribed:
            return True
        return (bool(scope.phone) and conversation.get("customer_number") == scope.phone) or (
            scope.record_id is not None
            and conversation.get("record_type") == scope.record_type
            and conversation.get("record_id") == scope.record_id
        )
    if kind == "consent.changed":
        return bool(scope.phone) and event.get("phone_number") == scope.phone
    if kind in ("message.created", "message.status"):
        return event.get("conversation_id") in subscribed
    return False


def register() -> None:
    ROUTE_CHECKS.update(
        {
            "texting-context": _texting_context,
            "conversation-messages": _conversation_read,
            "conversation-sessions": _conversation_read,
            "my-messages": _send,
            "messages-preview": _preview,
            "message-detail": _message,
            "message-media": _media,
            "consent": _consent,
            "composer-settings": _always,
            "template-list": _read_only,
        }
    )
