"""Idempotent demo data: "Acme Realty" (admin + two agents) and "Globex" to show isolation.

Other apps extend the demo by connecting to ``seed_demo_extend`` (tenancy.signals), so running the command
twice changes nothing.
"""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from tenancy.models import Membership, Organization, Role, Team
from tenancy.signals import seed_demo_extend

User = get_user_model()

DEMO_PASSWORD = "quicksend-demo"  # noqa: S105  (documented demo login, README)

ORGS = [
    {
        "slug": "acme-realty",
        "name": "Acme Realty",
        "time_zone": "America/New_York",
        "seat_limit": 10,
        "users": [
            ("admin@acme.test", "Alice", "Admin", Role.ADMIN),
            ("agent1@acme.test", "Aaron", "Agent", Role.AGENT),
            ("agent2@acme.test", "Amy", "Agent", Role.AGENT),
        ],
        "teams": {"Sales East": ["agent1@acme.test", "agent2@acme.test"]},
    },
    {
        "slug": "globex",
        "name": "Globex",
        "time_zone": "Europe/London",
        "seat_limit": 5,
        "users": [
            ("admin@globex.test", "Gina", "Globex", Role.ADMIN),
            ("agent@globex.test", "Gus", "Globex", Role.AGENT),
        ],
        "teams": {"Support": ["agent@globex.test"]},
    },
]


class Command(BaseCommand):
    help = "Create (or refresh) the demo organizations, users and data. Safe to run again."

    @transaction.atomic
    def handle(self, *args, **options):
        for spec in ORGS:
            org, _ = Organization.objects.update_or_create(
                slug=spec["slug"],
                defaults={
                    "name": spec["name"],
                    "time_zone": spec["time_zone"],
                    "seat_limit": spec["seat_limit"],
                },
            )
            members = {}
            for email, first, last, role in spec["users"]:
                user, created = User.objects.get_or_create(
                    username=email, defaults={"email": email, "first_name": first, "last_name": last}
                )
                if created:
                    user.set_password(DEMO_PASSWORD)
                    user.save()
                members[email], _ = Membership.objects.update_or_create(
                    user=user, organization=org, defaults={"role": role, "is_active": True}
                )
            for team_name, emails in spec["teams"].items():
                team, _ = Team.objects.get_or_create(organization=org, name=team_name)
                team.members.add(*[members[e] for e in emails])
            seed_demo_extend.send(
                sender=self.__class__, organization=org, members=members, stdout=self.stdout
            )
        port = os.environ.get("PORT", "8000")
        self.stdout.write(
            self.style.SUCCESS(f"Demo data ready. Log in at http://127.0.0.1:{port}/login/ with:")
        )
        for spec in ORGS:
            for email, _f, _l, role in spec["users"]:
                self.stdout.write(f"  {spec['name']:<12} {role:<6} {email} / {DEMO_PASSWORD}")
