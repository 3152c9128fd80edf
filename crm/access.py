"""Access helpers: CRM objects looked up inside the caller's organization (same 404 for missing and
foreign)."""

from __future__ import annotations

from django.http import Http404

from crm.models import CrmRecord, ImportJob, RecordTypeConfig, model_for
from tenancy.access import get_in_org
from tenancy.models import Organization


def access_record(org: Organization, record_type: str, pk) -> CrmRecord:
    return get_in_org(model_for(record_type).objects.select_related("owner", "team"), org, pk)


def access_import_job(org: Organization, pk) -> ImportJob:
    return get_in_org(ImportJob.objects.all(), org, pk)


def access_record_type_config(org: Organization, pk) -> RecordTypeConfig:
    return get_in_org(RecordTypeConfig.objects.all(), org, pk)


def access_record_by_external_id(org: Organization, record_type: str, external_id: str) -> CrmRecord:
    if "\x00" in external_id:
        raise Http404("Not found.")  # no stored id can hold a NUL byte
    record = (
        model_for(record_type)
        .objects.select_related("owner", "team")
        .filter(organization=org, external_id=external_id)
        .exclude(external_id="")
        .first()
    )
    if record is None:
        raise Http404("Not found.")
    return record
