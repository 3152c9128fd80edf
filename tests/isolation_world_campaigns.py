"""Isolation builders for the campaigns models (automations, their enrollments and run log)."""

from campaigns.models import (
    Automation,
    Campaign,
    CampaignMedia,
    CampaignRecipient,
    CampaignSend,
    CampaignStep,
    Enrollment,
    KeywordOptIn,
    SenderRate,
    StepRun,
)
from templates_app.models import MessageTemplate
from tests.isolation_world import builds


@builds(Automation)
def build_automation(org, admin, canary):
    template = MessageTemplate.objects.filter(organization=org).first() or MessageTemplate.objects.create(
        organization=org, name=f"Template {canary}", body=f"Hi {canary}"
    )
    return Automation.objects.create(
        organization=org,
        name=f"Automation {canary}",
        status=Automation.Status.ACTIVE,
        trigger={"type": "manual"},
        steps=[{"type": "send_template", "template": template.pk, "from": "last_conversation"}],
    )


@builds(Enrollment)
def build_enrollment(org, admin, canary):
    automation = Automation.objects.filter(organization=org).first() or build_automation(org, admin, canary)
    return Enrollment.objects.create(
        organization=org,
        automation=automation,
        phone="+12025550123",
        trigger_key=f"run:{canary}",
        status=Enrollment.Status.STOPPED,
        reason=f"Stopped {canary}",
    )


@builds(StepRun)
def build_step_run(org, admin, canary):
    enrollment = Enrollment.objects.filter(organization=org).first() or build_enrollment(org, admin, canary)
    return StepRun.objects.create(
        organization=org,
        enrollment=enrollment,
        automation=enrollment.automation,
        step_index=0,
        step_type="send_template",
        result=StepRun.Result.SKIPPED,
        detail=f"Skipped {canary}",
    )


# --- drip campaigns ----------------------------------------------------------------------------------------


def _number(org, admin, canary):
    from messaging.models import PhoneNumber
    from tests.isolation_world_messaging import build_phone_number

    return PhoneNumber.objects.filter(organization=org).first() or build_phone_number(org, admin, canary)


@builds(Campaign)
def build_campaign(org, admin, canary):
    campaign = Campaign.objects.create(
        organization=org, name=f"Campaign {canary}", brand_name=f"Brand {canary}", status="paused"
    )
    campaign.senders.set([_number(org, admin, canary)])
    return campaign


@builds(CampaignStep)
def build_campaign_step(org, admin, canary):
    campaign = Campaign.objects.filter(organization=org).first() or build_campaign(org, admin, canary)
    return CampaignStep.objects.create(
        organization=org, campaign=campaign, position=0, body=f"Step {canary}", wait_minutes=0
    )


@builds(CampaignRecipient)
def build_campaign_recipient(org, admin, canary):
    campaign = Campaign.objects.filter(organization=org).first() or build_campaign(org, admin, canary)
    return CampaignRecipient.objects.create(
        organization=org,
        campaign=campaign,
        phone="+12025550177",
        merge={"note": f"Merge {canary}"},
        sender=_number(org, admin, canary),
        waiting_reason=f"Waiting {canary}",
    )


@builds(CampaignSend)
def build_campaign_send(org, admin, canary):
    recipient = CampaignRecipient.objects.filter(organization=org).first() or build_campaign_recipient(
        org, admin, canary
    )
    return CampaignSend.objects.create(
        organization=org, campaign=recipient.campaign, recipient=recipient, step_index=0
    )


@builds(SenderRate)
def build_sender_rate(org, admin, canary):
    return SenderRate.objects.create(
        organization=org, number=_number(org, admin, canary), segments_per_second=7
    )


@builds(KeywordOptIn)
def build_keyword_optin(org, admin, canary):
    campaign = Campaign.objects.filter(organization=org).first() or build_campaign(org, admin, canary)
    return KeywordOptIn.objects.create(
        organization=org,
        number=_number(org, admin, canary),
        keyword="JOIN",
        campaign=campaign,
        brand=f"Brand {canary}",
    )


@builds(CampaignMedia)
def build_campaign_media(org, admin, canary):
    from django.core.files.base import ContentFile

    item = CampaignMedia(
        organization=org, filename=f"flyer-{canary}.png", content_type="image/png", size=8, created_by=admin
    )
    item.file.save(f"flyer-{canary}.png", ContentFile(b"\x89PNG\r\n\x1a\n"), save=False)
    item.save()
    return item
