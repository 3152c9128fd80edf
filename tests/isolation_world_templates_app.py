"""Isolation builders for the templates_app models."""

from templates_app.models import MessageTemplate
from tests.isolation_world import builds


@builds(MessageTemplate)
def build_message_template(org, admin, canary):
    # A shared template and the admin's personal one: both are the admin's to open, neither an outsider's.
    MessageTemplate.objects.create(
        organization=org,
        name=f"Personal {canary}",
        body=f"Thanks {canary}",
        owner=admin,
        created_by=admin,
        shortcode=f"p{canary.lower()}",
    )
    return MessageTemplate.objects.create(
        organization=org,
        name=f"Template {canary}",
        body=f"Hi {{{{first_name}}}} {canary}",
        record_type="lead",
        created_by=admin,
        shortcode=f"s{canary.lower()}",
    )
