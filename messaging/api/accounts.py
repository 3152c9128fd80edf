"""REST API: Twilio accounts (admins), numbers, the organization's messaging settings, my default number."""

from __future__ import annotations

from django.db.models import Prefetch
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging import access
from messaging.api.serializers import (
    MessagingSettingsSerializer,
    MyDefaultNumberSerializer,
    PhoneNumberSerializer,
    TwilioAccountConnectedSerializer,
    TwilioAccountSerializer,
    TwilioAccountUpdateSerializer,
    TwilioFailureSerializer,
)
from messaging.models import MemberMessagingSettings, PhoneNumber, TwilioAccount
from messaging.services import numbers as number_services
from messaging.twilio import accounts as account_services
from tenancy.models import Membership
from tenancy.permissions import IsOrgAdmin, IsOrgAdminOrReadOnly


class HideAuthTokenMixin:
    def initial(self, request, *args, **kwargs):
        # Hide the token from Django's error reports (the DEBUG page, admin e-mails), like
        # @sensitive_post_parameters does for plain views.
        request._request.sensitive_post_parameters = ["auth_token"]
        super().initial(request, *args, **kwargs)


FAILURES = {400: TwilioFailureSerializer, 503: TwilioFailureSerializer}


@extend_schema_view(
    list=extend_schema(summary="List the organization's Twilio accounts (admin)"),
    retrieve=extend_schema(summary="Get a Twilio account (admin)"),
    create=extend_schema(
        summary="Connect a Twilio account (admin): verified with Twilio before anything is stored",
        request=TwilioAccountSerializer,
        responses={201: TwilioAccountConnectedSerializer, **FAILURES},
        examples=[
            OpenApiExample(
                "Connect",
                request_only=True,
                value={
                    "account_sid": "AC" + "0" * 32,
                    "auth_token": "your auth token",
                    "friendly_name": "Main",
                },
            ),
            OpenApiExample(
                "Wrong token",
                response_only=True,
                status_codes=["400"],
                value={
                    "detail": "Authentication failed. Please check your Twilio SID and Auth Token.",
                    "code": 20003,
                    "kind": "auth",
                    "retryable": False,
                },
            ),
        ],
    ),
    partial_update=extend_schema(
        summary="Rename a Twilio account or replace its auth token (verified first) (admin)",
        request=TwilioAccountUpdateSerializer,
        responses={200: TwilioAccountSerializer, **FAILURES},
    ),
    destroy=extend_schema(summary="Disconnect a Twilio account and remove its numbers (admin)"),
)
class TwilioAccountViewSet(
    HideAuthTokenMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = TwilioAccountSerializer
    permission_classes = [IsOrgAdmin]
    http_method_names = ["get", "post", "patch", "delete"]
    queryset = TwilioAccount.objects.none()

    def get_queryset(self):
        return TwilioAccount.objects.filter(organization=self.request.org)

    def get_object(self):
        return access.access_twilio_account(self.request.org, self.kwargs["pk"])

    @sensitive_variables()
    def create(self, request, *args, **kwargs):
        serializer = TwilioAccountSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = account_services.do_connect_twilio_account(
            request.org,
            request.user,
            data["account_sid"],
            data["auth_token"],
            data.get("friendly_name", ""),
        )
        account = result.account
        account.detail = result.messages[0]
        account.numbers_sync = result.messages[1]
        return Response(TwilioAccountConnectedSerializer(account).data, status=status.HTTP_201_CREATED)

    @sensitive_variables()
    def partial_update(self, request, *args, **kwargs):
        account = self.get_object()
        serializer = TwilioAccountUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        account_services.do_update_twilio_account(account, request.user, **serializer.validated_data)
        return Response(TwilioAccountSerializer(account).data)

    def perform_destroy(self, instance):
        account_services.do_delete_twilio_account(instance, self.request.user)

    @extend_schema(
        summary="Validate the stored credentials again (admin)",
        request=None,
        responses={200: TwilioAccountSerializer},
        description="Always 200: the account's `status` and `last_validation_result` say how it went.",
    )
    @action(detail=True, methods=["post"])
    def validate(self, request, pk=None):
        account = self.get_object()
        account_services.do_validate_twilio_account(account, request.user)
        return Response(TwilioAccountSerializer(account).data)

    @extend_schema(
        summary="Re-sync the account's numbers from Twilio (admin)",
        request=None,
        responses={200: PhoneNumberSerializer(many=True), **FAILURES},
    )
    @action(detail=True, methods=["post"], url_path="refresh-numbers")
    def refresh_numbers(self, request, pk=None):
        account = self.get_object()
        account_services.do_refresh_numbers(account, request.user)
        numbers = _numbers_queryset(request.org).filter(account=account)
        return Response(PhoneNumberSerializer(numbers, many=True, context=_number_context(request)).data)


def _numbers_queryset(org):
    return PhoneNumber.objects.filter(organization=org).prefetch_related(
        Prefetch("assigned_members", queryset=Membership.objects.only("pk")), "assigned_teams"
    )


def _number_context(request) -> dict:
    return {
        "request": request,
        "usable_ids": set(access.numbers_usable_by(request.membership).values_list("pk", flat=True)),
        "default_id": access.messaging_settings_for(request.org).default_number_id,
    }


@extend_schema_view(
    list=extend_schema(
        summary="List the organization's numbers with labels; `usable_by_me` says if you may send from one",
        parameters=[
            OpenApiParameter("usable", OpenApiTypes.BOOL, description="true: only numbers you may send from"),
            OpenApiParameter("active", OpenApiTypes.BOOL, description="true: only numbers still at Twilio"),
        ],
    ),
    retrieve=extend_schema(summary="Get a number"),
    partial_update=extend_schema(summary="Set a number's label and who it is assigned to (admin)"),
)
class PhoneNumberViewSet(
    HideAuthTokenMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = PhoneNumberSerializer
    permission_classes = [IsOrgAdminOrReadOnly]
    http_method_names = ["get", "post", "patch"]
    queryset = PhoneNumber.objects.none()

    def get_queryset(self):
        qs = _numbers_queryset(self.request.org)
        params = self.request.query_params
        if params.get("usable") in ("true", "1"):
            qs = qs.filter(pk__in=access.numbers_usable_by(self.request.membership).values("pk"))
        if params.get("active") in ("true", "1"):
            qs = qs.filter(is_active=True)
        return qs

    def get_object(self):
        number = access.access_phone_number(self.request.org, self.kwargs["pk"])
        return _numbers_queryset(self.request.org).get(pk=number.pk)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), **_number_context(self.request)}

    def partial_update(self, request, *args, **kwargs):
        number = self.get_object()
        serializer = PhoneNumberSerializer(number, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        number_services.do_update_number(
            number,
            request.user,
            label=data.get("label"),
            member_ids=data.get("member_ids"),
            team_ids=data.get("team_ids"),
        )
        return Response(PhoneNumberSerializer(self.get_object(), context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Configure this number for me: set its SMS URL (POST) at Twilio to QuickSend's (admin)",
        request=None,
        responses={200: PhoneNumberSerializer, **FAILURES},
    )
    @action(detail=True, methods=["post"], url_path="configure-webhook")
    def configure_webhook(self, request, pk=None):
        number = access.access_phone_number(request.org, pk)
        number_services.do_configure_number_webhook(number, request.user)
        return Response(PhoneNumberSerializer(self.get_object(), context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Re-sync the numbers of every connected account (admin)",
        request=None,
        responses={200: PhoneNumberSerializer(many=True), **FAILURES},
    )
    @action(detail=False, methods=["post"])
    def refresh(self, request):
        for account in TwilioAccount.objects.filter(organization=request.org):
            account_services.do_refresh_numbers(account, request.user)
        qs = _numbers_queryset(request.org)
        return Response(PhoneNumberSerializer(qs, many=True, context=self.get_serializer_context()).data)


class MessagingSettingsView(APIView):
    permission_classes = [IsOrgAdminOrReadOnly]

    @extend_schema(
        summary="The organization's default sender and number-use rule", responses=MessagingSettingsSerializer
    )
    def get(self, request):
        return Response(MessagingSettingsSerializer(access.messaging_settings_for(request.org)).data)

    @extend_schema(
        summary="Change the default sender or let agents use any number (admin)",
        request=MessagingSettingsSerializer,
        responses=MessagingSettingsSerializer,
    )
    def patch(self, request):
        serializer = MessagingSettingsSerializer(
            data=request.data, partial=True, context={"request": request}
        )
        serializer.is_valid(raise_exception=True)
        kwargs = {}
        if "default_number" in serializer.validated_data:
            kwargs["default_number"] = serializer.validated_data["default_number"]
        if "agents_may_use_any_number" in serializer.validated_data:
            kwargs["agents_may_use_any_number"] = serializer.validated_data["agents_may_use_any_number"]
        row = number_services.do_update_messaging_settings(request.org, request.user, **kwargs)
        return Response(MessagingSettingsSerializer(row).data)


class MyDefaultNumberView(APIView):
    def _data(self, request) -> dict:
        own = MemberMessagingSettings.objects.filter(membership=request.membership).first()
        effective = access.default_sender_for(request.membership)
        return {
            "default_number": own.default_number_id if own else None,
            "effective_default": effective.pk if effective else None,
        }

    @extend_schema(
        summary="Your default sender number (and the one actually used: yours, else the organization's)",
        responses=MyDefaultNumberSerializer,
    )
    def get(self, request):
        return Response(self._data(request))

    @extend_schema(
        summary="Set your default sender (a number you may send from; null → the organization's)",
        request=MyDefaultNumberSerializer,
        responses=MyDefaultNumberSerializer,
    )
    def put(self, request):
        serializer = MyDefaultNumberSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        number_services.do_set_member_default_number(
            request.membership, request.user, serializer.validated_data["default_number"]
        )
        return Response(self._data(request))
