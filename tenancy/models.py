"""Organizations (tenants), memberships with roles, teams, API tokens and the audit log."""

from __future__ import annotations

import hashlib
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from quicksend.crypto import EncryptedTextField, decrypt, encrypt


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            f"'{value}' is not a known time zone (use an IANA name such as America/New_York)."
        )


class Organization(models.Model):
    """A tenant. Every piece of customer data belongs to exactly one organization."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    seat_limit = models.PositiveIntegerField(default=5, help_text="How many active members the plan allows.")
    agents_may_delete_records = models.BooleanField(
        default=False,
        help_text="Agents may delete the CRM records they own (admins may always delete any record).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def seats_used(self) -> int:
        return self.memberships.filter(is_active=True).count()


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    AGENT = "agent", "Agent"


class Membership(models.Model):
    """A user's place in an organization. An active membership takes one seat."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AGENT)
    is_active = models.BooleanField(
        default=True, help_text="Deactivated members keep their history but no seat."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_unique_user_org")
        ]
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class Invitation(models.Model):
    """An offer to join an organization, which the invited person accepts or declines once logged in.

    Adding someone by email always makes an invitation (never a membership), whether or not the email
    already has an account, so an admin can neither add a stranger's account without their consent nor
    learn which emails have accounts. A pending invitation reserves a seat.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        WITHDRAWN = "withdrawn", "Withdrawn"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(help_text="The address the admin typed (lowercase).")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AGENT)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user"],
                condition=models.Q(status="pending"),
                name="invitation_one_pending_per_user_org",
            )
        ]
        indexes = [models.Index(fields=["user", "status"], name="invitation_user_status")]
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization} ({self.status})"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING


class Team(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=100)
    members = models.ManyToManyField(Membership, related_name="teams", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="team_unique_name_per_org")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """An integration's key. Only its hash is stored; the key is shown once, when created."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (qs_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuditLog(models.Model):
    """Who did what to which object, and when. Written by services, never by views."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="audit_entries", null=True, blank=True
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Set by writers that may run more than once for one event (a retried task): the second write of the
    # same key is a no-op.
    dedupe_key = models.CharField(max_length=120, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"], condition=~models.Q(dedupe_key=""), name="audit_unique_dedupe_key"
            )
        ]
        indexes = [
            models.Index(fields=["organization", "-id"], name="audit_org_recent"),
            models.Index(fields=["organization", "object_type", "object_id"], name="audit_org_object"),
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.object_type}:{self.object_id}"


class Crm(models.TextChoices):
    """The CRMs the record widget can be embedded in (docs/embed.md)."""

    SALESFORCE = "salesforce", "Salesforce"
    HUBSPOT = "hubspot", "HubSpot"
    ZOHO = "zoho", "Zoho CRM"
    DYNAMICS = "dynamics", "Dynamics 365"
    GENERIC = "generic", "Other (our API)"


class EmbedSettings(models.Model):
    """An organization's embedding of the record widget in its CRM: the origins allowed to frame it, the key
    launch tokens are signed with, and the secrets each CRM signs its own requests with. Secrets are
    encrypted at rest (``quicksend.crypto``) and never sit decrypted on the instance."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="embed_settings")
    allowed_origins = models.JSONField(
        default=list, blank=True, help_text="Origins (scheme://host[:port]) allowed to frame the widget."
    )
    signing_key = EncryptedTextField(blank=True, default="")
    salesforce_consumer_secret = EncryptedTextField(blank=True, default="")
    hubspot_client_secret = EncryptedTextField(blank=True, default="")
    hubspot_portal_id = models.CharField(max_length=20, blank=True, default="")
    match_users_by_email = models.BooleanField(
        default=True, help_text="A CRM user whose email is a member's email is that member."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hubspot_portal_id"],
                condition=~models.Q(hubspot_portal_id=""),
                name="embed_unique_hubspot_portal",
            )
        ]

    def __str__(self) -> str:
        return f"Embedding of {self.organization}"

    def get_secret(self, field: str) -> str:
        value = getattr(self, field)
        return decrypt(value) if value else ""

    def set_secret(self, field: str, plaintext: str) -> None:
        setattr(self, field, encrypt(plaintext) if plaintext else "")


class CrmUserMapping(models.Model):
    """An explicit answer to "which member is this CRM user" (when emails differ or are not sent)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="crm_user_mappings")
    crm = models.CharField(max_length=12, choices=Crm.choices)
    crm_user_id = models.CharField(max_length=120, help_text="The user's id in the CRM.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "crm", "crm_user_id"], name="crm_user_mapping_unique"
            )
        ]
        ordering = ["crm", "crm_user_id"]

    def __str__(self) -> str:
        return f"{self.get_crm_display()} user {self.crm_user_id} → {self.user}"


class LaunchToken(models.Model):
    """The stored half of a launch token: its unique id, so it can be exchanged once and only before it
    expires. The token itself (signed, short-lived) is never stored."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="launch_tokens")
    jti = models.CharField(max_length=40, unique=True)
    crm = models.CharField(max_length=12, choices=Crm.choices)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="launch_token_expiry")]

    def __str__(self) -> str:
        return f"launch {self.jti[:6]}… ({self.organization_id})"


class EmbedSession(models.Model):
    """What a launch token was exchanged for: one member, one organization, one record (or one number).
    Only the hash of its key is stored; the key lives in a partitioned cookie or in the page's memory."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="embed_sessions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    crm = models.CharField(max_length=12, choices=Crm.choices)
    record_type = models.CharField(max_length=20, blank=True)
    external_id = models.CharField(max_length=120, blank=True)
    record_id = models.BigIntegerField(null=True, blank=True)
    phone = models.CharField(
        max_length=20, blank=True, help_text="E.164: the record's number, or the one given."
    )
    name_hint = models.CharField(max_length=200, blank=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="embed_session_expiry")]

    def __str__(self) -> str:
        return f"embed {self.record_type}:{self.external_id or self.phone} for {self.user_id}"
