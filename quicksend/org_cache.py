"""A short-lived per-process cache of an organization's configuration that every send reads and admins rarely
change (record-type configs, the messaging defaults).

Without it each API send re-read the same rows three or four times (docs/benchmarks.md "Send path").

Freshness, in plain terms:

- In the process that saves a change, it takes effect at once: saving or deleting a model registered with
  ``forget_on_change`` drops that organization's entries right away and again after the transaction commits
  (so a thread that re-read the old row before the commit does not keep it).
- In every other web or worker process it takes effect within ``QUICKSEND_ORG_CACHE_SECONDS`` (default 2 s):
  an entry is re-read from the database once it is that old. Nothing here assumes a single process.

Entries are keyed by (what, organization id): one organization's value never serves another. Values are
shared between threads: callers read them and never modify them (loaders return immutable snapshots or
instances nobody saves).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save

T = TypeVar("T")

_entries: dict[tuple[str, int], tuple[float, object]] = {}


def _ttl() -> float:
    return float(settings.QUICKSEND_ORG_CACHE_SECONDS)


def cached(name: str, org_id: int, load: Callable[[int], T]) -> T:
    """``load(org_id)``, re-used for up to ``QUICKSEND_ORG_CACHE_SECONDS`` in this process."""
    key = (name, int(org_id))
    now = time.monotonic()
    entry = _entries.get(key)
    if entry is not None and entry[0] > now:
        return entry[1]  # type: ignore[return-value]
    value = load(int(org_id))
    _entries[key] = (now + _ttl(), value)
    return value


def forget(org_id: int) -> None:
    """Drop the organization's entries now and once more after the current transaction commits."""

    def drop() -> None:
        for key in [k for k in list(_entries) if k[1] == org_id]:
            _entries.pop(key, None)

    drop()
    transaction.on_commit(drop)


def clear() -> None:
    """Drop every entry (tests start from an empty cache)."""
    _entries.clear()


def _on_change(sender, instance, **kwargs) -> None:
    org_id = getattr(instance, "organization_id", None)
    if org_id is not None:
        forget(org_id)


def forget_on_change(*models) -> None:
    """Forget an organization's entries whenever a row of these models (with ``organization_id``) is saved or
    deleted. Queryset ``.update()`` sends no signal: such a writer calls ``forget(org_id)`` itself."""
    for model in models:
        uid = f"org_cache.{model._meta.label_lower}"
        post_save.connect(_on_change, sender=model, dispatch_uid=uid + ".save")
        post_delete.connect(_on_change, sender=model, dispatch_uid=uid + ".delete")
