"""``/api/v1/campaigns`` (drip campaigns), ``/api/v1/campaign-sender-rates`` and ``/api/v1/keyword-optins``:
admins build campaigns, fill their audience, run them and read their results.

Thin: parse, scope every id to the organization, call ``campaigns.drip`` services, serialize.
"""

from __future__ import annotations

import csv
import io

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from campaigns.drip import audience, services
from campaigns.drip import results as outcome_report
from campaigns.drip.compose import brand_warning
from campaigns.drip.models import Campaign, CampaignMedia, CampaignRecipient, KeywordOptIn, SenderRate
from crm.access import access_record
from messaging.media.validation import MAX_TOTAL_BYTES as MAX_UPLOAD_BYTES
from messaging.media.validation import MediaFile
from messaging.models import PhoneNumber
from messaging.services import throttle
from quicksend.api import StrictModelSerializer, StrictSerializer
from quicksend.bounded_ids import OrgScopedPrimaryKeyRelatedField
from quicksend.errors import DomainError
from quicksend.pagination import CursorPagination
from templates_app.api import RecordRefSerializer
from tenancy.permissions import IsOrgAdmin

TAG = "Campaigns"


def _org_numbers(org):
    return PhoneNumber.objects.filter(organization=org) if org is not None else PhoneNumber.objects.all()


def _org_campaigns(org):
    return Campaign.objects.filter(organization=org) if org is not None else Campaign.objects.all()


class StepSerializer(StrictSerializer):
    body = serializers.CharField(max_length=1570, help_text="Text with merge fields ({{first_name}}).")
    wait_minutes = serializers.IntegerField(
        min_value=0, max_value=525_600, default=0, help_text="Wait after the previous step (0 for the first)."
    )
    media = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=10,
        help_text="Ids of pictures or files the step sends (upload them to /api/v1/campaign-media first). "
        "Every sender must be MMS-capable.",
    )


class CampaignSerializer(StrictModelSerializer):
    senders = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        help_text="Ids of the numbers to send from (one, or a pool: each person keeps one).",
        write_only=True,
    )
    steps = StepSerializer(many=True, write_only=True, help_text="Read back in the same shape.")
    days_of_week = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), required=False
    )
    batch_size = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False, allow_null=True)
    batch_minutes = serializers.IntegerField(min_value=1, max_value=10_080, required=False, allow_null=True)
    warnings = serializers.SerializerMethodField(help_text="Things to fix before starting, in plain words.")
    results = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "status",
            "senders",
            "steps",
            "start_at",
            "window_clock",
            "time_zone",
            "window_start",
            "window_end",
            "days_of_week",
            "quiet_hours",
            "stop_on_reply",
            "batch_size",
            "batch_minutes",
            "brand_name",
            "warnings",
            "results",
            "started_at",
            "finished_at",
            "created_at",
        ]
        read_only_fields = ["id", "status", "started_at", "finished_at", "created_at"]

    def to_representation(self, obj):
        data = super().to_representation(obj)
        data["senders"] = sorted(obj.senders.values_list("pk", flat=True))
        data["steps"] = [
            {"body": s.body, "wait_minutes": s.wait_minutes, "media": s.media} for s in obj.steps.all()
        ]
        return data

    def get_warnings(self, obj) -> list[str]:
        first = obj.steps.order_by("position").first()
        warning = brand_warning(first.body if first else "", obj.brand_name)
        return [warning] if warning else []

    def get_results(self, obj) -> dict:
        return outcome_report.results(obj)


class StartSerializer(StrictSerializer):
    at = serializers.DateTimeField(required=False, allow_null=True, help_text="Blank: now.")


class RecipientSerializer(serializers.ModelSerializer):
    class Meta:
        model = CampaignRecipient
        fields = [
            "id",
            "phone",
            "record_type",
            "record_id",
            "merge",
            "sender",
            "status",
            "step_index",
            "next_at",
            "waiting_reason",
            "error",
            "last_sent_at",
            "replied_at",
        ]


