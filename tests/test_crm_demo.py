"""seed_demo adds CRM records to the demo organizations, once."""

import pytest
from django.core.management import call_command

from crm.models import Contact, Lead, RecordPhone


@pytest.mark.django_db
def test_seed_demo_adds_crm_records_idempotently():
    call_command("seed_demo")
    counts = (Lead.objects.count(), Contact.objects.count(), RecordPhone.objects.count())
    assert counts[0] == 4 and counts[1] == 4
    call_command("seed_demo")
    assert (Lead.objects.count(), Contact.objects.count(), RecordPhone.objects.count()) == counts
    maria = Lead.objects.get(organization__slug="acme-realty", external_id="demo-lead-1")
    assert maria.mobile_phone_e164 == "+14155550134" and maria.owner.email == "agent1@acme.test"
