"""Real processes for end-to-end tests: the production ASGI server (uvicorn) and a Celery worker.

Both run against the test database, so tests that use them need committed data (``transactional_db``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(
    predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.05, message: str = ""
):
    """Wait on a condition with a deadline (never a bare sleep in tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(message or f"condition not met within {timeout} s")


def server_env(extra: dict | None = None) -> dict[str, str]:
    """Environment for a child process that must see the test database."""
    env = dict(os.environ)
    db = connection.settings_dict
    if settings.EMBEDDED:
        env["QUICKSEND_SQLITE_PATH"] = str(db["NAME"])
    else:
        user = db.get("USER") or "postgres"
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or 5432
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        env["DATABASE_URL"] = f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class ServerProcess:
    def __init__(self, proc: subprocess.Popen, base_url: str, log_path: Path):
        self.proc = proc
        self.base_url = base_url
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def launch(
    cmd: list[str],
    env: dict,
    log_path: Path,
    base_url: str,
    health_path: str,
    what: str,
    cls: type[ServerProcess] = ServerProcess,
) -> ServerProcess:
    """Start ``cmd`` with its output in ``log_path`` and wait until ``base_url + health_path`` answers 200."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = cls(proc, base_url, log_path)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited early:\n{server.log()}")
        try:
            return requests.get(base_url + health_path, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    try:
        # Starting imports the whole project: on a loaded 2-core host that took over 30 s.
        wait_until(up, timeout=90, message=f"{what} did not start")
    except AssertionError:
        server.stop()  # not left running against the next test's database
        raise
    return server


def start_asgi_server(tmp_path: Path, extra_env: dict | None = None, workers: int = 1) -> ServerProcess:
    port = free_port()
    log_path = tmp_path / f"uvicorn-{port}.log"
    # The server's public address is its own unless the test gives one, in both modes (`make test` exports
    # http://testserver for the test client, which a real server must not inherit).
    env = server_env({"PORT": str(port), "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", **(extra_env or {})})
    if not settings.EMBEDDED:
        env["ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "quicksend.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--workers",
        str(workers),
    ]
    return launch(cmd, env, log_path, f"http://127.0.0.1:{port}", "/livez", "uvicorn")


@pytest.fixture
def asgi_server(transactional_db, tmp_path):
    """The app served by the production ASGI server (uvicorn) on a free port, against the test database."""
    server = start_asgi_server(tmp_path)
    yield server
    server.stop()


def start_celery_worker(log_path: Path, extra_env: dict | None = None) -> ServerProcess:
    """A real Celery worker process on this test worker's own queue, against the test database; returns
    once it is ready."""
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "quicksend",
        "worker",
        "--pool",
        "solo",
        "--loglevel",
        "INFO",
        "-Q",
        settings.CELERY_TASK_DEFAULT_QUEUE,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=server_env(extra_env), stdout=log, stderr=subprocess.STDOUT
        )
    server = ServerProcess(proc, "", log_path)
    try:
        wait_until(
            # A worker imports the whole project before "ready.": on a loaded 2-core host that took over 30 s.
            lambda: b"ready." in log_path.read_bytes() or proc.poll() is not None,
            timeout=90,
            message="celery worker did not start",
        )
    except AssertionError:
        server.stop()  # not left running against the next test's database
        raise
    if proc.poll() is not None:
        raise AssertionError(f"celery worker exited early:\n{server.log()}")
    return server


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """A real Celery worker process on this test worker's own queue (production mode only)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        pytest.skip("embedded mode runs tasks eagerly; a worker process needs REDIS_URL")
    server = start_celery_worker(tmp_path / "celery.log")
    yield server
    server.stop()


@contextmanager
def celery_workers(log_dir: Path, extra_env: dict | None = None):
    """Yields ``start()``, which starts one more real Celery worker (``start_celery_worker``, logs in
    ``log_dir``); at exit every worker still running is killed, what killed workers left in Redis is
    cleared (``forget_killed_workers``) and this process's connections are renewed (a killed worker's
    backends may have been terminated)."""
    started: list[ServerProcess] = []

    def start() -> ServerProcess:
        worker = start_celery_worker(log_dir / f"celery-{len(started)}.log", extra_env)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            if worker.proc.poll() is None:
                worker.proc.kill()
                worker.proc.wait(timeout=10)
        forget_killed_workers()
        fresh_connections()


def forget_killed_workers() -> None:
    """A worker killed in a periodic job leaves its lock in Redis for minutes, and one killed in a drain its
    flag: the next test's sweeps would be skipped and its drains never queued. Clear this test process's
    keys (the servers it started share its key prefix)."""
    from tests.conftest import clear_own_cache

    clear_own_cache()


def fresh_connections() -> None:
    """After a test terminated this database's other backends: drop this process's connection and its pool,
    whose idle connections the server has closed, so the next test starts on fresh ones."""
    connection.close()
    close_pool = getattr(connection, "close_pool", None)
    if close_pool is not None:
        close_pool()


@pytest.fixture
def fresh_connections_after():
    yield
    fresh_connections()
