"""factory_boy factories for the messaging models (rows only: nothing here calls Twilio)."""

import secrets

import factory

from messaging.models import (
    STATUS_RANK,
    Conversation,
    Message,
    MessageStatus,
    MessagingSettings,
    PhoneNumber,
    TwilioAccount,
)
from tests.factories import OrganizationFactory


class TwilioAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TwilioAccount
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    account_sid = factory.LazyFunction(lambda: "AC" + secrets.token_hex(16))
    friendly_name = factory.Sequence(lambda n: f"Account {n}")
    status = TwilioAccount.Status.VALID
    twilio_status = "active"

    @factory.post_generation
    def auth_token(obj, create, extracted, **kwargs):
        obj.set_auth_token(extracted or secrets.token_hex(16))
        if create:
            obj.save()


class PhoneNumberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PhoneNumber

    account = factory.SubFactory(TwilioAccountFactory)
    organization = factory.LazyAttribute(lambda o: o.account.organization)
    sid = factory.LazyFunction(lambda: "PN" + secrets.token_hex(16))
    phone_number = factory.Sequence(lambda n: f"+1415555{n % 10000:04d}")
    friendly_name = factory.LazyAttribute(lambda o: o.phone_number)
    number_type = PhoneNumber.NumberType.LOCAL
    sms_capable = True
    mms_capable = True
    voice_capable = True


class MessagingSettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MessagingSettings
        django_get_or_create = ("organization",)

    organization = factory.SubFactory(OrganizationFactory)


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    phone_number = factory.SubFactory(PhoneNumberFactory)
    organization = factory.LazyAttribute(lambda o: o.phone_number.organization)
    customer_number = factory.Sequence(lambda n: f"+1202555{n % 10000:04d}")


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    organization = factory.LazyAttribute(lambda o: o.conversation.organization)
    account = factory.LazyAttribute(lambda o: o.conversation.phone_number.account)
    direction = Message.Direction.INBOUND
    source = Message.Source.CUSTOMER
    status = MessageStatus.RECEIVED
    status_rank = factory.LazyAttribute(lambda o: STATUS_RANK[o.status])
    sid = factory.LazyFunction(lambda: "SM" + secrets.token_hex(16))
    from_number = factory.LazyAttribute(
        lambda o: (
            o.conversation.customer_number
            if o.direction == Message.Direction.INBOUND
            else o.conversation.phone_number.phone_number
        )
    )
    to_number = factory.LazyAttribute(
        lambda o: (
            o.conversation.phone_number.phone_number
            if o.direction == Message.Direction.INBOUND
            else o.conversation.customer_number
        )
    )
    body = factory.Sequence(lambda n: f"Message {n}")


# --- inbox ----------------------------------------------------------------------------------------


def store_inbound(
    number, customer_number: str, body: str = "Hello", *, sid: str | None = None, blocked=None, **defaults
):
    """Store an inbound text as the webhook path does (get-or-create the conversation, insert the
    message, touch the conversation, all in one transaction) and send ``inbound_message_stored`` after
    commit. Returns the Message."""
    from django.db import transaction

    from messaging.inbox.conversations import get_or_create_conversation, touch_conversation
    from messaging.services.consent import contact_refusal
    from messaging.signals import inbound_message_stored, send_after_commit

    with transaction.atomic():
        conversation, created = get_or_create_conversation(number, customer_number, **defaults)
        message = Message.objects.create(
            organization_id=number.organization_id,
            conversation=conversation,
            account_id=number.account_id,
            direction=Message.Direction.INBOUND,
            source=Message.Source.CUSTOMER,
            status=MessageStatus.RECEIVED,
            status_rank=STATUS_RANK[MessageStatus.RECEIVED],
            sid=sid or "SM" + secrets.token_hex(16),
            from_number=customer_number,
            to_number=number.phone_number,
            body=body,
        )
        touch_conversation(conversation, message)
        if blocked is None:
            refusal = contact_refusal(number.organization_id, customer_number)
            blocked = bool(refusal and "blocked" in refusal)
        send_after_commit(
            inbound_message_stored,
            message_id=message.pk,
            conversation_id=conversation.pk,
            organization_id=number.organization_id,
            created_conversation=created,
            blocked=blocked,
        )
    return message


def store_outbound(conversation, sender, body: str = "Reply"):
    """Store an outbound message the way SEND does and send ``outbound_message_created`` after commit."""
    from django.db import transaction

    from messaging.inbox.conversations import touch_conversation
    from messaging.signals import outbound_message_created, send_after_commit

    with transaction.atomic():
        message = Message.objects.create(
            organization_id=conversation.organization_id,
            conversation=conversation,
            account_id=conversation.phone_number.account_id,
            direction=Message.Direction.OUTBOUND,
            source=Message.Source.AGENT,
            status=MessageStatus.PENDING,
            from_number=conversation.phone_number.phone_number,
            to_number=conversation.customer_number,
            body=body,
            sender=sender,
        )
        touch_conversation(conversation, message)
        send_after_commit(
            outbound_message_created,
            message_id=message.pk,
            conversation_id=conversation.pk,
            organization_id=conversation.organization_id,
            sender_id=getattr(sender, "pk", None),
        )
    return message
