"""The campaign dispatcher: wakes due recipients and sends each step at its sender's own speed.

- ``dispatch`` is the periodic tick (every second, one process at a time: ``locked_job``). For every sender
  number of a running campaign it releases at most one tick ahead of that sender's rate (long code 1
  segment/s, toll-free 3, short code 100, or the number's own ``SenderRate``), each text costing its
  segments. A per-sender slot clock spaces the texts evenly; each claimed recipient gets its slot, the
  time its text is handed to Twilio. Campaigns sharing a sender take turns; organizations never share a
  sender, so each has its own pace. A campaign in batch mode releases at most N texts every M minutes.
- A claim is a lease (``claimed_until``): a step task that was lost is claimed again once it expires.
- ``send_steps`` texts the people one tick released (``send_step``: one person): inside one
  transaction with their rows locked it re-checks everything per person (campaign running, person still
  active and at this step, the window open), stores the texts with the bulk send service (every check of a
  single send, opt-out included; the idempotency key ``campaign-<recipient>-<step>``), records each
  ``CampaignSend`` (unique per recipient and step) and moves the people on. A worker killed anywhere in it
  rolls everything back; a duplicate task finds the steps done. So nobody gets a step twice.
- After commit the texts are handed to Twilio at their slots, those due together (one per sender) in one
  batch (``deliver_due``); a text whose hand-over task was lost is queued again by the tick
  (``_requeue_stranded``), and the hand-over claims a text before calling Twilio: never sent twice.
- The sender's allowance per second at the hand-over to Twilio (``messaging.services.throttle``) stays the
  hard limit: whatever finds its second full waits, so no second ever holds more than the sender's rate.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from campaigns.drip import windows
from campaigns.drip.compose import compose, with_opt_out
from campaigns.drip.models import (
    Campaign,
    CampaignMedia,
    CampaignRecipient,
    CampaignSend,
    CampaignStep,
    KeywordOptIn,
    SenderRate,
)
from crm.models import model_for
from messaging.models import Message, MessageStatus, PhoneNumber
from messaging.segments import analyze
from messaging.services import throttle
from messaging.services.bulk_sending import Recipient, StoredMedia, send_many
from messaging.services.hand_over import queue_batches
from messaging.services.sending import SendRefused
from quicksend.bulk import update_rows
from quicksend.queue import task

log = logging.getLogger(__name__)

LEASE_SECONDS = 300


def _lease() -> timedelta:
    # Longer than a released step waits in the queue; a lost task is claimed again once it passes.
    return timedelta(seconds=float(getattr(settings, "QUICKSEND_CAMPAIGN_LEASE_SECONDS", LEASE_SECONDS)))


TICK_SECONDS = 1.0
# How far ahead of now a sender's slots are handed out (one tick, plus room for the tick's own lateness).
HORIZON_SECONDS = 2.5
# A new slot is at least this far ahead of now: the time it takes to store the tick's texts.
LEAD_SECONDS = 0.5
# Texts of a sender stored and overdue for this long (at its rate) mean the workers are behind it.
BEHIND_SECONDS = 1.0
# The part of each second a sender's slots are spread over (the rest is slack before the throttle's margin).
SLOT_PART = 0.5
# A window closing sooner than this is not worth a text: the carrier may hold it past the close.
MIN_VALIDITY_SECONDS = 60
Status = CampaignRecipient.Status


def sender_rates(numbers: list[PhoneNumber]) -> dict[int, float]:
    """Segments per second of each number: its own rate if set, else its type's."""
    own = dict(
        SenderRate.objects.filter(number__in=[n.pk for n in numbers]).values_list(
            "number_id", "segments_per_second"
        )
    )
    return {n.pk: float(own.get(n.pk) or throttle.rate_for(n.number_type)) for n in numbers}


def _steps(campaign_id: int) -> list[CampaignStep]:
    return list(CampaignStep.objects.filter(campaign_id=campaign_id).order_by("position"))


