"""REST API of the inbox: conversations (list, detail, thread, actions), notifications, "My Messages"
(list and CSV), inbox settings and "sync now". Thin views: parse, resolve through the visibility filter
(the same 404 for missing, foreign and not visible), call messaging/services/inbox.py, serialize."""

from __future__ import annotations

import base64
import csv
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import F, FilteredRelation, Q, QuerySet
from django.db.models.functions import Coalesce
from django.http import Http404, StreamingHttpResponse
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import filters, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.phones import try_normalize_phone
from messaging import events
from messaging.api_send import SendMessageViewSet
from messaging.models import (
    Conversation,
    InboxSettings,
    Message,
    MessageSession,
    Notification,
    PhoneNumber,
)
from messaging.services import inbox as inbox_services
from messaging.visibility import inbox_settings_for, visible_conversations
from quicksend.api import StrictModelSerializer, StrictSerializer
from quicksend.pagination import CursorPagination
from tenancy.models import Team
from tenancy.permissions import IsOrgAdminOrReadOnly

User = get_user_model()


# --- serializers ---------------------------------------------------------------------------------


class ConversationSerializer(serializers.Serializer):
    """A conversation as lists show it; ``unread`` is the caller's own count."""

    def to_representation(self, instance):
        data = events.conversation_payload(instance)
        data["unread"] = getattr(instance, "my_unread", 0) or 0
        data["dismissed"] = bool(getattr(instance, "my_dismissed", False))
        names = self.context.get("record_names", {})
        data["record_name"] = names.get((instance.record_type, instance.record_id), "")
        data["regarding_name"] = names.get((instance.regarding_type, instance.regarding_id), "")
        return data


def _conversation_schema(**kwargs):
    return inline_serializer(
        "Conversation",
        {
            "id": serializers.IntegerField(),
            "phone_number": inline_serializer(
                "ConversationNumber",
                {
                    "id": serializers.IntegerField(),
                    "phone_number": serializers.CharField(),
                    "label": serializers.CharField(),
                },
            ),
            "customer_number": serializers.CharField(),
            "status": serializers.ChoiceField(Conversation.Status.choices),
            "is_current": serializers.BooleanField(),
            "owner": inline_serializer(
                "ConversationOwner",
                {"id": serializers.IntegerField(), "name": serializers.CharField()},
                allow_null=True,
            ),
            "team": inline_serializer(
                "ConversationTeam",
                {"id": serializers.IntegerField(), "name": serializers.CharField()},
                allow_null=True,
            ),
            "record_type": serializers.CharField(),
            "record_id": serializers.IntegerField(allow_null=True),
            "record_name": serializers.CharField(),
            "regarding_type": serializers.CharField(),
            "regarding_id": serializers.IntegerField(allow_null=True),
            "regarding_name": serializers.CharField(),
            "last_message": inline_serializer(
                "ConversationLastMessage",
                {
                    "at": serializers.DateTimeField(allow_null=True),
                    "preview": serializers.CharField(),
                    "direction": serializers.CharField(),
                    "status": serializers.CharField(),
                },
            ),
            "unread": serializers.IntegerField(),
            "dismissed": serializers.BooleanField(),
        },
        **kwargs,
    )


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = [
            "id",
            "conversation",
            "direction",
            "source",
            "status",
            "from_number",
            "to_number",
            "body",
            "num_media",
            "num_segments",
            "error_code",
            "error_message",
            "sender",
            "created_at",
        ]
        read_only_fields = fields


class MyMessageSerializer(serializers.ModelSerializer):
    number = serializers.CharField(source="conversation.phone_number.phone_number", read_only=True)
    customer_number = serializers.CharField(source="conversation.customer_number", read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "conversation",
            "number",
            "customer_number",
            "body",
            "status",
            "direction",
            "source",
            "error_code",
            "created_at",
        ]
        read_only_fields = fields


class SessionSerializer(serializers.ModelSerializer):
    class Meta:
        model = MessageSession
        fields = ["id", "started_at", "ends_at", "owner", "message_count"]
        read_only_fields = fields


class NotificationSerializer(serializers.ModelSerializer):
    def to_representation(self, instance):
        return events.notification_payload(instance)

    class Meta:
        model = Notification
        fields = ["id"]


