"""The sandbox's demo accounts: they exist whenever the sandbox runs (created when its state is created).

``seed_demo`` connects "Acme Realty" to ``DEMO_ACCOUNT_SID`` / ``DEMO_AUTH_TOKEN``; the README and
``make run`` print them. The other demo accounts exist for the error paths of the connection settings page.
"""

from __future__ import annotations

DEMO_ACCOUNT_SID = "AC5a4db0c0ffee5a4db0c0ffee5a4db0c0"
DEMO_AUTH_TOKEN = "5a4db0c0ffee0123456789abcdef0123"  # noqa: S105 - public sandbox demo credentials
DEMO_FRIENDLY_NAME = "QuickSend sandbox demo"

# Fetching these accounts works (valid credentials) and reports status "suspended" / "closed".
DEMO_SUSPENDED_ACCOUNT_SID = "AC5a4db0c0ffee5a4db0c0ffee5a4d5005"
DEMO_SUSPENDED_AUTH_TOKEN = "5a4db0c0ffee0123456789abcdef5005"  # noqa: S105 - public sandbox demo credentials
DEMO_CLOSED_ACCOUNT_SID = "AC5a4db0c0ffee5a4db0c0ffee5a4dc105"
DEMO_CLOSED_AUTH_TOKEN = "5a4db0c0ffee0123456789abcdefc105"  # noqa: S105 - public sandbox demo credentials

# (phone_number, type, friendly_name, capabilities)
DEMO_LOCAL_NUMBER = "+14155550100"
DEMO_TOLLFREE_NUMBER = "+18885550100"
# Short codes are not E.164; Twilio writes them as bare digits.
DEMO_SHORT_CODE = "55501"

DEMO_NUMBERS: list[dict] = [
    {
        "phone_number": DEMO_LOCAL_NUMBER,
        "type": "local",
        "friendly_name": "Acme Main Line (415)",
        "sms": True,
        "mms": True,
        "voice": True,
    },
    {
        "phone_number": DEMO_TOLLFREE_NUMBER,
        "type": "tollfree",
        "friendly_name": "Acme Toll-Free",
        "sms": True,
        "mms": True,
        "voice": True,
    },
    {
        "phone_number": DEMO_SHORT_CODE,
        "type": "shortcode",
        "friendly_name": "Acme Alerts Short Code",
        "sms": True,
        "mms": False,
        "voice": False,
    },
]

DEMO_ACCOUNTS: list[dict] = [
    {
        "sid": DEMO_ACCOUNT_SID,
        "auth_token": DEMO_AUTH_TOKEN,
        "friendly_name": DEMO_FRIENDLY_NAME,
        "status": "active",
        "numbers": DEMO_NUMBERS,
    },
    {
        "sid": DEMO_SUSPENDED_ACCOUNT_SID,
        "auth_token": DEMO_SUSPENDED_AUTH_TOKEN,
        "friendly_name": "Sandbox suspended account",
        "status": "suspended",
        "numbers": [],
    },
    {
        "sid": DEMO_CLOSED_ACCOUNT_SID,
        "auth_token": DEMO_CLOSED_AUTH_TOKEN,
        "friendly_name": "Sandbox closed account",
        "status": "closed",
        "numbers": [],
    },
]


def banner(base_url: str) -> str:
    """What ``make run`` prints: where the sandbox is and the demo account's credentials."""
    return (
        f"Twilio sandbox: {base_url}/sandbox  (customer phone: {base_url}/sandbox/phone/)\n"
        f"  demo Account SID {DEMO_ACCOUNT_SID}  Auth Token {DEMO_AUTH_TOKEN}\n"
        f"  numbers {DEMO_LOCAL_NUMBER} (local), {DEMO_TOLLFREE_NUMBER} (toll-free), "
        f"{DEMO_SHORT_CODE} (short code)"
    )


if __name__ == "__main__":
    import sys

    sys.stdout.write(banner(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000") + "\n")
