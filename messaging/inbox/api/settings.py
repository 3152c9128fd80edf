"""REST API of the inbox's administration: the organization's inbox settings and "sync now" (history).
The rest of the inbox API: messaging/inbox/api/conversations.py (conversations and their actions),
messaging/inbox/api/messages.py (threads, "My Messages"), messaging/inbox/api/notifications.py."""

from __future__ import annotations

from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging.inbox import actions as inbox_services
from messaging.inbox.api.serializers import _valid
from messaging.inbox.visibility import inbox_settings_for
from messaging.models import InboxSettings, PhoneNumber
from quicksend.api import StrictModelSerializer, StrictSerializer
from quicksend.bounded_ids import BoundedIdField
from tenancy.permissions import IsOrgAdminOrReadOnly


class InboxSettingsSerializer(StrictModelSerializer):
    class Meta:
        model = InboxSettings
        fields = ["session_timeout_minutes", "idle_timeout_minutes", "auto_archive_days", "agent_visibility"]


class SyncSerializer(StrictSerializer):
    number = BoundedIdField(required=False, help_text="A number's id; all numbers when omitted.")


def queue_sync(number_ids: list[int]) -> Response:
    from messaging.inbox.tasks import sync_history_number

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
        return queue_sync(list(numbers.values_list("pk", flat=True)))


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
        saved = inbox_services.do_save_inbox_settings(request.org, request.user, **serializer.validated_data)
        return Response(InboxSettingsSerializer(saved).data)
