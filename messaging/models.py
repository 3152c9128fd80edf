"""Twilio accounts and numbers of an organization, who may send from which number, and the defaults."""

from __future__ import annotations

import re

from django.conf import settings
from django.db import models

from quicksend import crypto
from tenancy.models import Membership, Organization, Team

ACCOUNT_SID_RE = re.compile(r"^AC[0-9a-fA-F]{32}$")


class TwilioAccount(models.Model):
    """An organization's connection to a Twilio account (or subaccount).

    The auth token is stored encrypted (``quicksend.crypto``) and only ever decrypted by the client factory.
    An Account SID belongs to at most one organization: webhooks find the organization from the
    ``AccountSid`` Twilio sends, so a SID shared by two organizations would make that ambiguous.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        VALID = "valid", "Valid"
        INVALID = "invalid", "Invalid"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="twilio_accounts")
    account_sid = models.CharField(max_length=34, unique=True)
    auth_token_encrypted = crypto.EncryptedTextField()
    auth_token_last4 = models.CharField(max_length=4, blank=True)
    friendly_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    twilio_status = models.CharField(
        max_length=20, blank=True, help_text="Twilio's own account status: active, suspended or closed."
    )
    account_type = models.CharField(max_length=10, blank=True, help_text="Trial or Full.")
    last_validated_at = models.DateTimeField(null=True, blank=True)
    last_validation_result = models.CharField(max_length=300, blank=True)
    numbers_synced_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "account_sid"], name="twilio_account_unique_per_org"
            )
        ]

    def __str__(self) -> str:
        return self.friendly_name or self.account_sid

    def set_auth_token(self, token: str) -> None:
        self.auth_token_encrypted = crypto.encrypt(token)
        self.auth_token_last4 = token[-4:]

    def get_auth_token(self) -> str:
        return crypto.decrypt(self.auth_token_encrypted)

    @property
    def masked_auth_token(self) -> str:
        return "•" * 12 + self.auth_token_last4

    @property
    def is_valid(self) -> bool:
        return self.status == self.Status.VALID


class PhoneNumber(models.Model):
    """A number (or short code) of a connected Twilio account, as last synced from Twilio.

    ``friendly_name`` is Twilio's; ``label`` is the organization's own name for it ("Support – NY"), shown
    wherever the number appears. Numbers removed at Twilio are deactivated, never deleted, so history that
    points at them stays intact.
    """

    class NumberType(models.TextChoices):
        LOCAL = "local", "Local"
        TOLL_FREE = "tollfree", "Toll-free"
        SHORT_CODE = "shortcode", "Short code"
        MOBILE = "mobile", "Mobile"
        UNKNOWN = "unknown", "Unknown"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="phone_numbers")
    account = models.ForeignKey(TwilioAccount, on_delete=models.CASCADE, related_name="numbers")
    sid = models.CharField(max_length=34, help_text="Twilio's PN… identifier.")
    phone_number = models.CharField(max_length=20, help_text="E.164, or the digits of a short code.")
    friendly_name = models.CharField(max_length=200, blank=True)
    label = models.CharField(max_length=100, blank=True)
    number_type = models.CharField(max_length=10, choices=NumberType.choices, default=NumberType.UNKNOWN)
    sms_capable = models.BooleanField(default=False)
    mms_capable = models.BooleanField(default=False)
    voice_capable = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    sms_url = models.URLField(max_length=500, blank=True)
    sms_method = models.CharField(max_length=6, blank=True)
    assigned_members = models.ManyToManyField(Membership, related_name="assigned_numbers", blank=True)
    assigned_teams = models.ManyToManyField(Team, related_name="assigned_numbers", blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["phone_number", "id"]
        constraints = [models.UniqueConstraint(fields=["account", "sid"], name="phone_number_unique_sid")]
        indexes = [models.Index(fields=["phone_number"], name="phone_number_lookup")]

    def __str__(self) -> str:
        return f"{self.label} ({self.phone_number})" if self.label else self.phone_number

    @property
    def display_name(self) -> str:
        """What users see: the organization's label with the number, else Twilio's friendly name."""
        from messaging.labels import number_label

        return number_label(self)

    @property
    def can_send_sms(self) -> bool:
        return self.is_active and self.sms_capable


class MessagingSettings(models.Model):
    """Organization-wide messaging settings: the default sender and who may send from which number."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="messaging_settings"
    )
    default_number = models.ForeignKey(
        PhoneNumber, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    agents_may_use_any_number = models.BooleanField(
        default=False,
        help_text="When off, agents send only from numbers assigned to them or to one of their teams.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "messaging settings"

    def __str__(self) -> str:
        return f"Messaging settings of {self.organization}"


class MemberMessagingSettings(models.Model):
    """A member's own messaging preferences: their default sender number (one they may use)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    membership = models.OneToOneField(Membership, on_delete=models.CASCADE, related_name="messaging_settings")
    default_number = models.ForeignKey(
        PhoneNumber, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "member messaging settings"

    def __str__(self) -> str:
        return f"Messaging settings of {self.membership}"
