"""Delivery status: the ONE forward-only status update every path uses (status callbacks, the stuck-message
poller, the send task).

Twilio's callbacks arrive out of order and more than once (FACTS.md), so a status only ever moves *up* the
rank table ``messaging.models.STATUS_RANK``; the update is a single conditional
``UPDATE … WHERE status_rank < new_rank`` (never read-modify-write), so two callbacks racing each other end
with the higher status whatever order their transactions commit in.

Same-rank rule: a status never replaces another of the same rank. The final statuses (delivered, undelivered,
failed, canceled, received) share rank 60, so the *first* final status that lands wins and a duplicate or a
contradicting late final callback changes nothing; only ``read`` (70) may still follow ``delivered``.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction
from django.db.models import Case, Exists, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from messaging.models import STATUS_RANK, Conversation, Message, MessageStatus
from messaging.signals import message_status_changed, send_after_commit
from messaging.twilio.errors import describe_code

# Statuses that mean the message left Twilio towards the carrier (sent_at is filled if it is still empty).
_SENT_OR_LATER = {
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
    MessageStatus.PARTIALLY_DELIVERED,
    MessageStatus.READ,
}
_FAILED = {MessageStatus.FAILED, MessageStatus.UNDELIVERED}


def twilio_status_word(value: str | None) -> str:
    """A status word as Twilio writes it in a webhook, an API answer or a listing, in our spelling:
    lower case, no surrounding spaces, ``partially-delivered`` → ``partially_delivered``. Not checked."""
    return (value or "").strip().lower().replace("-", "_")


def normalize_status(value: str | None, default: str | None = None) -> str | None:
    """The one reading of Twilio's status words: one of ours (``MessageStatus``), else ``default``."""
    word = twilio_status_word(value)
    return word if word in STATUS_RANK else default


def status_rank(status: str) -> int | None:
    """The rank of a Twilio status value (None for a value we do not know)."""
    return STATUS_RANK.get(status)


def apply_status(
    message_id: int | None,
    sid: str | None,
    status: str,
    *,
    error_code: int | None = None,
    at: datetime | None = None,
    organization_id: int | None = None,
    fast_commit: bool = False,
    row: Message | None = None,
) -> bool:
    """Move a message forward to ``status``; return whether it changed.

    The message is found by our id (``message_id``, from the ``m`` query parameter of the status callback
    URL, so a callback that beats the send response still finds its row) or else by Twilio's ``sid``. When
    both are given and the row has no SID yet, the SID is stored too (one statement with the status).

    Sets ``sent_at`` (first time it is sent or later), ``delivered_at`` / ``failed_at`` (from ``at``, default
    now), ``error_code`` with its plain-words ``error_message`` when Twilio gives a code, and the
    conversation's ``last_message_status`` when this is its last message. Sends ``message_status_changed``
    after commit. Unknown status values change nothing. ``organization_id`` (webhooks pass the verified
    account's) restricts the update to that organization's messages. ``row``: the message when the caller
    has it already (the send task), so its conversation and creation time, which never change, are not read
    again.
    """
    status = normalize_status(status)
    rank = STATUS_RANK.get(status)
    if rank is None or (message_id is None and not sid):
        return False
    at = at or timezone.now()

    rows = Message.objects.all()
    if organization_id is not None:
        rows = rows.filter(organization_id=organization_id)
    if message_id is not None:
        rows = rows.filter(pk=message_id)
        if sid:
            # Never attach the SID of another message to this row.
            rows = rows.filter(Q(sid=sid) | Q(sid__isnull=True))
    else:
        rows = rows.filter(sid=sid)

    changes = _changes(message_id, sid, status, rank, error_code, at)

    relaxed = fast_commit and connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if relaxed:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        changed = rows.filter(status_rank__lt=rank).update(**changes) > 0
        if not changed:
            if message_id is not None and sid:
                _store_sid(message_id, sid)
            return False
        _after_change(rows, row, message_id, status, error_code)
    return True


def _changes(message_id, sid, status: str, rank: int, error_code, at: datetime) -> dict:
    """The columns one status update writes (a single UPDATE; conditional expressions where it depends)."""
    changes: dict = {"status": status, "status_rank": rank, "updated_at": at}
    if message_id is not None and sid:
        # Store the SID if the row has none yet, unless another row holds it (never a unique violation that
        # would break a caller's transaction).
        taken = Exists(Message.objects.filter(sid=sid).exclude(pk=message_id))
        changes["sid"] = Case(When(taken, then=F("sid")), default=Coalesce(F("sid"), Value(sid)))
    if status in _SENT_OR_LATER:
        changes["sent_at"] = Coalesce(F("sent_at"), Value(at))
    if status in (MessageStatus.DELIVERED, MessageStatus.READ):
        changes["delivered_at"] = Coalesce(F("delivered_at"), Value(at))
    if status in _FAILED:
        changes["failed_at"] = at
    if error_code:
        changes["error_code"] = int(error_code)
        changes["error_message"] = describe_code(int(error_code))[:300]
    elif status in _FAILED:
        # Keep an error Twilio gave earlier (e.g. on the send request); otherwise say it failed.
        changes["error_message"] = Case(
            When(error_message="", then=Value(describe_code(None))), default=F("error_message")
        )
    return changes


