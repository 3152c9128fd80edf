"""Run a piece of work in several threads at once, as concurrent requests or workers would."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable


def run_together(work: Callable, args: Iterable, timeout: float = 60) -> tuple[list, list[Exception]]:
    """``work(arg)`` for each of ``args``, each in its own thread, all released at once by a barrier; each
    thread closes its database connections when done. Returns the results (in the order they finished) and
    the exceptions raised."""
    args = list(args)
    start = threading.Barrier(len(args))
    results: list = []
    errors: list[Exception] = []

    def one(arg) -> None:
        from django.db import connections

        try:
            start.wait(timeout)
            results.append(work(arg))
        except Exception as exc:  # reported to the caller
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one, args=(arg,)) for arg in args]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results, errors
