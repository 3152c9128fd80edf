"""Messaging data: Twilio accounts and numbers, who may send from which number and the defaults;
conversations, messages and their media; consent state and its ledger."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

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
    # Automatic replies to consent keywords; blank sends none. Twilio's Advanced Opt-Out
    # may already answer STOP/START/HELP itself: fill these only when it is turned off.
    opt_out_reply = models.CharField(
        max_length=320, blank=True, help_text="Sent once when a number opts out (STOP). Blank: none."
    )
    opt_in_reply = models.CharField(
        max_length=320, blank=True, help_text="Sent when a number opts back in (START). Blank: none."
    )
    help_reply = models.CharField(
        max_length=320, blank=True, help_text="Sent when a number texts HELP or INFO. Blank: none."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "messaging settings"

    def __str__(self) -> str:
        return f"Messaging settings of {self.organization}"


class MemberMessagingSettings(models.Model):
    """A member's own messaging preferences: their default sender number (one they may use), whether Enter
    sends in the composer, and how new notifications reach them beyond the bell (a desktop notification, a
    sound)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    membership = models.OneToOneField(Membership, on_delete=models.CASCADE, related_name="messaging_settings")
    default_number = models.ForeignKey(
        PhoneNumber, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    enter_sends = models.BooleanField(
        default=True, help_text="Enter sends and Shift+Enter starts a new line (else Ctrl+Enter sends)."
    )
    desktop_notifications = models.BooleanField(
        default=False,
        help_text="Show a desktop notification for each new notification (the browser asks once).",
    )
    notification_sound = models.BooleanField(default=False, help_text="Play a short sound for each new one.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "member messaging settings"

    def __str__(self) -> str:
        return f"Messaging settings of {self.membership}"


# --- Conversations, messages, media, consent -----------------------


class Conversation(models.Model):
    """One thread between one of our numbers and one customer number (never one per message).

    At most one *current* conversation exists per (organization, our number, customer number), enforced by a
    partial unique constraint so concurrent first messages cannot create two. A conversation ended on an
    owner change without carry-over is no longer current: the next message starts a new one. Archiving
    (by hand or the auto-archive job) keeps it current, and a new message reopens it.
    The last-message fields are denormalized so inbox lists need no join on messages.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ARCHIVED = "archived", "Archived"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    phone_number = models.ForeignKey(PhoneNumber, on_delete=models.PROTECT, related_name="conversations")
    customer_number = models.CharField(max_length=20, help_text="The customer's number, E.164.")
    is_current = models.BooleanField(default=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    # The record the customer number matched (first by record-type priority) ...
    record_type = models.CharField(max_length=20, blank=True)
    record_id = models.BigIntegerField(null=True, blank=True)
    # ... the other records that matched too ([{"record_type": "lead", "record_id": 3}, ...]) ...
    other_matches = models.JSONField(default=list, blank=True)
    # ... and the record created from the conversation ("regarding"), if any.
    regarding_type = models.CharField(max_length=20, blank=True)
    regarding_id = models.BigIntegerField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    team = models.ForeignKey(Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_message_preview = models.CharField(max_length=160, blank=True)
    last_message_direction = models.CharField(max_length=10, blank=True)
    last_message_status = models.CharField(max_length=20, blank=True)
    # Who sent the last message, for the list's "Automation: Open house: …" (Message.source, source_label).
    last_message_source = models.CharField(max_length=12, blank=True)
    last_message_source_label = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "phone_number", "customer_number"],
                condition=models.Q(is_current=True),
                name="conversation_one_current_thread",
            )
        ]
        indexes = [
            models.Index(fields=["organization", "-last_message_at", "-id"], name="conv_org_recent"),
            models.Index(fields=["organization", "customer_number"], name="conv_org_customer"),
            models.Index(fields=["organization", "owner", "-last_message_at"], name="conv_org_owner_recent"),
            models.Index(fields=["organization", "record_type", "record_id"], name="conv_org_record"),
            # a record's page and the inbox search find threads created from a record too.
            models.Index(
                fields=["organization", "regarding_type", "regarding_id"], name="conv_org_regarding"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_number} ↔ {self.phone_number.phone_number}"


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # stored by us, not yet handed to Twilio
    ACCEPTED = "accepted", "Accepted"
    SCHEDULED = "scheduled", "Scheduled"
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    RECEIVING = "receiving", "Receiving"
    RECEIVED = "received", "Received"
    DELIVERED = "delivered", "Delivered"
    UNDELIVERED = "undelivered", "Undelivered"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    PARTIALLY_DELIVERED = "partially_delivered", "Partially delivered"
    READ = "read", "Read"


# Status only moves forward: a callback may only raise the rank. Final states share the top ranks;
# "read" may still follow "delivered" (RCS/WhatsApp).
STATUS_RANK: dict[str, int] = {
    MessageStatus.PENDING: 0,
    MessageStatus.ACCEPTED: 10,
    MessageStatus.SCHEDULED: 10,
    MessageStatus.QUEUED: 20,
    MessageStatus.SENDING: 30,
    MessageStatus.SENT: 40,
    MessageStatus.RECEIVING: 40,
    MessageStatus.PARTIALLY_DELIVERED: 50,
    MessageStatus.DELIVERED: 60,
    MessageStatus.UNDELIVERED: 60,
    MessageStatus.FAILED: 60,
    MessageStatus.CANCELED: 60,
    MessageStatus.RECEIVED: 60,
    MessageStatus.READ: 70,
}
FINAL_STATUSES = frozenset(s for s, rank in STATUS_RANK.items() if rank >= 60)
# The statuses an agent sees as "failed" (the inbox's failed filter and marker, the home page's count).
FAILED_STATUSES = (MessageStatus.FAILED, MessageStatus.UNDELIVERED)


class Message(models.Model):
    """One SMS/MMS, inbound or outbound. Unique on Twilio's MessageSid (a database constraint)."""

    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound"
        OUTBOUND = "outbound", "Outbound"

    class Source(models.TextChoices):
        AGENT = "agent", "Agent"
        API = "api", "API"
        AUTOMATION = "automation", "Automation"
        CAMPAIGN = "campaign", "Campaign"
        AUTO_REPLY = "auto_reply", "Automatic reply"
        CUSTOMER = "customer", "Customer"
        SYNC = "sync", "History sync"
        OTHER_TOOL = "other_tool", "Another tool on the same number"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    account = models.ForeignKey(
        TwilioAccount, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    direction = models.CharField(max_length=10, choices=Direction.choices)
    source = models.CharField(max_length=12, choices=Source.choices)
    status = models.CharField(max_length=20, choices=MessageStatus.choices, default=MessageStatus.PENDING)
    status_rank = models.PositiveSmallIntegerField(default=0)
    sid = models.CharField(
        max_length=34, null=True, blank=True, unique=True, help_text="Twilio's MessageSid."
    )
    from_number = models.CharField(max_length=20)
    to_number = models.CharField(max_length=20)
    body = models.TextField(blank=True)
    num_segments = models.PositiveSmallIntegerField(default=1)
    encoding = models.CharField(max_length=8, blank=True)
    num_media = models.PositiveSmallIntegerField(default=0)
    error_code = models.PositiveIntegerField(null=True, blank=True)
    error_message = models.CharField(max_length=300, blank=True, help_text="Why it failed, in plain words.")
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    idempotency_key = models.CharField(max_length=100, blank=True)
    source_label = models.CharField(
        max_length=120,
        blank=True,
        help_text="The name of the automation or campaign that sent it (the thread shows “Automation: …”).",
    )
    validity_period = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Seconds Twilio may hold the message before dropping it (ValidityPeriod, 1–36,000): a "
        "campaign text held at the carrier never lands after its sending window closes.",
    )
    template = models.ForeignKey(
        "templates_app.MessageTemplate",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The template the body was rendered from (blank: written by hand, or template deleted).",
    )
    # Set just before the request to Twilio: a retried task that finds it set reconciles with Twilio before
    # sending again (a worker may have died after Twilio accepted the message but before the SID was stored).
    handed_over_at = models.DateTimeField(null=True, blank=True)
    send_attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    # Set when the row is built, or given: a new conversation is written with its first message's time
    # (``messaging.inbox.conversations``) instead of being updated after it.
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="message_unique_idempotency_key",
            )
        ]
        indexes = [
            models.Index(fields=["conversation", "-id"], name="message_thread"),
            # the thread pages by time (history sync inserts old texts with new ids).
            models.Index(fields=["conversation", "-created_at", "-id"], name="message_thread_time"),
            models.Index(fields=["organization", "-id"], name="message_org_recent"),
            # The "stuck" poller and the send queue only look at messages short of a final status.
            models.Index(
                fields=["status", "updated_at"],
                condition=models.Q(status_rank__lt=60),
                name="message_not_final",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.sid or self.pk} {self.status}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


def media_upload_to(instance: MessageMedia, filename: str) -> str:
    return f"messages/{instance.organization_id}/{instance.message_id}/{filename}"


class MessageMedia(models.Model):
    """One media item of an MMS, stored through Django's storage API (inbound: downloaded from Twilio)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="media")
    file = models.FileField(upload_to=media_upload_to, max_length=300, blank=True)
    filename = models.CharField(max_length=200, blank=True)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField(default=0)
    source_url = models.URLField(max_length=500, blank=True, help_text="Twilio's media URL (inbound).")
    error = models.CharField(max_length=300, blank=True, help_text="Why the download failed, if it did.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.filename or self.content_type


class ConsentState(models.Model):
    """The current consent of one customer number across the whole organization (every sender)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    phone_number = models.CharField(max_length=20, help_text="E.164.")
    opted_out = models.BooleanField(default=False)
    blocked = models.BooleanField(default=False, help_text="Texts are stored but raise no notifications.")
    do_not_contact = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "phone_number"], name="consent_state_unique_number"
            )
        ]

    def __str__(self) -> str:
        return self.phone_number


