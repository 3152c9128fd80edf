"""REST API of messages in the inbox: a conversation's thread (``/conversations/{id}/messages`` and
``/sessions``, mixed into the conversations viewset) and "My Messages" (``/messages`` list and CSV)."""

from __future__ import annotations

import csv
from datetime import UTC

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import F, QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import filters, serializers
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.texting import try_organization_phone
from messaging.api.sending import SendMessageViewSet
from messaging.inbox.api.serializers import (
    THREAD_ROW_FIELDS,
    MessageSerializer,
    SessionSerializer,
    _id,
    message_items,
)
from messaging.inbox.message_shape import sender_name
from messaging.inbox.visibility import visible_conversations
from messaging.models import Message, MessageSession
from quicksend.api import refuse_null_characters
from quicksend.bounded_ids import ID_SCHEMA
from quicksend.pagination import PAGE_SIZE_SCHEMA, CursorPagination, Keyset, page_size
from tenancy.filters import MOMENT_HELP, parse_moment

# A thread's order: by when each text happened.
BY_TIME = Keyset("created_at")


def newest_page(conversation_id: int, size: int) -> dict:
    """The first page of ``GET /conversations/{id}/messages`` (same items and ``before`` cursor) for a
    conversation the caller is already known to see (the texting widget's context)."""
    rows = list(
        Message.objects.filter(conversation_id=conversation_id)
        .order_by("-created_at", "-id")
        .values(*THREAD_ROW_FIELDS)[: size + 1]
    )
    more_older = len(rows) > size
    rows = rows[:size]
    return {
        "results": message_items(rows),
        "before": BY_TIME.cursor(rows[-1]) if rows and more_older else None,
        "after": None,
    }


