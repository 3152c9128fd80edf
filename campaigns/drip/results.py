"""What a campaign did: progress, message outcomes (failures by error code in plain words), replies and
opt-outs, segments, the delivery rate, a series over time, and who is behind each number."""

from __future__ import annotations

from collections import Counter

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMinute

from campaigns.drip.models import Campaign, CampaignRecipient, CampaignSend
from messaging.twilio.errors import describe_code

DELIVERY_WARNING_BELOW = 0.90
# Which people a number on the results page stands for (``recipients?outcome=…``).
OUTCOMES = ("sent", "delivered", "failed", "replied", "opted_out", "pending", "in_progress", "completed")


def results(campaign: Campaign) -> dict:
    by_status = dict(
        CampaignRecipient.objects.filter(campaign=campaign)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    total = sum(by_status.values())
    sends = CampaignSend.objects.filter(campaign=campaign)
    agg = sends.aggregate(
        sent=Count("id"),
        segments=Sum("segments"),
        delivered=Count("id", filter=Q(message__status="delivered") | Q(message__status="read")),
        failed=Count("id", filter=Q(message__status__in=["failed", "undelivered"])),
    )
    failures = Counter(
        sends.filter(message__status__in=["failed", "undelivered"]).values_list(
            "message__error_code", flat=True
        )
    )
    # Progress in steps: a person still going counts the steps they had, anyone else all of them.
    steps = campaign.steps.count() or 1
    stepped = (
        CampaignRecipient.objects.filter(campaign=campaign, status__in=CampaignRecipient.ACTIVE).aggregate(
            n=Sum("step_index")
        )["n"]
        or 0
    )
    done = (
        stepped + steps * sum(n for s, n in by_status.items() if s not in CampaignRecipient.ACTIVE)
    ) / steps
    finished_messages = agg["delivered"] + agg["failed"]
    rate = agg["delivered"] / finished_messages if finished_messages else None
    return {
        "status": campaign.status,
        "people": total,
        "by_status": {s: by_status.get(s, 0) for s in CampaignRecipient.Status.values},
        "progress": round(done / total, 4) if total else 0.0,
        "sent": agg["sent"],
        "delivered": agg["delivered"],
        "failed": agg["failed"],
        "failures": [
            {"error_code": code, "reason": describe_code(code), "count": count}
            for code, count in failures.most_common()
        ],
        "replied": by_status.get("replied", 0),
        "opted_out": by_status.get("opted_out", 0),
        "segments": agg["segments"] or 0,
        "delivery_rate": round(rate, 4) if rate is not None else None,
        "delivery_warning": (
            f"Only {rate:.0%} of finished messages were delivered (under 90 %): check the failures below."
            if rate is not None and rate < DELIVERY_WARNING_BELOW and finished_messages >= 10
            else ""
        ),
    }


def series(campaign: Campaign, buckets: int = 60) -> list[dict]:
    """Texts sent and delivered per minute (the last ``buckets`` minutes that had any)."""
    sends = CampaignSend.objects.filter(campaign=campaign)
    rows = (
        sends.annotate(minute=TruncMinute("sent_at"))
        .values("minute")
        .annotate(
            sent=Count("id"),
            delivered=Count("id", filter=Q(message__status__in=["delivered", "read"])),
        )
        .order_by("-minute")[:buckets]
    )
    return [
        {"at": r["minute"].isoformat(), "sent": r["sent"], "delivered": r["delivered"]}
        for r in reversed(rows)
    ]


def people_for(campaign: Campaign, outcome: str):
    """The recipients a results number stands for."""
    qs = CampaignRecipient.objects.filter(campaign=campaign)
    if outcome == "sent":
        return qs.filter(sends__isnull=False).distinct()
    if outcome == "delivered":
        return qs.filter(sends__message__status__in=["delivered", "read"]).distinct()
    if outcome == "failed":
        return qs.filter(
            Q(sends__message__status__in=["failed", "undelivered"])
            | Q(status=CampaignRecipient.Status.FAILED)
        ).distinct()
    if outcome in CampaignRecipient.Status.values:
        return qs.filter(status=outcome)
    return qs
