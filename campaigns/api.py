"""``/api/v1/automations``: admins build, test, activate and run automations; read the run log.

Thin: parse, scope every id to the organization, call ``campaigns.services``, serialize.
"""

from __future__ import annotations

from django.db.models import Count, Q
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from campaigns import services
from campaigns.automations.definition import STEP_TYPES, TRIGGERS
from campaigns.models import Automation, Enrollment, StepRun
from crm.access import access_record
from crm.models import RecordType
from quicksend.api import StrictModelSerializer, StrictSerializer
from quicksend.bounded_ids import ID_SCHEMA, parse_id
from quicksend.pagination import CursorPagination
from templates_app.api import RecordRefSerializer
from tenancy.permissions import IsOrgAdmin


class AutomationSerializer(StrictModelSerializer):
    counts = serializers.SerializerMethodField(help_text="Enrollments by status.")
    status = serializers.ChoiceField(choices=Automation.Status.choices, required=False)
    trigger = serializers.JSONField(help_text=f"One of: {', '.join(TRIGGERS)} (see docs/automations.md).")
    conditions = serializers.JSONField(required=False, help_text='{"match": "all"|"any", "rules": [...]}')
    steps = serializers.JSONField(help_text=f"Step types: {', '.join(STEP_TYPES)}.")
    reenroll_window_hours = serializers.IntegerField(required=False, min_value=0, max_value=24 * 366)

    class Meta:
        model = Automation
        fields = [
            "id",
            "name",
            "status",
            "trigger",
            "conditions",
            "steps",
            "quiet_hours",
            "reenroll",
            "reenroll_window_hours",
            "paused_reason",
            "counts",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "paused_reason", "counts", "created_at", "updated_at"]

    def get_counts(self, obj) -> dict:
        return {s: getattr(obj, f"n_{s}", 0) for s in Enrollment.Status.values}


class RunSerializer(StrictSerializer):
    record = RecordRefSerializer()


class EnrollmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Enrollment
        fields = [
            "id",
            "record_type",
            "record_id",
            "phone",
            "status",
            "step_index",
            "wake_at",
            "replied_at",
            "reason",
            "created_at",
        ]


class StepRunSerializer(serializers.ModelSerializer):
    record_type = serializers.CharField(source="enrollment.record_type")
    record_id = serializers.IntegerField(source="enrollment.record_id")

    class Meta:
        model = StepRun
        fields = [
            "id",
            "enrollment",
            "record_type",
            "record_id",
            "step_index",
            "step_type",
            "result",
            "detail",
            "message_id",
            "at",
        ]


_EXAMPLE = {
    "name": "Open house welcome",
    "trigger": {"type": "record_created", "record_type": "lead"},
    "conditions": {"match": "all", "rules": [{"field": "source", "op": "equals", "value": "open house"}]},
    "steps": [
        {"type": "send_template", "template": 1, "from": "owner"},
        {"type": "wait", "until": "reply", "minutes": 2880},
        {"type": "branch", "if_replied": "stop", "if_not_replied": "continue"},
        {"type": "send_template", "template": 2, "from": "last_conversation"},
    ],
}


@extend_schema_view(
    list=extend_schema(summary="List automations", tags=["Automations"]),
    retrieve=extend_schema(summary="Get an automation", tags=["Automations"]),
    create=extend_schema(
        summary="Create an automation",
        tags=["Automations"],
        examples=[OpenApiExample("Welcome, then follow up", value=_EXAMPLE, request_only=True)],
    ),
    update=extend_schema(summary="Replace an automation", tags=["Automations"]),
    partial_update=extend_schema(
        summary="Change an automation (also activate or pause it with status)", tags=["Automations"]
    ),
    destroy=extend_schema(summary="Delete an automation", tags=["Automations"]),
)
class AutomationViewSet(viewsets.ModelViewSet):
    queryset = Automation.objects.none()
    serializer_class = AutomationSerializer
    permission_classes = [IsOrgAdmin]

    def get_queryset(self):
        counts = {
            f"n_{s}": Count("enrollments", filter=Q(enrollments__status=s)) for s in Enrollment.Status.values
        }
        return Automation.objects.filter(organization=self.request.org).annotate(**counts).order_by("-id")

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        wanted = data.pop("status", None)
        automation = services.do_create_automation(self.request.org, self.request.user, **data)
        if wanted:
            services.do_set_automation_status(automation, self.request.user, wanted)
        serializer.instance = self.get_queryset().get(pk=automation.pk)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        wanted = data.pop("status", None)
        automation = services.do_update_automation(serializer.instance, self.request.user, **data)
        if wanted:
            services.do_set_automation_status(automation, self.request.user, wanted)
        serializer.instance = self.get_queryset().get(pk=automation.pk)

    def perform_destroy(self, instance):
        services.do_delete_automation(instance, self.request.user)

    def _record(self, request):
        payload = RunSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        ref = payload.validated_data["record"]
        return access_record(request.org, ref["type"], ref["id"])

    @extend_schema(
        request=RunSerializer,
        responses={202: EnrollmentSerializer},
        summary="Run the automation for one record now",
        tags=["Automations"],
    )
    @action(detail=True, methods=["post"])
    def run(self, request, pk=None):
        automation = self.get_object()
        record = self._record(request)
        enrollment = services.do_run_automation(automation, request.user, record)
        if enrollment is None:
            return Response({"detail": "It is already running for this record."}, status=status.HTTP_200_OK)
        enrollment.refresh_from_db()
        return Response(EnrollmentSerializer(enrollment).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=RunSerializer,
        responses={200: dict},
        summary="Dry run on a record: what would be sent, and when (sends nothing)",
        tags=["Automations"],
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        automation = self.get_object()
        preview = services.preview_on_record(automation, self._record(request))
        return Response({"enrolls": preview.enrolls, "reason": preview.reason, "steps": preview.steps})

    @extend_schema(
        parameters=[
            OpenApiParameter("result", str, enum=StepRun.Result.values),
            OpenApiParameter("record_type", str, enum=RecordType.values),
            OpenApiParameter("record_id", ID_SCHEMA, description="Only this record's runs."),
        ],
        responses=StepRunSerializer(many=True),
        summary="The automation's run log, newest first",
        tags=["Automations"],
    )
    @action(detail=True, methods=["get"], pagination_class=CursorPagination)
    def runs(self, request, pk=None):
        automation = self.get_object()
        qs = StepRun.objects.filter(organization=request.org, automation=automation).select_related(
            "enrollment"
        )
        result = request.query_params.get("result")
        if result:
            if result not in StepRun.Result.values:
                raise exceptions.ValidationError(
                    {"result": f"Choose one of: {', '.join(StepRun.Result.values)}."}
                )
            qs = qs.filter(result=result)
        record_type = request.query_params.get("record_type")
        if record_type:
            qs = qs.filter(enrollment__record_type=record_type)
        record_id = request.query_params.get("record_id")
        if record_id:
            # Not an id: a 400 naming record_id (the one error mapping answers the ValidationError).
            qs = qs.filter(enrollment__record_id=parse_id(record_id, "record_id"))
        page = self.paginate_queryset(qs.order_by("-id"))
        return self.get_paginated_response(StepRunSerializer(page, many=True).data)
