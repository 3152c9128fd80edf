"""factory_boy factories for the messaging models (rows only: nothing here calls Twilio)."""

import secrets

import factory

from messaging.models import MessagingSettings, PhoneNumber, TwilioAccount
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
