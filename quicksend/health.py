"""Health of the components QuickSend needs: database, channel layer, broker, scheduler/worker."""

from __future__ import annotations

import time
from collections.abc import Callable

from asgiref.sync import async_to_sync
from celery import shared_task
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection

HEARTBEAT_KEY = "quicksend:heartbeat"


@shared_task(name="quicksend.heartbeat")
def heartbeat() -> dict:
    """Run by a worker on beat's schedule (or by the embedded scheduler): proves both are alive."""
    now = time.time()
    cache.set(HEARTBEAT_KEY, now, timeout=None)
    return {"at": now}


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return f"database unreachable: {exc.__class__.__name__}"
    return None


def check_channel_layer() -> str | None:
    try:
        layer = get_channel_layer()

        async def roundtrip():
            channel = await layer.new_channel()
            await layer.send(channel, {"type": "health.ping"})
            return await layer.receive(channel)

        message = async_to_sync(roundtrip)()
        if message.get("type") != "health.ping":
            return "channel layer returned an unexpected message"
    except Exception as exc:
        return f"channel layer unreachable: {exc.__class__.__name__}"
    return None


def check_broker() -> str | None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return None
    from quicksend.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"broker unreachable: {exc.__class__.__name__}"
    return None


def check_worker() -> str | None:
    try:
        last = cache.get(HEARTBEAT_KEY)
    except Exception as exc:
        return f"cannot read worker heartbeat: {exc.__class__.__name__}"
    if last is None:
        return "no worker/scheduler heartbeat yet (is the Celery worker and beat running?)"
    age = time.time() - float(last)
    if age > settings.QUICKSEND_HEARTBEAT_MAX_AGE:
        return f"last worker/scheduler heartbeat was {int(age)} s ago"
    return None


CHECKS = {
    "database": check_database,
    "channel_layer": check_channel_layer,
    "broker": check_broker,
    "worker": check_worker,
}


# What /healthz reports beyond its components, added by the apps (``DETAILS["processing"] = fn``): each a
# function returning a small dict of counts. They inform (an admin looks at them); they do not make the
# answer 503, which only a component that is down does.
DETAILS: dict[str, Callable[[], dict]] = {}


def report() -> tuple[bool, dict]:
    components = {}
    for name, check in CHECKS.items():
        problem = check()
        components[name] = {"ok": problem is None, **({"error": problem} if problem else {})}
    ok = all(c["ok"] for c in components.values())
    body = {
        "status": "ok" if ok else "degraded",
        "mode": settings.QUICKSEND_MODE,
        "components": components,
    }
    for name, detail in DETAILS.items():
        try:
            body[name] = detail()
        except Exception as exc:
            body[name] = {"error": f"could not be read: {exc.__class__.__name__}"}
    return ok, body