def _after_change(rows, row: Message | None, message_id, status: str, error_code) -> None:
    """The conversation's last status, and ``message_status_changed`` after commit."""
    if row is not None and row.pk == message_id:
        msg = {
            "id": row.pk,
            "conversation_id": row.conversation_id,
            "organization_id": row.organization_id,
            "created_at": row.created_at,
        }
    else:
        found = rows.values("id", "conversation_id", "organization_id", "created_at")[:1]
        msg = found[0] if found else None
    if msg is None:  # pragma: no cover - the row we just updated
        return
    # The conversation shows its last message's status: only when this message is that last one.
    Conversation.objects.filter(pk=msg["conversation_id"], last_message_at=msg["created_at"]).update(
        last_message_status=status
    )
    send_after_commit(
        message_status_changed,
        message_id=msg["id"],
        conversation_id=msg["conversation_id"],
        organization_id=msg["organization_id"],
        status=status,
        error_code=int(error_code) if error_code else None,
    )


def _store_sid(message_id: int, sid: str) -> None:
    """Attach Twilio's SID to our row if it has none yet (a stale callback may still carry it first)."""
    Message.objects.filter(pk=message_id, sid__isnull=True).exclude(
        Exists(Message.objects.filter(sid=sid))
    ).update(sid=sid)


# --- Batches of status callbacks (the drain) ---------------------------------------------------------------


class StatusUpdate:
    """One stored status callback to apply: which message (our id, else Twilio's SID), the status word, the
    error code and when it arrived."""

    __slots__ = ("message_id", "sid", "status", "rank", "error_code", "at", "organization_id")

    def __init__(self, message_id, sid, status, error_code, at, organization_id) -> None:
        self.status = normalize_status(status)
        self.rank = STATUS_RANK.get(self.status)
        self.message_id, self.sid, self.error_code = message_id, sid or None, error_code or None
        self.at, self.organization_id = at, organization_id


def apply_statuses(updates: list[StatusUpdate]) -> list[str]:
    """Apply a batch of status callbacks in the caller's transaction, each exactly as ``apply_status`` does
    (forward only, the same columns, our id or else the SID, the SID attached when the row has none), with a
    constant number of statements per batch instead of ~11 per callback:

    one read of the messages named only by their SID; one conditional ``UPDATE … FROM (VALUES …)`` per
    *round* (the first callback of every message, then the second of those that had two — ``sent`` then
    ``delivered`` — so each message's callbacks apply in their order); the SIDs to attach; the conversations
    whose last message it is; then the inbox's live events for the whole batch (``message.status`` per
    change, ``conversation.updated`` per conversation whose preview status changed), published once the
    transaction commits.

    Returns the SIDs of callbacks that named no message of ours (another tool sent it from our number: the
    caller fetches those from Twilio). PostgreSQL only (the drain uses ``apply_status`` elsewhere)."""
    from messaging.inbox import events

    by_sid = {u.sid for u in updates if u.message_id is None and u.sid and u.rank is not None}
    found: dict[tuple[int, str], int] = {}
    if by_sid:
        for pk, org_id, sid in Message.objects.filter(sid__in=by_sid).values_list(
            "pk", "organization_id", "sid"
        ):
            found[(org_id, sid)] = pk
    unknown: list[str] = []
    queues: dict[int, list[StatusUpdate]] = {}
    attach: list[StatusUpdate] = []
    for update in updates:
        if update.rank is None or (update.message_id is None and not update.sid):
            continue
        if update.message_id is None:
            pk = found.get((update.organization_id, update.sid))
            if pk is None:
                unknown.append(update.sid)
                continue
            update.message_id = pk
            update.sid = None  # found by its SID: nothing to attach
        elif update.sid:
            attach.append(update)
        queues.setdefault(update.message_id, []).append(update)
    changed: dict[int, tuple] = {}  # message id → (row, its changes in order)
    round_no = 0
    while True:
        batch = [q[round_no] for q in queues.values() if len(q) > round_no]
        if not batch:
            break
        for row in _update_round(batch):
            entry = changed.setdefault(row[0], [row, []])
            entry[0] = row
            entry[1].append(row)
        round_no += 1
    unchanged_sids = [u for u in attach if u.message_id not in changed]
    if unchanged_sids:
        _attach_sids(unchanged_sids)
    if changed:
        _after_batch(changed, events)
    return unknown


# Prefix of a batched UPDATE: lock the rows it may change in id order (``%s``: their ids), so that two
# transactions updating overlapping sets of rows never wait on each other in a cycle.
_LOCK_IN_ORDER = (
    "WITH locked AS MATERIALIZED (SELECT id FROM {table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE) "
)