def _notification_schema(**kwargs):
    return inline_serializer(
        "Notification",
        {
            "id": serializers.IntegerField(),
            "kind": serializers.ChoiceField(Notification.Kind.choices),
            "conversation_id": serializers.IntegerField(),
            "customer_number": serializers.CharField(),
            "preview": serializers.CharField(),
            "count": serializers.IntegerField(),
            "record_type": serializers.CharField(),
            "record_id": serializers.IntegerField(allow_null=True),
            "link": serializers.CharField(),
            "actions": serializers.ListField(child=serializers.CharField()),
            "is_read": serializers.BooleanField(),
            "created_at": serializers.DateTimeField(),
            "updated_at": serializers.DateTimeField(),
        },
        **kwargs,
    )


class AssignSerializer(StrictSerializer):
    confirm = serializers.BooleanField(
        default=False, help_text="Required when someone else owns the conversation (the answer to a 409)."
    )


class _OrgScopedUserField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        org = self.context["request"].org
        return User.objects.filter(memberships__organization=org, memberships__is_active=True)


class _OrgScopedTeamField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return Team.objects.filter(organization=self.context["request"].org)


class ReassignSerializer(StrictSerializer):
    user = _OrgScopedUserField(required=False, allow_null=True)
    team = _OrgScopedTeamField(required=False, allow_null=True)

    def validate(self, attrs):
        if not attrs.get("user") and not attrs.get("team"):
            raise ValidationError("Choose a user or a team.")
        return attrs


class BulkReassignSerializer(ReassignSerializer):
    ids = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=500)


class CreateRecordSerializer(StrictSerializer):
    record_type = serializers.CharField()
    fields = serializers.DictField(
        required=False, default=dict, help_text="The record's fields (e.g. last_name)."
    )


class RecordOwnerChangeSerializer(StrictSerializer):
    record_type = serializers.CharField()
    record_id = serializers.IntegerField()
    new_owner = _OrgScopedUserField(allow_null=True)
    carry_over = serializers.BooleanField(
        help_text="True: the record's current conversations move to the new owner with their history. "
        "False: they are archived and the next text starts a new one. Required: the caller must choose."
    )


class InboxSettingsSerializer(StrictModelSerializer):
    class Meta:
        model = InboxSettings
        fields = ["session_timeout_minutes", "idle_timeout_minutes", "auto_archive_days", "agent_visibility"]


class SyncSerializer(StrictSerializer):
    number = serializers.IntegerField(required=False, help_text="A number's id; all numbers when omitted.")


# --- keyset cursors ----------------------------------------------------------------------------------------


