"""Settings → Campaigns (admins): the list, New (steps, senders, window, CSV upload with its column mapping),
and a campaign's page: pre-flight, controls, live progress and results (refreshed by htmx every few
seconds), the people behind each number, CSV export through the API; keyword opt-ins and the numbers' own
sending speeds."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from campaigns.drip import audience, services
from campaigns.drip import results as outcome_report
from campaigns.drip.compose import OPT_OUT_LINE, brand_warning
from campaigns.drip.models import Campaign, CampaignMedia, CampaignRecipient, KeywordOptIn, SenderRate
from messaging.media.validation import MAX_TOTAL_BYTES, MediaFile
from messaging.models import PhoneNumber
from quicksend.errors import FAILED, attempt
from tenancy.access import get_in_org
from tenancy.decorators import admin_required

DAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]
CHART_WIDTH, CHART_HEIGHT = 600, 120


@admin_required
def campaign_list(request):
    rows = [
        {"campaign": c, "results": outcome_report.results(c)}
        for c in Campaign.objects.filter(organization=request.org).order_by("-id")[:200]
    ]
    return render(request, "campaigns/drip/list.html", {"rows": rows})


def _numbers(org):
    return PhoneNumber.objects.filter(organization=org, is_active=True, sms_capable=True).order_by(
        "phone_number"
    )


def _steps_from(post) -> list[dict]:
    steps = []
    for i in range(1, 6):
        body = (post.get(f"step{i}_body") or "").strip()
        if not body:
            continue
        days = post.get(f"step{i}_wait_days") or "0"
        steps.append(
            {"body": body, "wait_minutes": int(float(days) * 1440) if days.strip() else 0, "form": i}
        )
    return steps


def _store_step_media(request, steps: list[dict]) -> bool:
    """Check and store the pictures or files attached to each step; False (with the reason shown) when one
    is refused."""
    for number, step in enumerate(steps, start=1):
        ids = []
        for upload in request.FILES.getlist(f"step{step.pop('form')}_media"):
            data = upload.read(MAX_TOTAL_BYTES + 1)
            item = attempt(
                request,
                services.store_media,
                request.org,
                request.user,
                MediaFile(name=upload.name, data=data, declared_type=upload.content_type),
                prefix=f"Step {number}'s attachment was not accepted:",
            )
            if item is FAILED:
                return False
            ids.append(item.pk)
        step["media"] = ids
    return True


@admin_required
def campaign_new(request):
    context = {"numbers": _numbers(request.org), "days": DAYS, "opt_out_line": OPT_OUT_LINE, "form": {}}
    if request.method == "POST":
        post = request.POST
        context["form"] = post
        try:
            steps = _steps_from(post)
        except ValueError:
            steps = []
        values = {
            "name": post.get("name", ""),
            "brand_name": post.get("brand_name", ""),
            "window_clock": post.get("window_clock", "recipient"),
            "time_zone": post.get("time_zone") or request.org.time_zone or "UTC",
            "window_start": post.get("window_start") or "09:00",
            "window_end": post.get("window_end") or "20:00",
            "days_of_week": [int(d) for d in post.getlist("days") if d.isdigit()],
            "stop_on_reply": post.get("stop_on_reply") == "on",
        }
        senders = [int(n) for n in post.getlist("senders") if n.isdigit()]
        with transaction.atomic():  # the attachments are kept only with the campaign that sends them
            campaign = FAILED
            if _store_step_media(request, steps):
                campaign = attempt(
                    request,
                    services.do_create_campaign,
                    request.org,
                    request.user,
                    senders=senders,
                    steps=steps,
                    **values,
                )
            if campaign is FAILED:
                transaction.set_rollback(True)
        if campaign is not FAILED:
            upload = request.FILES.get("file")
            if upload is not None:
                report = attempt(
                    request,
                    audience.import_csv,
                    campaign,
                    upload.read(audience.MAX_CSV_BYTES + 1),
                    phone_column=post.get("phone_column") or "Phone",
                    attested=post.get("attested") == "on",
                    prefix="The file was not imported:",
                )
                if report is not FAILED:
                    messages.success(
                        request, f"{report['added']} people added; {len(report['rejected'])} rows left out."
                    )
                    request.session[f"campaign-import-{campaign.pk}"] = report["rejected"][:200]
            return redirect("settings-campaign", campaign.pk)
    return render(request, "campaigns/drip/new.html", context)


def _chart(series: list[dict]) -> dict:
    if not series:
        return {"bars": [], "max": 0}
    top = max(max(p["sent"], 1) for p in series)
    width = CHART_WIDTH / max(len(series), 1)
    bars = []
    for i, point in enumerate(series):
        sent_h = CHART_HEIGHT * point["sent"] / top
        delivered_h = CHART_HEIGHT * point["delivered"] / top
        bars.append(
            {
                "x": round(i * width, 1),
                "w": round(max(width - 2, 1), 1),
                "sent_y": round(CHART_HEIGHT - sent_h, 1),
                "sent_h": round(sent_h, 1),
                "delivered_y": round(CHART_HEIGHT - delivered_h, 1),
                "delivered_h": round(delivered_h, 1),
                "label": f"{point['at'][11:16]} UTC: {point['sent']} sent, {point['delivered']} delivered",
            }
        )
    return {"bars": bars, "max": top, "width": CHART_WIDTH, "height": CHART_HEIGHT}


def _progress_context(campaign: Campaign) -> dict:
    report = outcome_report.results(campaign)
    return {
        "campaign": campaign,
        "r": report,
        "percent": round(100 * report["progress"]),
        "chart": _chart(outcome_report.series(campaign)),
        "waiting": CampaignRecipient.objects.filter(campaign=campaign, status__in=CampaignRecipient.ACTIVE)
        .exclude(waiting_reason="")
        .values_list("waiting_reason", flat=True)
        .first(),
    }


@admin_required
def campaign_page(request, pk: int):
    campaign = get_in_org(Campaign.objects.all(), request.org, pk)
    outcome = request.GET.get("outcome", "")
    people = None
    if outcome in outcome_report.OUTCOMES:
        people = outcome_report.people_for(campaign, outcome).order_by("id")[:200]
    steps = list(campaign.steps.order_by("position"))
    media = CampaignMedia.objects.filter(
        organization=request.org, pk__in={i for step in steps for i in step.media}
    ).in_bulk()
    for step in steps:
        step.wait = _wait_words(step.wait_minutes)
        step.attachments = [media[i] for i in step.media if i in media]
    context = {
        **_progress_context(campaign),
        "steps": steps,
        "preflight": audience.preflight(campaign)
        if campaign.status in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED)
        else None,
        "duration": "",
        "warning": brand_warning(steps[0].body if steps else "", campaign.brand_name),
        "outcome": outcome,
        "people": people,
        "rejected": request.session.pop(f"campaign-import-{campaign.pk}", None),
        "export_url": reverse("campaign-export", args=[campaign.pk]),
        "org_zone": request.org.time_zone or "UTC",
        "starts_local": campaign.start_at.astimezone(ZoneInfo(request.org.time_zone or "UTC"))
        if campaign.start_at
        else None,
    }
    if context["preflight"]:
        context["duration"] = audience.duration_words(context["preflight"]["estimated_seconds"])
    return render(request, "campaigns/drip/page.html", context)


def _wait_words(minutes: int) -> str:
    if minutes % 1440 == 0 and minutes:
        days = minutes // 1440
        return f"{days} day{'s' if days != 1 else ''}"
    if minutes % 60 == 0 and minutes:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@admin_required
def campaign_progress(request, pk: int):
    campaign = get_in_org(Campaign.objects.all(), request.org, pk)
    return render(request, "campaigns/drip/_progress.html", _progress_context(campaign))


ACTIONS = {
    "start": services.do_start_campaign,
    "pause": services.do_pause_campaign,
    "resume": services.do_resume_campaign,
    "cancel": services.do_cancel_campaign,
}


def _start_at(request) -> datetime | None:
    """The "Start at" field (a local date and time on the organization's clock) as an aware datetime in the
    future, or None with an error message that says what to fix."""
    zone = ZoneInfo(request.org.time_zone or "UTC")
    raw = (request.POST.get("start_at") or "").strip()
    try:
        local = datetime.fromisoformat(raw)
    except ValueError:
        messages.error(request, "Pick the date and time the campaign should start.")
        return None
    at = local.replace(tzinfo=zone) if local.tzinfo is None else local
    if at <= timezone.now():
        messages.error(request, f"Pick a time in the future ({zone.key} time); to start now, use Start now.")
        return None
    return at


@require_POST
@admin_required
def campaign_action(request, pk: int, action: str):
    campaign = get_in_org(Campaign.objects.all(), request.org, pk)
    if action == "schedule":
        at = _start_at(request)
        if (
            at is not None
            and attempt(request, services.do_start_campaign, campaign, request.user, at=at) is not FAILED
        ):
            local = at.astimezone(ZoneInfo(request.org.time_zone or "UTC"))
            messages.success(
                request, f"The campaign starts on {local:%a %d %b %Y at %H:%M} ({local.tzinfo})."
            )
        return redirect("settings-campaign", campaign.pk)
    do = ACTIONS.get(action)
    if do is not None:
        attempt(request, do, campaign, request.user)
    return redirect("settings-campaign", campaign.pk)


# --- keyword opt-ins and the numbers' sending speed --------------------------------------------------------


def _first_error(errors) -> str:
    """The first message of a serializer's errors, named by its field ("keyword: That number already…")."""
    if isinstance(errors, dict):
        for field, value in errors.items():
            text = _first_error(value)
            return text if field == "non_field_errors" else f"{field.replace('_', ' ').capitalize()}: {text}"
    if isinstance(errors, list) and errors:
        return _first_error(errors[0])
    return str(errors)


def _save_keyword(request) -> None:
    from campaigns.drip.api import KeywordOptInSerializer

    post = request.POST
    data = {key: post.get(key, "") for key in ("keyword", "number", "brand", "frequency")}
    data["campaign"] = post.get("campaign") or None
    serializer = KeywordOptInSerializer(data=data, context={"request": request})
    if not serializer.is_valid():
        messages.error(request, f"The keyword was not added. {_first_error(serializer.errors)}")
        return
    optin = serializer.save(organization=request.org)
    messages.success(request, f"Texting {optin.keyword} to {optin.number.phone_number} now opts people in.")


def _save_rate(request) -> None:
    from campaigns.drip.api import SenderRateSerializer
    from messaging.services import throttle

    number = get_in_org(PhoneNumber.objects.all(), request.org, request.POST.get("number"))
    raw = (request.POST.get("segments_per_second") or "").strip()
    own = SenderRate.objects.filter(number=number).first()
    if not raw:
        if own is not None:
            own.delete()
            throttle.set_number_rate(number.pk, None)
        messages.success(request, f"{number.phone_number} sends at its type's speed again.")
        return
    serializer = SenderRateSerializer(
        own, data={"number": number.pk, "segments_per_second": raw}, context={"request": request}
    )
    if not serializer.is_valid():
        messages.error(request, f"The speed was not changed. {_first_error(serializer.errors)}")
        return
    rate = serializer.save(organization=request.org)
    throttle.set_number_rate(rate.number_id, rate.segments_per_second)
    messages.success(
        request, f"{number.phone_number} now sends {rate.segments_per_second:g} segments a second."
    )


@admin_required
def keywords_and_rates(request):
    """Keyword opt-ins (JOIN → confirmation, lead, enrollment) and each number's campaign sending speed."""
    from messaging.services import throttle

    if request.method == "POST":
        action = request.POST.get("action")
        if action == "add_keyword":
            _save_keyword(request)
        elif action == "delete_keyword":
            optin = get_in_org(
                KeywordOptIn.objects.select_related("number"), request.org, request.POST.get("id")
            )
            optin.delete()
            messages.success(request, f"{optin.keyword} no longer opts people in.")
        elif action == "set_rate":
            _save_rate(request)
        return redirect("settings-campaign-keywords")
    own = dict(
        SenderRate.objects.filter(organization=request.org).values_list("number_id", "segments_per_second")
    )
    numbers = [
        {
            "number": n,
            "default": throttle.rate_for(n.number_type),
            "own": own.get(n.pk),
        }
        for n in _numbers(request.org)
    ]
    context = {
        "optins": KeywordOptIn.objects.filter(organization=request.org)
        .select_related("number", "campaign")
        .order_by("keyword", "id"),
        "numbers": numbers,
        "campaigns": Campaign.objects.filter(
            organization=request.org,
            status__in=[Campaign.Status.DRAFT, Campaign.Status.SCHEDULED, Campaign.Status.RUNNING],
        ).order_by("name"),
    }
    return render(request, "campaigns/drip/keywords.html", context)
