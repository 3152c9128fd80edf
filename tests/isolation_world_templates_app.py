"""Isolation builders for the templates_app models."""

from templates_app.models import MessageTemplate
from tests.isolation_world import builds


@builds(MessageTemplate)
def build_message_template(org, admin, canary):
    return MessageTemplate.objects.create(
        organization=org, name=f"Template {canary}", body=f"Hi {{{{first_name}}}} {canary}", created_by=admin
    )
