"""Drip campaigns: a ``Campaign`` with ordered ``CampaignStep`` rows and one ``CampaignRecipient`` per person.

A recipient is a stored row the periodic dispatcher wakes (``next_at``), claims with a short lease
(``claimed_until``) and sends one step to at a time; every step sent leaves a ``CampaignSend`` row, unique per
recipient and step, written in the same transaction as the message (so a step can never go twice).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from tenancy.models import Organization


def _all_days() -> list[int]:
    return [0, 1, 2, 3, 4, 5, 6]


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CANCELED = "canceled", "Canceled"

    class WindowClock(models.TextChoices):
        RECIPIENT = "recipient", "Each recipient's own time zone"
        CAMPAIGN = "campaign", "The campaign's time zone"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=120)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    senders = models.ManyToManyField(
        "messaging.PhoneNumber", related_name="+", help_text="One number, or a pool (sticky per recipient)."
    )
    start_at = models.DateTimeField(null=True, blank=True, help_text="Blank: when started.")
    window_clock = models.CharField(max_length=10, choices=WindowClock.choices, default=WindowClock.RECIPIENT)
    time_zone = models.CharField(max_length=60, default="America/New_York")
    window_start = models.TimeField(default="09:00")
    window_end = models.TimeField(default="20:00")
    days_of_week = models.JSONField(default=_all_days, help_text="0 = Monday … 6 = Sunday.")
    quiet_hours = models.CharField(max_length=10, default="federal", help_text="federal or strict.")
    stop_on_reply = models.BooleanField(default=True)
    batch_size = models.PositiveIntegerField(
        null=True, blank=True, help_text="Batch mode: at most this many texts …"
    )
    batch_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="… every this many minutes.")
    batch_started_at = models.DateTimeField(null=True, blank=True)
    batch_sent = models.PositiveIntegerField(default=0)
    brand_name = models.CharField(max_length=80, blank=True, help_text="Checked in the first message.")
    audience_report = models.JSONField(
        default=dict, blank=True, help_text="What audience imports left out, by reason (counts)."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["organization", "status"], name="campaign_org_status")]

    def __str__(self) -> str:
        return self.name


def campaign_media_upload_to(instance: CampaignMedia, filename: str) -> str:
    return f"campaigns/{instance.organization_id}/{uuid.uuid4().hex}/{filename}"


class CampaignMedia(models.Model):
    """A picture or file that campaign steps send: uploaded and checked once, then every text of the step
    carries it (each message's ``MessageMedia`` row points at this same stored file)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    file = models.FileField(upload_to=campaign_media_upload_to, max_length=300)
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "campaign media"

    def __str__(self) -> str:
        return self.filename


class CampaignStep(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    body = models.TextField()
    media = models.JSONField(
        default=list, blank=True, help_text="Ids of the step's attachments (CampaignMedia)."
    )
    wait_minutes = models.PositiveIntegerField(
        default=0, help_text="How long after the previous step this one goes (0 for the first)."
    )

    class Meta:
        ordering = ["campaign", "position"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "position"], name="campaign_step_unique_position")
        ]

    def __str__(self) -> str:
        return f"{self.campaign} step {self.position + 1}"


class CampaignRecipient(models.Model):
    """One person in a campaign: where they are, when their next step is due, and who texts them."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_PROGRESS = "in_progress", "In progress"
        REPLIED = "replied", "Replied"
        COMPLETED = "completed", "Completed"
        OPTED_OUT = "opted_out", "Opted out"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    ACTIVE = (Status.PENDING, Status.IN_PROGRESS)

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    phone = models.CharField(max_length=20, help_text="E.164.")
    record_type = models.CharField(max_length=20, blank=True)
    record_id = models.BigIntegerField(null=True, blank=True)
    merge = models.JSONField(default=dict, blank=True, help_text="Merge values (CSV columns).")
    sender = models.ForeignKey(
        "messaging.PhoneNumber", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    time_zone = models.CharField(max_length=60, blank=True)
    state = models.CharField(max_length=2, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    step_index = models.PositiveSmallIntegerField(default=0, help_text="The next step to send.")
    next_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    waiting_reason = models.CharField(max_length=200, blank=True)
    error = models.CharField(max_length=300, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "phone"], name="campaign_recipient_unique_phone")
        ]
        indexes = [
            models.Index(
                fields=["sender", "next_at"],
                condition=Q(status__in=["pending", "in_progress"]),
                name="campaign_recipient_due",
            ),
            models.Index(fields=["organization", "phone"], name="campaign_recipient_phone"),
            models.Index(
                fields=["organization", "record_type", "record_id"], name="campaign_recipient_record"
            ),
            models.Index(fields=["campaign", "status"], name="campaign_recipient_status"),
        ]

    def __str__(self) -> str:
        return f"{self.phone} in {self.campaign}"


class CampaignSend(models.Model):
    """A step sent to a recipient (the step activity): at most one per recipient and step, ever."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="sends")
    recipient = models.ForeignKey(CampaignRecipient, on_delete=models.CASCADE, related_name="sends")
    step_index = models.PositiveSmallIntegerField()
    message = models.ForeignKey(
        "messaging.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    segments = models.PositiveSmallIntegerField(default=1)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "step_index"], name="campaign_send_once_per_step")
        ]
        indexes = [models.Index(fields=["campaign", "sent_at"], name="campaign_send_time")]

    def __str__(self) -> str:
        return f"step {self.step_index + 1} to {self.recipient_id}"


class SenderRate(models.Model):
    """A number's own send rate (segments per second), overriding its type's default."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    number = models.OneToOneField("messaging.PhoneNumber", on_delete=models.CASCADE, related_name="+")
    segments_per_second = models.FloatField()

    def __str__(self) -> str:
        return f"{self.number_id}: {self.segments_per_second}/s"


class KeywordOptIn(models.Model):
    """Texting ``keyword`` to ``number`` opts the person in and enrolls them in ``campaign``."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    number = models.ForeignKey("messaging.PhoneNumber", on_delete=models.CASCADE, related_name="+")
    keyword = models.CharField(max_length=20)
    campaign = models.ForeignKey(Campaign, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    brand = models.CharField(max_length=80)
    frequency = models.CharField(max_length=80, default="Up to 4 msgs/month")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["number", "keyword"], name="keyword_optin_unique_keyword")
        ]

    def __str__(self) -> str:
        return f"{self.keyword} on {self.number_id}"
