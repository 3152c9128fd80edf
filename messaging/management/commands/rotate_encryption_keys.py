"""Re-encrypt every stored secret with the newest key of QUICKSEND_ENCRYPTION_KEYS.

Rotation: put the new key first in QUICKSEND_ENCRYPTION_KEYS (keep the old ones after it), restart, run this
command, then remove the old keys.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from quicksend import crypto


class Command(BaseCommand):
    help = "Re-encrypt every stored secret (Twilio auth tokens, …) with the newest encryption key."

    def handle(self, *args, **options):
        try:
            with transaction.atomic():
                counts = crypto.rotate_all()
        except crypto.SecretUnreadable as exc:
            raise CommandError(str(exc))
        for name, n in counts.items():
            self.stdout.write(f"  {name}: {n} re-encrypted")
        total = sum(counts.values())
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {total} secret(s) with the newest key."))