class ConsentEvent(models.Model):
    """The consent ledger: every change, with what, when, how and by whom. Rows are never changed."""

    class Action(models.TextChoices):
        OPT_OUT = "opt_out", "Opted out"
        OPT_IN = "opt_in", "Opted in"
        HELP = "help", "Asked for help"
        BLOCK = "block", "Blocked"
        UNBLOCK = "unblock", "Unblocked"
        DO_NOT_CONTACT = "do_not_contact", "Marked do-not-contact"
        ALLOW_CONTACT = "allow_contact", "Do-not-contact removed"

    class Method(models.TextChoices):
        KEYWORD = "keyword", "Keyword text"
        AGENT = "agent", "Agent"
        API = "api", "API"
        IMPORT = "import", "Import"
        TWILIO_21610 = "twilio_21610", "Twilio error 21610"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    phone_number = models.CharField(max_length=20)
    action = models.CharField(max_length=20, choices=Action.choices)
    method = models.CharField(max_length=20, choices=Method.choices)
    keyword = models.CharField(max_length=20, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "phone_number", "-id"], name="consent_event_number")]

    def __str__(self) -> str:
        return f"{self.phone_number} {self.action} via {self.method}"


# --- Receiving ------------------------------------------------------------------------


class InboundEvent(models.Model):
    """An inbound-message webhook exactly as Twilio posted it, stored by the webhook before it answers.

    Unique on ``message_sid`` (a database constraint: Twilio's retries insert nothing), written with one
    ``INSERT … ON CONFLICT DO NOTHING`` so the webhook answers fast; the task
    ``messaging.tasks.receiving.process_inbound_event`` turns it into a ``Message`` in its conversation and
    sets ``message`` and ``processed_at``. Kept afterwards as the raw record of what Twilio sent.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(TwilioAccount, on_delete=models.CASCADE, related_name="+")
    message_sid = models.CharField(max_length=34, unique=True)
    payload = models.JSONField(help_text="The form fields Twilio posted.")
    raw_form = models.TextField(
        blank=True,
        help_text="The form as posted, URL-encoded, when a field had to be cleaned to be stored in "
        "``payload`` (a NUL character, which PostgreSQL cannot store); empty otherwise.",
    )
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True, help_text="Why processing failed, if it did.")
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="A drain task is processing it until then (a lease, not a lock)."
    )

    class Meta:
        indexes = [
            # The drain and the sweep only look at unprocessed events.
            models.Index(
                fields=["received_at"],
                condition=models.Q(processed_at__isnull=True),
                name="inbound_unprocessed",
            ),
            models.Index(
                fields=["id"], condition=models.Q(processed_at__isnull=True), name="inbound_pending"
            ),
        ]

    def __str__(self) -> str:
        return self.message_sid


class InboxStep(models.Model):
    """The inbox's follow-up of one stored message (an inbound text's session, unread counts, notifications
    and live events; an outbound message's session, the sender's read state and live events), made durable:
    the row is written in the transaction that stores the message, and marked done in the transaction that
    does the bookkeeping, so the step runs exactly once however often it is tried (``messaging.inbox.steps``).
    A failed try is recorded here (``attempts``, ``error``) and retried with backoff; after ``MAX_ATTEMPTS``
    it is ``failed`` and waits for an admin ("Retry now" in the admin).
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="inbox_step")
    outbound = models.BooleanField(default=False)
    created_conversation = models.BooleanField(default=False)
    blocked = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Failed tries so far.")
    run_after = models.DateTimeField(
        null=True, blank=True, help_text="Not tried again before then (a try in progress, or the backoff)."
    )
    done_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(
        null=True, blank=True, help_text="Gave up after the last try; an admin may retry it."
    )
    error = models.TextField(blank=True, help_text="Why the last try failed.")
    last_tried_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["run_after"],
                condition=models.Q(done_at__isnull=True, failed_at__isnull=True),
                name="inbox_step_waiting",
            ),
            models.Index(
                fields=["-failed_at"], condition=models.Q(failed_at__isnull=False), name="inbox_step_failed"
            ),
        ]

    def __str__(self) -> str:
        return f"Inbox step of message {self.message_id}"

    @property
    def state(self) -> str:
        if self.done_at is not None:
            return "done"
        return "failed" if self.failed_at is not None else "waiting"


