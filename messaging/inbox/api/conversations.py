"""REST API of the inbox's conversations: the list (filters, search, keyset cursor), detail and actions; the
thread (messages, sessions) comes from messaging/inbox/api/messages.py. Thin views: parse, resolve through
the visibility filter (the same 404 for missing, foreign and not visible), call messaging/inbox/actions.py,
serialize."""

from __future__ import annotations

from django.db.models import F, FilteredRelation, Q, QuerySet
from django.db.models.functions import Coalesce
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from messaging.inbox import actions as inbox_services
from messaging.inbox.api.messages import ConversationThreadMixin
from messaging.inbox.api.serializers import (
    CONVERSATION_ROW_FIELDS,
    AssignSerializer,
    BulkReassignSerializer,
    ConversationSerializer,
    CreateRecordSerializer,
    ReassignSerializer,
    RecordOwnerChangeSerializer,
    _bool,
    _conversation_schema,
    _id,
    _path_id,
    _valid,
    conversation_items,
)
from messaging.inbox.api.settings import queue_sync
from messaging.inbox.search import search_q
from messaging.inbox.visibility import visible_conversations
from messaging.models import FAILED_STATUSES, Conversation, Message
from quicksend.api import refuse_null_characters
from quicksend.bounded_ids import ID_SCHEMA
from quicksend.openapi import PageObjectSchema
from quicksend.pagination import PAGE_SIZE_SCHEMA, Keyset, page_size


def _record_names(rows: list[dict]) -> dict:
    """(type, id) → display name for conversation rows (``CONVERSATION_ROW_FIELDS``): one query per record
    type on the page (at most five), none when no conversation on it has a record."""
    from crm.models import RecordType, model_for

    if not rows:
        return {}
    types = frozenset(RecordType.values)
    wanted: dict[str, set[int]] = {}
    for row in rows:
        for rt, rid in ((row["record_type"], row["record_id"]), (row["regarding_type"], row["regarding_id"])):
            if rid and rt in types:
                wanted.setdefault(rt, set()).add(rid)
    names = {}
    for rt, ids in wanted.items():
        for record in model_for(rt).objects.filter(pk__in=ids, organization_id=rows[0]["organization_id"]):
            names[(rt, record.pk)] = str(record)
    return names


def _items(rows: list[dict]) -> list[dict]:
    return conversation_items(rows, _record_names(rows))


CONVERSATION_FILTERS = [
    OpenApiParameter("number", ID_SCHEMA, description="Our number's id."),
    OpenApiParameter(
        "status", OpenApiTypes.STR, enum=["open", "archived", "all"], description="Default: open."
    ),
    OpenApiParameter("owner", OpenApiTypes.STR, description="A user id, `me` or `none`."),
    OpenApiParameter("team", ID_SCHEMA, description="A team id."),
    OpenApiParameter("mine", OpenApiTypes.BOOL, description="Owned by me or one of my teams."),
    OpenApiParameter("unread", OpenApiTypes.BOOL, description="Only conversations I have unread texts in."),
    OpenApiParameter("dismissed", OpenApiTypes.BOOL, description="Include the ones I dismissed."),
    OpenApiParameter(
        "awaiting", OpenApiTypes.BOOL, description="Awaiting a reply: the last text came from the customer."
    ),
    OpenApiParameter(
        "failed", OpenApiTypes.BOOL, description="The last message failed or was not delivered."
    ),
    OpenApiParameter(
        "q", OpenApiTypes.STR, description="Customer number (any format), record name, or message text."
    ),
    OpenApiParameter("cursor", OpenApiTypes.STR),
    OpenApiParameter("page_size", PAGE_SIZE_SCHEMA, description="Default 50."),
]


# The list's order: newest activity first.
BY_ACTIVITY = Keyset("last_message_at")


