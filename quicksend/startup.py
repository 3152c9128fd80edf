"""What a server process does once at start: refuse to run against an unreachable database (production),
start the in-process scheduler (embedded)."""

from __future__ import annotations

import os
import sys

from django.conf import settings


def _database_error() -> str | None:
    from django.db import connection

    try:
        connection.ensure_connection()
    except Exception as exc:
        return f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        connection.close()
    return None


def check_database_or_exit() -> None:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        error = _database_error()
    else:
        # uvicorn --workers N (N > 1) imports the app inside its event loop, where Django refuses sync
        # database calls (SynchronousOnlyOperation): check from a thread instead.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1) as pool:
            error = pool.submit(_database_error).result()
    if error is not None:
        print(  # noqa: T201
            f"quicksend: configuration error: cannot connect to the database at DATABASE_URL ({error}).",
            file=sys.stderr,
        )
        raise SystemExit(2)


def on_process_start() -> None:
    if settings.EMBEDDED:
        if os.environ.get("QUICKSEND_DISABLE_SCHEDULER") != "1":
            from quicksend.periodic import start_embedded_scheduler

            start_embedded_scheduler()
    else:
        check_database_or_exit()
