"""REST API of the CRM: records of every type, upsert by external id, phone search, owner reassignment,
record-type settings and CSV imports. Thin: parse, look up inside the organization, call a service."""

from __future__ import annotations

import csv

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from crm import access, imports, services
from crm.filters import filter_records, sort_ordering
from crm.models import ImportJob, RecordType, RecordTypeConfig, model_for
from crm.serializers import (
    EXAMPLE_PAYLOADS,
    RECORD_SERIALIZERS,
    BulkReassignSerializer,
    ImportCreateSerializer,
    ImportJobSerializer,
    ImportStartSerializer,
    ReassignResultSerializer,
    ReassignSerializer,
    RecordRefSerializer,
    RecordTypeConfigSerializer,
    record_ref,
)
from quicksend.bounded_ids import MAX_ID
from quicksend.pagination import CursorPagination
from tenancy.permissions import IsOrgAdmin, IsOrgAdminOrReadOnly


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


LIST_PARAMETERS = [
    OpenApiParameter("q", OpenApiTypes.STR, description="Search name, email, company (or a phone number)"),
    OpenApiParameter(
        "phone",
        OpenApiTypes.STR,
        description="Records having this number in any phone field; any format (normalized with the record "
        "type's default country), e.g. `(415) 555-0134` or `+14155550134`",
    ),
    OpenApiParameter("owner", OpenApiTypes.STR, description="Owner user id, or `none` (another value: 400)"),
    OpenApiParameter("team", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, description="Team id"),
    OpenApiParameter("status", OpenApiTypes.STR),
    OpenApiParameter("sort", OpenApiTypes.STR, enum=["newest", "oldest", "updated", "name", "status"]),
]


class RecordCursorPagination(CursorPagination):
    def get_ordering(self, request, queryset, view):
        return sort_ordering(view.model, request.query_params.get("sort"))


def _a(label) -> str:
    """``label`` with its indefinite article: "a lead", "an account", "an opportunity"."""
    return ("an " if str(label)[:1].lower() in "aeiou" else "a ") + str(label)


def build_record_viewset(record_type: str) -> type[viewsets.GenericViewSet]:
    """CRUD + reassignment for one record type (registered as /api/v1/<plural>)."""
    model = model_for(record_type)
    serializer_class = RECORD_SERIALIZERS[record_type]
    related = [f.name for f in model._meta.concrete_fields if f.name in ("account", "contact")]

    class RecordViewSet(
        mixins.ListModelMixin,
        mixins.RetrieveModelMixin,
        mixins.CreateModelMixin,
        mixins.UpdateModelMixin,
        mixins.DestroyModelMixin,
        viewsets.GenericViewSet,
    ):
        http_method_names = ["get", "post", "patch", "delete"]
        pagination_class = RecordCursorPagination
        queryset = model.objects.none()

        def get_serializer_class(self):
            return serializer_class

        def get_queryset(self):
            qs = model.objects.filter(organization=self.request.org).select_related("owner", "team", *related)
            return filter_records(qs, model, self.request.org, self.request.query_params)

        def get_object(self):
            return access.access_record(self.request.org, record_type, self.kwargs["pk"])

        def perform_create(self, serializer):
            serializer.instance = services.do_create_record(
                self.request.org, self.request.user, record_type, serializer.validated_data
            )

        def perform_update(self, serializer):
            services.do_update_record(serializer.instance, self.request.user, serializer.validated_data)

        def perform_destroy(self, instance):
            services.do_delete_record(instance, self.request.user, membership=self.request.membership)

        @action(detail=True, methods=["post"])
        def reassign(self, request, pk=None):
            record = self.get_object()
            payload = ReassignSerializer(data=request.data, context={"request": request})
            payload.is_valid(raise_exception=True)
            data = payload.validated_data
            services.do_reassign_records(
                [record], request.user, data["owner"], team=data.get("team"), set_team="team" in data
            )
            return Response(serializer_class(record, context={"request": request}).data)

        @action(detail=False, methods=["post"], url_path="reassign")
        def bulk_reassign(self, request):
            payload = BulkReassignSerializer(data=request.data, context={"request": request})
            payload.is_valid(raise_exception=True)
            data = payload.validated_data
            ids = sorted(set(data["ids"]))
            records = list(model.objects.filter(organization=request.org, pk__in=ids))
            missing = sorted(set(ids) - {r.pk for r in records})
            if missing:
                # Foreign ids read exactly like missing ones.
                raise exceptions.ValidationError({"ids": [f"Not found: {', '.join(map(str, missing))}."]})
            changed = services.do_reassign_records(
                records, request.user, data["owner"], team=data.get("team"), set_team="team" in data
            )
            return Response({"reassigned": changed})

    RecordViewSet.model = model
    RecordViewSet.__name__ = RecordViewSet.__qualname__ = f"{model.__name__}ViewSet"
    return _record_schema(model, serializer_class)(RecordViewSet)


