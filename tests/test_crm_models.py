"""CRM records: phone normalization on save, the phone index, matching priority, compliance and events."""

from __future__ import annotations

import phonenumbers
import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.dispatch import receiver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm import services
from crm.events import RecordEvent, record_changed
from crm.models import Account, Contact, Lead, RecordPhone, RecordType, RecordTypeConfig
from crm.texting import Texting, texting
from tenancy.models import AuditLog


@pytest.fixture
def events():
    """Collect the domain events sent during a test."""
    seen: list[RecordEvent] = []

    @receiver(record_changed, weak=False)
    def collect(sender, event, **kwargs):
        seen.append(event)

    yield seen
    record_changed.disconnect(collect)


@pytest.mark.django_db
def test_invalid_phone_is_a_field_error_naming_field_and_value(org_a, alice):
    with pytest.raises(ValidationError) as excinfo:
        services.do_create_record(
            org_a, alice, RecordType.CONTACT, {"first_name": "Ann", "mobile_phone": "555-12"}
        )
    assert excinfo.value.message_dict == {
        "mobile_phone": ["'555-12' is not a valid phone number for Contact mobile."]
    }
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_every_bad_phone_field_is_reported_at_once(org_a, alice):
    with pytest.raises(ValidationError) as excinfo:
        services.do_create_record(
            org_a,
            alice,
            RecordType.LEAD,
            {"last_name": "Bo", "business_phone": "12", "home_phone": "abc"},
        )
    assert excinfo.value.message_dict == {
        "business_phone": ["'12' is not a valid phone number for Lead business."],
        "home_phone": ["'abc' is not a valid phone number for Lead home."],
    }


@pytest.mark.django_db
def test_model_save_normalizes_too_so_no_path_stores_raw_only(org_a):
    lead = Lead(organization=org_a, last_name="Direct", mobile_phone="(415) 555-0134")
    lead.save()
    assert lead.mobile_phone == "(415) 555-0134"  # kept for display
    assert lead.mobile_phone_e164 == "+14155550134"
    bad = Lead(organization=org_a, last_name="Bad", home_phone="555-12")
    with pytest.raises(ValidationError):
        bad.save()


@pytest.mark.django_db
def test_default_country_of_the_record_type_applies_to_numbers_without_one(org_a, alice):
    services.do_save_record_type_config(org_a, alice, RecordType.CONTACT, default_country="44")
    contact = services.do_create_record(
        org_a, alice, RecordType.CONTACT, {"first_name": "Jo", "mobile_phone": "07911 123456"}
    )
    assert contact.mobile_phone_e164 == "+447911123456"
    lead = services.do_create_record(
        org_a, alice, RecordType.LEAD, {"first_name": "Jo", "mobile_phone": "415 555 0134"}
    )
    assert lead.mobile_phone_e164 == "+14155550134"  # leads keep the default (+1)


@pytest.mark.django_db
def test_phone_index_follows_updates_and_deletes(org_a, alice):
    lead = services.do_create_record(
        org_a, alice, RecordType.LEAD, {"first_name": "Al", "mobile_phone": "+14155550100"}
    )
    assert list(RecordPhone.objects.values_list("e164", "field")) == [("+14155550100", "mobile_phone")]
    services.do_update_record(lead, alice, {"mobile_phone": "", "home_phone": "+14155550199"})
    assert list(RecordPhone.objects.values_list("e164", "field")) == [("+14155550199", "home_phone")]
    services.do_delete_record(lead, alice)
    assert not RecordPhone.objects.exists()