class ImportSerializer(StrictSerializer):
    file = serializers.FileField(help_text="A CSV file with a header row.")
    phone_column = serializers.CharField(max_length=200)
    columns = serializers.CharField(
        required=False, allow_blank=True, help_text="Comma-separated columns to keep as merge fields (all)."
    )
    attested = serializers.BooleanField(help_text="Everyone in the file agreed to receive texts from you.")


class AddRecordsSerializer(StrictSerializer):
    records = RecordRefSerializer(many=True, required=False)
    filter = serializers.DictField(
        child=serializers.CharField(max_length=200),
        required=False,
        help_text='A CRM list filter: {"record_type": "lead", "status": "new", "owner": "3", "q": "…"}.',
    )


class AudienceResultSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    rejected = serializers.ListField(child=serializers.DictField())
    counts = serializers.DictField(child=serializers.IntegerField())


@extend_schema_view(
    list=extend_schema(summary="List campaigns", tags=[TAG]),
    retrieve=extend_schema(summary="Get a campaign with its progress and results", tags=[TAG]),
    create=extend_schema(summary="Create a campaign (a draft)", tags=[TAG]),
    partial_update=extend_schema(summary="Change a campaign", tags=[TAG]),
    destroy=extend_schema(summary="Delete a draft campaign", tags=[TAG]),
)
class CampaignViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Campaign.objects.none()
    serializer_class = CampaignSerializer
    permission_classes = [IsOrgAdmin]
    http_method_names = ["get", "post", "patch", "delete"]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        return (
            Campaign.objects.filter(organization=self.request.org).prefetch_related("steps").order_by("-id")
        )

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        campaign = services.do_create_campaign(self.request.org, self.request.user, **data)
        serializer.instance = campaign

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = services.do_update_campaign(serializer.instance, self.request.user, **data)

    def perform_destroy(self, instance):
        if instance.status != Campaign.Status.DRAFT:
            raise DomainError("Only a draft can be deleted; cancel a started campaign.", http_status=409)
        instance.delete()

    def _control(self, do, **kwargs):
        campaign = do(self.get_object(), self.request.user, **kwargs)
        return Response(CampaignSerializer(campaign, context=self.get_serializer_context()).data)

    @extend_schema(
        request=StartSerializer, responses=CampaignSerializer, summary="Start now or at a time", tags=[TAG]
    )
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        payload = StartSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        return self._control(services.do_start_campaign, at=payload.validated_data.get("at"))

    @extend_schema(request=None, responses=CampaignSerializer, summary="Pause", tags=[TAG])
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._control(services.do_pause_campaign)

    @extend_schema(request=None, responses=CampaignSerializer, summary="Resume", tags=[TAG])
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._control(services.do_resume_campaign)

    @extend_schema(
        request=None, responses=CampaignSerializer, summary="Cancel (nobody else is texted)", tags=[TAG]
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._control(services.do_cancel_campaign)

    @extend_schema(
        responses=dict,
        summary="Pre-flight: sendable, invalid, opted out, duplicate, missing merge field; duration, "
        "segments, cost",
        tags=[TAG],
    )
    @action(detail=True, methods=["get"])
    def preflight(self, request, pk=None):
        return Response(audience.preflight(self.get_object()))

    @extend_schema(responses=dict, summary="Results and a per-minute series", tags=[TAG])
    @action(detail=True, methods=["get"])
    def results(self, request, pk=None):
        campaign = self.get_object()
        return Response({**outcome_report.results(campaign), "series": outcome_report.series(campaign)})

    @extend_schema(
        parameters=[OpenApiParameter("outcome", str, enum=list(outcome_report.OUTCOMES))],
        responses=RecipientSerializer(many=True),
        summary="The people of the campaign (those behind a results number with outcome)",
        tags=[TAG],
    )
    @action(detail=True, methods=["get"], pagination_class=CursorPagination)
    def recipients(self, request, pk=None):
        campaign = self.get_object()
        outcome = request.query_params.get("outcome") or ""
        if outcome and outcome not in outcome_report.OUTCOMES:
            raise exceptions.ValidationError(
                {"outcome": f"Choose one of: {', '.join(outcome_report.OUTCOMES)}."}
            )
        qs = outcome_report.people_for(campaign, outcome).order_by("-id")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(RecipientSerializer(page, many=True).data)

    @extend_schema(
        parameters=[OpenApiParameter("outcome", str, enum=list(outcome_report.OUTCOMES))],
        responses={(200, "text/csv"): str},
        summary="The people and their outcome as CSV",
        tags=[TAG],
    )
    @action(detail=True, methods=["get"], url_path="export")
    def export(self, request, pk=None):
        campaign = self.get_object()
        outcome = request.query_params.get("outcome") or ""
        if outcome and outcome not in outcome_report.OUTCOMES:
            raise exceptions.ValidationError(
                {"outcome": f"Choose one of: {', '.join(outcome_report.OUTCOMES)}."}
            )
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["phone", "status", "steps_sent", "last_sent_at", "replied_at", "error"])
        for person in outcome_report.people_for(campaign, outcome).order_by("id").iterator(chunk_size=2000):
            writer.writerow(
                [
                    person.phone,
                    person.get_status_display(),
                    person.step_index,
                    person.last_sent_at.isoformat() if person.last_sent_at else "",
                    person.replied_at.isoformat() if person.replied_at else "",
                    _csv_safe(person.error),
                ]
            )
        response = HttpResponse(out.getvalue(), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}.csv"'
        return response

    @extend_schema(
        request={"multipart/form-data": ImportSerializer},
        responses=AudienceResultSerializer,
        summary="Add people from a CSV file (opt-in attestation required); bad rows are reported",
        tags=[TAG],
    )
    @action(detail=True, methods=["post"], url_path="import", parser_classes=[MultiPartParser, FormParser])
    def import_csv(self, request, pk=None):
        campaign = self.get_object()
        payload = ImportSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        columns = [c.strip() for c in (data.get("columns") or "").split(",") if c.strip()] or None
        report = audience.import_csv(
            campaign,
            data["file"].read(audience.MAX_CSV_BYTES + 1),
            phone_column=data["phone_column"],
            attested=data["attested"],
            columns=columns,
        )
        return Response(report, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=AddRecordsSerializer,
        responses=AudienceResultSerializer,
        summary="Add picked CRM records, or those a CRM filter selects",
        tags=[TAG],
    )
    @action(detail=True, methods=["post"], url_path="records", parser_classes=[JSONParser])
    def add_records(self, request, pk=None):
        campaign = self.get_object()
        payload = AddRecordsSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        if data.get("records"):
            records = [access_record(request.org, ref["type"], ref["id"]) for ref in data["records"]]
        elif data.get("filter"):
            params = dict(data["filter"])
            records = audience.records_for_filter(request.org, params.pop("record_type", "lead"), params)
        else:
            raise exceptions.ValidationError({"records": "Give records or a filter."})
        return Response(audience.add_records(campaign, records), status=status.HTTP_201_CREATED)


