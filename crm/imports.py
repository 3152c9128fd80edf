"""CSV import of leads and contacts: sniff and preview an upload, guess the column mapping, then run the
import (a Celery task) in two streamed passes.

1. **Validation pass** (no writes): every row is read once to check the structure (columns per row, field
   sizes, NUL bytes) and the encoding. A malformed file fails the job with a clear error and nothing is
   written.
2. **Import pass**: rows are processed in batches of ``BATCH_SIZE``, each batch in its own transaction
   (bulk create / bulk update, phone index, rejected rows). Bad rows (bad phone, missing name, bad encoding,
   bad email, unknown status, taken external id) are rejected with their line number; good rows go in.

The file is never held in memory: both passes stream it through ``csv.reader`` (docs/crm.md).
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from crm.events import RecordEvent, emit
from crm.models import (
    ImportJob,
    ImportRejection,
    PersonRecord,
    RecordPhone,
    RecordType,
    RecordTypeConfig,
    model_for,
)
from crm.phones import InvalidPhoneNumber, normalize_phone
from quicksend.queue import enqueue
from tenancy import audit

BATCH_SIZE = 1000
SAMPLE_BYTES = 64 * 1024
PREVIEW_ROWS = 10
DELIMITERS = (",", ";", "\t", "|")
CUSTOM_PREFIX = "custom:"

# Fields an import may fill (of leads and contacts), with the header spellings we recognise.
FIELD_SYNONYMS: dict[str, tuple[str, ...]] = {
    "first_name": ("firstname", "first", "givenname", "forename"),
    "last_name": ("lastname", "last", "surname", "familyname"),
    "full_name": ("name", "fullname", "contactname", "leadname"),
    "email": ("email", "emailaddress", "mail"),
    "company": ("company", "companyname", "organization", "organisation", "business", "account"),
    "title": ("title", "jobtitle", "position"),
    "mobile_phone": (
        "mobile",
        "mobilephone",
        "cell",
        "cellphone",
        "phone",
        "phonenumber",
        "mobilenumber",
        "sms",
    ),
    "business_phone": ("businessphone", "workphone", "officephone", "work"),
    "home_phone": ("homephone", "home"),
    "external_id": ("externalid", "id", "crmid", "recordid"),
    "status": ("status", "leadstatus", "contactstatus"),
    "allow_sms": ("allowsms", "smsoptin", "smsconsent", "consent"),
    "do_not_contact": ("donotcontact", "dnc", "optout"),
}
IMPORTABLE_FIELDS = tuple(FIELD_SYNONYMS)
TRUE_WORDS = {"1", "true", "yes", "y", "t", "x", "on"}
FALSE_WORDS = {"0", "false", "no", "n", "f", "off", ""}


class ImportFileError(ValidationError):
    """The file as a whole cannot be imported (too big, binary, malformed). Nothing was written."""


class RowError(Exception):
    """One row is rejected; the message is the reason shown in the report."""


def max_bytes() -> int:
    return settings.CRM_IMPORT_MAX_BYTES


def check_size(size: int | None) -> None:
    """Refuse a declared size over the limit (called before the upload is read)."""
    if size is not None and size > max_bytes():
        raise ImportFileError(
            f"The file is {size / 1_048_576:.1f} MB; the limit is {max_bytes() / 1_048_576:.0f} MB. "
            "Split it into smaller files."
        )


# --- sniffing ------------------------------------------------------------------------------------------


def _decode_sample(sample: bytes) -> tuple[str, str]:
    """Return (encoding, text) for the first bytes of a file."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8", sample[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    try:
        return "utf-8", codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        pass
    # Some bytes are not UTF-8. If other non-ASCII text is valid UTF-8, the file is UTF-8 with a few bad
    # rows (rejected one by one); otherwise it is Latin-1 (Excel's "CSV" on Windows).
    text = sample.decode("utf-8", errors="surrogateescape")
    if any(ord(ch) > 0x7F and not 0xDC80 <= ord(ch) <= 0xDCFF for ch in text):
        return "utf-8", text
    return "latin-1", sample.decode("latin-1")


def _pick_delimiter(header_line: str) -> str | None:
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else None


def sniff(fileobj) -> dict[str, Any]:
    """Look at the first bytes of an upload: encoding, delimiter, headers and preview rows.

    Raises ImportFileError for binary files, a missing header, one-column files (wrong delimiter) and
    duplicate column names.
    """
    fileobj.seek(0)
    sample = fileobj.read(SAMPLE_BYTES)
    fileobj.seek(0)
    if not sample.strip():
        raise ImportFileError("The file is empty.")
    if b"\x00" in sample:
        raise ImportFileError("This looks like a binary file, not a CSV text file (it contains NUL bytes).")
    encoding, text = _decode_sample(sample)
    first_line, newline, _rest = text.partition("\n")
    if not newline and len(sample) == SAMPLE_BYTES:
        raise ImportFileError(
            f"The first line is longer than {SAMPLE_BYTES // 1024} KB: this does not look like a CSV header."
        )
    delimiter = _pick_delimiter(first_line)
    if delimiter is None:
        raise ImportFileError(
            "The header has a single column. Separate columns with commas, semicolons or tabs "
            "(is the delimiter something else?)."
        )
    lines = text.splitlines(keepends=True)
    if len(sample) == SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut in the middle
    reader = csv.reader(io.StringIO("".join(lines)), delimiter=delimiter)
    try:
        headers = [h.strip() for h in next(reader)]
        preview = [row for _, row in zip(range(PREVIEW_ROWS), reader, strict=False)]
    except (csv.Error, StopIteration) as exc:
        raise ImportFileError(f"The file could not be read as CSV: {exc}.")
    check_headers(headers)
    return {"encoding": encoding, "delimiter": delimiter, "headers": headers, "preview": preview}


def check_headers(headers: list[str]) -> None:
    if len(headers) < 2:
        raise ImportFileError("The header has a single column; check the delimiter.")
    seen: set[str] = set()
    for h in headers:
        if not h:
            continue
        if h.lower() in seen:
            raise ImportFileError(f"The column '{h}' appears twice in the header.")
        seen.add(h.lower())


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def guess_mapping(headers: list[str]) -> dict[str, str]:
    """Column → field from the header names; unknown columns become custom fields, blank ones are ignored."""
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for header in headers:
        k = _key(header)
        target = ""
        for field, synonyms in FIELD_SYNONYMS.items():
            if field not in used and (k == _key(field) or k in synonyms):
                target = field
                break
        if not target and k:
            target = CUSTOM_PREFIX + (re.sub(r"[^a-z0-9]+", "_", header.lower()).strip("_") or k)
        if target and not target.startswith(CUSTOM_PREFIX):
            used.add(target)
        mapping[header] = target
    return mapping


def check_mapping(headers: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """Validate a user's mapping: known columns, known fields, each field once, a name column."""
    if not isinstance(mapping, dict):
        raise ValidationError({"mapping": "The mapping must be an object of column → field."})
    unknown_columns = sorted(set(mapping) - set(headers))
    if unknown_columns:
        raise ValidationError({"mapping": f"Not columns of the file: {', '.join(unknown_columns)}."})
    clean: dict[str, str] = {h: "" for h in headers}
    used: dict[str, str] = {}
    for column, target in mapping.items():
        target = (target or "").strip()
        if target.startswith(CUSTOM_PREFIX):
            if not target[len(CUSTOM_PREFIX) :].strip():
                raise ValidationError({"mapping": f"Column '{column}': the custom field needs a name."})
        elif target and target not in IMPORTABLE_FIELDS:
            raise ValidationError(
                {
                    "mapping": f"Column '{column}': '{target}' is not a field (use one of "
                    f"{', '.join(IMPORTABLE_FIELDS)} or custom:<name>)."
                }
            )
        if target and target in used:
            raise ValidationError(
                {"mapping": f"Columns '{used[target]}' and '{column}' both map to {target}."}
            )
        if target:
            used[target] = column
        clean[column] = target
    if not {"first_name", "last_name", "full_name"} & set(used):
        raise ValidationError(
            {"mapping": "Map at least one column to a name (first_name, last_name or full_name)."}
        )
    return clean


# --- upload / start (services) ---------------------------------------------------------------------------


@transaction.atomic
def do_create_import_job(
    org, actor, record_type: str, upload, *, original_name: str = ""
) -> tuple[ImportJob, dict]:
    """Store an upload and sniff it. Returns (job, sniff result incl. preview rows)."""
    if record_type not in (RecordType.LEAD, RecordType.CONTACT):
        raise ValidationError({"record_type": "Only leads and contacts can be imported."})
    check_size(upload.size)
    info = sniff(upload)
    job = ImportJob(
        organization=org,
        created_by=actor,
        record_type=record_type,
        original_name=(original_name or getattr(upload, "name", "") or "import.csv")[:255],
        size=upload.size,
        encoding=info["encoding"],
        delimiter=info["delimiter"],
        headers=info["headers"],
        mapping=guess_mapping(info["headers"]),
    )
    upload.seek(0)
    job.file.save(f"{uuid.uuid4().hex}.csv", upload, save=False)
    job.save()
    audit.record(org, actor, "import.uploaded", job, {"file": job.original_name, "size": job.size})
    return job, info


@transaction.atomic
def do_start_import(
    job: ImportJob,
    actor,
    *,
    mapping: dict[str, str] | None = None,
    duplicate_policy: str | None = None,
    match_key: str | None = None,
) -> ImportJob:
    """Fix the mapping and duplicate policy, then queue the import task (after commit)."""
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.status != ImportJob.Status.UPLOADED:
        raise ValidationError(f"This import is already {job.get_status_display().lower()}.")
    job.mapping = check_mapping(job.headers, mapping if mapping is not None else job.mapping)
    if duplicate_policy:
        job.duplicate_policy = duplicate_policy
    if match_key:
        job.match_key = match_key
    job.status = ImportJob.Status.QUEUED
    job.save()
    audit.record(
        job.organization,
        actor,
        "import.started",
        job,
        {"policy": job.duplicate_policy, "match_key": job.match_key},
    )
    transaction.on_commit(lambda: enqueue("crm.tasks.run_import_task", job.pk))
    return job


# --- running ---------------------------------------------------------------------------------------------


def _open_rows(job: ImportJob, encoding: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, row) for the data rows; streamed, the header skipped."""
    with default_storage.open(job.file.name, "rb") as raw:
        text = io.TextIOWrapper(
            raw,
            encoding="utf-8-sig" if encoding == "utf-8" else "latin-1",
            errors="surrogateescape",
            newline="",
        )
        reader = csv.reader(text, delimiter=job.delimiter)
        try:
            next(reader)
            for row in reader:
                yield reader.line_num, row
        except csv.Error as exc:
            message = str(exc)
            if "field larger than field limit" in message:
                message = f"a field is longer than {csv.field_size_limit():,} characters"
            elif "NUL" in message:
                message = "it contains NUL bytes (a binary file?)"
            raise ImportFileError(f"Line {reader.line_num}: {message}. Nothing was imported.")


def _has_bad_bytes(row: list[str]) -> bool:
    try:
        "".join(row).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def validate_file(job: ImportJob) -> tuple[str, int]:
    """The validation pass: returns (encoding, data rows) or raises ImportFileError. Writes nothing."""
    width = len(job.headers)
    rows = bad_utf8 = good_non_ascii = 0
    for line, row in _open_rows(job, job.encoding):
        if not row:
            continue
        if len(row) != width and not (len(row) > width and not any(c.strip() for c in row[width:])):
            raise ImportFileError(
                f"Line {line} has {len(row)} columns but the header has {width}. Check the delimiter and "
                "quoting (a ragged file). Nothing was imported."
            )
        rows += 1
        if "\x00" in "".join(row):
            raise ImportFileError(
                f"Line {line} contains NUL bytes: this looks like a binary file, not CSV. "
                "Nothing was imported."
            )
        if job.encoding == "utf-8":
            if _has_bad_bytes(row):
                bad_utf8 += 1
            elif not all(c.isascii() for c in row):
                good_non_ascii += 1
    if rows == 0:
        raise ImportFileError("The file has a header but no rows.")
    # A file with no valid UTF-8 beyond ASCII but some invalid bytes is Latin-1 (Excel's "CSV" on Windows).
    encoding = "latin-1" if job.encoding == "utf-8" and bad_utf8 and not good_non_ascii else job.encoding
    return encoding, rows


def _bool(value: str, column: str) -> bool:
    v = value.strip().lower()
    if v in TRUE_WORDS:
        return True
    if v in FALSE_WORDS:
        return False
    raise RowError(f"'{value}' in {column} is not yes/no.")


class RowParser:
    """Turns one CSV row into record fields, or raises RowError with the reason."""

    def __init__(self, job: ImportJob, config: RecordTypeConfig):
        self.model = model_for(job.record_type)
        self.label = self.model.__name__
        self.country = config.default_country
        self.columns = [
            (i, h, job.mapping.get(h, "")) for i, h in enumerate(job.headers) if job.mapping.get(h)
        ]
        self.max_lengths = {
            f.name: f.max_length for f in self.model._meta.concrete_fields if getattr(f, "max_length", None)
        }
        self.statuses = {}
        for code, label in self.model.STATUS_CHOICES:
            self.statuses[code.lower()] = code
            self.statuses[label.lower()] = code

    def parse(self, row: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        if _has_bad_bytes(row):
            raise RowError("Bad encoding: the row is not valid UTF-8 (save the file as UTF-8).")
        fields: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for i, header, target in self.columns:
            value = row[i].strip() if i < len(row) else ""
            if target.startswith(CUSTOM_PREFIX):
                if value:
                    custom[target[len(CUSTOM_PREFIX) :]] = value[:1000]
                continue
            if not value:
                continue
            if target == "full_name":
                first, _, last = value.rpartition(" ")
                fields.setdefault("first_name", first)
                fields.setdefault("last_name", last)
                continue
            if target in ("allow_sms", "do_not_contact"):
                fields[target] = _bool(value, header)
                continue
            if target == "status":
                code = self.statuses.get(value.lower())
                if code is None:
                    raise RowError(f"'{value}' is not a {self.label.lower()} status.")
                fields["status"] = code
                continue
            limit = self.max_lengths.get(target)
            if limit and len(value) > limit:
                raise RowError(f"{header} is longer than {limit} characters.")
            fields[target] = value
        if not (fields.get("first_name") or fields.get("last_name")):
            raise RowError("Missing name: the row has no first or last name.")
        for name in ("first_name", "last_name"):
            if len(fields.get(name, "")) > self.max_lengths[name]:
                raise RowError(f"{name} is longer than {self.max_lengths[name]} characters.")
        if "email" in fields:
            try:
                validate_email(fields["email"])
            except ValidationError:
                raise RowError(f"'{fields['email']}' is not a valid email address.")
        for name, label in self.model.phone_fields.items():
            if name in fields:
                try:
                    fields[f"{name}_e164"] = normalize_phone(fields[name], self.country)
                except InvalidPhoneNumber:
                    raise RowError(f"'{fields[name]}' is not a valid phone number for {self.label} {label}.")
        return fields, custom


class ImportRunner:
    """Runs the import pass of one job, batch by batch."""

    def __init__(self, job: ImportJob, encoding: str):
        self.job = job
        self.encoding = encoding
        self.model = model_for(job.record_type)
        self.config = RecordTypeConfig.for_type(job.organization_id, job.record_type)
        self.parser = RowParser(job, self.config)
        self.sms_field = self.config.sms_phone_field or "mobile_phone"
        self.counts = {"processed_rows": 0, "imported": 0, "updated": 0, "skipped": 0, "rejected": 0}
        self.created_ids: list[int] = []

    def run(self) -> None:
        batch: list[tuple[int, list[str]]] = []
        for line, row in _open_rows(self.job, self.encoding):
            if not row or not any(c.strip() for c in row):
                continue
            batch.append((line, row))
            if len(batch) >= BATCH_SIZE:
                self._process(batch)
                batch = []
        if batch:
            self._process(batch)

    def _key_of(self, fields: dict[str, Any]) -> str:
        if self.job.match_key == ImportJob.MatchKey.EXTERNAL_ID:
            return fields.get("external_id", "")
        return fields.get(f"{self.sms_field}_e164", "")

    @transaction.atomic
    def _process(self, batch: list[tuple[int, list[str]]]) -> None:
        job = self.job
        parsed, rejections = self._parse(batch)
        plan = _Plan(rejections)
        self._plan(parsed, plan)
        self._write(plan)
        if plan.rejections:
            ImportRejection.objects.bulk_create(plan.rejections, batch_size=BATCH_SIZE)
        self.counts["processed_rows"] += len(batch)
        self.counts["imported"] += len(plan.new_records)
        self.counts["updated"] += plan.updated
        self.counts["skipped"] += plan.skipped
        self.counts["rejected"] += len(plan.rejections)
        ImportJob.objects.filter(pk=job.pk).update(**self.counts)
        if plan.new_records:
            emit(
                RecordEvent(
                    "bulk_imported",
                    job.organization_id,
                    self.model.record_type,
                    None,
                    job.created_by_id,
                    record_ids=tuple(r.pk for r in plan.new_records),
                )
            )

    def _parse(self, batch: list[tuple[int, list[str]]]) -> tuple[list, list[ImportRejection]]:
        rejections: list[ImportRejection] = []
        parsed: list[tuple[int, list[str], dict, dict]] = []
        for line, row in batch:
            try:
                fields, custom = self.parser.parse(row)
            except RowError as exc:
                rejections.append(
                    ImportRejection(job=self.job, line=line, reason=str(exc)[:300], row=_store_row(row))
                )
                continue
            parsed.append((line, row, fields, custom))
        return parsed, rejections

    def _existing(self, parsed: list) -> tuple[dict[str, int], dict[str, int]]:
        """(match key → existing record id, external id → record id) for the batch, two queries."""
        job, model = self.job, self.model
        keys = {self._key_of(f) for _, _, f, _ in parsed} - {""}
        if self.job.match_key == ImportJob.MatchKey.EXTERNAL_ID:
            existing_by_key = dict(
                model.objects.filter(organization_id=job.organization_id, external_id__in=keys).values_list(
                    "external_id", "id"
                )
            )
        else:
            existing_by_key = {}
            for e164, record_id in (
                RecordPhone.objects.filter(
                    organization_id=job.organization_id,
                    record_type=model.record_type,
                    field=self.sms_field,
                    e164__in=keys,
                )
                .order_by("record_id")
                .values_list("e164", "record_id")
            ):
                existing_by_key.setdefault(e164, record_id)
        ext_ids = {f["external_id"] for _, _, f, _ in parsed if f.get("external_id")}
        ext_owner = dict(
            model.objects.filter(organization_id=job.organization_id, external_id__in=ext_ids).values_list(
                "external_id", "id"
            )
        )
        return existing_by_key, ext_owner

    def _plan(self, parsed: list, plan: _Plan) -> None:
        """Decide per row: a new record, an update of one (existing or new in this batch), a skip or a
        rejection (an external id another record holds)."""
        job, model = self.job, self.model
        existing_by_key, ext_owner = self._existing(parsed)
        new_by_key: dict[str, PersonRecord] = {}
        claimed_ext: dict[str, object] = dict(ext_owner)  # external id → record id or pending object
        for line, row, fields, custom in parsed:
            key = self._key_of(fields)
            target_id = existing_by_key.get(key) if key else None
            pending = new_by_key.get(key) if key else None
            ext = fields.get("external_id")
            if target_id is not None or pending is not None:
                if job.duplicate_policy == ImportJob.Policy.SKIP:
                    plan.skipped += 1
                    continue
                owner_of_ext = claimed_ext.get(ext) if ext else None
                me = target_id if target_id is not None else pending
                if ext and owner_of_ext is not None and owner_of_ext is not me and owner_of_ext != me:
                    plan.reject(job, line, row, f"External id '{ext}' belongs to another record.")
                    continue
                if ext:
                    claimed_ext[ext] = me
                if pending is not None:
                    _apply(pending, fields, custom)
                else:
                    prev_fields, prev_custom = plan.updates.get(target_id, ({}, {}))
                    plan.updates[target_id] = ({**prev_fields, **fields}, {**prev_custom, **custom})
                plan.updated += 1
                continue
            if ext and ext in claimed_ext:
                plan.reject(job, line, row, f"External id '{ext}' belongs to another record.")
                continue
            record = model(
                organization_id=job.organization_id,
                owner_id=job.created_by_id,
                status=model.default_status(),
                custom_fields={},
            )
            _apply(record, fields, custom)
            plan.new_records.append(record)
            if key:
                new_by_key[key] = record
            if ext:
                claimed_ext[ext] = record

    def _write(self, plan: _Plan) -> None:
        job, model = self.job, self.model
        if plan.new_records:
            model.objects.bulk_create(plan.new_records, batch_size=BATCH_SIZE)
            RecordPhone.sync(plan.new_records, replace=False)
            self.created_ids += [r.pk for r in plan.new_records]
        if not plan.updates:
            return
        records = list(model.objects.filter(organization_id=job.organization_id, pk__in=list(plan.updates)))
        changed_fields: set[str] = {"custom_fields", "updated_at"}
        now = timezone.now()
        for record in records:
            fields, custom = plan.updates[record.pk]
            _apply(record, fields, custom)
            record.updated_at = now
            changed_fields |= set(fields)
        model.objects.bulk_update(records, sorted(changed_fields), batch_size=BATCH_SIZE)
        RecordPhone.sync(records, replace=True)
        emit(
            RecordEvent(
                "bulk_updated",
                job.organization_id,
                model.record_type,
                None,
                job.created_by_id,
                changes={"fields": [sorted(changed_fields - {"updated_at"})]},
                record_ids=tuple(r.pk for r in records),
            )
        )


@dataclasses.dataclass
class _Plan:
    """What one batch does: records to create, updates by record id, counts and rejections."""

    rejections: list[ImportRejection]
    new_records: list[PersonRecord] = dataclasses.field(default_factory=list)
    updates: dict[int, tuple[dict, dict]] = dataclasses.field(default_factory=dict)
    skipped: int = 0
    updated: int = 0

    def reject(self, job: ImportJob, line: int, row: list[str], reason: str) -> None:
        self.rejections.append(ImportRejection(job=job, line=line, reason=reason, row=_store_row(row)))


def _store_row(row: list[str]) -> list[str]:
    # Undecodable bytes (kept as lone surrogates while reading) cannot go into JSON columns as such.
    return [
        c[:1000].encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace") for c in row[:50]
    ]


def _apply(record: PersonRecord, fields: dict[str, Any], custom: dict[str, Any]) -> None:
    for name, value in fields.items():
        setattr(record, name, value)
    if custom:
        record.custom_fields = {**(record.custom_fields or {}), **custom}


def run_import(job_id: int) -> ImportJob | None:
    """Run a queued import (the task body). Re-checks the job's state, so a duplicate delivery is harmless."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    job = ImportJob.objects.select_related("organization", "created_by").get(pk=job_id)
    try:
        return _run_claimed(job)
    finally:
        # The upload holds personal data and is not needed once the job has finished: the report is built
        # from the rejected rows.
        delete_upload(job)


def delete_upload(job: ImportJob) -> None:
    if job.file.name:
        default_storage.delete(job.file.name)
        ImportJob.objects.filter(pk=job.pk).update(file="")


def purge_abandoned_uploads(older_than_hours: int = 24) -> int:
    """Uploaded-but-never-started jobs: delete their files and mark them failed. Returns how many."""
    cutoff = timezone.now() - timedelta(hours=older_than_hours)
    count = 0
    for job in ImportJob.objects.filter(status=ImportJob.Status.UPLOADED, created_at__lt=cutoff):
        delete_upload(job)
        ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.UPLOADED).update(
            status=ImportJob.Status.FAILED,
            error=f"Never started; the upload was deleted after {older_than_hours} hours.",
            finished_at=timezone.now(),
        )
        count += 1
    return count


def _run_claimed(job: ImportJob) -> ImportJob:
    try:
        encoding, total = validate_file(job)
        ImportJob.objects.filter(pk=job.pk).update(encoding=encoding, total_rows=total)
        job.encoding, job.total_rows = encoding, total
        runner = ImportRunner(job, encoding)
        runner.run()
    except ImportFileError as exc:
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.FAILED, error=" ".join(exc.messages), finished_at=timezone.now()
        )
        job.refresh_from_db()
        return job
    except Exception as exc:  # a database outage mid-way: say so; earlier batches stay imported
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.FAILED,
            error=f"The import stopped unexpectedly ({exc.__class__.__name__}); rows of earlier batches "
            "were imported. Re-run it with the 'update' policy to finish.",
            finished_at=timezone.now(),
        )
        raise
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.DONE, finished_at=timezone.now())
    job.refresh_from_db()
    audit.record(
        job.organization,
        job.created_by,
        f"{job.record_type}.imported",
        job,
        {k: getattr(job, k) for k in ("imported", "updated", "skipped", "rejected")},
    )
    return job


def iter_report_rows(job: ImportJob) -> Iterator[list[Any]]:
    """The downloadable report: a summary, then one row per rejected line (line, reason, original cells)."""
    yield ["line", "reason", *job.headers]
    yield [
        "",
        f"Summary: status {job.status}, {job.imported} imported, {job.updated} updated, "
        f"{job.skipped} skipped, {job.rejected} rejected" + (f". Error: {job.error}" if job.error else ""),
    ]
    for rejection in job.rejections.order_by("line").iterator(chunk_size=2000):
        yield [rejection.line, rejection.reason, *[_safe_cell(c) for c in rejection.row]]


def _safe_cell(value: str) -> str:
    # Spreadsheet formula injection: a cell starting with = + - @ is shown as text.
    text = str(value).encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