def _record_schema(model, serializer_class):
    """The OpenAPI description of one record type's viewset (summaries, tags, examples)."""
    label = model._meta.verbose_name
    plural = model._meta.verbose_name_plural
    example = EXAMPLE_PAYLOADS[model.record_type]
    tag = str(plural).capitalize()
    return extend_schema_view(
        list=extend_schema(
            summary=f"List {plural} (search, filter, sort)", parameters=LIST_PARAMETERS, tags=[tag]
        ),
        retrieve=extend_schema(summary=f"Get {_a(label)}", tags=[tag]),
        create=extend_schema(
            summary=f"Create {_a(label)}",
            tags=[tag],
            examples=[OpenApiExample(f"New {label}", value=example, request_only=True)],
            description="Phone fields accept any format; they are stored as typed and as E.164 (`*_e164`), "
            "normalized with the record type's default country. An invalid number is a 400 naming the field.",
        ),
        partial_update=extend_schema(
            summary=f"Change fields of {_a(label)}",
            tags=[tag],
            examples=[
                OpenApiExample("Change status", value={"status": model.default_status()}, request_only=True)
            ],
        ),
        update=extend_schema(exclude=True),
        destroy=extend_schema(
            summary=f"Delete {_a(label)}",
            tags=[tag],
            description="Admins may delete any record; agents only records they own, and only when the "
            "organization allows it (`agents_may_delete_records` on `GET /api/v1/me`). Otherwise 403 and "
            "nothing changes; another organization's record is 404.",
        ),
        reassign=extend_schema(
            summary=f"Give {_a(label)} a new owner (and optionally team)",
            tags=[tag],
            request=ReassignSerializer,
            responses=serializer_class,
            examples=[OpenApiExample("Reassign", value={"owner": 7, "team": 2}, request_only=True)],
        ),
        bulk_reassign=extend_schema(
            summary=f"Reassign many {plural} at once",
            tags=[tag],
            request=BulkReassignSerializer,
            responses={200: ReassignResultSerializer},
            operation_id=f"{plural}_bulk_reassign",
            examples=[
                OpenApiExample("Bulk reassign", value={"ids": [1, 2, 3], "owner": 7}, request_only=True)
            ],
        ),
    )


def build_external_id_view(record_type: str) -> type[APIView]:
    """GET / PUT (upsert) a record by the caller's own id. No queryset attribute on purpose: the isolation
    harness then tries every identifier of the other organization on this route."""
    model = model_for(record_type)
    serializer_class = RECORD_SERIALIZERS[record_type]
    label = model._meta.verbose_name
    tag = str(model._meta.verbose_name_plural).capitalize()

    class ExternalIdView(APIView):
        @extend_schema(summary=f"Get {_a(label)} by your external id", responses=serializer_class, tags=[tag])
        def get(self, request, external_id: str):
            record = access.access_record_by_external_id(request.org, record_type, external_id)
            return Response(serializer_class(record, context={"request": request}).data)

        @extend_schema(
            summary=f"Create or update {_a(label)} by your external id (upsert)",
            description="201 when created, 200 when updated. Fields not in the payload keep their values. "
            "An empty body never creates (404 when no record has this external id).",
            request=serializer_class,
            responses={200: serializer_class, 201: serializer_class},
            tags=[tag],
            examples=[
                OpenApiExample(
                    "Upsert",
                    value={k: v for k, v in EXAMPLE_PAYLOADS[record_type].items() if k != "external_id"},
                    request_only=True,
                )
            ],
        )
        def put(self, request, external_id: str):
            payload = serializer_class(data=request.data, partial=True, context={"request": request})
            payload.is_valid(raise_exception=True)
            if not payload.validated_data:
                # An empty body never creates: it only confirms that the record exists.
                record = access.access_record_by_external_id(request.org, record_type, external_id)
                return Response(serializer_class(record, context={"request": request}).data)
            record, created = services.do_upsert_record_by_external_id(
                request.org, request.user, record_type, external_id, payload.validated_data
            )
            return Response(
                serializer_class(record, context={"request": request}).data,
                status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            )

    ExternalIdView.__name__ = ExternalIdView.__qualname__ = f"{model.__name__}ExternalIdView"
    return ExternalIdView


class PhoneMatchView(APIView):
    @extend_schema(
        summary="Which records have this phone number (all types, best match first)",
        parameters=[OpenApiParameter("phone", OpenApiTypes.STR, required=True, description="Any format")],
        responses=RecordRefSerializer(many=True),
    )
    def get(self, request):
        records = services.find_records_by_phone(request.org, request.query_params.get("phone", ""))
        return Response([record_ref(r) for r in records])


