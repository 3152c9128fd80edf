"""Isolation builders for the crm models (tests/isolation_world.py)."""

from __future__ import annotations

from django.core.files.base import ContentFile

from crm import services
from crm.models import (
    Account,
    Case,
    Contact,
    ImportJob,
    Lead,
    Opportunity,
    RecordPhone,
    RecordType,
    RecordTypeConfig,
)
from tests.isolation_world import builds


@builds(Lead)
def build_lead(org, admin, canary):
    lead = services.do_create_record(
        org,
        admin,
        RecordType.LEAD,
        {"first_name": canary, "last_name": "Lead", "mobile_phone": "+14155550101"},
    )
    return _with_external_id(lead, admin)


def _with_external_id(record, admin):
    # The harness tries every identifier of a model (pks and external ids) on the model's {pk} routes and
    # checks its own organization with the first one; an external id equal to the pk keeps that check
    # meaningful. The by-external-id routes are walked with every identifier of the organization.
    return services.do_update_record(record, admin, {"external_id": str(record.pk)})


@builds(Contact)
def build_contact(org, admin, canary):
    contact = services.do_create_record(
        org,
        admin,
        RecordType.CONTACT,
        {"first_name": canary, "last_name": "Contact", "mobile_phone": "+14155550102"},
    )
    return _with_external_id(contact, admin)


@builds(Account)
def build_account(org, admin, canary):
    account = services.do_create_record(
        org, admin, RecordType.ACCOUNT, {"name": f"{canary} Inc", "main_phone": "+12125550103"}
    )
    return _with_external_id(account, admin)


@builds(Case)
def build_case(org, admin, canary):
    contact = Contact.objects.filter(organization=org).first() or build_contact(org, admin, canary)
    return services.do_create_record(
        org, admin, RecordType.CASE, {"subject": f"Case {canary}", "contact": contact}
    )


@builds(Opportunity)
def build_opportunity(org, admin, canary):
    return services.do_create_record(org, admin, RecordType.OPPORTUNITY, {"name": f"Deal {canary}"})


@builds(RecordTypeConfig)
def build_record_type_config(org, admin, canary):
    return services.do_save_record_type_config(org, admin, RecordType.CONTACT, priority=1)


@builds(RecordPhone)
def build_record_phone(org, admin, canary):
    # Maintained by record saves; make sure this organization has at least one.
    if not RecordPhone.objects.filter(organization=org).exists():
        build_lead(org, admin, canary)
    return RecordPhone.objects.filter(organization=org).first()


@builds(ImportJob)
def build_import_job(org, admin, canary):
    job = ImportJob(
        organization=org,
        created_by=admin,
        record_type=RecordType.LEAD,
        original_name=f"{canary}.csv",
        headers=["first_name", "last_name"],
        mapping={"first_name": "first_name", "last_name": "last_name"},
        status=ImportJob.Status.DONE,
    )
    job.file.save(f"{canary}.csv", ContentFile(f"first_name,last_name\n{canary},x\n".encode()), save=False)
    job.save()
    job.rejections.create(line=3, reason=f"bad row {canary}", row=[canary])
    return job
