"""Demo templates for `manage.py seed_demo` (idempotent: keyed by name), so the composer's "/" offers
something on day one."""

from __future__ import annotations

from templates_app import services
from templates_app.models import MessageTemplate

DRAFT = MessageTemplate.Status.DRAFT
SHARED, PERSONAL = MessageTemplate.Visibility.SHARED, MessageTemplate.Visibility.PERSONAL
# name, short code, record type, body, status, personal template of (email) or shared.
DEMO = {
    "acme-realty": [
        (
            "Open house welcome",
            "welcome",
            "lead",
            'Hi {{first_name|default:"there"}}, thanks for visiting our open house! This is '
            "{{agent.first_name}} from {{org.name}}. Any questions about the listing? Just reply here.",
            "",
            "",
        ),
        (
            "Showing reminder",
            "remind",
            "",
            "Reminder from {{org.name}}: your showing is tomorrow. Reply C to confirm or R to reschedule. "
            "- {{agent.first_name}}",
            "",
            "",
        ),
        (
            "Follow-up after a showing",
            "followup",
            "lead",
            'Hi {{first_name|default:"there"}}, it was great meeting you. Would you like to see a few '
            "similar homes this weekend? - {{agent.first_name}}, {{org.name}}",
            "",
            "",
        ),
        (
            "Case update",
            "case",
            "case",
            'Update on "{{subject}}": status is now {{status}}. Reply here with any questions. '
            "- {{org.name}} support",
            "",
            "",
        ),
        (
            "Price drop announcement",
            "pricedrop",
            "contact",
            'Hi {{first_name|default:"there"}}, good news: a home you liked just dropped in price. Want the '
            "details? - {{agent.first_name}}",
            DRAFT,
            "",
        ),
        (
            "My sign-off",
            "thanks",
            "",
            "Thanks! Talk soon. - {{agent.first_name}} ({{org.name}})",
            "",
            "agent1@acme.test",
        ),
    ],
    "globex": [
        (
            "Welcome",
            "welcome",
            "contact",
            'Hello {{first_name|default:"there"}}, welcome to {{org.name}}! Reply to this number any time.',
            "",
            "",
        ),
    ],
}


def seed_templates_demo(sender, organization, members, stdout=None, **kwargs) -> None:
    rows = DEMO.get(organization.slug, [])
    admin = next((m for m in members.values() if m.is_admin), None)
    created = 0
    for name, shortcode, record_type, body, status, personal_of in rows:
        author = members.get(personal_of) or admin
        if author is None or MessageTemplate.objects.filter(organization=organization, name=name).exists():
            continue
        services.do_create_template(
            organization,
            author,
            name=name,
            shortcode=shortcode,
            record_type=record_type,
            body=body,
            status=status or MessageTemplate.Status.PUBLISHED,
            visibility=MessageTemplate.Visibility.PERSONAL
            if personal_of
            else MessageTemplate.Visibility.SHARED,
        )
        created += 1
    if stdout is not None and created:
        stdout.write(f"  {organization.name}: {created} template{'' if created == 1 else 's'} added")