def _encode(at: datetime, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{pk}".encode()).decode()


def _decode(cursor: str) -> tuple[datetime, int]:
    try:
        at_text, pk_text = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        at = parse_datetime(at_text)
        if at is None:
            raise ValueError
        return at, int(pk_text)
    except (ValueError, UnicodeDecodeError, TypeError):
        raise ValidationError({"cursor": "Invalid cursor."})


def _page_size(request, default: int = 50, maximum: int = 200) -> int:
    try:
        return max(1, min(int(request.query_params.get("page_size", default)), maximum))
    except ValueError:
        raise ValidationError({"page_size": "Must be a number."})


# --- conversations -----------------------------------------------------------------------------------------


def _record_names(conversations: list[Conversation]) -> dict:
    """(type, id) → display name, one query per record type on the page (at most five)."""
    from crm.models import RecordType, model_for

    wanted: dict[str, set[int]] = {}
    for c in conversations:
        for rt, rid in ((c.record_type, c.record_id), (c.regarding_type, c.regarding_id)):
            if rt in RecordType.values and rid:
                wanted.setdefault(rt, set()).add(rid)
    names = {}
    for rt, ids in wanted.items():
        for record in model_for(rt).objects.filter(
            pk__in=ids, organization_id=conversations[0].organization_id
        ):
            names[(rt, record.pk)] = str(record)
    return names


SEARCH_LIMIT = 500  # conversations a text or record-name search can return
RECENT_WINDOW = 10_000  # the organization's most recent messages, always searched in full
PHONE_PUNCTUATION = set(" +-().")


def _record_match_q(org_id: int, text: str) -> Q:
    """Conversations whose matched or "regarding" record's name contains ``text``: one small query per record
    type for the ids, then an indexed lookup on (record_type, record_id) / (regarding_type, regarding_id)."""
    from crm.models import RecordType, model_for

    q = Q(pk__in=[])
    for rt in RecordType.values:
        model = model_for(rt)
        fields = {f.name for f in model._meta.get_fields()}
        name_q = Q(pk__in=[])
        for field in ("first_name", "last_name", "name", "subject", "company"):
            if field in fields:
                name_q |= Q(**{f"{field}__icontains": text})
        ids = list(
            model.objects.filter(organization_id=org_id)
            .filter(name_q)
            .order_by("-pk")
            .values_list("pk", flat=True)[:SEARCH_LIMIT]
        )
        if ids:
            q |= Q(record_type=rt, record_id__in=ids) | Q(regarding_type=rt, regarding_id__in=ids)
    return q


def _text_match_ids(org_id: int, text: str) -> list[int]:
    """Conversations with a message containing ``text``: every match among the organization's most recent
    ``RECENT_WINDOW`` messages first (a bounded backward scan), then up to the limit from anywhere (the
    trigram index on UPPER(body), unordered so a common word stops early instead of sorting every match)."""
    messages = Message.objects.filter(organization_id=org_id)
    threshold = (
        messages.order_by("-id").values_list("id", flat=True)[RECENT_WINDOW - 1 : RECENT_WINDOW].first()
    )
    matching = messages.filter(body__icontains=text)
    recent = matching.filter(id__gte=threshold) if threshold is not None else matching
    ids: dict[int, None] = {}
    for conversation_id in recent.order_by("-id").values_list("conversation_id", flat=True)[
        : SEARCH_LIMIT * 4
    ]:
        ids.setdefault(conversation_id, None)
    if threshold is not None and len(ids) < SEARCH_LIMIT:
        for conversation_id in matching.order_by().values_list("conversation_id", flat=True)[
            : SEARCH_LIMIT * 4
        ]:
            ids.setdefault(conversation_id, None)
    return list(ids)[:SEARCH_LIMIT]


CONVERSATION_FILTERS = [
    OpenApiParameter("number", OpenApiTypes.INT, description="Our number's id."),
    OpenApiParameter(
        "status", OpenApiTypes.STR, enum=["open", "archived", "all"], description="Default: open."
    ),
    OpenApiParameter("owner", OpenApiTypes.STR, description="A user id, `me` or `none`."),
    OpenApiParameter("team", OpenApiTypes.INT),
    OpenApiParameter("mine", OpenApiTypes.BOOL, description="Owned by me or one of my teams."),
    OpenApiParameter("unread", OpenApiTypes.BOOL, description="Only conversations I have unread texts in."),
    OpenApiParameter("dismissed", OpenApiTypes.BOOL, description="Include the ones I dismissed."),
    OpenApiParameter(
        "q", OpenApiTypes.STR, description="Customer number (any format), record name, or message text."
    ),
    OpenApiParameter("cursor", OpenApiTypes.STR),
    OpenApiParameter("page_size", OpenApiTypes.INT),
]


class ConversationViewSet(viewsets.GenericViewSet):
    """Conversations the caller may see (the visibility rules), newest activity first."""

    queryset = Conversation.objects.none()
    serializer_class = ConversationSerializer
    pagination_class = None

    def _base(self) -> QuerySet[Conversation]:
        # The caller's own state joins in once (LEFT JOIN on the unique (conversation, user) index).
        return (
            visible_conversations(self.request.membership)
            .select_related("phone_number", "owner", "team")
            .annotate(mine=FilteredRelation("user_states", condition=Q(user_states__user=self.request.user)))
            .annotate(
                my_unread=Coalesce(F("mine__unread_count"), 0),
                my_dismissed=Coalesce(F("mine__dismissed"), False),
            )
        )

    def get_object(self) -> Conversation:
        try:
            return self._base().get(pk=int(self.kwargs["pk"]))
        except (Conversation.DoesNotExist, ValueError):
            raise Http404

    def _filtered(self) -> QuerySet[Conversation]:
        params = self.request.query_params
        membership = self.request.membership
        user = self.request.user
        qs = self._base().filter(last_message_at__isnull=False)
        status_value = params.get("status", "open")
        if status_value in (Conversation.Status.OPEN, Conversation.Status.ARCHIVED):
            qs = qs.filter(status=status_value)
        elif status_value != "all":
            raise ValidationError({"status": "One of open, archived, all."})
        if params.get("number"):
            qs = qs.filter(phone_number_id=_int(params["number"], "number"))
        owner = params.get("owner")
        if owner == "me":
            qs = qs.filter(owner=user)
        elif owner == "none":
            qs = qs.filter(owner__isnull=True)
        elif owner:
            qs = qs.filter(owner_id=_int(owner, "owner"))
        if params.get("team"):
            qs = qs.filter(team_id=_int(params["team"], "team"))
        if _bool(params.get("mine")):
            qs = qs.filter(Q(owner=user) | Q(team__in=membership.teams.values("pk")))
        if _bool(params.get("unread")):
            qs = qs.filter(mine__unread_count__gt=0)
        if not _bool(params.get("dismissed")):
            qs = qs.filter(my_dismissed=False)
        text = (params.get("q") or "").strip()
        if text:
            qs = qs.filter(self._search_q(text))
        return qs

    def _search_q(self, text: str) -> Q:
        """``q``: a phone number in any format (exact customer number), digits (part of a customer number),
        else a record name or message text."""
        org_id = self.request.org.pk
        digits = "".join(ch for ch in text if ch.isdigit())
        if digits and all(ch.isdigit() or ch in PHONE_PUNCTUATION for ch in text):
            e164 = try_normalize_phone(text, "1")
            if e164:
                return Q(customer_number=e164)
            # Ids first, unordered: the trigram index answers at once (ordered by recency the planner may
            # walk the whole recent index instead).
            ids = (
                Conversation.objects.filter(organization_id=org_id, customer_number__contains=digits)
                .order_by()
                .values_list("pk", flat=True)[:SEARCH_LIMIT]
            )
            return Q(pk__in=list(ids))
        q = _record_match_q(org_id, text)
        if len(text) >= 3:
            q |= Q(pk__in=_text_match_ids(org_id, text))
        return q

    @extend_schema(
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
            at, pk = _decode(cursor)
            qs = qs.filter(Q(last_message_at__lt=at) | Q(last_message_at=at, pk__lt=pk))
        size = _page_size(request)
        rows = list(qs.order_by("-last_message_at", "-id")[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        context = {"request": request, "record_names": _record_names(rows) if rows else {}}
        next_cursor = _encode(rows[-1].last_message_at, rows[-1].pk) if more else None
        return Response(
            {"results": ConversationSerializer(rows, many=True, context=context).data, "next": next_cursor}
        )

    @extend_schema(summary="Get a conversation", responses=_conversation_schema())
    def retrieve(self, request, pk=None):
        conversation = self.get_object()
        context = {"request": request, "record_names": _record_names([conversation])}
        return Response(ConversationSerializer(conversation, context=context).data)

    @extend_schema(
        summary="A conversation's messages, newest first (before/after cursors; filter by session)",
        parameters=[
            OpenApiParameter("before", OpenApiTypes.STR, description="Older than this cursor."),
            OpenApiParameter("after", OpenApiTypes.STR, description="Newer than this cursor."),
            OpenApiParameter("session", OpenApiTypes.INT, description="Only this message session."),
            OpenApiParameter("page_size", OpenApiTypes.INT),
        ],
        responses=inline_serializer(
            "MessagePage",
            {
                "results": MessageSerializer(many=True),
                "before": serializers.CharField(allow_null=True),
                "after": serializers.CharField(allow_null=True),
            },
        ),
    )
    @action(detail=True, methods=["get"])
    def messages(self, request, pk=None):
        conversation = self.get_object()
        qs = Message.objects.filter(conversation_id=conversation.pk)
        params = request.query_params
        if params.get("session"):
            session = MessageSession.objects.filter(
                conversation_id=conversation.pk, pk=_int(params["session"], "session")
            ).first()
            if session is None:
                raise ValidationError({"session": "Not a session of this conversation."})
            qs = qs.filter(created_at__gte=session.started_at, created_at__lt=session.ends_at)
        size = _page_size(request)
        if params.get("after"):
            at, mid = _decode(params["after"])
            rows = list(
                qs.filter(Q(created_at__gt=at) | Q(created_at=at, pk__gt=mid)).order_by("created_at", "id")[
                    : size + 1
                ]
            )
            more_newer = len(rows) > size
            rows = list(reversed(rows[:size]))
            more_older = True
        else:
            if params.get("before"):
                at, mid = _decode(params["before"])
                qs = qs.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=mid))
            rows = list(qs.order_by("-created_at", "-id")[: size + 1])
            more_older = len(rows) > size
            rows = rows[:size]
            more_newer = bool(params.get("before"))
        return Response(
            {
                "results": MessageSerializer(rows, many=True).data,
                "before": _encode(rows[-1].created_at, rows[-1].pk) if rows and more_older else None,
                "after": _encode(rows[0].created_at, rows[0].pk) if rows and more_newer else None,
            }
        )

    @extend_schema(
        summary="A conversation's message sessions, newest first", responses=SessionSerializer(many=True)
    )
    @action(detail=True, methods=["get"])
    def sessions(self, request, pk=None):
        conversation = self.get_object()
        rows = MessageSession.objects.filter(conversation_id=conversation.pk).order_by("-started_at")[:200]
        return Response(SessionSerializer(rows, many=True).data)

    def _done(self, conversation, code=status.HTTP_200_OK):
        fresh = self._base().filter(pk=conversation.pk).first()
        if fresh is None:  # e.g. reassigned away from someone who may no longer see it
            return Response(status=status.HTTP_204_NO_CONTENT)
        context = {"request": self.request, "record_names": _record_names([fresh])}
        return Response(ConversationSerializer(fresh, context=context).data, status=code)

    def handle_exception(self, exc):
        if isinstance(exc, inbox_services.NeedsConfirmation):
            body = {"detail": exc.message, "needs_confirmation": True, "owner_id": exc.owner_id}
            return Response(body, status=status.HTTP_409_CONFLICT)
        if isinstance(exc, inbox_services.Conflict):
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return super().handle_exception(exc)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc))
        except DjangoValidationError as exc:
            raise ValidationError(
                exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
            )

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
        self._call(
            inbox_services.do_assign_conversation_to_me, conversation, request.user, confirm=data["confirm"]
        )
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
        self._call(
            inbox_services.do_reassign_conversation,
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
        changed = self._call(
            inbox_services.do_bulk_reassign_conversations,
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
        self._call(inbox_services.do_archive_conversation, conversation, request.user)
        return self._done(conversation)

    @extend_schema(summary="Reopen an archived conversation", request=None, responses=_conversation_schema())
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        conversation = self.get_object()
        self._call(inbox_services.do_reopen_conversation, conversation, request.user)
        return self._done(conversation)

    @extend_schema(summary="Mark read (my unread count → 0)", request=None, responses=_conversation_schema())
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        conversation = self.get_object()
        self._call(inbox_services.do_mark_conversation_read, conversation, request.user)
        return self._done(conversation)

    @extend_schema(
        summary="Accept a first text (I become the owner)", request=None, responses=_conversation_schema()
    )
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        conversation = self.get_object()
        self._call(inbox_services.do_accept_conversation, conversation, request.user)
        return self._done(conversation)

    @extend_schema(
        summary="Dismiss (hidden for me until a new text)", request=None, responses=_conversation_schema()
    )
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        conversation = self.get_object()
        self._call(inbox_services.do_dismiss_conversation, conversation, request.user)
        return self._done(conversation)

    @extend_schema(
        summary="Block the customer number for the whole organization",
        request=None,
        responses=_conversation_schema(),
    )
    @action(detail=True, methods=["post"])
    def block(self, request, pk=None):
        conversation = self.get_object()
        self._call(inbox_services.do_block_conversation, conversation, request.user)
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
        conversation = self.get_object()
        data = _valid(CreateRecordSerializer, request)
        record = self._call(
            inbox_services.do_create_record_from_conversation,
            conversation,
            request.user,
            data["record_type"],
            data["fields"],
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
        return _queue_sync([conversation.phone_number_id])

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
        # Admins, the record's owner (this is called right after the owner changed), or whoever owns one of
        # the record's conversations (the previous owner handing them over).
        allowed = (
            request.membership.is_admin
            or record.owner_id == request.user.pk
            or inbox_services.conversations_for_record(record)
            .filter(is_current=True, owner=request.user)
            .exists()
        )
        if not allowed:
            raise PermissionDenied(
                "Only an admin, the record's owner or its conversations' owner can do this."
            )
        changed = self._call(
            inbox_services.do_change_record_owner_conversations,
            record,
            data["new_owner"],
            data["carry_over"],
            request.user,
        )
        return Response({"changed": changed})


def _valid(serializer_class, request):
    serializer = serializer_class(data=request.data or {}, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _int(value, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationError({name: "Must be a number."})


def _bool(value) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


def _queue_sync(number_ids: list[int]) -> Response:
    from messaging.tasks.inbox import sync_history_number

    for number_id in number_ids:
        transaction.on_commit(lambda n=number_id: sync_history_number.delay(n))
    return Response({"queued": number_ids}, status=status.HTTP_202_ACCEPTED)


class HistorySyncView(APIView):
    """Sync now (admins): one bounded run per number, queued."""

    permission_classes = [IsOrgAdminOrReadOnly]

    @extend_schema(
        summary="Sync now: pull message history from Twilio for one or all numbers (admin)",
        request=SyncSerializer,
        responses={202: inline_serializer("HistorySyncQueued", {"queued": serializers.ListField()})},
    )
    def post(self, request):
        data = _valid(SyncSerializer, request)
        numbers = PhoneNumber.objects.filter(organization=request.org, is_active=True)
        if data.get("number") is not None:
            numbers = numbers.filter(pk=data["number"])
            if not numbers.exists():
                raise Http404
        return _queue_sync(list(numbers.values_list("pk", flat=True)))


# --- notifications --------------------------------------------------------------------------------------


class NotificationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """My notifications (open ones; ``?all=true`` includes cleared), newest first."""

    queryset = Notification.objects.none()
    serializer_class = NotificationSerializer

    def get_queryset(self):
        qs = Notification.objects.filter(
            organization=self.request.org, recipient=self.request.user
        ).select_related("conversation")
        if not _bool(self.request.query_params.get("all")):
            qs = qs.filter(cleared_at__isnull=True)
        return qs

    @extend_schema(
        summary="My notifications",
        parameters=[OpenApiParameter("all", OpenApiTypes.BOOL, description="Include cleared ones.")],
        responses=_notification_schema(many=True),
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="Mark a notification read", request=None, responses=_notification_schema())
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notification = self.get_queryset().filter(pk=_int(pk, "id")).first()
        if notification is None:
            raise Http404
        inbox_services.do_mark_notifications_read(request.user, [notification.pk])
        notification.refresh_from_db()
        return Response(events.notification_payload(notification))

    @extend_schema(
        summary="Mark all my notifications read",
        request=None,
        responses=inline_serializer("NotificationsRead", {"marked": serializers.IntegerField()}),
    )
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        ids = list(self.get_queryset().filter(is_read=False).values_list("pk", flat=True))
        return Response({"marked": inbox_services.do_mark_notifications_read(request.user, ids)})


# --- My Messages ----------------------------------------------------------------------------------------

MY_MESSAGES_FILTERS = [
    OpenApiParameter("number", OpenApiTypes.STR, description="Our number (id or E.164)."),
    OpenApiParameter("customer", OpenApiTypes.STR, description="Customer number, any format."),
    OpenApiParameter("text", OpenApiTypes.STR, description="Text contains."),
    OpenApiParameter("status", OpenApiTypes.STR),
    OpenApiParameter("direction", OpenApiTypes.STR, enum=["inbound", "outbound"]),
    OpenApiParameter("date_from", OpenApiTypes.DATETIME),
    OpenApiParameter("date_to", OpenApiTypes.DATETIME),
    OpenApiParameter(
        "ordering",
        OpenApiTypes.STR,
        description="created_at, number, customer_number, body, status, direction (prefix - for descending). "
        "Default -created_at.",
    ),
]
MY_MESSAGES_ORDERING = ["created_at", "number", "customer_number", "body", "status", "direction", "id"]


def my_messages(request) -> QuerySet[Message]:
    """Messages of the conversations the caller may see, filtered by the query parameters."""
    params = request.query_params
    visible = visible_conversations(request.membership).values("pk")
    qs = (
        Message.objects.filter(organization=request.org)
        .select_related("conversation__phone_number")
        .annotate(
            number=F("conversation__phone_number__phone_number"),
            customer_number=F("conversation__customer_number"),
        )
    )
    if request.membership.is_admin is False:
        qs = qs.filter(conversation__in=visible)
    if params.get("number"):
        value = params["number"]
        qs = (
            qs.filter(conversation__phone_number_id=int(value))
            if value.isdigit()
            else qs.filter(conversation__phone_number__phone_number=try_normalize_phone(value, "1") or value)
        )
    if params.get("customer"):
        qs = qs.filter(
            conversation__customer_number=try_normalize_phone(params["customer"], "1") or params["customer"]
        )
    if params.get("text"):
        qs = qs.filter(body__icontains=params["text"])
    if params.get("status"):
        qs = qs.filter(status=params["status"])
    if params.get("direction"):
        qs = qs.filter(direction=params["direction"])
    for name, lookup in (("date_from", "created_at__gte"), ("date_to", "created_at__lt")):
        if params.get(name):
            when = parse_datetime(params[name])
            if when is None:
                raise ValidationError({name: "An ISO 8601 date-time."})
            qs = qs.filter(**{lookup: when})
    return qs


class MyMessagesPagination(CursorPagination):
    ordering = "-created_at"


class MyMessagesView(ListAPIView):
    """GET /api/v1/messages: "My Messages". GET only here; SEND's POST (create) must be merged into the same
    path (see docs/inbox.md, "Integration")."""

    queryset = Message.objects.none()
    serializer_class = MyMessageSerializer
    pagination_class = MyMessagesPagination
    filter_backends = [filters.OrderingFilter]
    ordering_fields = MY_MESSAGES_ORDERING
    ordering = ["-created_at"]

    def get_queryset(self):
        return my_messages(self.request)

    @extend_schema(summary="My Messages: filter and sort by each column", parameters=MY_MESSAGES_FILTERS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class MessagesView(MyMessagesView):
    """``/api/v1/messages``: GET lists "My Messages" (the inbox), POST sends one (the send pipeline's
    ``SendMessageViewSet.create``, with its schema). One path, one view: Django routes by path, not method."""

    parser_classes = SendMessageViewSet.parser_classes
    post = SendMessageViewSet.create


class _Echo:
    def write(self, value):
        return value


class MyMessagesExportView(APIView):
    """The same list as CSV (same filters and ordering), streamed; at most 100,000 rows."""

    MAX_ROWS = 100_000

    @extend_schema(
        summary="My Messages as CSV",
        parameters=MY_MESSAGES_FILTERS,
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request):
        qs = filters.OrderingFilter().filter_queryset(request, my_messages(request), MyMessagesView())
        if not qs.query.order_by:
            qs = qs.order_by("-created_at", "-id")
        header = ["date", "direction", "number", "customer_number", "status", "text"]
        writer = csv.writer(_Echo())

        def rows():
            yield writer.writerow(header)
            for m in qs.values_list("created_at", "direction", "number", "customer_number", "status", "body")[
                : self.MAX_ROWS
            ].iterator(chunk_size=2000):
                yield writer.writerow([m[0].isoformat(), m[1], m[2], m[3], m[4], _csv_safe(m[5])])

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="messages.csv"'
        return response


def _csv_safe(text: str) -> str:
    # A cell starting with = + - @ is a formula in spreadsheets (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- settings -----------------------------------------------------------------------------------------------


class InboxSettingsView(APIView):
    permission_classes = [IsOrgAdminOrReadOnly]

    @extend_schema(summary="The organization's inbox settings", responses=InboxSettingsSerializer)
    def get(self, request):
        return Response(InboxSettingsSerializer(inbox_settings_for(request.org)).data)

    @extend_schema(
        summary="Change the inbox settings (admin)",
        request=InboxSettingsSerializer,
        responses=InboxSettingsSerializer,
    )
    def patch(self, request):
        serializer = InboxSettingsSerializer(inbox_settings_for(request.org), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            saved = inbox_services.do_save_inbox_settings(
                request.org, request.user, **serializer.validated_data
            )
        except DjangoValidationError as exc:
            raise ValidationError(
                exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
            )
        return Response(InboxSettingsSerializer(saved).data)