@extend_schema_view(
    list=extend_schema(summary="Record-type settings, in match-priority order"),
    retrieve=extend_schema(summary="Get one record type's settings (id or type name, e.g. `contact`)"),
    partial_update=extend_schema(
        summary="Change a record type's settings (admin)",
        examples=[
            OpenApiExample(
                "Contacts first, texted on the business phone",
                value={"sms_phone_field": "business_phone", "priority": 1, "default_country": "44"},
                request_only=True,
            )
        ],
    ),
)
class RecordTypeConfigViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    serializer_class = RecordTypeConfigSerializer
    permission_classes = [IsOrgAdminOrReadOnly]
    http_method_names = ["get", "patch"]
    queryset = RecordTypeConfig.objects.none()
    pagination_class = None

    def list(self, request, *args, **kwargs):
        return Response(self.get_serializer(RecordTypeConfig.all_for(request.org.pk), many=True).data)

    def get_object(self):
        key = str(self.kwargs["pk"])
        if key in RecordType.values:
            return RecordTypeConfig.for_type(self.request.org.pk, key)
        return access.access_record_type_config(self.request.org, key)

    def perform_update(self, serializer):
        serializer.instance = services.do_save_record_type_config(
            self.request.org,
            self.request.user,
            serializer.instance.record_type,
            **serializer.validated_data,
        )


class EchoCSVBuffer:
    def write(self, value):
        return value


@extend_schema_view(
    list=extend_schema(summary="Recent CSV imports"),
    retrieve=extend_schema(summary="Import job status and counts (poll it for progress)"),
    create=extend_schema(
        summary="Upload a CSV of leads or contacts and (by default) start importing it",
        request={"multipart/form-data": ImportCreateSerializer},
        responses={201: ImportJobSerializer, 413: OpenApiResponse(description="File over the size limit")},
        description="Returns the job; poll `GET /api/v1/imports/{id}` for progress. Send `start=false` to "
        "only upload and preview (the response has the guessed `mapping`), then `POST …/start`. "
        'Example: `curl -H "Authorization: Token $KEY" -F record_type=lead -F file=@leads.csv '
        "-F duplicate_policy=update -F match_key=phone https://…/api/v1/imports`",
    ),
)
class ImportJobViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    serializer_class = ImportJobSerializer
    permission_classes = [IsOrgAdmin]
    queryset = ImportJob.objects.none()
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def initial(self, request, *args, **kwargs):
        # Refuse an oversize upload from its declared length, before anything reads the body.
        if request.method == "POST" and self.action == "create":
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            try:
                imports.check_size(declared)
            except imports.ImportFileError as exc:
                raise PayloadTooLarge(" ".join(exc.messages))
        super().initial(request, *args, **kwargs)

    def get_queryset(self):
        return ImportJob.objects.filter(organization=self.request.org).prefetch_related("rejections")

    def get_object(self):
        return access.access_import_job(self.request.org, self.kwargs["pk"])

    def create(self, request, *args, **kwargs):
        payload = ImportCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        job, _info = imports.do_create_import_job(
            request.org, request.user, data["record_type"], data["file"]
        )
        if data["start"]:
            job = imports.do_start_import(
                job,
                request.user,
                mapping=data.get("mapping"),
                duplicate_policy=data["duplicate_policy"],
                match_key=data["match_key"],
            )
        job.refresh_from_db()
        return Response(ImportJobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Start an uploaded import with a mapping and duplicate policy",
        request=ImportStartSerializer,
        responses=ImportJobSerializer,
        examples=[
            OpenApiExample(
                "Map columns",
                value={
                    "mapping": {"Name": "full_name", "Cell": "mobile_phone", "Source": "custom:source"},
                    "duplicate_policy": "update",
                    "match_key": "phone",
                },
                request_only=True,
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        job = self.get_object()
        payload = ImportStartSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        job = imports.do_start_import(job, request.user, **payload.validated_data)
        job.refresh_from_db()
        return Response(ImportJobSerializer(job).data)

    @extend_schema(
        summary="The import report as CSV (summary, then each rejected row with line number and reason)",
        responses={(200, "text/csv"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"])
    def report(self, request, pk=None):
        return report_response(self.get_object())


def report_response(job: ImportJob) -> StreamingHttpResponse:
    writer = csv.writer(EchoCSVBuffer())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in imports.iter_report_rows(job)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-report.csv"'
    return response


RECORD_VIEWSETS = {rt: build_record_viewset(rt) for rt in RecordType.values}
EXTERNAL_ID_VIEWS = {rt: build_external_id_view(rt) for rt in RecordType.values}
