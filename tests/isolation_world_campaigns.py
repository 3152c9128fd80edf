"""Isolation builders for the campaigns models (automations, their enrollments and run log)."""

from campaigns.models import Automation, Enrollment, StepRun
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
