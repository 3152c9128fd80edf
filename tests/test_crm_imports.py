"""CSV import of leads and contacts: encodings, bad rows, malformed files, size limit, duplicate policy,
the API (job id, status, report) and, in production mode, a real Celery worker."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from crm import imports, services
from crm.imports import guess_mapping, run_import
from crm.models import Contact, ImportJob, Lead, RecordPhone, RecordType
from tests.plugins.servers import wait_until

GOOD = "First Name,Last Name,Mobile,Email,Source\nAnn,Lee,(415) 555-0101,ann@example.com,web\n"


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/csv")


def run(org, user, data: bytes, *, record_type=RecordType.LEAD, capture=None, **start) -> ImportJob:
    """Upload + start + run the task body here (works in both modes; the task's own delivery is tested
    separately with a real worker)."""
    job, _ = imports.do_create_import_job(org, user, record_type, upload("f.csv", data))
    imports.do_start_import(job, user, **start)
    return run_import(job.pk) or ImportJob.objects.get(pk=job.pk)


def test_mapping_is_guessed_from_headers_and_extras_become_custom_fields():
    mapping = guess_mapping(
        ["First Name", "surname", "Cell Phone", "E-mail", "Work Phone", "Lead Source", ""]
    )
    assert mapping == {
        "First Name": "first_name",
        "surname": "last_name",
        "Cell Phone": "mobile_phone",
        "E-mail": "email",
        "Work Phone": "business_phone",
        "Lead Source": "custom:lead_source",
        "": "",
    }


@pytest.mark.django_db
def test_good_file_is_imported_with_custom_fields_and_phone_index(org_a, alice):
    job = run(org_a, alice, GOOD.encode())
    assert (job.status, job.imported, job.rejected) == ("done", 1, 0)
    lead = Lead.objects.get(organization=org_a)
    assert (lead.first_name, lead.mobile_phone, lead.mobile_phone_e164) == (
        "Ann",
        "(415) 555-0101",
        "+14155550101",
    )
    assert lead.custom_fields == {"source": "web"}
    assert lead.owner == alice
    assert RecordPhone.objects.filter(organization=org_a, e164="+14155550101", record_id=lead.pk).exists()
    assert services.find_records_by_phone(org_a, "4155550101") == [lead]


@pytest.mark.django_db
def test_utf8_with_bom_is_read(org_a, alice):
    job = run(org_a, alice, b"\xef\xbb\xbf" + "First Name,Last Name\nZoë,Ørsted\n".encode())
    assert job.imported == 1
    assert Lead.objects.get().first_name == "Zoë"
    assert job.headers[0] == "First Name"  # no BOM glued to the first header


@pytest.mark.django_db
def test_latin1_file_is_read(org_a, alice):
    # ASCII for more than the sniffed sample, then Latin-1: detected by the validation pass.
    rows = "".join(f"Name{i},Smith\n" for i in range(5000))
    data = ("first_name,last_name\n" + rows + "José,Muñoz\n").encode("latin-1")
    assert len(data) > imports.SAMPLE_BYTES
    job = run(org_a, alice, data)
    assert job.encoding == "latin-1"
    assert job.imported == 5001 and job.rejected == 0
    assert Lead.objects.filter(first_name="José", last_name="Muñoz").exists()


@pytest.mark.django_db
def test_a_row_with_bad_bytes_in_a_utf8_file_is_rejected_with_its_line(org_a, alice):
    data = "first_name,last_name\nZoë,A\n".encode() + b"Bad\xff\xfe,B\n" + b"Ok,C\n"
    job = run(org_a, alice, data)
    assert job.encoding == "utf-8"
    assert (job.imported, job.rejected) == (2, 1)
    rejection = job.rejections.get()
    assert rejection.line == 3 and "encoding" in rejection.reason.lower()


@pytest.mark.django_db
def test_half_bad_file_imports_good_rows_and_reports_each_bad_one(org_a, alice):
    data = (
        b"first_name,last_name,mobile,email\n"
        b"Ann,Lee,4155550101,ann@example.com\n"
        b",,4155550102,\n"
        b"Bob,Ray,555-12,\n"
        b"Cy,Dee,4155550104,not-an-email\n"
        b"Di,Eve,+44 7911 123456,\n"
    )
    job = run(org_a, alice, data)
    assert (job.status, job.imported, job.rejected) == ("done", 2, 3)
    reasons = {r.line: r.reason for r in job.rejections.all()}
    assert reasons == {
        3: "Missing name: the row has no first or last name.",
        4: "'555-12' is not a valid phone number for Lead mobile.",
        5: "'not-an-email' is not a valid email address.",
    }
    assert sorted(Lead.objects.values_list("first_name", flat=True)) == ["Ann", "Di"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"first_name,last_name\nA,B\nC,D,E,F\nG,H\n", "Line 3 has 4 columns but the header has 2"),
        (b"first_name;last_name\nA;B\n", None),  # semicolons are fine
        (b"first_name last_name\nA B\n", "single column"),
        (b"first_name,last_name\n", "no rows"),
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),
        (b"first_name,first_name\nA,B\n", "appears twice"),
    ],
)
def test_malformed_files_fail_clearly_and_write_nothing(org_a, alice, data, message, db):
    if message is None:
        assert run(org_a, alice, data).imported == 1
        return
    try:
        job = run(org_a, alice, data)
    except imports.ImportFileError as exc:  # refused at upload (sniffing)
        assert message in " ".join(exc.messages)
    else:
        assert job.status == "failed"
        assert message in job.error
        assert "Nothing was imported" in job.error or message in ("no rows",)
    assert not Lead.objects.exists()


@pytest.mark.django_db
def test_ragged_row_after_good_batches_writes_nothing(org_a, alice):
    rows = "".join(f"N{i},S\n" for i in range(2500))
    job = run(org_a, alice, ("first_name,last_name\n" + rows + "X,Y,Z\n").encode())
    assert job.status == "failed" and "Line 2502" in job.error
    assert not Lead.objects.exists() and not RecordPhone.objects.exists()


@pytest.mark.django_db
def test_ten_megabyte_single_line_is_a_clear_error(org_a, alice):
    data = b"first_name,last_name\nA,B\n" + b"x" * (10 * 1024 * 1024) + b",y\n"
    job = run(org_a, alice, data)
    assert job.status == "failed"
    assert "Line 3" in job.error and "longer than" in job.error
    assert not Lead.objects.exists()


@pytest.mark.django_db
def test_binary_file_with_nul_after_the_sample_fails_in_validation(org_a, alice):
    data = ("first_name,last_name\n" + "A,B\n" * 20000).encode() + b"\x00\x01\x02,\x00\n"
    job = run(org_a, alice, data)
    assert job.status == "failed" and "NUL" in job.error
    assert not Lead.objects.exists()


@pytest.mark.django_db
def test_duplicates_by_phone_are_skipped_or_updated(org_a, alice):
    services.do_create_record(
        org_a,
        alice,
        RecordType.LEAD,
        {"first_name": "Old", "last_name": "Name", "mobile_phone": "+14155550101"},
    )
    data = (
        b"first_name,last_name,mobile\nNew,Name,(415) 555-0101\nFresh,One,4155550102\nFresh,Two,4155550102\n"
    )
    skipped = run(org_a, alice, data, duplicate_policy="skip", match_key="phone")
    assert (skipped.imported, skipped.skipped, skipped.updated) == (1, 2, 0)
    assert Lead.objects.filter(first_name="Old").exists()
    updated = run(org_a, alice, data, duplicate_policy="update", match_key="phone")
    assert (updated.imported, updated.updated) == (0, 3)
    assert Lead.objects.count() == 2
    assert Lead.objects.filter(first_name="New").exists()
    assert Lead.objects.get(mobile_phone_e164="+14155550102").last_name == "Two"


@pytest.mark.django_db
def test_duplicates_by_external_id_update_and_keep_unmapped_fields(org_a, alice):
    services.do_create_record(
        org_a, alice, RecordType.CONTACT, {"first_name": "Ann", "company": "Acme", "external_id": "c-1"}
    )
    data = b"external id,first name,last name,tier\nc-1,Ann,Lee,gold\nc-2,Bo,Ray,\n"
    job = run(
        org_a, alice, data, record_type=RecordType.CONTACT, duplicate_policy="update", match_key="external_id"
    )
    assert (job.imported, job.updated) == (1, 1)
    ann = Contact.objects.get(external_id="c-1")
    assert (ann.last_name, ann.company, ann.custom_fields) == ("Lee", "Acme", {"tier": "gold"})


@pytest.mark.django_db
def test_external_id_taken_by_another_record_is_rejected_not_crashing(org_a, alice):
    services.do_create_record(org_a, alice, RecordType.LEAD, {"first_name": "Ann", "external_id": "x1"})
    data = (
        b"first_name,last_name,external_id,mobile\n"
        b"Bo,Ray,x1,4155550101\nCy,Dee,x2,4155550102\nDi,Eve,x2,4155550103\n"
    )
    job = run(org_a, alice, data, match_key="phone")
    assert (job.imported, job.rejected) == (1, 2)
    assert {r.line for r in job.rejections.all()} == {2, 4}


@pytest.mark.django_db
def test_user_mapping_is_validated(org_a, alice):
    job, _ = imports.do_create_import_job(org_a, alice, RecordType.LEAD, upload("f.csv", GOOD.encode()))
    with pytest.raises(imports.ValidationError):
        imports.do_start_import(job, alice, mapping={"First Name": "salary"})
    with pytest.raises(imports.ValidationError):
        imports.do_start_import(
            job, alice, mapping={"Mobile": "mobile_phone", "First Name": "", "Last Name": ""}
        )
    job = imports.do_start_import(job, alice, mapping={"First Name": "last_name", "Source": "custom:origin"})
    run_import(job.pk)
    lead = Lead.objects.get()
    assert (lead.last_name, lead.first_name, lead.custom_fields) == ("Ann", "", {"origin": "web"})


@pytest.mark.django_db
def test_running_a_job_twice_does_nothing_the_second_time(org_a, alice):
    job = run(org_a, alice, GOOD.encode())
    assert run_import(job.pk) is None
    assert Lead.objects.count() == 1


# --- API --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_import_returns_job_then_status_and_report(
    alice_client, org_a, bob_client, aaron_client, django_capture_on_commit_callbacks
):
    data = (GOOD + "Bad,Phone,555-12,,\n").encode()
    with django_capture_on_commit_callbacks() as callbacks:
        response = alice_client.post(
            "/api/v1/imports", {"file": upload("leads.csv", data), "record_type": "lead"}, format="multipart"
        )
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    assert response.json()["status"] == "queued"
    assert len(callbacks) == 1  # the task is queued after commit
    run_import(job_id)
    status = alice_client.get(f"/api/v1/imports/{job_id}").json()
    assert (status["status"], status["imported"], status["rejected"], status["percent"]) == (
        "done",
        1,
        1,
        100,
    )
    assert status["rejections"] == [
        {"line": 3, "reason": "'555-12' is not a valid phone number for Lead mobile."}
    ]
    report = alice_client.get(f"/api/v1/imports/{job_id}/report")
    assert report["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode())))
    assert rows[0] == ["line", "reason", "First Name", "Last Name", "Mobile", "Email", "Source"]
    assert "1 imported" in rows[1][1] and "1 rejected" in rows[1][1]
    assert rows[2][:3] == ["3", "'555-12' is not a valid phone number for Lead mobile.", "Bad"]
    for url in (f"/api/v1/imports/{job_id}", f"/api/v1/imports/{job_id}/report"):
        assert bob_client.get(url).status_code == 404
    assert bob_client.post(f"/api/v1/imports/{job_id}/start", {}, format="json").status_code == 404
    assert aaron_client.get(f"/api/v1/imports/{job_id}").status_code == 403  # imports are for admins


@pytest.mark.django_db
def test_api_upload_preview_then_start_with_mapping(alice_client, django_capture_on_commit_callbacks):
    response = alice_client.post(
        "/api/v1/imports",
        {"file": upload("c.csv", GOOD.encode()), "record_type": "contact", "start": "false"},
        format="multipart",
    )
    job = response.json()
    assert job["status"] == "uploaded"
    assert job["mapping"]["Mobile"] == "mobile_phone" and job["mapping"]["Source"] == "custom:source"
    bad = alice_client.post(
        f"/api/v1/imports/{job['id']}/start", {"mapping": {"Nope": "email"}}, format="json"
    )
    assert bad.status_code == 400 and "Nope" in str(bad.json())
    with django_capture_on_commit_callbacks():
        started = alice_client.post(
            f"/api/v1/imports/{job['id']}/start", {"duplicate_policy": "update"}, format="json"
        )
    assert started.json()["status"] == "queued" and started.json()["duplicate_policy"] == "update"
    run_import(job["id"])
    assert Contact.objects.count() == 1


@pytest.mark.django_db
def test_api_refuses_a_file_over_the_limit_before_reading_it(alice_client, settings):
    settings.CRM_IMPORT_MAX_BYTES = 1000
    response = alice_client.post(
        "/api/v1/imports",
        {"file": upload("big.csv", b"a,b\n" + b"x,y\n" * 1000), "record_type": "lead"},
        format="multipart",
    )
    assert response.status_code == 413
    assert "limit is 0 MB" in response.json()["detail"] or "limit" in response.json()["detail"]
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_api_malformed_upload_is_400_with_the_reason(alice_client):
    response = alice_client.post(
        "/api/v1/imports",
        {"file": upload("x.bin", b"\x00\x01\x02" * 100), "record_type": "lead"},
        format="multipart",
    )
    assert response.status_code == 400
    assert "binary" in str(response.json())
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_api_import_refuses_unknown_fields_and_other_types(alice_client):
    response = alice_client.post(
        "/api/v1/imports", {"file": upload("a.csv", GOOD.encode()), "record_type": "case"}, format="multipart"
    )
    assert response.status_code == 400 and "record_type" in response.json()
    response = alice_client.post(
        "/api/v1/imports",
        {"file": upload("a.csv", GOOD.encode()), "record_type": "lead", "delimiter": ";"},
        format="multipart",
    )
    assert response.status_code == 400 and "delimiter" in response.json()


@pytest.mark.production
def test_import_runs_in_a_real_worker(celery_worker_process, org_a, alice, alice_client):
    data = (
        "first_name,last_name,mobile\n" + "".join(f"N{i},S,+1415555{i:04d}\n" for i in range(1500))
    ).encode()
    response = alice_client.post(
        "/api/v1/imports", {"file": upload("w.csv", data), "record_type": "lead"}, format="multipart"
    )
    job_id = response.json()["id"]
    wait_until(
        lambda: ImportJob.objects.get(pk=job_id).status in ("done", "failed"),
        timeout=60,
        message=f"import did not finish:\n{celery_worker_process.log()}",
    )
    job = ImportJob.objects.get(pk=job_id)
    assert (job.status, job.imported) == ("done", 1500)
    assert RecordPhone.objects.filter(organization=org_a).count() == 1500


@pytest.mark.django_db
def test_upload_is_deleted_once_the_job_finishes(org_a, alice):
    from django.core.files.storage import default_storage

    job, _ = imports.do_create_import_job(org_a, alice, RecordType.LEAD, upload("f.csv", GOOD.encode()))
    name = job.file.name
    assert default_storage.exists(name)
    imports.do_start_import(job, alice)
    run_import(job.pk)
    assert not default_storage.exists(name)
    assert ImportJob.objects.get(pk=job.pk).file.name == ""


@pytest.mark.django_db
def test_abandoned_uploads_are_purged(org_a, alice):
    from datetime import timedelta

    from django.core.files.storage import default_storage
    from django.utils import timezone

    from crm.tasks import purge_abandoned_imports

    old, _ = imports.do_create_import_job(org_a, alice, RecordType.LEAD, upload("f.csv", GOOD.encode()))
    fresh, _ = imports.do_create_import_job(org_a, alice, RecordType.LEAD, upload("g.csv", GOOD.encode()))
    ImportJob.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    assert purge_abandoned_imports() == {"purged": 1}
    assert not default_storage.exists(old.file.name) and default_storage.exists(fresh.file.name)
    assert ImportJob.objects.get(pk=old.pk).status == "failed"
    assert ImportJob.objects.get(pk=fresh.pk).status == "uploaded"


@pytest.mark.django_db
def test_api_refuses_oversize_upload_without_reading_the_body(alice_client, settings):
    from django.test.client import FakePayload

    settings.CRM_IMPORT_MAX_BYTES = 1000

    class Untouchable(FakePayload):
        def read(self, *args, **kwargs):
            raise AssertionError("the body was read")

    body = b"x" * 5000
    response = alice_client.request(
        REQUEST_METHOD="POST",
        CONTENT_TYPE="multipart/form-data; boundary=BoUnDaRy",
        CONTENT_LENGTH=str(len(body)),
        PATH_INFO="/api/v1/imports",
        **{"wsgi.input": Untouchable(body)},
    )
    assert response.status_code == 413
    assert not ImportJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_import_emits_one_event_per_batch_for_created_and_updated_records(org_a, alice):
    from django.dispatch import receiver

    from crm.events import record_changed

    seen = []

    @receiver(record_changed, weak=False)
    def collect(sender, event, **kwargs):
        seen.append(event)

    try:
        services.do_create_record(
            org_a, alice, RecordType.LEAD, {"first_name": "Old", "mobile_phone": "4155550101"}
        )
        seen.clear()
        job = run(org_a, alice, (GOOD + "New,Person,4155550102,,\n").encode(), duplicate_policy="update")
    finally:
        record_changed.disconnect(collect)
    kinds = {e.kind: e for e in seen}
    assert set(kinds) == {"bulk_imported", "bulk_updated"}
    assert len(kinds["bulk_imported"].record_ids) == 1 and len(kinds["bulk_updated"].record_ids) == 1
    assert "first_name" in kinds["bulk_updated"].changes["fields"][0]
    assert (job.imported, job.updated) == (1, 1)