class ConversationThreadMixin:
    """The thread actions of ``ConversationViewSet`` (its ``visible_pk`` applies the visibility rules)."""

    @extend_schema(
        summary="A conversation's messages, newest first (before/after cursors; filter by session)",
        parameters=[
            OpenApiParameter("before", OpenApiTypes.STR, description="Older than this cursor."),
            OpenApiParameter("after", OpenApiTypes.STR, description="Newer than this cursor."),
            OpenApiParameter("session", ID_SCHEMA, description="Only this message session."),
            OpenApiParameter("page_size", PAGE_SIZE_SCHEMA, description="Default 50."),
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
        params = request.query_params
        if params.get("session"):
            conversation_id = self.visible_pk()  # 404 before judging the session
            checked = True
            qs = Message.objects.filter(conversation_id=conversation_id)
            session = MessageSession.objects.filter(
                conversation_id=conversation_id, pk=_id(params["session"], "session")
            ).first()
            if session is None:
                raise ValidationError({"session": "Not a session of this conversation."})
            qs = qs.filter(created_at__gte=session.started_at, created_at__lt=session.ends_at)
        else:
            # The visibility rules ride along as a semi-join: one query for the page. Only an empty page (or
            # bad parameters) checks them on their own: 404, or a visible thread with nothing in it.
            conversation_id = self._pk()
            checked = False
            visible = visible_conversations(request.membership).filter(pk=conversation_id).values("pk")
            qs = Message.objects.filter(conversation_id=conversation_id, conversation__in=visible)
        try:
            size = page_size(request)
            after = BY_TIME.read(params["after"]) if params.get("after") else None
            before = BY_TIME.read(params["before"]) if params.get("before") and after is None else None
        except ValidationError:
            if not checked:
                self.visible_pk()  # a conversation the caller may not see is 404 whatever the parameters
            raise
        if after is not None:
            qs = qs.filter(BY_TIME.beyond(after, descending=False)).order_by("created_at", "id")
            rows = list(qs.values(*THREAD_ROW_FIELDS)[: size + 1])
            more_newer = len(rows) > size
            rows = list(reversed(rows[:size]))
            more_older = True
        else:
            if before is not None:
                qs = qs.filter(BY_TIME.beyond(before, descending=True))
            rows = list(qs.order_by("-created_at", "-id").values(*THREAD_ROW_FIELDS)[: size + 1])
            more_older = len(rows) > size
            rows = rows[:size]
            more_newer = before is not None
        if not rows and not checked:
            self.visible_pk()
        return Response(
            {
                "results": message_items(rows),
                "before": BY_TIME.cursor(rows[-1]) if rows and more_older else None,
                "after": BY_TIME.cursor(rows[0]) if rows and more_newer else None,
            }
        )

    @extend_schema(
        summary="A conversation's message sessions, newest first", responses=SessionSerializer(many=True)
    )
    @action(detail=True, methods=["get"])
    def sessions(self, request, pk=None):
        rows = MessageSession.objects.filter(conversation_id=self.visible_pk()).order_by("-started_at")[:200]
        return Response(SessionSerializer(rows, many=True).data)


class MyMessageSerializer(serializers.ModelSerializer):
    number = serializers.CharField(source="conversation.phone_number.phone_number", read_only=True)
    customer_number = serializers.CharField(source="conversation.customer_number", read_only=True)
    sender_name = serializers.SerializerMethodField(
        help_text="The agent who sent it ('' for a text no person sent: see source and source_label)."
    )

    def get_sender_name(self, message) -> str:
        user = message.sender
        return sender_name(user.first_name, user.last_name, user.get_username()) if user else ""

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
            "source_label",
            "sender_name",
            "error_code",
            "created_at",
        ]
        read_only_fields = fields


MY_MESSAGES_FILTERS = [
    OpenApiParameter("number", OpenApiTypes.STR, description="Our number (its id or E.164)."),
    OpenApiParameter("customer", OpenApiTypes.STR, description="Customer number, any format."),
    OpenApiParameter("text", OpenApiTypes.STR, description="Text contains."),
    OpenApiParameter("status", OpenApiTypes.STR),
    OpenApiParameter("direction", OpenApiTypes.STR, enum=["inbound", "outbound"]),
    OpenApiParameter("date_from", OpenApiTypes.DATETIME, description="From this moment (or date, UTC) on."),
    OpenApiParameter(
        "date_to", OpenApiTypes.DATETIME, description="Before this moment (or to the end of this date, UTC)."
    ),
    OpenApiParameter(
        "ordering",
        OpenApiTypes.STR,
        description="created_at, number, customer_number, body, status, direction (prefix - for descending). "
        "Default -created_at.",
    ),
]
MY_MESSAGES_ORDERING = ["created_at", "number", "customer_number", "body", "status", "direction", "id"]


def _phone(request, value: str) -> str:
    return try_organization_phone(request.org.pk, value) or value


def my_messages(request) -> QuerySet[Message]:
    """Messages of the conversations the caller may see, filtered by the query parameters."""
    params = request.query_params
    visible = visible_conversations(request.membership).values("pk")
    qs = (
        Message.objects.filter(organization=request.org)
        .select_related("conversation__phone_number", "sender")
        .annotate(
            number=F("conversation__phone_number__phone_number"),
            customer_number=F("conversation__customer_number"),
        )
    )
    if request.membership.is_admin is False:
        qs = qs.filter(conversation__in=visible)
    refuse_null_characters(params)
    if params.get("number"):
        value = params["number"]
        qs = (
            qs.filter(conversation__phone_number_id=_id(value, "number"))
            if value.isdigit()
            else qs.filter(
                conversation__phone_number__phone_number=try_organization_phone(request.org.pk, value)
                or value
            )
        )
    if params.get("customer"):
        qs = qs.filter(
            conversation__customer_number=try_organization_phone(request.org.pk, params["customer"])
            or params["customer"]
        )
    if params.get("text"):
        qs = qs.filter(body__icontains=params["text"])
    if params.get("status"):
        qs = qs.filter(status=params["status"])
    if params.get("direction"):
        qs = qs.filter(direction=params["direction"])
    for name, lookup, end_of_day in (
        ("date_from", "created_at__gte", False),
        ("date_to", "created_at__lt", True),
    ):
        if params.get(name):
            try:
                # In UTC here, so a moment at the edge of the calendar (year 1 at +14:00) is refused, not
                # left to overflow in the database driver.
                when = parse_moment(params[name], end_of_day=end_of_day).astimezone(UTC)
            except (DjangoValidationError, OverflowError):
                raise ValidationError({name: [MOMENT_HELP]})
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
        # The columns are fields of the list's items, under the same names.
        header = ["created_at", "direction", "number", "customer_number", "status", "body"]
        writer = csv.writer(_Echo())

        def rows():
            yield writer.writerow(header)
            for m in qs.values_list(*header)[: self.MAX_ROWS].iterator(chunk_size=2000):
                yield writer.writerow([m[0].isoformat(), m[1], m[2], m[3], m[4], _csv_safe(m[5])])

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="messages.csv"'
        return response


def _csv_safe(text: str) -> str:
    # A cell starting with = + - @ is a formula in spreadsheets (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
