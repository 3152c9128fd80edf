"""Connecting Twilio accounts: verify credentials before storing anything, re-validate, sync numbers.

Network calls never run inside a database transaction (a slow Twilio must not hold locks); the results are
written afterwards in one short transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import phonenumbers
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from messaging.models import ACCOUNT_SID_RE, MessagingSettings, PhoneNumber, TwilioAccount
from messaging.signals import send_after_commit, twilio_account_invalidated
from messaging.twilio.client import account_api, client_for_account, client_for_credentials
from messaging.twilio.errors import KIND_AUTH, TwilioError, twilio_call
from tenancy import audit
from tenancy.models import Organization

logger = logging.getLogger(__name__)

SUCCESS_MESSAGE = "Twilio credentials verified and saved successfully."
MALFORMED_SID_MESSAGE = (
    "That Account SID is not valid: it starts with AC followed by 32 letters and digits (0–9, a–f), 34 "
    "characters in all. Copy it from the Twilio Console (Account Info). Nothing was saved."
)
EMPTY_TOKEN_MESSAGE = "Enter the Auth Token (Twilio Console → Account Info). Nothing was saved."  # noqa: S105
UNUSABLE_CHARACTERS_MESSAGE = (
    "That Auth Token is not valid: it is made of letters and digits only. Copy it from the Twilio Console "
    "(Account Info). Nothing was saved."
)
SUSPENDED_MESSAGE = (
    "Twilio says this account is suspended, so it cannot send messages. Reactivate it in the Twilio Console "
    "(usually a billing matter) and try again. Nothing was saved."
)
CLOSED_MESSAGE = "Twilio says this account is closed. Connect an active account. Nothing was saved."
KIND_SUSPENDED = "suspended"
KIND_CLOSED = "closed"
# Twilio allows up to 1,000 numbers per page; tests lower it to prove every page is read.
NUMBERS_PAGE_SIZE = 1000
TOLL_FREE_AREA_CODES = {"800", "833", "844", "855", "866", "877", "888"}


@dataclass(frozen=True)
class AccountInfo:
    friendly_name: str
    status: str
    type: str


@dataclass(frozen=True)
class RemoteNumber:
    sid: str
    phone_number: str
    friendly_name: str
    sms: bool
    mms: bool
    voice: bool
    sms_url: str
    sms_method: str


@dataclass
class SyncResult:
    added: int = 0
    updated: int = 0
    deactivated: int = 0
    total_active: int = 0
    default_cleared: bool = False

    def summary(self) -> str:
        text = f"{self.total_active} active number{'s' if self.total_active != 1 else ''}"
        parts = [
            f"{n} {what}" for n, what in ((self.added, "new"), (self.deactivated, "removed at Twilio")) if n
        ]
        if parts:
            text += " (" + ", ".join(parts) + ")"
        if self.default_cleared:
            text += "; the default sender was removed at Twilio, pick a new one"
        return text + "."


@dataclass
class ConnectResult:
    account: TwilioAccount
    sync: SyncResult | None = None
    numbers_error: TwilioError | None = None
    messages: list[str] = field(default_factory=list)


def check_account_sid(account_sid: str) -> str:
    """Return the SID stripped, or raise ValidationError saying what is wrong (before any request)."""
    sid = (account_sid or "").strip()
    if not ACCOUNT_SID_RE.match(sid):
        raise ValidationError(MALFORMED_SID_MESSAGE, code="malformed_sid")
    return sid


@sensitive_variables()
def check_auth_token(auth_token: str) -> str:
    """Return the token stripped, or raise ValidationError saying what is wrong (before any request).

    A token is sent in HTTP Basic authentication, which carries Latin-1 only: a character outside it (a
    token pasted with a stray "令") could not even be sent, so it is refused here in plain words."""
    token = (auth_token or "").strip()
    if not token:
        raise ValidationError(EMPTY_TOKEN_MESSAGE, code="empty_token")
    if not (token.isascii() and token.isprintable()) or any(c.isspace() for c in token):
        raise ValidationError(UNUSABLE_CHARACTERS_MESSAGE, code="malformed_token")
    return token


@sensitive_variables()
def fetch_account_info(account_sid: str, auth_token: str) -> AccountInfo:
    """Fetch the account from Twilio; raise TwilioError (bad credentials, suspended/closed, network)."""
    client = client_for_credentials(account_sid, auth_token)
    with twilio_call():
        fetched = account_api(client, account_sid).fetch()
    status = (fetched.status or "").lower()
    if status == "suspended":
        raise TwilioError(SUSPENDED_MESSAGE, kind=KIND_SUSPENDED)
    if status == "closed":
        raise TwilioError(CLOSED_MESSAGE, kind=KIND_CLOSED)
    return AccountInfo(friendly_name=fetched.friendly_name or "", status=status, type=fetched.type or "")


def _capability(capabilities, name: str) -> bool:
    # Twilio spells these keys in lower case for owned numbers and in upper case elsewhere.
    caps = {str(k).lower(): v for k, v in (capabilities or {}).items()}
    return bool(caps.get(name))


@sensitive_variables()
def fetch_numbers(client, account_sid: str) -> list[RemoteNumber]:
    """Every incoming number of the account, following all pages."""
    with twilio_call():
        records = list(
            account_api(client, account_sid).incoming_phone_numbers.stream(page_size=NUMBERS_PAGE_SIZE)
        )
    return [
        RemoteNumber(
            sid=r.sid,
            phone_number=r.phone_number or "",
            friendly_name=r.friendly_name or "",
            sms=_capability(r.capabilities, "sms"),
            mms=_capability(r.capabilities, "mms"),
            voice=_capability(r.capabilities, "voice"),
            sms_url=r.sms_url or "",
            sms_method=(r.sms_method or "").upper(),
        )
        for r in records
    ]


def infer_number_type(phone_number: str) -> str:
    """Local, toll-free, mobile or short code, from the number itself (Twilio's list does not say)."""
    if not phone_number.startswith("+"):
        return PhoneNumber.NumberType.SHORT_CODE if phone_number.isdigit() else PhoneNumber.NumberType.UNKNOWN
    if phone_number.startswith("+1") and len(phone_number) == 12:
        return (
            PhoneNumber.NumberType.TOLL_FREE
            if phone_number[2:5] in TOLL_FREE_AREA_CODES
            else PhoneNumber.NumberType.LOCAL
        )
    try:
        kind = phonenumbers.number_type(phonenumbers.parse(phone_number, None))
    except phonenumbers.NumberParseException:
        return PhoneNumber.NumberType.UNKNOWN
    return {
        phonenumbers.PhoneNumberType.TOLL_FREE: PhoneNumber.NumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.MOBILE: PhoneNumber.NumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE: PhoneNumber.NumberType.LOCAL,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: PhoneNumber.NumberType.LOCAL,
    }.get(kind, PhoneNumber.NumberType.UNKNOWN)


SYNCED_FIELDS = (
    "sid",
    "phone_number",
    "friendly_name",
    "number_type",
    "sms_capable",
    "mms_capable",
    "voice_capable",
    "sms_url",
    "sms_method",
    "is_active",
)


def _apply_numbers(account: TwilioAccount, remote: list[RemoteNumber]) -> SyncResult:
    """Upsert the fetched numbers and deactivate the ones Twilio no longer lists (inside a transaction).

    Bulk writes, and only rows that changed are rewritten: a refresh of thousands of unchanged numbers costs a
    handful of queries.
    """
    now = timezone.now()
    result = SyncResult()
    existing = {n.sid: n for n in PhoneNumber.objects.filter(account=account)}
    by_phone = {n.phone_number: n for n in existing.values()}
    remote_sids = {r.sid for r in remote}
    seen: set[str] = set()
    to_create: list[PhoneNumber] = []
    to_update: list[PhoneNumber] = []
    for r in remote:
        if r.sid in seen:
            continue
        seen.add(r.sid)
        number = existing.get(r.sid)
        if number is None and r.phone_number in by_phone and by_phone[r.phone_number].sid not in remote_sids:
            # Same number under a new SID (bought again, or seeded before the SID was known): keep its row, so
            # its label, assignments and history stay attached.
            number = by_phone[r.phone_number]
            existing[r.sid] = number
        values = {
            "sid": r.sid,
            "phone_number": r.phone_number,
            "friendly_name": r.friendly_name[:200],
            "number_type": infer_number_type(r.phone_number),
            "sms_capable": r.sms,
            "mms_capable": r.mms,
            "voice_capable": r.voice,
            "sms_url": r.sms_url[:500],
            "sms_method": r.sms_method[:6],
            "is_active": True,
        }
        if number is None:
            to_create.append(
                PhoneNumber(organization=account.organization, account=account, last_synced_at=now, **values)
            )
        elif any(getattr(number, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(number, k, v)
            to_update.append(number)
    PhoneNumber.objects.bulk_create(to_create, batch_size=500)
    PhoneNumber.objects.bulk_update(to_update, list(SYNCED_FIELDS), batch_size=500)
    result.added, result.updated = len(to_create), len(to_update)
    gone = [n.pk for n in {n.pk: n for n in existing.values()}.values() if n.sid not in seen and n.is_active]
    if gone:
        result.deactivated = PhoneNumber.objects.filter(pk__in=gone).update(
            is_active=False, last_synced_at=now
        )
        cleared = MessagingSettings.objects.filter(
            organization=account.organization, default_number_id__in=gone
        ).update(default_number=None)
        result.default_cleared = bool(cleared)
    # Every active number of the account was just seen at Twilio.
    PhoneNumber.objects.filter(account=account, is_active=True).update(last_synced_at=now)
    result.total_active = len(seen)
    account.numbers_synced_at = now
    account.save(update_fields=["numbers_synced_at"])
    return result


def _verified_result(info: AccountInfo) -> str:
    kind = f", {info.type}" if info.type else ""
    return f"Verified: Twilio account {info.status or 'active'}{kind}."


@sensitive_variables()
def do_connect_twilio_account(
    org: Organization, actor, account_sid: str, auth_token: str, friendly_name: str = ""
) -> ConnectResult:
    """Verify the credentials with Twilio, then store the account and its numbers.

    Raises ValidationError (malformed SID, empty token, already connected) or TwilioError (Twilio said no,
    or could not be reached); in both cases nothing is stored.
    """
    sid = check_account_sid(account_sid)
    auth_token = check_auth_token(auth_token)
    if TwilioAccount.objects.filter(organization=org, account_sid=sid).exists():
        raise ValidationError(
            "This Twilio account is already connected. Use “Validate again”, or replace its auth token.",
            code="duplicate",
        )
    try:
        info = fetch_account_info(sid, auth_token)
    except TwilioError as exc:
        logger.info("Twilio verification of %s for org %s failed: %s", sid, org.pk, exc.kind)
        raise
    numbers: list[RemoteNumber] | None = None
    numbers_error = None
    try:
        numbers = fetch_numbers(client_for_credentials(sid, auth_token), sid)
    except TwilioError as exc:
        numbers_error = exc
    try:
        with transaction.atomic():
            if TwilioAccount.objects.filter(account_sid=sid).exclude(organization=org).exists():
                # Only said after Twilio accepted the token: the caller has proved they own the account.
                raise ValidationError(
                    "This Twilio account is connected to another QuickSend organization. Disconnect it "
                    "there first (an account belongs to one organization, so incoming texts reach the "
                    "right one).",
                    code="other_org",
                )
            account = TwilioAccount(
                organization=org,
                account_sid=sid,
                friendly_name=(friendly_name or "").strip()[:200] or info.friendly_name[:200],
                status=TwilioAccount.Status.VALID,
                twilio_status=info.status,
                account_type=info.type,
                last_validated_at=timezone.now(),
                last_validation_result=_verified_result(info),
                created_by=actor if getattr(actor, "is_authenticated", False) else None,
            )
            account.set_auth_token(auth_token)
            account.save()
            sync = _apply_numbers(account, numbers) if numbers is not None else None
            audit.record(
                org,
                actor,
                "twilio_account.connected",
                account,
                {"account_sid": sid, "numbers": sync.total_active if sync else None},
            )
    except IntegrityError:
        raise ValidationError("This Twilio account is already connected.", code="duplicate")
    result = ConnectResult(account=account, sync=sync, numbers_error=numbers_error)
    result.messages.append(SUCCESS_MESSAGE)
    if sync is not None:
        result.messages.append("Numbers: " + sync.summary())
    else:
        result.messages.append(
            f"The numbers could not be fetched yet: {numbers_error.message} Use “Refresh numbers”."
        )
    return result


def _validation_outcome(account: TwilioAccount, info: AccountInfo | None, error: TwilioError | None) -> None:
    account.last_validated_at = timezone.now()
    if info is not None:
        account.status = TwilioAccount.Status.VALID
        account.twilio_status = info.status
        account.account_type = info.type
        account.last_validation_result = _verified_result(info)
    else:
        # Only a definite answer from Twilio makes the credentials invalid; a network failure proves nothing.
        if error.kind in (KIND_AUTH, KIND_SUSPENDED, KIND_CLOSED) or error.code == 20404:
            account.status = TwilioAccount.Status.INVALID
            if error.kind in (KIND_SUSPENDED, KIND_CLOSED):
                account.twilio_status = error.kind
        account.last_validation_result = error.message.replace(" Nothing was saved.", "")[:300]


@sensitive_variables()
def do_validate_twilio_account(account: TwilioAccount, actor) -> TwilioError | None:
    """Check the stored credentials again ("Validate again"); record status and result. Returns the error,
    if any."""
    info, error = None, None
    try:
        client_for_account(account)  # the stored token must still decrypt
        info = fetch_account_info(account.account_sid, account.get_auth_token())
    except TwilioError as exc:
        error = exc
    with transaction.atomic():
        _validation_outcome(account, info, error)
        account.save(
            update_fields=[
                "status",
                "twilio_status",
                "account_type",
                "last_validated_at",
                "last_validation_result",
            ]
        )
        audit.record(
            account.organization,
            actor,
            "twilio_account.validated",
            account,
            {"status": account.status, "result": account.last_validation_result},
        )
    return error


@sensitive_variables()
def do_update_twilio_account(
    account: TwilioAccount, actor, *, friendly_name: str | None = None, auth_token: str | None = None
) -> TwilioAccount:
    """Rename the account, or replace its auth token (verified with Twilio before it is stored)."""
    info = None
    if auth_token is not None:
        auth_token = check_auth_token(auth_token)
        info = fetch_account_info(account.account_sid, auth_token)
    changes = {}
    with transaction.atomic():
        if friendly_name is not None and friendly_name.strip() != account.friendly_name:
            changes["friendly_name"] = [account.friendly_name, friendly_name.strip()[:200]]
            account.friendly_name = friendly_name.strip()[:200]
        if info is not None:
            account.set_auth_token(auth_token)
            _validation_outcome(account, info, None)
            changes["credentials"] = "replaced and verified"
        if changes:
            account.save()
            audit.record(account.organization, actor, "twilio_account.updated", account, changes)
    return account


@transaction.atomic
def do_delete_twilio_account(account: TwilioAccount, actor) -> None:
    """Disconnect the account: its stored token and its numbers are deleted.

    Refused while any of its numbers carries conversations: deleting would erase that message history.
    """
    from messaging.models import Conversation

    threads = Conversation.objects.filter(phone_number__account=account).count()
    if threads:
        raise ValidationError(
            f"This account's numbers carry {threads} conversation(s); disconnecting it would delete their "
            "message history, so it stays connected. Replace its token instead, or contact support to "
            "close it.",
            code="has_history",
        )
    audit.record(
        account.organization, actor, "twilio_account.deleted", account, {"account_sid": account.account_sid}
    )
    account.delete()


@transaction.atomic
def do_mark_twilio_account_invalid(account: TwilioAccount, error: TwilioError) -> bool:
    """Called when Twilio answers 20003 to a stored account (the send pipeline, a number sync): admins see
    it on the settings page, are notified in the app (``twilio_account_invalidated``, after commit), and
    must validate or replace the token.

    Audited and announced once per change: a task that meets 20003 again (a retry, the next message) finds
    the account already invalid and writes nothing more. Returns whether it changed the account."""
    changed = (
        TwilioAccount.objects.filter(pk=account.pk)
        .exclude(status=TwilioAccount.Status.INVALID)
        .update(
            status=TwilioAccount.Status.INVALID,
            last_validated_at=timezone.now(),
            last_validation_result=error.message[:300],
        )
    )
    account.status = TwilioAccount.Status.INVALID
    if changed:
        audit.record(account.organization, None, "twilio_account.invalidated", account, {"code": error.code})
        send_after_commit(
            twilio_account_invalidated,
            organization_id=account.organization_id,
            account_id=account.pk,
            message=error.message,
        )
    return bool(changed)


@sensitive_variables()
def do_refresh_numbers(account: TwilioAccount, actor) -> SyncResult:
    """Re-sync the account's numbers from Twilio ("Refresh numbers"). Raises TwilioError.

    An admin's refresh (``actor`` given) is always audited; an automatic one (``actor=None``: an inbound
    text to a number we do not know yet, which its retries repeat) only when it changed something."""
    try:
        remote = fetch_numbers(client_for_account(account), account.account_sid)
    except TwilioError as exc:
        if exc.kind == KIND_AUTH:
            do_mark_twilio_account_invalid(account, exc)
        raise
    with transaction.atomic():
        # Serialize concurrent refreshes of one account.
        locked = TwilioAccount.objects.select_for_update().get(pk=account.pk)
        result = _apply_numbers(locked, remote)
        if actor is not None or result.added or result.deactivated:
            audit.record(
                account.organization,
                actor,
                "twilio_account.numbers_refreshed",
                account,
                {"added": result.added, "deactivated": result.deactivated, "active": result.total_active},
            )
    account.numbers_synced_at = locked.numbers_synced_at
    return result