class StatusEvent(models.Model):
    """A verified status callback, stored by the webhook before it answers (one ``INSERT``); the drain task
    ``messaging.tasks.receiving.drain_status_events`` applies it with ``apply_status`` and deletes it.

    Not unique: Twilio posts several statuses per message (and repeats them); applying one twice changes
    nothing (statuses only move forward).
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(TwilioAccount, on_delete=models.CASCADE, related_name="+")
    message_ref = models.BigIntegerField(
        null=True, blank=True, help_text="Our message id from the callback URL's ``m`` parameter, if any."
    )
    message_sid = models.CharField(max_length=34)
    status = models.CharField(max_length=20)
    error_code = models.IntegerField(null=True, blank=True)
    received_at = models.DateTimeField()
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="A drain task is applying it until then (a lease, not a lock)."
    )
    attempts = models.PositiveSmallIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.message_sid} {self.status}"


# --- inbox: settings, per-user state, notifications, sessions, history sync ---------------------


MAX_SESSION_TIMEOUT_MINUTES = 30 * 24 * 60
MAX_IDLE_TIMEOUT_MINUTES = 7 * 24 * 60
MAX_AUTO_ARCHIVE_DAYS = 3650


class InboxSettings(models.Model):
    """Organization-wide inbox settings (an unsaved default row until an admin first saves them)."""

    class Visibility(models.TextChoices):
        OWN = "own", "Conversations they own"
        TEAM = "team", "Conversations they or their teams own"
        RECORDS = "records", "Conversations they own or of records they own"
        ALL = "all", "All conversations of the organization"

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="inbox_settings")
    # The bounds keep every later computation (now + timeout, now - days) inside what a datetime and the
    # database hold: an unbounded value once stopped every incoming text's inbox step.
    session_timeout_minutes = models.PositiveIntegerField(
        default=24 * 60,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_SESSION_TIMEOUT_MINUTES)],
        help_text="How long one message session lasts (default 1 day; 1 minute … 30 days).",
    )
    idle_timeout_minutes = models.PositiveIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_IDLE_TIMEOUT_MINUTES)],
        help_text="After this long without owner activity, new texts notify the team (or everyone who may "
        "see the conversation) and they may 'Assign to me' (1 minute … 7 days).",
    )
    auto_archive_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_AUTO_ARCHIVE_DAYS)],
        help_text="Archive conversations with no traffic for this many days (off: empty; 1 … 3,650).",
    )
    agent_visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.ALL)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "inbox settings"

    def __str__(self) -> str:
        return f"Inbox settings of {self.organization}"


class ConversationUserState(models.Model):
    """One user's state of one conversation: unread count, last read message, dismissed, last activity.

    A row exists only for users who were notified of, read or acted on the conversation; no row means
    nothing unread. ``last_active_at`` of the owner's row drives the idle-timeout handover.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="user_states")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    unread_count = models.PositiveIntegerField(default=0)
    last_read_message_id = models.BigIntegerField(null=True, blank=True)
    # Dismissed: hidden from this user's notifications and inbox until a new message arrives.
    dismissed = models.BooleanField(default=False)
    last_active_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="conv_user_state_unique")
        ]
        indexes = [
            # The hot "unread" folder and the total unread badge only look at rows with something unread.
            models.Index(
                fields=["user", "organization", "conversation"],
                condition=models.Q(unread_count__gt=0),
                name="conv_user_state_unread",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.conversation_id}: {self.unread_count} unread"


class Notification(models.Model):
    """Something a user should look at: a first text to accept, a new text, a conversation to take over or
    assigned to them. At most one uncleared notification per (recipient, conversation): a new text updates it.
    It links to the matched record, or to the conversation when no record matched. An admin is also told when
    Twilio refuses a connected account's credentials (kind ``account``: no conversation; the account and
    Twilio's words instead, linking to the Twilio settings). An automation's notify step leaves kind
    ``automation``: no conversation, its message in ``text``, linking to the record."""

    class Kind(models.TextChoices):
        REQUEST = "request", "New conversation: Accept, Dismiss or Block"
        MESSAGE = "message", "New text"
        IDLE = "idle", "New text, owner idle: Assign to me"
        ASSIGNED = "assigned", "Conversation assigned to you"
        ACCOUNT = "account", "A Twilio account needs an admin"
        AUTOMATION = "automation", "From an automation"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="notifications", null=True, blank=True
    )
    account = models.ForeignKey(
        TwilioAccount, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    text = models.CharField(
        max_length=300, blank=True, help_text="What happened, when no conversation says it."
    )
    message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    record_type = models.CharField(max_length=20, blank=True)
    record_id = models.BigIntegerField(null=True, blank=True)
    count = models.PositiveIntegerField(default=1, help_text="Texts this notification stands for.")
    is_read = models.BooleanField(default=False)
    cleared_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "conversation"],
                condition=models.Q(cleared_at__isnull=True),
                name="notification_one_open_per_conversation",
            )
        ]
        indexes = [
            models.Index(
                fields=["recipient", "organization", "-id"],
                condition=models.Q(cleared_at__isnull=True),
                name="notification_open",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id} on {self.conversation_id}"


class MessageSession(models.Model):
    """A window of a conversation's traffic (the organization's session timeout long, default 1 day),
    with the owner at the time. The history view filters messages by session (created_at in the window)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="sessions")
    started_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    message_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "started_at"], name="message_session_unique_start"
            )
        ]
        indexes = [models.Index(fields=["conversation", "-started_at"], name="message_session_recent")]

    def __str__(self) -> str:
        return f"Session {self.started_at:%Y-%m-%d %H:%M} of {self.conversation_id}"


class HistorySyncState(models.Model):
    """Where the history sync of one number stands: the high-water mark (newest date_sent fully synced) and,
    while a pass is unfinished, the next page to fetch per direction (resumable after failure)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    phone_number = models.OneToOneField(PhoneNumber, on_delete=models.CASCADE, related_name="history_sync")
    high_water = models.DateTimeField(null=True, blank=True)
    # {"to": next_page_url | "", "from": ...}: set while a pass is unfinished; "" = done.
    resume = models.JSONField(default=dict, blank=True)
    pass_newest = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    messages_imported = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"History sync of {self.phone_number_id}"