def step_segments(steps: list[CampaignStep], index: int) -> int:
    """The segments a step costs (merge values aside), the first with its opt-out line."""
    body = steps[index].body
    return analyze(with_opt_out(body) if index == 0 else body).segments


# --- the tick ----------------------------------------------------------------------------------------------


def _start_scheduled(now: datetime) -> None:
    for campaign in Campaign.objects.filter(status=Campaign.Status.SCHEDULED, start_at__lte=now):
        Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SCHEDULED).update(
            status=Campaign.Status.RUNNING, started_at=now
        )


def _finish_done(campaigns: list[Campaign], now: datetime) -> None:
    """Complete the running campaigns nobody is active in any more, except those a keyword opt-in feeds:
    people may still join them (they complete when canceled, or on the tick after the keyword is unlinked)."""
    fed = set(
        KeywordOptIn.objects.filter(campaign_id__in=[c.pk for c in campaigns]).values_list(
            "campaign_id", flat=True
        )
    )
    for campaign in campaigns:
        if campaign.pk in fed:
            continue
        active = CampaignRecipient.objects.filter(campaign=campaign, status__in=CampaignRecipient.ACTIVE)
        if not active.exists():
            Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.RUNNING).update(
                status=Campaign.Status.COMPLETED, finished_at=now
            )


def _batch_allowance(campaign: Campaign, now: datetime) -> int | None:
    """How many more texts batch mode lets the campaign send now (None: no batch mode)."""
    if not campaign.batch_size or not campaign.batch_minutes:
        return None
    started = campaign.batch_started_at
    if started is None or now >= started + timedelta(minutes=campaign.batch_minutes):
        Campaign.objects.filter(pk=campaign.pk).update(batch_started_at=now, batch_sent=0)
        campaign.batch_started_at, campaign.batch_sent = now, 0
    return max(0, campaign.batch_size - campaign.batch_sent)


def _slot_key(number_id: int) -> str:
    return f"campaign-slot:{number_id}"


def _claim(campaign: Campaign, sender_id: int, limit: int, now: datetime) -> list[CampaignRecipient]:
    """Lease up to ``limit`` due recipients of one campaign and sender whose window is open; those whose
    window is closed are moved to its next opening with the reason."""
    if limit <= 0:
        return []
    claimed: list[CampaignRecipient] = []
    gates: dict[tuple[str, str], windows.Gate] = {}
    with transaction.atomic():
        rows = list(
            CampaignRecipient.objects.select_for_update(skip_locked=True)
            .filter(
                campaign=campaign,
                sender_id=sender_id,
                status__in=CampaignRecipient.ACTIVE,
                next_at__lte=now,
            )
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .order_by("next_at", "id")
            .only("id", "time_zone", "state", "step_index", "next_at")[: limit * 2]
        )
        waiting: dict[tuple[datetime, str], list[int]] = defaultdict(list)
        for row in rows:
            zone_key = (row.time_zone, row.state)
            if zone_key not in gates:
                gates[zone_key] = windows.gate(
                    campaign, recipient_time_zone=row.time_zone, state=row.state, now=now
                )
            gate = gates[zone_key]
            open_long_enough = gate.allowed and (gate.closes_at - now).total_seconds() >= MIN_VALIDITY_SECONDS
            if open_long_enough:
                if len(claimed) < limit:
                    claimed.append(row)
            else:
                opens = gate.opens_at or (gate.closes_at + timedelta(seconds=1))
                waiting[(opens, gate.reason or "Waiting for the sending window")].append(row.pk)
        for (opens, reason), ids in waiting.items():
            CampaignRecipient.objects.filter(pk__in=ids).update(next_at=opens, waiting_reason=reason[:200])
        if claimed:
            CampaignRecipient.objects.filter(pk__in=[r.pk for r in claimed]).update(
                claimed_until=now + _lease(), waiting_reason=""
            )
    return claimed