@pytest.mark.django_db
def test_find_by_phone_uses_priority_and_stays_in_the_organization(org_a, org_b, alice, bob):
    lead = services.do_create_record(
        org_a, alice, RecordType.LEAD, {"first_name": "L", "mobile_phone": "+14155550100"}
    )
    contact = services.do_create_record(
        org_a, alice, RecordType.CONTACT, {"first_name": "C", "business_phone": "415-555-0100"}
    )
    services.do_create_record(
        org_b, bob, RecordType.CONTACT, {"first_name": "B", "mobile_phone": "+14155550100"}
    )
    assert services.find_records_by_phone(org_a, "(415) 555-0100") == [contact, lead]
    services.do_save_record_type_config(org_a, alice, RecordType.LEAD, priority=0)
    assert services.find_records_by_phone(org_a, "+1 415 555 0100") == [lead, contact]
    assert services.find_records_by_phone(org_a, "not a number") == []


@pytest.mark.django_db
def test_matching_is_one_indexed_query_on_the_phone_index(org_a, alice, django_assert_num_queries):
    services.do_create_record(
        org_a, alice, RecordType.LEAD, {"first_name": "L", "mobile_phone": "+14155550100"}
    )
    # the record-type configs (default country and priority, read once), the phone index, the matched leads
    with django_assert_num_queries(3):
        assert len(services.find_records_by_phone(org_a, "+14155550100")) == 1
    # the configs stay cached in the process for the next number (quicksend/org_cache.py)
    with django_assert_num_queries(2):
        assert len(services.find_records_by_phone(org_a, "+14155550100")) == 1


@pytest.mark.django_db
def test_compliance_field_and_do_not_contact_decide_whether_to_text(org_a, alice):
    contact = services.do_create_record(
        org_a,
        alice,
        RecordType.CONTACT,
        {"first_name": "C", "mobile_phone": "+14155550100", "allow_sms": False},
    )
    answer = texting(contact)
    assert not answer.allowed and "Allow SMS" in answer.reason
    assert answer.number == "+14155550100"
    services.do_save_record_type_config(org_a, alice, RecordType.CONTACT, compliance_field="")
    assert texting(contact) == Texting(True, "+14155550100", "")
    services.do_update_record(contact, alice, {"do_not_contact": True})
    assert texting(contact).allowed is False
    services.do_save_record_type_config(org_a, alice, RecordType.CONTACT, sms_phone_field="business_phone")
    assert texting(contact).number == ""


@pytest.mark.django_db
def test_record_type_config_refuses_fields_the_type_does_not_have(org_a, alice):
    with pytest.raises(ValidationError) as excinfo:
        services.do_save_record_type_config(org_a, alice, RecordType.ACCOUNT, sms_phone_field="mobile_phone")
    assert "sms_phone_field" in excinfo.value.message_dict
    with pytest.raises(ValidationError):
        services.do_save_record_type_config(org_a, alice, RecordType.LEAD, default_country="999")
    assert not RecordTypeConfig.objects.exists()


@pytest.mark.django_db
def test_external_id_is_unique_per_organization_and_type(org_a, org_b, alice, bob):
    services.do_create_record(org_a, alice, RecordType.LEAD, {"first_name": "A", "external_id": "x1"})
    services.do_create_record(org_a, alice, RecordType.CONTACT, {"first_name": "A", "external_id": "x1"})
    services.do_create_record(org_b, bob, RecordType.LEAD, {"first_name": "B", "external_id": "x1"})
    with pytest.raises(ValidationError):
        services.do_create_record(org_a, alice, RecordType.LEAD, {"first_name": "A2", "external_id": "x1"})
    with pytest.raises(IntegrityError), transaction.atomic():
        Lead.objects.bulk_create([Lead(organization=org_a, first_name="raw", external_id="x1")])
    # blank external ids never collide
    services.do_create_record(org_a, alice, RecordType.LEAD, {"first_name": "n1"})
    services.do_create_record(org_a, alice, RecordType.LEAD, {"first_name": "n2"})


