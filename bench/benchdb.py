"""The benchmarks' own PostgreSQL databases: created when missing, dropped when asked (``url``: a
``postgres://`` URL naming the database)."""

from __future__ import annotations

from urllib.parse import urlparse


def _admin(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


def ensure_database(url: str) -> None:
    import psycopg

    name = urlparse(url).path.lstrip("/")
    with psycopg.connect(_admin(url), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg

    name = urlparse(url).path.lstrip("/")
    with psycopg.connect(_admin(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_line(prefix: str):
    """A fresh organization with a valid Twilio account (a known token) and one SMS- and MMS-capable number:
    ``(org, account, number, token)``. Needs Django set up."""
    import random
    import secrets

    from messaging.models import PhoneNumber, TwilioAccount
    from tenancy.models import Organization

    tag = secrets.token_hex(4)
    org = Organization.objects.create(name=f"{prefix.title()} {tag}", slug=f"{prefix}-{tag}")
    token = secrets.token_hex(16)
    account = TwilioAccount(organization=org, account_sid="AC" + secrets.token_hex(16), status="valid")
    account.set_auth_token(token)
    account.save()
    number = PhoneNumber.objects.create(
        organization=org,
        account=account,
        sid="PN" + secrets.token_hex(16),
        phone_number=f"+1415{random.randint(2000000, 9999999)}",
        sms_capable=True,
        mms_capable=True,
    )
    return org, account, number, token
