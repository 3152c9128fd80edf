"""CRM records (leads, contacts, accounts, cases, opportunities), their per-organization record-type
configuration, the phone index used for inbound matching, and CSV import jobs.

Phone numbers: each phone field keeps what the user typed (``mobile_phone``) and its E.164 form
(``mobile_phone_e164``), computed on save with the record type's default country. ``RecordPhone`` is a
denormalized index (organization, e164) → (record type, record id), so "which records have this number" is one
indexed query whatever the type (docs/crm.md).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q

from crm.phones import InvalidPhoneNumber, normalize_phone
from tenancy.models import Organization, Team


class RecordType(models.TextChoices):
    LEAD = "lead", "Lead"
    CONTACT = "contact", "Contact"
    ACCOUNT = "account", "Account"
    CASE = "case", "Case"
    OPPORTUNITY = "opportunity", "Opportunity"


class CrmRecord(models.Model):
    """Fields every record type shares: tenant, owner, team, status, external id, custom fields."""

    record_type: str = ""  # set by each concrete model
    # phone field name → label ("mobile_phone" → "mobile"); the E.164 twin is f"{name}_e164".
    phone_fields: dict[str, str] = {}
    # boolean fields that may serve as the SMS compliance field.
    compliance_fields: dict[str, str] = {}
    search_fields: tuple[str, ...] = ()

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    team = models.ForeignKey(Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=20, blank=True)
    external_id = models.CharField(
        max_length=100, blank=True, help_text="Your other system's id; unique per organization and type."
    )
    custom_fields = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    STATUS_CHOICES: list[tuple[str, str]] = []

    def save(self, *args, **kwargs):
        # Normalized once, here, so every path (services, admin, shell) stores E.164; the phone index
        # (RecordPhone) is kept in step in the same transaction.
        if not self.status:
            self.status = self.default_status()
        self.normalize_phones(kwargs.pop("default_country", None))
        super().save(*args, **kwargs)
        RecordPhone.sync([self])

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse(f"crm-{self.record_type}-detail", args=[self.pk])

    def delete(self, *args, **kwargs):
        RecordPhone.objects.filter(
            organization_id=self.organization_id, record_type=self.record_type, record_id=self.pk
        ).delete()
        return super().delete(*args, **kwargs)

    def clean(self) -> None:
        # Model forms (the Django admin) get phone errors as field errors instead of a failing save().
        self.normalize_phones()

    @classmethod
    def default_status(cls) -> str:
        return cls.STATUS_CHOICES[0][0] if cls.STATUS_CHOICES else ""

    @property
    def type_label(self) -> str:
        return RecordType(self.record_type).label

    @property
    def sms_display(self) -> str:
        """The first filled phone, formatted for people (lists)."""
        from crm.phones import format_for_display

        for name in self.phone_fields:
            if getattr(self, f"{name}_e164"):
                return format_for_display(getattr(self, f"{name}_e164"))
        return ""

    def phone_numbers(self) -> dict[str, str]:
        """field name → E.164 for every filled phone field."""
        return {f: getattr(self, f"{f}_e164") for f in self.phone_fields if getattr(self, f"{f}_e164")}

    def normalize_phones(self, default_country: str | None = None) -> None:
        """Compute every ``*_e164`` from the raw input, or raise a ValidationError naming field and value."""
        if default_country is None:
            default_country = RecordTypeConfig.for_type(
                self.organization_id, self.record_type
            ).default_country
        errors = {}
        for name, label in self.phone_fields.items():
            raw = (getattr(self, name) or "").strip()
            setattr(self, name, raw)
            if not raw:
                setattr(self, f"{name}_e164", "")
                continue
            try:
                setattr(self, f"{name}_e164", normalize_phone(raw, default_country))
            except InvalidPhoneNumber:
                errors[name] = f"'{raw}' is not a valid phone number for {self.type_label} {label}."
        if errors:
            raise ValidationError(errors)


def _record_constraints(prefix: str) -> list:
    return [
        models.UniqueConstraint(
            fields=["organization", "external_id"],
            condition=~Q(external_id=""),
            name=f"{prefix}_unique_external_id",
        )
    ]


def _record_indexes(prefix: str, *extra: models.Index) -> list:
    return [
        models.Index(fields=["organization", "-id"], name=f"{prefix}_org_recent"),
        models.Index(fields=["organization", "owner"], name=f"{prefix}_org_owner"),
        models.Index(fields=["organization", "status"], name=f"{prefix}_org_status"),
        *extra,
    ]


class PersonRecord(CrmRecord):
    """Leads and contacts: a person with three phones, an SMS consent flag and a do-not-contact flag."""

    phone_fields = {"mobile_phone": "mobile", "business_phone": "business", "home_phone": "home"}
    compliance_fields = {"allow_sms": "Allow SMS"}
    search_fields = ("first_name", "last_name", "email", "company")

    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True)
    company = models.CharField(max_length=200, blank=True)
    title = models.CharField(max_length=100, blank=True)
    mobile_phone = models.CharField(max_length=40, blank=True, help_text="As typed; shown to users.")
    mobile_phone_e164 = models.CharField(max_length=20, blank=True, editable=False)
    business_phone = models.CharField(max_length=40, blank=True)
    business_phone_e164 = models.CharField(max_length=20, blank=True, editable=False)
    home_phone = models.CharField(max_length=40, blank=True)
    home_phone_e164 = models.CharField(max_length=20, blank=True, editable=False)
    allow_sms = models.BooleanField(default=True, help_text="SMS consent (a compliance field).")
    do_not_contact = models.BooleanField(default=False)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email or f"#{self.pk}"

    def clean(self) -> None:
        super().clean()
        if not (self.first_name.strip() or self.last_name.strip()):
            raise ValidationError({"last_name": f"A {self.type_label.lower()} needs a first or last name."})


class Lead(PersonRecord):
    record_type = RecordType.LEAD
    STATUS_CHOICES = [
        ("new", "New"),
        ("contacted", "Contacted"),
        ("qualified", "Qualified"),
        ("unqualified", "Unqualified"),
        ("converted", "Converted"),
    ]

    class Meta:
        ordering = ["-id"]
        constraints = _record_constraints("lead")
        indexes = _record_indexes(
            "lead", models.Index(fields=["organization", "last_name"], name="lead_name")
        )


class Contact(PersonRecord):
    record_type = RecordType.CONTACT
    STATUS_CHOICES = [("active", "Active"), ("inactive", "Inactive")]

    account = models.ForeignKey(
        "crm.Account", on_delete=models.SET_NULL, null=True, blank=True, related_name="contacts"
    )

    class Meta:
        ordering = ["-id"]
        constraints = _record_constraints("contact")
        indexes = _record_indexes(
            "contact", models.Index(fields=["organization", "last_name"], name="contact_name")
        )


class Account(CrmRecord):
    """A company or household."""

    record_type = RecordType.ACCOUNT
    phone_fields = {"main_phone": "main phone"}
    compliance_fields = {"allow_sms": "Allow SMS"}
    search_fields = ("name", "email", "website")
    STATUS_CHOICES = [("active", "Active"), ("inactive", "Inactive")]

    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    website = models.CharField(max_length=200, blank=True)
    main_phone = models.CharField(max_length=40, blank=True)
    main_phone_e164 = models.CharField(max_length=20, blank=True, editable=False)
    allow_sms = models.BooleanField(default=True)
    do_not_contact = models.BooleanField(default=False)

    class Meta:
        ordering = ["-id"]
        constraints = _record_constraints("account")
        indexes = _record_indexes(
            "account", models.Index(fields=["organization", "name"], name="account_name")
        )

    def __str__(self) -> str:
        return self.name or f"#{self.pk}"


class Case(CrmRecord):
    """A support case about a contact and/or account."""

    record_type = RecordType.CASE
    search_fields = ("subject",)
    STATUS_CHOICES = [("open", "Open"), ("pending", "Pending"), ("closed", "Closed")]

    subject = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="cases"
    )
    account = models.ForeignKey(
        Account, on_delete=models.SET_NULL, null=True, blank=True, related_name="cases"
    )

    class Meta:
        ordering = ["-id"]
        constraints = _record_constraints("case")
        indexes = _record_indexes("case")

    def __str__(self) -> str:
        return self.subject or f"#{self.pk}"


class Opportunity(CrmRecord):
    """A potential deal with a contact and/or account."""

    record_type = RecordType.OPPORTUNITY
    search_fields = ("name",)
    STATUS_CHOICES = [("open", "Open"), ("won", "Won"), ("lost", "Lost")]

    name = models.CharField(max_length=200)
    amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    close_date = models.DateField(null=True, blank=True)
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="opportunities"
    )
    account = models.ForeignKey(
        Account, on_delete=models.SET_NULL, null=True, blank=True, related_name="opportunities"
    )

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "opportunities"
        constraints = _record_constraints("opportunity")
        indexes = _record_indexes("opportunity")

    def __str__(self) -> str:
        return self.name or f"#{self.pk}"


RECORD_MODELS: dict[str, type[CrmRecord]] = {
    RecordType.LEAD: Lead,
    RecordType.CONTACT: Contact,
    RecordType.ACCOUNT: Account,
    RecordType.CASE: Case,
    RecordType.OPPORTUNITY: Opportunity,
}


def model_for(record_type: str) -> type[CrmRecord]:
    return RECORD_MODELS[record_type]


class RecordTypeConfig(models.Model):
    """An organization's settings for one record type (one row per organization and type)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    record_type = models.CharField(max_length=20, choices=RecordType.choices)
    sms_phone_field = models.CharField(
        max_length=40, blank=True, help_text="Which phone field messages are sent to (blank: none)."
    )
    compliance_field = models.CharField(
        max_length=40, blank=True, help_text="A boolean field that must be true to text (blank: no check)."
    )
    default_country = models.CharField(
        max_length=4,
        default="1",
        help_text="Calling code (1, 44) or region (US, GB) for numbers typed without one.",
    )
    priority = models.PositiveSmallIntegerField(
        default=100,
        validators=[MaxValueValidator(1000)],
        help_text="When an inbound number matches several records, the lowest number wins (0–1000).",
    )
    allow_create_from_conversation = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    DEFAULTS = {
        RecordType.LEAD: {"sms_phone_field": "mobile_phone", "compliance_field": "allow_sms", "priority": 2},
        RecordType.CONTACT: {
            "sms_phone_field": "mobile_phone",
            "compliance_field": "allow_sms",
            "priority": 1,
        },
        RecordType.ACCOUNT: {"sms_phone_field": "main_phone", "compliance_field": "allow_sms", "priority": 3},
        RecordType.CASE: {"priority": 4, "allow_create_from_conversation": True},
        RecordType.OPPORTUNITY: {"priority": 5, "allow_create_from_conversation": True},
    }

    class Meta:
        ordering = ["priority", "record_type"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "record_type"], name="recordtypeconfig_unique_type"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_record_type_display()} settings"

    @classmethod
    def for_type(cls, org_id: int, record_type: str) -> RecordTypeConfig:
        """The saved configuration, or an unsaved one with the defaults."""
        found = cls.objects.filter(organization_id=org_id, record_type=record_type).first()
        return found or cls(organization_id=org_id, record_type=record_type, **cls.DEFAULTS[record_type])

    @classmethod
    def all_for(cls, org_id: int) -> list[RecordTypeConfig]:
        """One config per record type (saved or default), in priority order."""
        saved = {c.record_type: c for c in cls.objects.filter(organization_id=org_id)}
        configs = [
            saved.get(rt) or cls(organization_id=org_id, record_type=rt, **cls.DEFAULTS[rt])
            for rt in RecordType.values
        ]
        return sorted(configs, key=lambda c: (c.priority, RecordType.values.index(c.record_type)))

    @classmethod
    def cached_all_for(cls, org_id: int) -> tuple[RecordTypeConfig, ...]:
        """``all_for`` through the per-process cache (``quicksend.org_cache``): for the hot paths that only
        read the configs (sending, matching a number to records). The instances are shared: never save or
        change them."""
        from quicksend import org_cache

        return org_cache.cached("record_type_configs", org_id, lambda pk: tuple(cls.all_for(pk)))

    @classmethod
    def cached_for_type(cls, org_id: int, record_type: str) -> RecordTypeConfig:
        """``for_type`` through the per-process cache (read-only, see ``cached_all_for``)."""
        return next(c for c in cls.cached_all_for(org_id) if c.record_type == record_type)

    def clean(self) -> None:
        model = model_for(self.record_type)
        if self.sms_phone_field and self.sms_phone_field not in model.phone_fields:
            raise ValidationError(
                {"sms_phone_field": f"'{self.sms_phone_field}' is not a phone field of {model.__name__}."}
            )
        if self.compliance_field and self.compliance_field not in model.compliance_fields:
            raise ValidationError(
                {"compliance_field": f"'{self.compliance_field}' is not a boolean field of {model.__name__}."}
            )
        from crm.phones import region_for

        try:
            region_for(self.default_country)
        except InvalidPhoneNumber as exc:
            raise ValidationError({"default_country": str(exc)})