def _csv_safe(value: str) -> str:
    # A cell starting with = + - @ is a formula to a spreadsheet.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


class CampaignMediaSerializer(StrictModelSerializer):
    file = serializers.FileField(write_only=True, help_text="A picture, video, audio, vCard or PDF (≤ 5 MB).")

    class Meta:
        model = CampaignMedia
        fields = ["id", "file", "filename", "content_type", "size", "created_at"]
        read_only_fields = ["id", "filename", "content_type", "size", "created_at"]


@extend_schema_view(
    list=extend_schema(summary="Pictures and files uploaded for campaign steps", tags=[TAG]),
    retrieve=extend_schema(summary="A campaign attachment", tags=[TAG]),
    create=extend_schema(
        summary="Upload a picture or file for campaign steps (checked as an MMS attachment)", tags=[TAG]
    ),
)
class CampaignMediaViewSet(
    mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet
):
    queryset = CampaignMedia.objects.none()
    serializer_class = CampaignMediaSerializer
    permission_classes = [IsOrgAdmin]
    parser_classes = [MultiPartParser]
    pagination_class = CursorPagination

    def get_queryset(self):
        return CampaignMedia.objects.filter(organization=self.request.org).order_by("-id")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        item = services.store_media(
            request.org,
            request.user,
            MediaFile(
                name=upload.name, data=upload.read(MAX_UPLOAD_BYTES + 1), declared_type=upload.content_type
            ),
        )
        return Response(self.get_serializer(item).data, status=status.HTTP_201_CREATED)


