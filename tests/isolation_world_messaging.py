"""Isolation builders for the messaging models (rows created directly: no Twilio call)."""

from django.core.files.base import ContentFile

from messaging.models import (
    ConsentEvent,
    ConsentState,
    Conversation,
    ConversationUserState,
    HistorySyncState,
    InboundEvent,
    InboxSettings,
    InboxStep,
    MemberMessagingSettings,
    Message,
    MessageMedia,
    MessageSession,
    MessagingSettings,
    Notification,
    PhoneNumber,
    StatusEvent,
    TwilioAccount,
)
from tenancy.models import Membership, Team
from tests.factories_messaging import (
    ConversationFactory,
    MessageFactory,
    PhoneNumberFactory,
    TwilioAccountFactory,
)
from tests.isolation_world import builds


@builds(TwilioAccount)
def build_twilio_account(org, admin, canary):
    return TwilioAccountFactory(
        organization=org, friendly_name=f"Account {canary}", auth_token=f"tok{canary}"
    )


@builds(PhoneNumber)
def build_phone_number(org, admin, canary):
    account = TwilioAccount.objects.filter(organization=org).first()
    account = account or build_twilio_account(org, admin, canary)
    number = PhoneNumberFactory(account=account, label=f"Label {canary}", friendly_name=f"Friendly {canary}")
    number.assigned_members.set(Membership.objects.filter(organization=org))
    number.assigned_teams.set(Team.objects.filter(organization=org))
    return number


@builds(MessagingSettings)
def build_messaging_settings(org, admin, canary):
    number = PhoneNumber.objects.filter(organization=org).first() or build_phone_number(org, admin, canary)
    row, _ = MessagingSettings.objects.update_or_create(organization=org, defaults={"default_number": number})
    return row


@builds(MemberMessagingSettings)
def build_member_messaging_settings(org, admin, canary):
    number = PhoneNumber.objects.filter(organization=org).first() or build_phone_number(org, admin, canary)
    membership = Membership.objects.get(organization=org, user=admin)
    row, _ = MemberMessagingSettings.objects.update_or_create(
        membership=membership, defaults={"organization": org, "default_number": number}
    )
    return row


@builds(Conversation)
def build_conversation(org, admin, canary):
    number = PhoneNumber.objects.filter(organization=org).first() or build_phone_number(org, admin, canary)
    return ConversationFactory(phone_number=number, owner=admin, last_message_preview=f"Preview {canary}")


@builds(Message)
def build_message(org, admin, canary):
    conversation = Conversation.objects.filter(organization=org).first() or build_conversation(
        org, admin, canary
    )
    return MessageFactory(conversation=conversation, body=f"Body {canary}")


@builds(InboxStep)
def build_inbox_step(org, admin, canary):
    message = Message.objects.filter(organization=org).first() or build_message(org, admin, canary)
    step, _ = InboxStep.objects.get_or_create(
        message=message, defaults={"organization": org, "error": f"Failed {canary}"}
    )
    return step


@builds(MessageMedia)
def build_message_media(org, admin, canary):
    message = Message.objects.filter(organization=org).first() or build_message(org, admin, canary)
    media = MessageMedia(
        organization=org, message=message, filename=f"{canary}.png", content_type="image/png"
    )
    media.file.save(f"{canary}.png", ContentFile(b"\x89PNG\r\n\x1a\n" + canary.encode()), save=False)
    media.size = media.file.size
    media.save()
    return media


@builds(ConsentState)
def build_consent_state(org, admin, canary):
    return ConsentState.objects.create(organization=org, phone_number="+12025550177", blocked=True)


@builds(ConsentEvent)
def build_consent_event(org, admin, canary):
    return ConsentEvent.objects.create(
        organization=org,
        phone_number="+12025550177",
        action="block",
        method="agent",
        actor=admin,
        note=canary,
    )


# --- receiving -------------------------------------------------------------------------------------


@builds(InboundEvent)
def build_inbound_event(org, admin, canary):
    from django.utils import timezone

    account = TwilioAccount.objects.filter(organization=org).first() or build_twilio_account(
        org, admin, canary
    )
    sid = "SM" + canary.encode().hex()[:32].ljust(32, "0")
    return InboundEvent.objects.create(
        organization=org,
        account=account,
        message_sid=sid,
        payload={"MessageSid": sid, "Body": f"Body {canary}"},
        received_at=timezone.now(),
    )


@builds(StatusEvent)
def build_status_event(org, admin, canary):
    from django.utils import timezone

    account = TwilioAccount.objects.filter(organization=org).first() or build_twilio_account(
        org, admin, canary
    )
    return StatusEvent.objects.create(
        organization=org,
        account=account,
        message_sid="SM" + canary.encode().hex()[:32].ljust(32, "1"),
        status="delivered",
        received_at=timezone.now(),
    )


# --- inbox ----------------------------------------------------------------------------------------


@builds(InboxSettings)
def build_inbox_settings(org, admin, canary):
    row, _ = InboxSettings.objects.update_or_create(organization=org, defaults={"idle_timeout_minutes": 7})
    return row


@builds(ConversationUserState)
def build_conversation_user_state(org, admin, canary):
    conversation = Conversation.objects.filter(organization=org).first() or build_conversation(
        org, admin, canary
    )
    row, _ = ConversationUserState.objects.update_or_create(
        conversation=conversation, user=admin, defaults={"organization": org, "unread_count": 3}
    )
    return row


@builds(Notification)
def build_notification(org, admin, canary):
    conversation = Conversation.objects.filter(organization=org).first() or build_conversation(
        org, admin, canary
    )
    return Notification.objects.create(
        organization=org, recipient=admin, kind=Notification.Kind.REQUEST, conversation=conversation
    )


@builds(MessageSession)
def build_message_session(org, admin, canary):
    from django.utils import timezone

    conversation = Conversation.objects.filter(organization=org).first() or build_conversation(
        org, admin, canary
    )
    now = timezone.now()
    return MessageSession.objects.create(
        organization=org, conversation=conversation, started_at=now, ends_at=now, owner=admin, message_count=1
    )


@builds(HistorySyncState)
def build_history_sync_state(org, admin, canary):
    number = PhoneNumber.objects.filter(organization=org).first() or build_phone_number(org, admin, canary)
    row, _ = HistorySyncState.objects.get_or_create(
        phone_number=number, defaults={"organization": org, "last_error": canary}
    )
    return row