def _backlog(numbers: list[PhoneNumber]) -> dict[int, int]:
    """Campaign texts of each sender stored but not yet handed to Twilio (the workers' backlog)."""
    by_number = {(n.organization_id, n.phone_number): n.pk for n in numbers}
    rows = (
        Message.objects.filter(
            status=MessageStatus.PENDING,
            status_rank=0,  # lets the "not final" partial index serve the query
            source=Message.Source.CAMPAIGN,
            organization_id__in={org for org, _ in by_number},
            from_number__in={number for _, number in by_number},
        )
        .values_list("organization_id", "from_number")
        .annotate(n=Count("id"))
    )
    return {by_number[(org, number)]: n for org, number, n in rows if (org, number) in by_number}


# People whose sender cannot send are tried again after this long.
SENDER_HOLD_SECONDS = 300

# A campaign text stored this long ago and still not handed over lost its hand-over task (a worker killed
# between storing the texts and queueing their hand-overs, or holding them for their slots).
STRANDED_SECONDS = 60


def _requeue_stranded(now: datetime, limit: int = 500) -> int:
    """Queue the hand-over again for campaign texts stuck before it (at most every 10 s, ``limit`` a run).
    A second task for a text still in flight is harmless: the hand-over claims the text first."""
    if not cache.add("campaign-stranded-sweep", 1, timeout=10):
        return 0
    ids = list(
        Message.objects.filter(
            status=MessageStatus.PENDING,
            status_rank=0,
            source=Message.Source.CAMPAIGN,
            sid__isnull=True,
            handed_over_at__isnull=True,
            created_at__lt=now - timedelta(seconds=STRANDED_SECONDS),
            created_at__gte=now - timedelta(days=1),
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        log.warning("campaign texts stranded before their hand-over, queued again: %s", len(ids))
        deliver_due([(pk, None) for pk in ids])
    return len(ids)


def _interleave(lists: list[list]) -> list:
    out = []
    for i in range(max((len(x) for x in lists), default=0)):
        out += [x[i] for x in lists if i < len(x)]
    return out


def dispatch(now: datetime | None = None) -> dict:
    """One tick: start scheduled campaigns, release each sender's next slots, finish completed campaigns."""
    now = now or timezone.now()
    _start_scheduled(now)
    requeued = _requeue_stranded(now)  # a completed campaign's last texts too
    running = list(Campaign.objects.filter(status=Campaign.Status.RUNNING).order_by("id"))
    if not running:
        return {"released": 0, "requeued": requeued}
    by_sender: dict[int, list[Campaign]] = defaultdict(list)
    for campaign_id, number_id in Campaign.senders.through.objects.filter(
        campaign_id__in=[c.pk for c in running]
    ).values_list("campaign_id", "phonenumber_id"):
        by_sender[number_id].append(next(c for c in running if c.pk == campaign_id))
    numbers = list(PhoneNumber.objects.filter(pk__in=list(by_sender)))
    rates = sender_rates(numbers)
    # A number's own rate lives beside the throttle's allowances; say it again each tick (a flushed store).
    for number_id in SenderRate.objects.filter(number_id__in=list(rates)).values_list("number_id", flat=True):
        throttle.set_number_rate(number_id, rates[number_id])
    steps_of = {c.pk: _steps(c.pk) for c in running}
    backlog = _backlog(numbers)
    allowance = {c.pk: _batch_allowance(c, now) for c in running}
    released: dict[int, list[tuple[int, int, float]]] = defaultdict(list)
    now_ts = now.timestamp()
    for number_id, campaigns in by_sender.items():
        rate = rates.get(number_id)
        if not rate:
            continue
        # The slot clock is virtual: each second's slots are spread over its first half (``SLOT_PART``), so a
        # text handed over a little late still goes before the throttle's margin at the end of the second.
        clock = float(cache.get(_slot_key(number_id)) or 0.0)
        now_v = throttle.virtual(now_ts, SLOT_PART)
        if clock > now_v + 3600:
            clock = 0.0  # the clock was set on another host's time, far ahead: start again from now
        if backlog.get(number_id, 0) - max(0.0, clock - now_v) * rate >= max(1.0, rate * BEHIND_SECONDS):
            # More stored than the slots still ahead account for: the workers are behind this sender.
            # Release nothing until they catch up.
            continue
        # The first new slot leaves the step task time to store its texts before they are due.
        clock = max(clock, throttle.virtual(now_ts + LEAD_SECONDS, SLOT_PART))
        horizon = throttle.virtual(now_ts + HORIZON_SECONDS, SLOT_PART)
        room = horizon - clock
        if room <= 0:
            continue
        budget = max(1, int(room * rate))  # in segments: at least one text once the clock has room
        share = math.ceil(budget / len(campaigns))
        lists = []
        for campaign in campaigns:
            limit = share if allowance[campaign.pk] is None else min(share, allowance[campaign.pk])
            lists.append([(campaign, r) for r in _claim(campaign, number_id, limit, now)])
        for campaign, recipient in _interleave(lists):
            steps = steps_of[campaign.pk]
            if recipient.step_index >= len(steps):
                continue
            cost = step_segments(steps, recipient.step_index)
            if clock >= horizon:
                # Over this tick's room: give the lease back, the next tick takes it.
                CampaignRecipient.objects.filter(pk=recipient.pk).update(claimed_until=None)
                continue
            released[number_id].append((recipient.pk, recipient.step_index, throttle.real(clock, SLOT_PART)))
            clock += cost / rate
            if allowance[campaign.pk] is not None:
                allowance[campaign.pk] -= 1
                Campaign.objects.filter(pk=campaign.pk).update(batch_sent=campaign.batch_sent + 1)
                campaign.batch_sent += 1
        cache.set(_slot_key(number_id), clock, timeout=3600)
    # One task per tick stores its texts together; each is handed to Twilio at its own slot.
    items = _interleave(list(released.values()))
    if items:
        task("campaigns.tasks.send_campaign_steps").delay(items)
    _finish_done(running, now)
    return {"released": sum(len(items) for items in released.values()), "requeued": requeued}


# --- steps to people -----------------------------------------------------------------------------------


def _records(recipients: list[CampaignRecipient]) -> dict[tuple[str, int], object]:
    """The CRM record of each recipient that has one (with its owner): one query per record type."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for r in recipients:
        if r.record_type and r.record_id:
            wanted[r.record_type].add(r.record_id)
    found = {}
    for record_type, ids in wanted.items():
        organization_id = recipients[0].organization_id
        for record in (
            model_for(record_type)
            .objects.select_related("owner")
            .filter(organization_id=organization_id, pk__in=ids)
        ):
            found[(record_type, record.pk)] = record
    return found


def _stop(recipient: CampaignRecipient, status: str, reason: str) -> str:
    recipient.status = status
    recipient.error = reason[:300]
    recipient.claimed_until = None
    recipient.next_at = None
    recipient.save(update_fields=["status", "error", "claimed_until", "next_at", "updated_at"])
    return status


def _refusal_status(reason: str) -> str:
    return Status.OPTED_OUT if "opted out" in reason.lower() else Status.FAILED


@dataclass
class _Due:
    recipient: CampaignRecipient
    gate: windows.Gate
    key: str
    text: str
    actor: object
    media: tuple[StoredMedia, ...] = ()


def _media_of(steps: list[CampaignStep]) -> dict[int, StoredMedia]:
    """The attachments the steps send, read once for a campaign."""
    ids = {i for step in steps for i in step.media}
    if not ids:
        return {}
    return {
        m.pk: StoredMedia(m.file.name, m.filename, m.content_type, m.size)
        for m in CampaignMedia.objects.filter(pk__in=ids)
    }


@dataclass
class StepsSent:
    """What ``send_steps`` did: a word per recipient, and each stored message with the time its hand-over
    to Twilio is due (a Unix time; None: now)."""

    outcomes: dict[int, str]
    deliveries: list[tuple[int, float | None]]


@transaction.atomic
def send_steps(items: list[tuple[int, int, float | None]], now: datetime | None = None) -> StepsSent:
    """Text each recipient the step it was released for, if it is still theirs to get now (see the module
    docstring). ``items``: ``(recipient id, step index, due time)``, the due time being when the dispatcher
    gave the text its sender's slot.

    One transaction for all: the recipients' rows locked, every re-check made per person, the texts stored
    with the bulk send service (one batch per campaign, sender and agent) without handing them over, their
    ``CampaignSend`` rows written and the people moved on. The caller hands the messages to Twilio after
    commit, each at its due time (``deliver_due``)."""
    now = now or timezone.now()
    wanted = {rid: (step, at) for rid, step, at in items}
    outcomes = dict.fromkeys(wanted, "missing")
    recipients = list(
        CampaignRecipient.objects.select_for_update(of=("self",))
        .select_related("campaign__organization", "campaign__created_by", "sender")
        .filter(pk__in=list(wanted))
        .order_by("pk")
    )
    steps_of: dict[int, list[CampaignStep]] = {}
    media_of: dict[int, dict[int, StoredMedia]] = {}
    gates: dict[tuple, windows.Gate] = {}
    records = _records(recipients)
    groups: dict[tuple, list[_Due]] = defaultdict(list)
    given_back: list[CampaignRecipient] = []  # not sent now: the claim released (and when to come back)
    for recipient in recipients:
        step_index = wanted[recipient.pk][0]
        if recipient.step_index != step_index or recipient.status not in CampaignRecipient.ACTIVE:
            outcomes[recipient.pk] = "done"
            continue
        campaign = recipient.campaign
        if campaign.status != Campaign.Status.RUNNING:
            given_back.append(recipient)
            outcomes[recipient.pk] = "not running"
            continue
        zone = (campaign.pk, recipient.time_zone, recipient.state)
        if zone not in gates:
            gates[zone] = windows.gate(
                campaign, recipient_time_zone=recipient.time_zone, state=recipient.state, now=now
            )
        gate = gates[zone]
        if not gate.allowed:
            recipient.next_at, recipient.waiting_reason = gate.opens_at, gate.reason
            given_back.append(recipient)
            outcomes[recipient.pk] = "waiting"
            continue
        if campaign.pk not in steps_of:
            steps_of[campaign.pk] = _steps(campaign.pk)
            media_of[campaign.pk] = _media_of(steps_of[campaign.pk])
        steps = steps_of[campaign.pk]
        if step_index >= len(steps):
            outcomes[recipient.pk] = _stop(recipient, Status.COMPLETED, "")
            continue
        record = records.get((recipient.record_type, recipient.record_id))
        text = compose(
            steps[step_index].body,
            merge=recipient.merge,
            record=record,
            org=campaign.organization,
            first=step_index == 0,
        ).text
        actor = getattr(record, "owner", None) or campaign.created_by
        key = f"campaign-{recipient.pk}-{step_index}"
        media = tuple(media_of[campaign.pk][i] for i in steps[step_index].media if i in media_of[campaign.pk])
        groups[(campaign.pk, recipient.sender_id, getattr(actor, "pk", None))].append(
            _Due(recipient, gate, key, text, actor, media)
        )
    for recipient in given_back:
        recipient.claimed_until, recipient.updated_at = None, now
    fields = ["next_at", "waiting_reason", "claimed_until", "updated_at"]
    update_rows(given_back, fields)
    deliveries: list[tuple[int, float | None]] = []
    for dues in groups.values():
        deliveries += _send_group(dues, wanted, steps_of, outcomes, now)
    return StepsSent(outcomes, deliveries)


def _send_group(dues: list[_Due], wanted, steps_of, outcomes: dict[int, str], now: datetime):
    """One batch of the bulk send service (one campaign, sender and agent), and what follows from it."""
    first = dues[0].recipient
    campaign = first.campaign
    try:
        result = send_many(
            campaign.organization,
            [Recipient(key=d.key, to=d.recipient.phone, body=d.text, media=d.media) for d in dues],
            source=Message.Source.CAMPAIGN,
            source_label=campaign.name,
            from_number=first.sender,
            actor=dues[0].actor,
            queue_delivery=False,
        )
    except SendRefused as refused:
        _hold(campaign, [d.recipient for d in dues], refused, outcomes, now)
        return []
    steps = steps_of[campaign.pk]
    messages = {m.idempotency_key: m for m in result.queued + result.existing}
    senders = dict(
        PhoneNumber.objects.filter(
            organization_id=campaign.organization_id,
            phone_number__in={m.from_number for m in messages.values()},
        ).values_list("phone_number", "pk")
    )
    validity: dict[int, list[int]] = defaultdict(list)
    sends, moved, deliveries = [], [], []
    for d in dues:
        recipient, step_index = d.recipient, wanted[d.recipient.pk][0]
        if d.key in result.refused:
            reason = str(result.refused[d.key])
            outcomes[recipient.pk] = _stop(recipient, _refusal_status(reason), reason)
            continue
        message = messages[d.key]
        if message.sid is None:
            validity[windows.validity_seconds(d.gate.closes_at, now)].append(message.pk)
            deliveries.append((message.pk, wanted[recipient.pk][1]))
        sends.append(
            CampaignSend(
                organization_id=recipient.organization_id,
                campaign=campaign,
                recipient=recipient,
                step_index=step_index,
                message=message,
                segments=message.num_segments,
            )
        )
        recipient.step_index = step_index + 1
        recipient.last_sent_at = now
        recipient.claimed_until = None
        recipient.waiting_reason = ""
        recipient.updated_at = now
        if recipient.sender_id is None:
            recipient.sender_id = senders.get(message.from_number)
        if step_index + 1 < len(steps):
            recipient.status = Status.IN_PROGRESS
            recipient.next_at = now + timedelta(minutes=steps[step_index + 1].wait_minutes)
        else:
            recipient.status = Status.COMPLETED
            recipient.next_at = None
        moved.append(recipient)
        outcomes[recipient.pk] = "sent"
    for seconds, ids in validity.items():
        Message.objects.filter(pk__in=ids).update(validity_period=seconds)
    CampaignSend.objects.bulk_create(sends, ignore_conflicts=True)
    update_rows(
        moved,
        ["step_index", "last_sent_at", "claimed_until", "waiting_reason", "sender", "status", "next_at",
         "updated_at"],
    )  # fmt: skip
    return deliveries


def _hold(campaign, recipients: list[CampaignRecipient], refused: SendRefused, outcomes, now) -> None:
    """The sender itself cannot send (its Twilio account needs an admin, the number was released…): nothing
    is wrong with these people. They wait, with the reason on the campaign's page, and are tried again every
    few minutes, so the campaign goes on once an admin has fixed it."""
    for recipient in recipients:
        recipient.next_at = now + timedelta(seconds=SENDER_HOLD_SECONDS)
        recipient.claimed_until = None
        recipient.waiting_reason = f"Held: {refused}"[:200]
        recipient.updated_at = now
        outcomes[recipient.pk] = "held"
    fields = ["next_at", "claimed_until", "waiting_reason", "updated_at"]
    update_rows(recipients, fields)
    log.warning("campaign %s: sender refused, %s people held: %s", campaign.pk, len(recipients), refused)


def deliver_due(deliveries: list[tuple[int, float | None]]) -> None:
    """Queue the hand-over to Twilio of the stored messages at their due times (the senders' slots): one
    batch task per 50 ms (``hand_over.queue_batches``); a text its sender's allowance still holds back is
    retried by that task after the wait."""
    queue_batches(dict(deliveries))


def send_step(recipient_id: int, step_index: int, now: datetime | None = None) -> str:
    """``send_steps`` for one person, handed over at once. Returns what happened in a word."""
    done = send_steps([(recipient_id, step_index, None)], now=now)
    transaction.on_commit(lambda: deliver_due(done.deliveries))
    return done.outcomes[recipient_id]
