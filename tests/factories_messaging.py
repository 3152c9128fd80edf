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
