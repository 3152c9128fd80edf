"""REST API for the organization: me, members, teams, API tokens, audit log."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from quicksend.bounded_ids import MAX_ID
from tenancy import access, invitations, services
from tenancy.filters import filter_audit
from tenancy.models import ApiToken, AuditLog, Invitation, Membership, Team
from tenancy.permissions import IsOrgAdmin, IsOrgAdminOrReadOnly
from tenancy.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenSerializer,
    AuditLogSerializer,
    InvitationSerializer,
    MemberCreateSerializer,
    MembershipSerializer,
    MeSerializer,
    TeamSerializer,
)


class MeView(APIView):
    @extend_schema(responses=MeSerializer, summary="The caller, their organization and role")
    def get(self, request):
        return Response(
            MeSerializer(
                {"user": request.user, "organization": request.org, "role": request.membership.role}
            ).data
        )


@extend_schema_view(
    list=extend_schema(summary="List the organization's members"),
    retrieve=extend_schema(summary="Get a member"),
    create=extend_schema(
        summary="Invite a member by email (admin; reserves a seat until answered)",
        description="Always creates an invitation, never a membership: the person joins when they accept it "
        "after logging in. The answer is the same whether or not the email already has an account. "
        "An email without an account gets one now (with `password` as its initial password, if given).",
        request=MemberCreateSerializer,
        responses={201: InvitationSerializer},
    ),
    partial_update=extend_schema(summary="Change a member's role or activate/deactivate (admin)"),
    destroy=extend_schema(summary="Remove a member (admin)"),
)
class MemberViewSet(viewsets.ModelViewSet):
    serializer_class = MembershipSerializer
    permission_classes = [IsOrgAdminOrReadOnly]
    http_method_names = ["get", "post", "patch", "delete"]
    queryset = Membership.objects.none()

    def get_queryset(self):
        return (
            Membership.objects.filter(organization=self.request.org)
            .select_related("user")
            .prefetch_related("teams")
        )

    def get_object(self):
        return access.access_membership(self.request.org, self.kwargs["pk"])

    def create(self, request, *args, **kwargs):
        payload = MemberCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        invitation = invitations.do_invite_member(request.org, request.user, **payload.validated_data)
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        membership = self.get_object()
        serializer = MembershipSerializer(membership, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        if "role" in serializer.validated_data:
            services.do_change_role(membership, request.user, serializer.validated_data["role"])
        if "is_active" in serializer.validated_data:
            services.do_set_member_active(membership, request.user, serializer.validated_data["is_active"])
        return Response(MembershipSerializer(membership).data)

    def destroy(self, request, *args, **kwargs):
        services.do_remove_member(self.get_object(), request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="List the organization's invitations (admin)"),
    retrieve=extend_schema(summary="Get an invitation (admin)"),
    destroy=extend_schema(summary="Withdraw a pending invitation (admin; frees its seat)"),
)
class InvitationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    serializer_class = InvitationSerializer
    permission_classes = [IsOrgAdmin]
    queryset = Invitation.objects.none()

    def get_queryset(self):
        return Invitation.objects.filter(organization=self.request.org)

    def get_object(self):
        return access.access_org_invitation(self.request.org, self.kwargs["pk"])

    def perform_destroy(self, instance):
        invitations.do_withdraw_invitation(instance, self.request.user)


@extend_schema_view(
    list=extend_schema(summary="List teams"),
    retrieve=extend_schema(summary="Get a team"),
    create=extend_schema(summary="Create a team (admin)"),
    partial_update=extend_schema(summary="Rename a team or set its members (admin)"),
    destroy=extend_schema(summary="Delete a team (admin)"),
)
class TeamViewSet(viewsets.ModelViewSet):
    serializer_class = TeamSerializer
    permission_classes = [IsOrgAdminOrReadOnly]
    http_method_names = ["get", "post", "patch", "delete"]
    queryset = Team.objects.none()

    def get_queryset(self):
        return Team.objects.filter(organization=self.request.org).prefetch_related("members")

    def get_object(self):
        return access.access_team(self.request.org, self.kwargs["pk"])

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.do_create_team(
            self.request.org, self.request.user, data["name"], data.get("member_ids")
        )

    def perform_update(self, serializer):
        data = serializer.validated_data
        services.do_update_team(
            serializer.instance,
            self.request.user,
            name=data.get("name"),
            member_ids=data.get("member_ids"),
        )

    def perform_destroy(self, instance):
        services.do_delete_team(instance, self.request.user)


@extend_schema_view(
    list=extend_schema(summary="List your API tokens in this organization"),
    create=extend_schema(
        summary="Create an API token (the key is returned once)", responses={201: ApiTokenCreatedSerializer}
    ),
    destroy=extend_schema(summary="Revoke an API token"),
)
class ApiTokenViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    serializer_class = ApiTokenSerializer
    queryset = ApiToken.objects.none()

    def get_queryset(self):
        return ApiToken.objects.filter(organization=self.request.org, user=self.request.user)

    def get_object(self):
        return access.access_own_token(self.request.org, self.request.user, self.kwargs["pk"])

    def create(self, request, *args, **kwargs):
        serializer = ApiTokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, key = services.do_create_api_token(
            request.user, request.org, serializer.validated_data["name"]
        )
        token.key = key
        return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.do_revoke_api_token(instance, self.request.user)


@extend_schema_view(
    list=extend_schema(
        summary="Browse the audit log (admin)",
        parameters=[
            OpenApiParameter(
                "actor", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, description="user id"
            ),
            OpenApiParameter("object_type", OpenApiTypes.STR, description="e.g. tenancy.team"),
            OpenApiParameter("object_id", OpenApiTypes.STR),
            OpenApiParameter("action", OpenApiTypes.STR, description="prefix, e.g. member."),
            OpenApiParameter(
                "since", OpenApiTypes.DATETIME, description="a date (the whole day, UTC) or a date and time"
            ),
            OpenApiParameter(
                "until", OpenApiTypes.DATETIME, description="a date (the whole day, UTC) or a date and time"
            ),
        ],
    ),
    retrieve=extend_schema(summary="Get an audit entry (admin)"),
)
class AuditLogViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AuditLogSerializer
    permission_classes = [IsOrgAdmin]
    queryset = AuditLog.objects.none()

    def get_queryset(self):
        qs = AuditLog.objects.filter(organization=self.request.org).select_related("actor")
        return filter_audit(qs, self.request.query_params)

    def get_object(self):
        return access.access_audit_entry(self.request.org, self.kwargs["pk"])

    @extend_schema(
        summary="Distinct actions recorded", responses={200: {"type": "array", "items": {"type": "string"}}}
    )
    @action(detail=False, methods=["get"], url_path="actions")
    def actions(self, request):
        values = (
            AuditLog.objects.filter(organization=request.org)
            .order_by()
            .values_list("action", flat=True)
            .distinct()
        )
        return Response(sorted(values))