class RecordPhone(models.Model):
    """Denormalized phone index: one row per (record, filled phone field). Inbound matching reads only this
    table (index on organization + e164), so a number is resolved in one query across all record types."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    e164 = models.CharField(max_length=20)
    record_type = models.CharField(max_length=20, choices=RecordType.choices)
    record_id = models.BigIntegerField()
    field = models.CharField(max_length=40)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "e164"], name="recordphone_lookup"),
            models.Index(fields=["record_type", "record_id"], name="recordphone_record"),
        ]

    def __str__(self) -> str:
        return f"{self.e164} → {self.record_type}#{self.record_id}"

    @classmethod
    def rows_for(cls, record: CrmRecord) -> list[RecordPhone]:
        return [
            cls(
                organization_id=record.organization_id,
                e164=e164,
                record_type=record.record_type,
                record_id=record.pk,
                field=name,
            )
            for name, e164 in record.phone_numbers().items()
        ]

    @classmethod
    def sync(cls, records: list[CrmRecord], *, replace: bool = True) -> None:
        """Rewrite the index rows of ``records`` (all of one type). ``replace=False`` for new records."""
        records = [r for r in records if r.phone_fields]
        if not records:
            return
        if replace:
            cls.objects.filter(
                record_type=records[0].record_type, record_id__in=[r.pk for r in records]
            ).delete()
        cls.objects.bulk_create([row for r in records for row in cls.rows_for(r)], batch_size=1000)


class ImportJob(models.Model):
    """A CSV import of leads or contacts: uploaded, previewed and mapped, then run by a task."""

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Policy(models.TextChoices):
        SKIP = "skip", "Skip duplicates"
        UPDATE = "update", "Update duplicates"

    class MatchKey(models.TextChoices):
        PHONE = "phone", "Phone number"
        EXTERNAL_ID = "external_id", "External id"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    record_type = models.CharField(
        max_length=20, choices=[(RecordType.LEAD, "Lead"), (RecordType.CONTACT, "Contact")]
    )
    file = models.FileField(upload_to="crm_imports/")
    original_name = models.CharField(max_length=255)
    size = models.BigIntegerField(default=0)
    encoding = models.CharField(max_length=20, default="utf-8")
    delimiter = models.CharField(max_length=2, default=",")
    headers = models.JSONField(default=list)
    mapping = models.JSONField(default=dict, help_text="CSV column → field name ('custom:<key>' or '').")
    duplicate_policy = models.CharField(max_length=10, choices=Policy.choices, default=Policy.SKIP)
    match_key = models.CharField(max_length=20, choices=MatchKey.choices, default=MatchKey.PHONE)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UPLOADED)
    error = models.TextField(blank=True)
    total_rows = models.IntegerField(default=0, help_text="Data rows counted by the validation pass.")
    processed_rows = models.IntegerField(default=0)
    imported = models.IntegerField(default=0)
    updated = models.IntegerField(default=0)
    skipped = models.IntegerField(default=0)
    rejected = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["organization", "-id"], name="importjob_org_recent")]

    def __str__(self) -> str:
        return f"Import of {self.original_name} ({self.status})"

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.total_rows:
            return 0
        return min(99, int(100 * self.processed_rows / self.total_rows))

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)


class ImportRejection(models.Model):
    """One rejected CSV row: its line number and why (the downloadable report)."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="rejections")
    line = models.IntegerField()
    reason = models.CharField(max_length=300)
    row = models.JSONField(default=list)

    class Meta:
        ordering = ["line"]

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"
