import json

from django.core.management.base import BaseCommand, CommandError

from quicksend import health


class Command(BaseCommand):
    help = "Check QuickSend's components (all, or one with --component); exit 1 naming what is down."

    def add_arguments(self, parser):
        parser.add_argument("--component", choices=sorted(health.CHECKS), help="check only this component")

    def handle(self, *args, component=None, **options):
        checks = {component: health.CHECKS[component]} if component else health.CHECKS
        problems = {name: problem for name, check in checks.items() if (problem := check())}
        if problems:
            raise CommandError("; ".join(f"{name}: {problem}" for name, problem in problems.items()))
        self.stdout.write(json.dumps({name: "ok" for name in checks}))
