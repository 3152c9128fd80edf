"""How long connecting a Twilio account takes when it has many numbers (verification + every page of
IncomingPhoneNumbers + the upsert), and how long a "Refresh numbers" of the same account takes.

Runs against the standalone sandbox on a throwaway SQLite database (embedded mode), so it needs nothing
installed. Usage: ``python bench/twilio_number_sync.py [--numbers 2000]`` (well under a minute).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--numbers", type=int, default=2000)
    parser.add_argument("--port", type=int, default=8027)
    args = parser.parse_args()

    var = tempfile.mkdtemp(prefix="qs-bench-")
    os.environ.update({"QUICKSEND_VAR_DIR": var, "DJANGO_SETTINGS_MODULE": "quicksend.settings"})
    for key in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(key, None)
    sandbox = subprocess.Popen(
        [sys.executable, "manage.py", "twilio_sandbox", "--port", str(args.port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{args.port}/sandbox"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(base + "/control/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the sandbox did not start")
            time.sleep(0.1)
        numbers = [
            {"phone_number": f"+1206{5550000 + i:07d}", "friendly_name": f"Line {i}"}
            for i in range(args.numbers)
        ]
        created = requests.post(base + "/control/accounts", json={"numbers": numbers}, timeout=60).json()

        import django

        os.environ["TWILIO_API_BASE_URL"] = base
        django.setup()
        from django.core.management import call_command

        from messaging.models import PhoneNumber
        from messaging.twilio.accounts import do_connect_twilio_account, do_refresh_numbers
        from tenancy.services import do_create_organization

        call_command("migrate", verbosity=0)
        org = do_create_organization("Bench", slug="bench")
        t0 = time.perf_counter()
        result = do_connect_twilio_account(org, None, created["sid"], created["auth_token"])
        t1 = time.perf_counter()
        do_refresh_numbers(result.account, None)
        t2 = time.perf_counter()
        stored = PhoneNumber.objects.filter(organization=org).count()
        print(f"numbers at Twilio (sandbox): {args.numbers}, stored: {stored}")
        print(f"connect (verify + fetch all pages + store): {t1 - t0:.2f} s")
        print(f"refresh numbers (fetch all pages + upsert):  {t2 - t1:.2f} s")
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


if __name__ == "__main__":
    main()
