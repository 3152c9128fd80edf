"""CRM pages: list (search, filters, pagination), detail with the SMS widget panel, create/edit/delete,
reassignment, CSV import with progress, record-type settings. Bob (another organization) gets 404."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from crm import services
from crm.imports import run_import
from crm.models import ImportJob, Lead, RecordType, RecordTypeConfig
from tests.factories import TeamFactory
from tests.factories_crm import LeadFactory


@pytest.fixture
def lead(org_a, alice):
    return services.do_create_record(
        org_a,
        alice,
        RecordType.LEAD,
        {
            "first_name": "Maria",
            "last_name": "Lopez",
            "company": "Lopez Homes",
            "mobile_phone": "(415) 555-0134",
        },
    )


@pytest.mark.django_db
def test_list_searches_name_phone_email_company(aaron_client, lead, org_a):
    LeadFactory(organization=org_a, first_name="Other", last_name="Person", company="Initech")
    for q in ("maria", "Lopez Homes", "+1 415 555 0134", "4155550134"):
        body = aaron_client.get("/crm/leads/", {"q": q}).content.decode()
        assert "Maria Lopez" in body and "Other Person" not in body, q
    assert "Other Person" in aaron_client.get("/crm/leads/").content.decode()


@pytest.mark.django_db
def test_list_filters_by_owner_team_status_and_is_cursor_paginated(alice_client, org_a, aaron, alice):
    team = TeamFactory(organization=org_a)
    LeadFactory.create_batch(55, organization=org_a, owner=alice)
    services.do_create_record(
        org_a,
        alice,
        RecordType.LEAD,
        {"first_name": "Teamed", "last_name": "Up", "team": team, "owner": aaron},
    )
    first = alice_client.get("/crm/leads/", {"sort": "oldest"})
    assert first.context["next_link"] and "cursor=" in first.context["next_link"]
    assert len(first.context["records"]) == 50
    second = alice_client.get(first.context["next_link"])
    assert len(second.context["records"]) == 6
    assert [r.first_name for r in alice_client.get("/crm/leads/", {"team": team.pk}).context["records"]] == [
        "Teamed"
    ]
    assert [
        r.first_name for r in alice_client.get("/crm/leads/", {"owner": aaron.pk}).context["records"]
    ] == ["Teamed"]
    assert len(alice_client.get("/crm/leads/", {"status": "won"}).context["records"]) == 0


@pytest.mark.django_db
def test_list_page_query_count_is_constant(alice_client, org_a, django_assert_num_queries):
    LeadFactory.create_batch(3, organization=org_a)
    alice_client.get("/crm/leads/")
    with django_assert_num_queries(9) as before:
        alice_client.get("/crm/leads/")
    LeadFactory.create_batch(30, organization=org_a)
    with django_assert_num_queries(len(before.captured_queries)):
        alice_client.get("/crm/leads/")


@pytest.mark.django_db
def test_detail_shows_fields_owner_and_the_reserved_sms_panel(aaron_client, lead, bob_client):
    body = aaron_client.get(f"/crm/leads/{lead.pk}/").content.decode()
    assert "Lopez Homes" in body and "+1 415-555-0134" in body
    assert '<section id="sms-widget"' in body and f'data-record-id="{lead.pk}"' in body
    assert bob_client.get(f"/crm/leads/{lead.pk}/").status_code == 404


@pytest.mark.django_db
def test_account_detail_lists_related_records(alice_client, org_a, alice):
    account = services.do_create_record(org_a, alice, RecordType.ACCOUNT, {"name": "Reed Holdings"})
    services.do_create_record(org_a, alice, RecordType.CONTACT, {"first_name": "Justin", "account": account})
    services.do_create_record(
        org_a, alice, RecordType.CASE, {"subject": "Broken lockbox", "account": account}
    )
    body = alice_client.get(f"/crm/accounts/{account.pk}/").content.decode()
    assert "Justin" in body and "Broken lockbox" in body


@pytest.mark.django_db
def test_create_shows_phone_error_naming_field_and_value(aaron_client, aaron):
    response = aaron_client.post("/crm/contacts/new", {"first_name": "Ann", "mobile_phone": "555-12"})
    assert response.status_code == 200
    assert "&#x27;555-12&#x27; is not a valid phone number for Contact mobile." in response.content.decode()
    response = aaron_client.post("/crm/contacts/new", {"first_name": "Ann", "mobile_phone": "415 555 0100"})
    assert response.status_code == 302
    assert aaron_client.get(response["Location"]).status_code == 200


@pytest.mark.django_db
def test_edit_and_delete_with_confirmation(alice_client, lead, bob_client):
    response = alice_client.post(
        f"/crm/leads/{lead.pk}/edit",
        {"first_name": "Maria", "last_name": "Lopez-Diaz", "status": "qualified"},
    )
    assert response.status_code == 302
    lead.refresh_from_db()
    assert (lead.last_name, lead.status) == ("Lopez-Diaz", "qualified")
    assert bob_client.post(f"/crm/leads/{lead.pk}/edit", {"first_name": "x"}).status_code == 404
    assert bob_client.post(f"/crm/leads/{lead.pk}/delete").status_code == 404
    confirm = alice_client.get(f"/crm/leads/{lead.pk}/delete")
    assert "cannot be undone" in confirm.content.decode() and Lead.objects.filter(pk=lead.pk).exists()
    # A POST that skipped the dialog (no JavaScript) gets the confirmation page; the confirmed one deletes.
    unconfirmed = alice_client.post(f"/crm/leads/{lead.pk}/delete")
    assert unconfirmed.status_code == 200 and "cannot be undone" in unconfirmed.content.decode()
    assert Lead.objects.filter(pk=lead.pk).exists()
    assert alice_client.post(f"/crm/leads/{lead.pk}/delete", {"confirmed": "yes"}).status_code == 302
    assert not Lead.objects.filter(pk=lead.pk).exists()


@pytest.mark.django_db
def test_reassign_from_detail_and_in_bulk_from_the_list(alice_client, lead, aaron, org_a, alice, bob_client):
    other = services.do_create_record(org_a, alice, RecordType.LEAD, {"first_name": "Second"})
    assert bob_client.post(f"/crm/leads/{lead.pk}/reassign", {"owner": aaron.pk}).status_code == 404
    alice_client.post(f"/crm/leads/{lead.pk}/reassign", {"owner": aaron.pk})
    lead.refresh_from_db()
    assert lead.owner == aaron
    alice_client.post("/crm/leads/reassign", {"ids": [lead.pk, other.pk], "owner": alice.pk})
    assert set(Lead.objects.values_list("owner", flat=True)) == {alice.pk}


@pytest.mark.django_db
def test_bulk_reassign_page_refuses_foreign_ids(alice_client, lead, aaron, org_b, bob):
    theirs = services.do_create_record(org_b, bob, RecordType.LEAD, {"first_name": "Theirs"})
    alice_client.post("/crm/leads/reassign", {"ids": [lead.pk, theirs.pk], "owner": aaron.pk})
    assert Lead.objects.get(pk=theirs.pk).owner == bob
    assert Lead.objects.get(pk=lead.pk).owner != aaron


@pytest.mark.django_db
def test_import_page_upload_preview_map_start_and_progress(
    alice_client, org_a, django_capture_on_commit_callbacks
):
    data = b"Full Name,Cell,Notes\nAnn Lee,4155550101,vip\nBad Row,555-12,\n"
    response = alice_client.post(
        "/crm/imports/", {"record_type": "lead", "file": SimpleUploadedFile("people.csv", data)}
    )
    assert response.status_code == 302
    detail_url = response["Location"]
    preview = alice_client.get(detail_url).content.decode()
    assert "Ann Lee" in preview and "Start import" in preview
    job = ImportJob.objects.get()
    with django_capture_on_commit_callbacks():
        alice_client.post(
            detail_url,
            {
                "col_0": "full_name",
                "col_1": "mobile_phone",
                "col_2": "custom:notes",
                "duplicate_policy": "skip",
                "match_key": "phone",
            },
        )
    status = alice_client.get(f"/crm/imports/{job.pk}/status").content.decode()
    assert 'hx-trigger="every 1s"' in status  # still polling while queued
    run_import(job.pk)
    status = alice_client.get(f"/crm/imports/{job.pk}/status").content.decode()
    assert "hx-trigger" not in status and "1 imported" in status and "1 rejected" in status
    assert "Download the report" in status
    assert alice_client.get(f"/crm/imports/{job.pk}/report.csv")["Content-Type"].startswith("text/csv")
    assert Lead.objects.get().custom_fields == {"notes": "vip"}


@pytest.mark.django_db
def test_import_pages_are_for_admins_of_the_organization(aaron_client, bob_client, alice, org_a):
    from crm.imports import do_create_import_job

    job, _ = do_create_import_job(org_a, alice, "lead", SimpleUploadedFile("a.csv", b"a,b\n1,2\n"))
    assert aaron_client.get("/crm/imports/").status_code == 403
    for url in (
        f"/crm/imports/{job.pk}/",
        f"/crm/imports/{job.pk}/status",
        f"/crm/imports/{job.pk}/report.csv",
    ):
        assert bob_client.get(url).status_code == 404


@pytest.mark.django_db
def test_import_page_refuses_oversize_upload(alice_client, settings):
    settings.CRM_IMPORT_MAX_BYTES = 100
    response = alice_client.post(
        "/crm/imports/",
        {"record_type": "lead", "file": SimpleUploadedFile("a.csv", b"a,b\n" * 100)},
        follow=True,
    )
    assert "limit" in response.content.decode()
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_record_type_settings_page(alice_client, aaron_client, org_a):
    assert aaron_client.get("/settings/record-types/").status_code == 403
    page = alice_client.get("/settings/record-types/").content.decode()
    assert "Record types" in page and "Opportunity" in page
    response = alice_client.post(
        "/settings/record-types/",
        {
            "record_type": "account",
            "account-sms_phone_field": "main_phone",
            "account-compliance_field": "",
            "account-default_country": "44",
            "account-priority": "1",
        },
    )
    assert response.status_code == 302
    config = RecordTypeConfig.objects.get(organization=org_a, record_type="account")
    assert (config.default_country, config.priority, config.compliance_field) == ("44", 1, "")
    bad = alice_client.post(
        "/settings/record-types/",
        {
            "record_type": "lead",
            "lead-sms_phone_field": "mobile_phone",
            "lead-default_country": "999",
            "lead-priority": "1",
        },
    )
    assert bad.status_code == 200 and "not a known" in bad.content.decode()


@pytest.mark.django_db
def test_import_upload_still_needs_the_csrf_token(alice, client_for):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    data = {"record_type": "lead", "file": SimpleUploadedFile("a.csv", b"first_name,last_name\nA,B\n")}
    assert client.post("/crm/imports/", data).status_code == 403
    client.get("/crm/imports/")
    token = client.cookies["csrftoken"].value
    data["file"].seek(0)
    assert client.post("/crm/imports/", {**data, "csrfmiddlewaretoken": token}).status_code == 302
    assert ImportJob.objects.count() == 1


@pytest.mark.django_db
def test_import_page_refuses_oversize_upload_before_reading_the_body(alice_client, settings):
    from django.test.client import FakePayload

    settings.CRM_IMPORT_MAX_BYTES = 1000

    class Untouchable(FakePayload):
        def read(self, *args, **kwargs):
            raise AssertionError("the body was read")

    body = b"x" * 5000
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "multipart/form-data; boundary=BoUnDaRy",
        "CONTENT_LENGTH": str(len(body)),
        "PATH_INFO": "/crm/imports/",
        "wsgi.input": Untouchable(body),
    }
    response = alice_client.request(**environ)
    assert response.status_code == 302
    assert not ImportJob.objects.exists()