class SenderRateSerializer(StrictModelSerializer):
    number = OrgScopedPrimaryKeyRelatedField(_org_numbers, required=True, allow_null=False)
    segments_per_second = serializers.FloatField(min_value=0.1, max_value=1000)

    class Meta:
        model = SenderRate
        fields = ["id", "number", "segments_per_second"]
        validators = []  # one rate per number: ``validate_number`` says so

    def validate_number(self, number):
        others = SenderRate.objects.filter(number=number)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError("That number already has its own rate: change that one.")
        return number


@extend_schema_view(
    list=extend_schema(summary="Numbers with their own send rate", tags=[TAG]),
    retrieve=extend_schema(summary="A number's own send rate", tags=[TAG]),
    create=extend_schema(summary="Give a number its own send rate (segments/s)", tags=[TAG]),
    partial_update=extend_schema(summary="Change a number's own send rate", tags=[TAG]),
    destroy=extend_schema(summary="Back to the number type's rate", tags=[TAG]),
)
class SenderRateViewSet(viewsets.ModelViewSet):
    queryset = SenderRate.objects.none()
    serializer_class = SenderRateSerializer
    permission_classes = [IsOrgAdmin]
    http_method_names = ["get", "post", "patch", "delete"]

    def get_queryset(self):
        return SenderRate.objects.filter(organization=self.request.org).order_by("id")

    def perform_create(self, serializer):
        rate = serializer.save(organization=self.request.org)
        throttle.set_number_rate(rate.number_id, rate.segments_per_second)

    def perform_update(self, serializer):
        rate = serializer.save()
        throttle.set_number_rate(rate.number_id, rate.segments_per_second)

    def perform_destroy(self, instance):
        throttle.set_number_rate(instance.number_id, None)
        instance.delete()


class KeywordOptInSerializer(StrictModelSerializer):
    number = OrgScopedPrimaryKeyRelatedField(_org_numbers, required=True, allow_null=False)
    campaign = OrgScopedPrimaryKeyRelatedField(_org_campaigns)
    keyword = serializers.RegexField(r"^[A-Za-z0-9]{2,20}$", help_text="One word, e.g. JOIN.")

    class Meta:
        model = KeywordOptIn
        fields = ["id", "number", "keyword", "campaign", "brand", "frequency", "created_at"]
        read_only_fields = ["id", "created_at"]
        validators = []  # the (number, keyword) pair is checked in ``validate``, saying which

    def validate_keyword(self, value: str) -> str:
        value = value.upper()
        if value in {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "START",
                     "YES", "UNSTOP", "HELP", "INFO"}:  # fmt: skip
            raise serializers.ValidationError("That word is a carrier keyword (STOP, START, HELP…).")
        return value

    def validate(self, attrs):
        number = attrs.get("number", getattr(self.instance, "number", None))
        keyword = attrs.get("keyword", getattr(self.instance, "keyword", None))
        others = KeywordOptIn.objects.filter(number=number, keyword=keyword)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if number is not None and others.exists():
            raise serializers.ValidationError({"keyword": "That number already has this keyword."})
        return attrs


@extend_schema_view(
    list=extend_schema(summary="Keyword opt-ins (JOIN) of your numbers", tags=[TAG]),
    retrieve=extend_schema(summary="A keyword opt-in", tags=[TAG]),
    create=extend_schema(summary="Add a keyword opt-in to a number, linked to a campaign", tags=[TAG]),
    partial_update=extend_schema(summary="Change a keyword opt-in", tags=[TAG]),
    destroy=extend_schema(summary="Remove a keyword opt-in", tags=[TAG]),
)
class KeywordOptInViewSet(viewsets.ModelViewSet):
    queryset = KeywordOptIn.objects.none()
    serializer_class = KeywordOptInSerializer
    permission_classes = [IsOrgAdmin]
    http_method_names = ["get", "post", "patch", "delete"]

    def get_queryset(self):
        return KeywordOptIn.objects.filter(organization=self.request.org).order_by("id")

    def perform_create(self, serializer):
        serializer.save(organization=self.request.org)
