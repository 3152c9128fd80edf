"""factory_boy factories for the crm models."""

import factory

from crm.models import Account, Case, Contact, Lead, Opportunity
from tests.factories import OrganizationFactory


class LeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lead

    organization = factory.SubFactory(OrganizationFactory)
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda o: f"{o.first_name}.{o.last_name}@example.test".lower())
    mobile_phone = factory.Sequence(lambda n: f"+1415555{n % 10000:04d}")


class ContactFactory(LeadFactory):
    class Meta:
        model = Contact


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Faker("company")
    main_phone = factory.Sequence(lambda n: f"+1212555{n % 10000:04d}")


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    organization = factory.SubFactory(OrganizationFactory)
    subject = factory.Sequence(lambda n: f"Case {n}")


class OpportunityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Opportunity

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Deal {n}")
