"""REST API of a user's notifications: list, mark one read, mark all read, and the bell's counts."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from messaging.inbox import events
from messaging.inbox.api.serializers import _bool, _path_id
from messaging.inbox.notifications import do_mark_notifications_read
from messaging.inbox.preferences import notification_preferences
from messaging.models import Notification


class NotificationSerializer(serializers.ModelSerializer):
    def to_representation(self, instance):
        return events.notification_payload(instance)

    class Meta:
        model = Notification
        fields = ["id"]


# One class for the schema (a second class of the same name would be a second, clashing component).
_NotificationShape = type(
    inline_serializer(
        "Notification",
        {
            "id": serializers.IntegerField(),
            "kind": serializers.ChoiceField(Notification.Kind.choices),
            "conversation_id": serializers.IntegerField(allow_null=True),
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
    )
)


def _notification_schema(**kwargs):
    return _NotificationShape(**kwargs)


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
        notification = self.get_queryset().filter(pk=_path_id(pk)).first()
        if notification is None:
            raise Http404
        do_mark_notifications_read(request.user, [notification.pk])
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
        return Response({"marked": do_mark_notifications_read(request.user, ids)})

    @extend_schema(
        summary="The bell's counts (my unread texts, open notifications) and my notification preferences",
        responses=inline_serializer(
            "NotificationSummary",
            {
                "unread_total": serializers.IntegerField(),
                "open_notifications": serializers.IntegerField(),
                "desktop_notifications": serializers.BooleanField(),
                "notification_sound": serializers.BooleanField(),
            },
        ),
    )
    @action(detail=False, methods=["get"])
    def summary(self, request):
        return Response(
            {
                "unread_total": events.unread_total(request.user.pk, request.org.pk),
                "open_notifications": self.get_queryset().filter(cleared_at__isnull=True).count(),
                **notification_preferences(request.membership),
            }
        )