_ROUND_COLUMNS = (
    "mid, org, sid, status, rank, at, sent, delivered, failed, code, code_message, default_message"
)


def _update_round(batch: list[StatusUpdate]) -> list[tuple]:
    """One conditional UPDATE for at most one callback per message: the rows it moved forward."""
    table = Message._meta.db_table
    values, params = [], []
    fallback = describe_code(None)
    for u in batch:
        values.append(
            "(%s::bigint, %s::bigint, %s::text, %s::text, %s::int, %s::timestamptz, %s::bool, %s::bool, "
            "%s::bool, %s::int, %s::text, %s::text)"
        )
        code = int(u.error_code) if u.error_code else None
        params += [
            u.message_id,
            u.organization_id,
            u.sid,
            u.status,
            u.rank,
            u.at or timezone.now(),
            u.status in _SENT_OR_LATER,
            u.status in (MessageStatus.DELIVERED, MessageStatus.READ),
            u.status in _FAILED,
            code,
            describe_code(code)[:300] if code else None,
            fallback if u.status in _FAILED else None,
        ]
    # The rows are locked in id order first (``_LOCK_IN_ORDER``): batches of callbacks and of hand-overs
    # that share messages then wait for each other instead of deadlocking.
    sql = (
        _LOCK_IN_ORDER.format(table=table)
        + f"UPDATE {table} AS m SET status = v.status, status_rank = v.rank, updated_at = v.at, "  # noqa: S608
        "sent_at = CASE WHEN v.sent THEN COALESCE(m.sent_at, v.at) ELSE m.sent_at END, "
        "delivered_at = CASE WHEN v.delivered THEN COALESCE(m.delivered_at, v.at) ELSE m.delivered_at END, "
        "failed_at = CASE WHEN v.failed THEN v.at ELSE m.failed_at END, "
        "error_code = COALESCE(v.code, m.error_code), "
        "error_message = CASE WHEN v.code IS NOT NULL THEN v.code_message "
        "WHEN v.failed AND m.error_message = '' THEN v.default_message ELSE m.error_message END, "
        "sid = CASE WHEN v.sid IS NULL OR m.sid IS NOT NULL THEN m.sid "
        f"WHEN EXISTS (SELECT 1 FROM {table} x WHERE x.sid = v.sid AND x.id <> m.id) THEN m.sid "
        "ELSE v.sid END "
        f"FROM (VALUES {', '.join(values)}) AS v({_ROUND_COLUMNS}) "
        "WHERE m.id = v.mid AND m.id IN (SELECT id FROM locked) "
        "AND (v.org IS NULL OR m.organization_id = v.org) AND m.status_rank < v.rank "
        "AND (v.sid IS NULL OR m.sid IS NULL OR m.sid = v.sid) "
        "RETURNING m.id, m.conversation_id, m.organization_id, m.created_at, m.sender_id, m.status, "
        "m.error_code, m.error_message"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [[u.message_id for u in batch], *params])
        return cursor.fetchall()


def _attach_sids(updates: list[StatusUpdate]) -> None:
    """``_store_sid`` for every callback that changed no status but named our row and Twilio's SID."""
    table = Message._meta.db_table
    pairs = {u.message_id: u.sid for u in updates}
    values = ", ".join(["(%s::bigint, %s::text)"] * len(pairs))
    sql = _LOCK_IN_ORDER.format(table=table) + (
        f"UPDATE {table} AS m SET sid = v.sid FROM (VALUES {values}) AS v(mid, sid) "  # noqa: S608
        "WHERE m.id = v.mid AND m.id IN (SELECT id FROM locked) AND m.sid IS NULL "
        f"AND NOT EXISTS (SELECT 1 FROM {table} x WHERE x.sid = v.sid)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(pairs), *[v for pair in pairs.items() for v in pair]])


def _after_batch(changed: dict[int, list], events) -> None:
    """The conversations' last status (one statement), then the live events of the batch."""
    table = Conversation._meta.db_table
    finals = [entry[0] for entry in changed.values()]
    values = ", ".join(["(%s::bigint, %s::timestamptz, %s::text)"] * len(finals))
    params = [v for row in finals for v in (row[1], row[3], row[5])]
    sql = _LOCK_IN_ORDER.format(table=table) + (
        f"UPDATE {table} AS c SET last_message_status = v.status "  # noqa: S608
        f"FROM (VALUES {values}) AS v(cid, at, status) "
        "WHERE c.id = v.cid AND c.id IN (SELECT id FROM locked) "
        "AND c.last_message_at = v.at AND c.last_message_status <> v.status RETURNING c.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [sorted({row[1] for row in finals}), *params])
        touched = {row[0] for row in cursor.fetchall()}
    events.publish_status_batch([step for entry in changed.values() for step in entry[1]], touched)