@pytest.mark.django_db(transaction=True)
def test_events_are_sent_after_commit_with_the_changes(org_a, alice, aaron, events):
    with transaction.atomic():
        lead = services.do_create_record(org_a, alice, RecordType.LEAD, {"first_name": "Ev"})
        assert events == []  # not before the commit
    assert [e.kind for e in events] == ["created"]
    events.clear()
    services.do_update_record(lead, alice, {"status": "qualified", "owner": aaron, "company": "Acme"})
    kinds = {e.kind: e for e in events}
    assert set(kinds) == {"updated", "status_changed", "owner_changed"}
    assert kinds["status_changed"].changes == {"status": ["new", "qualified"]}
    assert kinds["owner_changed"].changes == {"owner": [alice.pk, aaron.pk]}
    assert kinds["updated"].record_id == lead.pk and kinds["updated"].actor_id == alice.pk


@pytest.mark.django_db(transaction=True)
def test_no_event_for_a_rolled_back_change(org_a, alice, events):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.do_create_record(org_a, alice, RecordType.LEAD, {"first_name": "Gone"})
        raise RuntimeError
    assert events == []


@pytest.mark.django_db
def test_owner_must_be_a_member_and_related_records_must_be_ours(org_a, org_b, alice, bob):
    with pytest.raises(ValidationError) as excinfo:
        services.do_create_record(org_a, alice, RecordType.LEAD, {"first_name": "X", "owner": bob})
    assert "owner" in excinfo.value.message_dict
    foreign = services.do_create_record(org_b, bob, RecordType.ACCOUNT, {"name": "Globex"})
    with pytest.raises(ValidationError):
        services.do_create_record(org_a, alice, RecordType.CASE, {"subject": "S", "account": foreign})


@pytest.mark.django_db
def test_reassign_writes_audit_per_record(org_a, alice, aaron):
    leads = [
        services.do_create_record(org_a, alice, RecordType.LEAD, {"first_name": f"L{i}"}) for i in range(3)
    ]
    assert services.do_reassign_records(leads, alice, aaron) == 3
    assert services.do_reassign_records(leads, alice, aaron) == 0
    assert AuditLog.objects.filter(action="lead.updated").count() == 3
    assert set(Lead.objects.values_list("owner", flat=True)) == {aaron.pk}


@pytest.mark.django_db
def test_account_main_phone_label_in_errors(org_a, alice):
    with pytest.raises(ValidationError) as excinfo:
        services.do_create_record(org_a, alice, RecordType.ACCOUNT, {"name": "A", "main_phone": "1"})
    assert excinfo.value.message_dict["main_phone"] == [
        "'1' is not a valid phone number for Account main phone."
    ]
    assert not Account.objects.exists()


_formats = st.sampled_from(
    [
        phonenumbers.PhoneNumberFormat.E164,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.NATIONAL,
        phonenumbers.PhoneNumberFormat.RFC3966,
    ]
)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    region=st.sampled_from(["US", "GB", "DE", "FR", "AU", "BR", "IN", "MX"]),
    fmt=_formats,
    field=st.sampled_from(["mobile_phone", "business_phone", "home_phone"]),
)
def test_any_format_saved_on_a_record_is_found_by_any_other_format(org_a, region, fmt, field):
    example = phonenumbers.example_number(region)
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    calling_code = str(example.country_code)
    typed = phonenumbers.format_number(example, fmt).removeprefix("tel:")
    contact = Contact(organization=org_a, first_name="H", **{field: typed})
    contact.save(default_country=calling_code)
    assert getattr(contact, field) == typed  # the raw input is kept
    assert getattr(contact, f"{field}_e164") == e164
    found = services.find_records_by_phone(
        org_a, phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    )
    assert contact in found
    contact.delete()


@pytest.mark.django_db
def test_types_creatable_from_a_conversation_follow_the_settings(org_a, alice):
    assert services.types_creatable_from_conversation(org_a) == ["case", "opportunity"]
    services.do_save_record_type_config(org_a, alice, RecordType.LEAD, allow_create_from_conversation=True)
    services.do_save_record_type_config(
        org_a, alice, RecordType.OPPORTUNITY, allow_create_from_conversation=False
    )
    assert services.types_creatable_from_conversation(org_a) == ["lead", "case"]
