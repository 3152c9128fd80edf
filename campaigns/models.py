"""Automations: a trigger, conditions and steps that text people when something happens in the CRM.

An ``Automation`` holds its definition as validated JSON (``campaigns.automations.definition`` checks it on
every save). Each record it fires for gets an ``Enrollment``, which walks the steps; a wait is a stored
``wake_at`` the periodic scheduler picks up, never a broker countdown. Every step run leaves a ``StepRun``
row: the run log an admin reads.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from tenancy.models import Organization


class Automation(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=120)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    trigger = models.JSONField(
        help_text='What starts it, e.g. {"type": "record_created", "record_type": "lead"}'
    )
    conditions = models.JSONField(
        default=dict, blank=True, help_text='{"match": "all"|"any", "rules": [...]}'
    )
    steps = models.JSONField(default=list, help_text="The steps, in order.")
    quiet_hours = models.CharField(
        max_length=10, default="federal", help_text="federal (8:00–21:00) or strict (stricter state windows)."
    )
    reenroll = models.BooleanField(
        default=False, help_text="Fire again for a record it already ran for (after the window below)."
    )
    reenroll_window_hours = models.PositiveIntegerField(
        default=24, help_text="Never text the same record twice within this many hours."
    )
    paused_reason = models.CharField(max_length=300, blank=True)
    # Date triggers fire for dates reached after this moment only (a rule change never re-fires old records).
    scanned_until = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["organization", "status"], name="automation_org_status")]

    def __str__(self) -> str:
        return self.name


class Enrollment(models.Model):
    """One run of an automation for one record (or one phone number, for keyword triggers)."""

    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting"
        COMPLETED = "completed", "Completed"
        STOPPED = "stopped", "Stopped"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="enrollments")
    record_type = models.CharField(max_length=20, blank=True)
    record_id = models.BigIntegerField(default=0, help_text="0: no record (a keyword enrollment by phone).")
    phone = models.CharField(max_length=20, blank=True, help_text="E.164, for enrollments without a record.")
    # What fired it (e.g. "created", "date:2026-03-08"): one enrollment per automation, record and key.
    trigger_key = models.CharField(max_length=120)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING)
    step_index = models.PositiveIntegerField(default=0)
    wake_at = models.DateTimeField(null=True, blank=True)
    # A worker claimed it (the periodic wake); claimed again only once this has passed.
    claimed_until = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True, help_text="Why it waits, stopped or failed.")
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["automation", "record_type", "record_id", "phone", "trigger_key"],
                name="enrollment_unique_trigger",
            )
        ]
        indexes = [
            models.Index(fields=["wake_at"], condition=Q(status="waiting"), name="enrollment_due"),
            models.Index(fields=["automation", "record_type", "record_id"], name="enrollment_record"),
            models.Index(fields=["organization", "phone"], name="enrollment_phone"),
        ]

    def __str__(self) -> str:
        return f"{self.automation} for {self.record_type} {self.record_id or self.phone}"


class StepRun(models.Model):
    """One line of the run log: a step that ran, waited, was skipped or failed, and why."""

    class Result(models.TextChoices):
        SENT = "sent", "Sent"
        DONE = "done", "Done"
        WAITING = "waiting", "Waiting"
        SKIPPED = "skipped", "Skipped"
        STOPPED = "stopped", "Stopped"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="runs")
    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="+")
    step_index = models.IntegerField(help_text="-1: the enrollment itself (conditions, guards).")
    step_type = models.CharField(max_length=30)
    result = models.CharField(max_length=10, choices=Result.choices)
    detail = models.CharField(max_length=500, blank=True)
    message_id = models.BigIntegerField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["automation", "-id"], name="steprun_automation"),
            models.Index(fields=["organization", "-id"], name="steprun_org"),
        ]

    def __str__(self) -> str:
        return f"{self.step_type} {self.result}"


from campaigns.drip.models import (  # noqa: E402 - drip campaigns live in their own module
    Campaign,
    CampaignMedia,
    CampaignRecipient,
    CampaignSend,
    CampaignStep,
    KeywordOptIn,
    SenderRate,
)

__all__ = [
    "Automation",
    "Campaign",
    "CampaignMedia",
    "CampaignRecipient",
    "CampaignSend",
    "CampaignStep",
    "Enrollment",
    "KeywordOptIn",
    "SenderRate",
    "StepRun",
]
