"""What a server process does once at start: refuse to run against an unreachable database (production),
start the in-process scheduler (embedded)."""

from __future__ import annotations

import os
import sys

from django.conf import settings


def check_database_or_exit() -> None:
    from django.db import connection

    try:
        connection.ensure_connection()
    except Exception as exc:
        print(  # noqa: T201
            f"quicksend: configuration error: cannot connect to the database at DATABASE_URL "
            f"({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}).",
            file=sys.stderr,
        )
        raise SystemExit(2)
    finally:
        connection.close()


def on_process_start() -> None:
    if settings.EMBEDDED:
        if os.environ.get("QUICKSEND_DISABLE_SCHEDULER") != "1":
            from quicksend.periodic import start_embedded_scheduler

            start_embedded_scheduler()
    else:
        check_database_or_exit()
