"""``/api/v1/templates``: templates as their rules allow (``templates_app.services``), the merge fields a
record type offers, and a body rendered for a record (the editor's preview and any composer)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from crm.models import RecordType, model_for
from quicksend.api import StrictModelSerializer, StrictSerializer
from quicksend.bounded_ids import BoundedIdField
from quicksend.pagination import CursorPagination
from templates_app import services
from templates_app.models import MessageTemplate
from templates_app.rendering import check_body, render
from tenancy.access import get_in_org

TAG = "Templates"


class MessageTemplateSerializer(StrictModelSerializer):
    record_type = serializers.ChoiceField(
        choices=[("", "Any record"), *RecordType.choices],
        required=False,
        allow_blank=True,
        help_text="The record type it is for (its fields can be merged); blank: any record.",
    )
    visibility = serializers.ChoiceField(
        choices=MessageTemplate.Visibility.choices,
        required=False,
        help_text="shared: everyone's (admins manage it); personal: yours only. Default: shared for an "
        "admin, personal for an agent.",
    )
    status = serializers.ChoiceField(
        choices=MessageTemplate.Status.choices,
        required=False,
        help_text="Agents see a shared template only once it is published.",
    )
    shortcode = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=31,
        help_text='Typed after "/" in the composer: lowercase letters, digits, - and _; unique.',
    )
    can_manage = serializers.SerializerMethodField(help_text="Whether you may change or delete it.")

    class Meta:
        model = MessageTemplate
        fields = [
            "id",
            "name",
            "body",
            "record_type",
            "visibility",
            "status",
            "shortcode",
            "owner",
            "usage_count",
            "last_used_at",
            "can_manage",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "owner",
            "usage_count",
            "last_used_at",
            "created_by",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {"body": {"trim_whitespace": False, "max_length": 1600}}

    def get_can_manage(self, obj) -> bool:
        return services.can_manage(obj, self.context["request"].membership)


class MergeFieldSerializer(serializers.Serializer):
    name = serializers.CharField(help_text='Write it as {{name}}, e.g. {{first_name|default:"there"}}.')
    label = serializers.CharField()
    group = serializers.ChoiceField(choices=["record", "custom", "agent", "owner", "org"])


class RecordRefSerializer(StrictSerializer):
    type = serializers.ChoiceField(choices=RecordType.choices)
    id = BoundedIdField()


class RenderRequestSerializer(StrictSerializer):
    body = serializers.CharField(trim_whitespace=False, max_length=1600, help_text="The body to render.")
    record_type = serializers.ChoiceField(
        choices=[("", "Any record"), *RecordType.choices],
        required=False,
        allow_blank=True,
        help_text="The template's scope: which fields are known. Default: the record's type.",
    )
    record = RecordRefSerializer(required=False, help_text='The record: {"type": "lead", "id": 12}.')


class RenderSerializer(serializers.Serializer):
    text = serializers.CharField(help_text="The body with every merge field filled in.")
    missing_fields = serializers.ListField(
        child=serializers.CharField(), help_text="Fields that rendered empty (no value, no default)."
    )
    unknown_fields = serializers.ListField(
        child=serializers.CharField(), help_text="Fields this body names that do not exist here."
    )
    problems = serializers.ListField(
        child=serializers.CharField(),
        help_text="Why this body could not be saved (unknown or malformed merge fields); [] when it can.",
    )


class TemplatePagination(CursorPagination):
    ordering = ("name", "id")


def _group(name: str) -> str:
    space, _, _ = name.rpartition(".")
    return space or "record"


LIST_PARAMETERS = [
    OpenApiParameter("search", OpenApiTypes.STR, description="Find in name, short code and body."),
    OpenApiParameter(
        "record_type",
        OpenApiTypes.STR,
        enum=RecordType.values,
        description="Only templates usable with this record type (its own and the any-record ones).",
    ),
    OpenApiParameter("status", OpenApiTypes.STR, enum=MessageTemplate.Status.values),
    OpenApiParameter("visibility", OpenApiTypes.STR, enum=MessageTemplate.Visibility.values),
]

_EXAMPLE = {
    "name": "Open house welcome",
    "body": 'Hi {{first_name|default:"there"}}, {{agent.first_name}} from {{org.name}} here!',
    "record_type": "lead",
    "shortcode": "welcome",
}


@extend_schema_view(
    list=extend_schema(
        summary="List the templates you can see (search, filter)", parameters=LIST_PARAMETERS, tags=[TAG]
    ),
    retrieve=extend_schema(summary="Get a template", tags=[TAG]),
    create=extend_schema(
        summary="Create a template (shared: admins; personal: anyone)",
        tags=[TAG],
        examples=[OpenApiExample("Welcome", value=_EXAMPLE, request_only=True)],
    ),
    update=extend_schema(summary="Replace a template (yours, or a shared one as an admin)", tags=[TAG]),
    partial_update=extend_schema(
        summary="Change a template (yours, or a shared one as an admin)", tags=[TAG]
    ),
    destroy=extend_schema(summary="Delete a template (yours, or a shared one as an admin)", tags=[TAG]),
)
class MessageTemplateViewSet(viewsets.ModelViewSet):
    """Shared templates are managed by admins and seen by agents once published; personal templates are
    their owner's alone. A body naming an unknown merge field is refused (400 on ``body``)."""

    queryset = MessageTemplate.objects.none()
    isolation_model = MessageTemplate
    serializer_class = MessageTemplateSerializer
    pagination_class = TemplatePagination
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        found = services.visible_templates(self.request.org, self.request.membership)
        params = self.request.query_params
        if self.action != "list":
            return found
        allowed = {
            "record_type": RecordType.values,
            "status": MessageTemplate.Status.values,
            "visibility": MessageTemplate.Visibility.values,
        }
        bad = {k: v for k, v in allowed.items() if params.get(k) and params[k] not in v}
        if bad:
            raise exceptions.ValidationError(
                {k: [f"'{params[k]}' is not one of {', '.join(v)}."] for k, v in bad.items()}
            )
        found = services.search_templates(found, params.get("search", ""))
        if params.get("record_type"):
            found = found.filter(record_type__in=["", params["record_type"]])
        if params.get("status"):
            found = found.filter(status=params["status"])
        if params.get("visibility") == MessageTemplate.Visibility.SHARED:
            found = found.filter(owner__isnull=True)
        elif params.get("visibility") == MessageTemplate.Visibility.PERSONAL:
            found = found.filter(owner__isnull=False)
        return found

    def perform_create(self, serializer):
        serializer.instance = services.do_create_template(
            self.request.org, self.request.membership, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.do_update_template(
            serializer.instance, self.request.membership, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.do_delete_template(instance, self.request.membership)

    @extend_schema(
        summary="Duplicate a template (a draft copy; an agent's copy is personal)",
        request=None,
        responses={201: MessageTemplateSerializer},
        tags=[TAG],
    )
    @action(detail=True, methods=["post"])
    def duplicate(self, request, pk=None):
        copy = services.do_duplicate_template(self.get_object(), request.membership)
        return Response(self.get_serializer(copy).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="The merge fields a record type offers",
        parameters=[
            OpenApiParameter(
                "record_type",
                OpenApiTypes.STR,
                enum=RecordType.values,
                description="Blank or absent: the fields of an any-record template.",
            )
        ],
        responses=MergeFieldSerializer(many=True),
        tags=[TAG],
    )
    @action(detail=False, methods=["get"], url_path="merge-fields", pagination_class=None)
    def merge_fields(self, request):
        record_type = request.query_params.get("record_type", "")
        if record_type and record_type not in RecordType.values:
            raise exceptions.ValidationError(
                {"record_type": [f"'{record_type}' is not a record type ({', '.join(RecordType.values)})."]}
            )
        fields = services.merge_fields(request.org, record_type)
        rows = [{"name": k, "label": v, "group": _group(k)} for k, v in fields.items()]
        return Response(MergeFieldSerializer(rows, many=True).data)

    @extend_schema(
        summary="Render a body for a record (preview before saving)",
        description="Fills the merge fields of `body` from the record as you would send it, and says what "
        "would stop the body being saved. Segments and encoding: `POST /api/v1/messages/preview` with the "
        "returned `text`.",
        request=RenderRequestSerializer,
        responses=RenderSerializer,
        examples=[
            OpenApiExample(
                "A lead",
                request_only=True,
                value={"body": 'Hi {{first_name|default:"there"}}!', "record": {"type": "lead", "id": 12}},
            ),
            OpenApiExample(
                "A lead",
                response_only=True,
                value={"text": "Hi Maria!", "missing_fields": [], "unknown_fields": [], "problems": []},
            ),
        ],
        tags=[TAG],
    )
    @action(detail=False, methods=["post"], url_path="render", pagination_class=None)
    def render_body(self, request):
        payload = RenderRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        record = None
        if "record" in data:
            ref = data["record"]
            record = get_in_org(
                model_for(ref["type"]).objects.select_related("owner", "team"), request.org, ref["id"]
            )
        record_type = data.get("record_type", record.record_type if record is not None else "")
        if record is not None and record_type and record_type != record.record_type:
            raise exceptions.ValidationError(
                {"record": [f"Pick a {RecordType(record_type).label.lower()}: this template is for them."]}
            )
        problems = check_body(data["body"], services.merge_fields(request.org, record_type))
        result = render(data["body"], record, sender=request.user, org=request.org)
        return Response(
            RenderSerializer(
                {
                    "text": result.text,
                    "missing_fields": list(result.missing_fields),
                    "unknown_fields": list(result.unknown_fields),
                    "problems": problems,
                }
            ).data
        )