class ConversationViewSet(ConversationThreadMixin, viewsets.GenericViewSet):
    """Conversations the caller may see (the visibility rules), newest activity first."""

    queryset = Conversation.objects.none()
    serializer_class = ConversationSerializer
    pagination_class = None
    schema = PageObjectSchema()

    def _base(self) -> QuerySet[Conversation]:
        # The caller's own state joins in once (LEFT JOIN on the unique (conversation, user) index).
        return (
            visible_conversations(self.request.membership)
            .annotate(mine=FilteredRelation("user_states", condition=Q(user_states__user=self.request.user)))
            .annotate(
                my_unread=Coalesce(F("mine__unread_count"), 0),
                my_dismissed=Coalesce(F("mine__dismissed"), False),
            )
        )

    def get_object(self) -> Conversation:
        try:
            return self._base().select_related("phone_number", "owner", "team").get(pk=self._pk())
        except Conversation.DoesNotExist:
            raise Http404

    def _filtered(self) -> QuerySet[Conversation]:
        params = self.request.query_params
        membership = self.request.membership
        user = self.request.user
        qs = self._base().filter(last_message_at__isnull=False)
        refuse_null_characters(params)
        status_value = params.get("status", "open")
        if status_value in (Conversation.Status.OPEN, Conversation.Status.ARCHIVED):
            qs = qs.filter(status=status_value)
        elif status_value != "all":
            raise ValidationError({"status": "One of open, archived, all."})
        if params.get("number"):
            qs = qs.filter(phone_number_id=_id(params["number"], "number"))
        owner = params.get("owner")
        if owner == "me":
            qs = qs.filter(owner=user)
        elif owner == "none":
            qs = qs.filter(owner__isnull=True)
        elif owner:
            qs = qs.filter(owner_id=_id(owner, "owner"))
        if params.get("team"):
            qs = qs.filter(team_id=_id(params["team"], "team"))
        if _bool(params.get("mine")):
            qs = qs.filter(Q(owner=user) | Q(team__in=membership.teams.values("pk")))
        if _bool(params.get("unread")):
            qs = qs.filter(mine__unread_count__gt=0)
        if _bool(params.get("awaiting")):
            qs = qs.filter(last_message_direction=Message.Direction.INBOUND)
        if _bool(params.get("failed")):
            qs = qs.filter(last_message_status__in=FAILED_STATUSES)
        if not _bool(params.get("dismissed")):
            qs = qs.filter(my_dismissed=False)
        text = (params.get("q") or "").strip()
        if text:
            qs = qs.filter(search_q(self.request.org.pk, text))
        return qs

    @extend_schema(
        operation_id="v1_conversations_list",
        summary="List conversations (newest activity first, keyset cursor)",
        parameters=CONVERSATION_FILTERS,
        responses=inline_serializer(
            "ConversationPage",
            {"results": _conversation_schema(many=True), "next": serializers.CharField(allow_null=True)},
        ),
    )
    def list(self, request):
        qs = self._filtered()
        cursor = request.query_params.get("cursor")
        if cursor:
            qs = qs.filter(BY_ACTIVITY.beyond(BY_ACTIVITY.read(cursor), descending=True))
        size = page_size(request)
        rows = list(qs.order_by("-last_message_at", "-id").values(*CONVERSATION_ROW_FIELDS)[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        next_cursor = BY_ACTIVITY.cursor(rows[-1]) if more else None
        return Response({"results": _items(rows), "next": next_cursor})

    @extend_schema(summary="Get a conversation", responses=_conversation_schema())
    def retrieve(self, request, pk=None):
        rows = self._rows(self._pk())
        if not rows:
            raise Http404
        return Response(_items(rows)[0])

    def _rows(self, pk: int) -> list[dict]:
        return list(self._base().filter(pk=pk).values(*CONVERSATION_ROW_FIELDS)[:1])

    def _pk(self) -> int:
        return _path_id(self.kwargs["pk"])

    def visible_pk(self) -> int:
        """The requested conversation's id if the caller may see it (one small query), else 404."""
        pk = self._pk()
        if not visible_conversations(self.request.membership).filter(pk=pk).exists():
            raise Http404
        return pk

    def _done(self, conversation, code=status.HTTP_200_OK):
        rows = self._rows(conversation.pk)
        if not rows:  # e.g. reassigned away from someone who may no longer see it
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(_items(rows)[0], status=code)

    @extend_schema(
        summary="Assign to me (taking it from another owner needs confirm=true: answered 409 first)",
        request=AssignSerializer,
        responses={200: _conversation_schema(), 409: OpenApiTypes.OBJECT},
        examples=[
            OpenApiExample(
                "Needs confirmation",
                response_only=True,
                status_codes=["409"],
                value={
                    "detail": "Aaron owns this conversation and has been idle. Assign it to you?",
                    "needs_confirmation": True,
                    "owner_id": 7,
                },
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        conversation = self.get_object()
        data = _valid(AssignSerializer, request)
        inbox_services.do_assign_conversation_to_me(conversation, request.user, confirm=data["confirm"])
        return self._done(conversation)

    @extend_schema(
        summary="Reassign to a user and/or a team",
        request=ReassignSerializer,
        responses=_conversation_schema(),
    )
    @action(detail=True, methods=["post"])
    def reassign(self, request, pk=None):
        conversation = self.get_object()
        data = _valid(ReassignSerializer, request)
        inbox_services.do_reassign_conversation(
            conversation,
            request.user,
            user=data.get("user"),
            team=data.get("team"),
        )
        return self._done(conversation)

    @extend_schema(
        summary="Reassign several conversations (all or nothing)",
        request=BulkReassignSerializer,
        responses=inline_serializer("BulkReassigned", {"changed": serializers.IntegerField()}),
    )
    @action(detail=False, methods=["post"], url_path="bulk-reassign")
    def bulk_reassign(self, request):
        data = _valid(BulkReassignSerializer, request)
        found = list(self._base().filter(pk__in=data["ids"]))
        if len(found) != len(set(data["ids"])):
            raise Http404
        changed = inbox_services.do_bulk_reassign_conversations(
            found,
            request.user,
            user=data.get("user"),
            team=data.get("team"),
        )
        return Response({"changed": changed})

    @extend_schema(summary="Archive", request=None, responses=_conversation_schema())
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        conversation = self.get_object()
        inbox_services.do_archive_conversation(conversation, request.user)
        return self._done(conversation)

    @extend_schema(summary="Reopen an archived conversation", request=None, responses=_conversation_schema())
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        conversation = self.get_object()
        inbox_services.do_reopen_conversation(conversation, request.user)
        return self._done(conversation)

    @extend_schema(summary="Mark read (my unread count → 0)", request=None, responses=_conversation_schema())
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        conversation = self.get_object()
        inbox_services.do_mark_conversation_read(conversation, request.user)
        return self._done(conversation)

    @extend_schema(
        summary="Accept a first text (I become the owner)", request=None, responses=_conversation_schema()
    )
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        conversation = self.get_object()
        inbox_services.do_accept_conversation(conversation, request.user)
        return self._done(conversation)

    @extend_schema(
        summary="Dismiss (hidden for me until a new text)", request=None, responses=_conversation_schema()
    )
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        conversation = self.get_object()
        inbox_services.do_dismiss_conversation(conversation, request.user)
        return self._done(conversation)

    @extend_schema(
        summary="Block the customer number for the whole organization",
        request=None,
        responses=_conversation_schema(),
    )
    @action(detail=True, methods=["post"])
    def block(self, request, pk=None):
        conversation = self.get_object()
        inbox_services.do_block_conversation(conversation, request.user)
        return self._done(conversation)

    @extend_schema(
        summary="Create a record from the conversation (it becomes the 'regarding' record)",
        request=CreateRecordSerializer,
        responses={
            201: inline_serializer(
                "CreatedRecord",
                {"record_type": serializers.CharField(), "record_id": serializers.IntegerField()},
            )
        },
    )
    @action(detail=True, methods=["post"], url_path="create-record")
    def create_record(self, request, pk=None):
        from crm.serializers import RECORD_SERIALIZERS

        conversation = self.get_object()
        data = _valid(CreateRecordSerializer, request)
        record_serializer = RECORD_SERIALIZERS.get(data["record_type"])
        if record_serializer is None:
            raise ValidationError({"record_type": "Not a record type."})
        # The record's fields as the records API takes them: unknown names, wrong types and foreign ids are
        # a 400 naming the field, before anything is written.
        fields = record_serializer(data=data["fields"], context={"request": request})
        if not fields.is_valid():
            raise ValidationError({"fields": fields.errors})
        record = inbox_services.do_create_record_from_conversation(
            conversation,
            request.user,
            data["record_type"],
            fields.validated_data,
        )
        return Response(
            {"record_type": record.record_type, "record_id": record.pk}, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Sync now: pull this conversation's number's history from Twilio",
        request=None,
        responses={202: inline_serializer("SyncQueued", {"queued": serializers.ListField()})},
    )
    @action(detail=True, methods=["post"])
    def sync(self, request, pk=None):
        conversation = self.get_object()
        return queue_sync([conversation.phone_number_id])

    @extend_schema(
        summary="A record's owner changed: carry its conversations over, or end them (explicit choice)",
        request=RecordOwnerChangeSerializer,
        responses=inline_serializer("CarriedOver", {"changed": serializers.IntegerField()}),
    )
    @action(detail=False, methods=["post"], url_path="record-owner-change")
    def record_owner_change(self, request):
        from crm.models import RecordType, model_for

        data = _valid(RecordOwnerChangeSerializer, request)
        if data["record_type"] not in RecordType.values:
            raise ValidationError({"record_type": "Not a record type."})
        record = (
            model_for(data["record_type"])
            .objects.filter(organization=request.org, pk=data["record_id"])
            .first()
        )
        if record is None:
            raise Http404
        # Who may do this is the service's rule (admins, the record's owner, its conversations' owner).
        changed = inbox_services.do_change_record_owner_conversations(
            record,
            data["new_owner"],
            data["carry_over"],
            request.user,
        )
        return Response({"changed": changed})
