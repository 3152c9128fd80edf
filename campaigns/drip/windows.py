"""A campaign's sending window: when a text to one recipient may go, and until when.

Two windows must both be open: the campaign's own hours and days (read on the recipient's clock, or on the
campaign's time zone), and the quiet-hours policy on the recipient's clock (``campaigns.quiet_hours``: the
law's calling hours never bend to a campaign's setting). ``gate`` also says when the window closes, which
becomes the message's Twilio ``ValidityPeriod``: a text held up at the carrier is dropped rather than
delivered after hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from campaigns import quiet_hours

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HORIZON_DAYS = 9


@dataclass(frozen=True)
class Gate:
    allowed: bool
    opens_at: datetime | None = None  # when not allowed: the next opening (UTC)
    closes_at: datetime | None = None  # when allowed: the end of this opening (UTC)
    reason: str = ""


def _intervals(zone: ZoneInfo, start: datetime, hours, days) -> list[tuple[datetime, datetime]]:
    """[open, close) in UTC for the local days from ``start``'s, through the horizon."""
    local = start.astimezone(zone).date() - timedelta(days=1)
    found = []
    for offset in range(HORIZON_DAYS + 1):
        day = local + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        first, last = hours(day)
        if first >= last:
            continue
        found.append(
            (
                datetime.combine(day, first, tzinfo=zone).astimezone(UTC),
                datetime.combine(day, last, tzinfo=zone).astimezone(UTC),
            )
        )
    return found


def _as_time(value) -> time:
    return value if isinstance(value, time) else time.fromisoformat(str(value))


def gate(campaign, *, recipient_time_zone: str, state: str, now: datetime) -> Gate:
    """May the campaign text a recipient (zone, US state) at ``now``; if not, when next (see ``Gate``)."""
    recipient_zone = ZoneInfo(recipient_time_zone or "UTC")
    campaign_zone = (
        recipient_zone if campaign.window_clock == "recipient" else ZoneInfo(campaign.time_zone or "UTC")
    )
    start, end = _as_time(campaign.window_start), _as_time(campaign.window_end)
    days = set(campaign.days_of_week or range(7))
    own = _intervals(campaign_zone, now, lambda day: (start, end), days)
    law = _intervals(
        recipient_zone,
        now,
        lambda day: quiet_hours.window_for(day, policy=campaign.quiet_hours, state=state or None),
        set(range(7)),
    )
    for a_open, a_close in own:
        for b_open, b_close in law:
            opens, closes = max(a_open, b_open), min(a_close, b_close)
            if opens >= closes or closes <= now:
                continue
            if opens <= now:
                return Gate(True, closes_at=closes)
            local = opens.astimezone(recipient_zone)
            clock = "their time" if campaign.window_clock == "recipient" else recipient_time_zone
            return Gate(
                False,
                opens_at=opens,
                reason=f"Waiting for the sending window: {DAY_NAMES[local.weekday()]} "
                f"{local.hour}:{local.minute:02d} {clock}",
            )
    return Gate(False, opens_at=now + timedelta(days=1), reason="No sending day in the next week")


def validity_seconds(closes_at: datetime, now: datetime) -> int:
    """Twilio's ValidityPeriod for a text sent at ``now`` in a window closing at ``closes_at`` (1–36,000)."""
    return max(1, min(36_000, int((closes_at - now).total_seconds())))
