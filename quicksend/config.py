"""Reads QuickSend's configuration from the environment and decides the run mode.

Two modes share one codebase (docs/architecture.md):

* **embedded** (no ``DATABASE_URL`` and no ``REDIS_URL``): SQLite under ``var/``, in-memory channel layer,
  eager Celery, an in-process scheduler; the secret key and the encryption key are generated once and kept
  under ``var/``.
* **production** (``DATABASE_URL`` or ``REDIS_URL`` set, or ``QUICKSEND_MODE=production``): every required
  variable must be present and valid, or start-up stops with one line per problem.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("QUICKSEND_VAR_DIR", BASE_DIR / "var"))

REQUIRED_IN_PRODUCTION = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "QUICKSEND_ENCRYPTION_KEYS",
    "PUBLIC_BASE_URL",
    "ALLOWED_HOSTS",
)


class ConfigurationError(Exception):
    """Raised with every configuration problem found, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class Config:
    mode: str
    secret_key: str
    encryption_keys: list[str]
    database_url: str | None
    redis_url: str | None
    public_base_url: str
    allowed_hosts: list[str]
    debug: bool
    problems: list[str] = field(default_factory=list)

    @property
    def embedded(self) -> bool:
        return self.mode == "embedded"


def _read_or_create(path: Path, make) -> str:
    """Return the secret kept at ``path``, creating it (mode 0600) on first use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path.read_text().strip()
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def validate_fernet_keys(raw: str) -> tuple[list[str], list[str]]:
    """Split a comma-separated key list; return (keys, problems)."""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    problems = []
    if not keys:
        problems.append("QUICKSEND_ENCRYPTION_KEYS is empty: give at least one Fernet key.")
    for i, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            problems.append(
                f"QUICKSEND_ENCRYPTION_KEYS key #{i} is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes; make one with `python -c "
                '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`).'
            )
    return keys, problems


def load(environ: dict[str, str] | None = None) -> Config:
    """Build the configuration from ``environ``; raise ConfigurationError listing every problem."""
    env = os.environ if environ is None else environ
    database_url = env.get("DATABASE_URL") or None
    redis_url = env.get("REDIS_URL") or None
    mode = env.get("QUICKSEND_MODE") or ("production" if (database_url or redis_url) else "embedded")
    if mode not in ("embedded", "production"):
        raise ConfigurationError([f"QUICKSEND_MODE must be 'embedded' or 'production', not {mode!r}."])
    problems: list[str] = []

    if mode == "production":
        for name in REQUIRED_IN_PRODUCTION:
            if not env.get(name):
                problems.append(f"{name} is required in production mode but is not set.")
        secret_key = env.get("SECRET_KEY", "")
        keys, key_problems = validate_fernet_keys(env.get("QUICKSEND_ENCRYPTION_KEYS", "x"))
        if env.get("QUICKSEND_ENCRYPTION_KEYS"):
            problems += key_problems
        if database_url and not database_url.startswith(("postgres://", "postgresql://")):
            problems.append("DATABASE_URL must be a PostgreSQL URL (postgres://user@host:port/dbname).")
        if redis_url and not redis_url.startswith(("redis://", "rediss://")):
            problems.append("REDIS_URL must be a Redis URL (redis://host:port/db).")
        public = env.get("PUBLIC_BASE_URL", "")
        if public and not public.startswith(("http://", "https://")):
            problems.append("PUBLIC_BASE_URL must start with http:// or https://.")
        if problems:
            raise ConfigurationError(problems)
        return Config(
            mode=mode,
            secret_key=secret_key,
            encryption_keys=keys,
            database_url=database_url,
            redis_url=redis_url,
            public_base_url=public.rstrip("/"),
            allowed_hosts=[h.strip() for h in env["ALLOWED_HOSTS"].split(",") if h.strip()],
            debug=env.get("DEBUG", "0") == "1",
        )

    secret_key = env.get("SECRET_KEY") or _read_or_create(
        VAR_DIR / "secret_key", lambda: secrets.token_urlsafe(50)
    )
    raw_keys = env.get("QUICKSEND_ENCRYPTION_KEYS") or _read_or_create(
        VAR_DIR / "encryption_key", lambda: Fernet.generate_key().decode()
    )
    keys, key_problems = validate_fernet_keys(raw_keys)
    if key_problems:
        raise ConfigurationError(key_problems)
    port = env.get("PORT", "8000")
    return Config(
        mode=mode,
        secret_key=secret_key,
        encryption_keys=keys,
        database_url=None,
        redis_url=None,
        public_base_url=(env.get("PUBLIC_BASE_URL") or f"http://127.0.0.1:{port}").rstrip("/"),
        allowed_hosts=["127.0.0.1", "localhost", "testserver", "[::1]"]
        + [h for h in env.get("ALLOWED_HOSTS", "").split(",") if h],
        # Off unless asked for (DEBUG=1): a new user trying `make run` sees the product's own 404 and 500
        # pages, not Django's debug pages with every URL of the project.
        debug=env.get("DEBUG", "0") == "1",
    )


def security_settings(public_base_url: str, environ: dict[str, str] | None = None) -> dict[str, object]:
    """Cookie and transport settings derived from the public URL.

    Cookies are always SameSite=Lax and the session cookie is HttpOnly (the CSRF cookie stays readable, as
    Django recommends: hiding it protects nothing). When the product is served over https, both cookies
    are ``Secure`` and browsers are told to use https only (HSTS, ``QUICKSEND_HSTS_SECONDS``, one year by
    default; ``0`` turns it off). Over plain http (the embedded mode on a laptop) HSTS would lock the
    browser out of the site, so it stays off.
    """
    env = os.environ if environ is None else environ
    https = public_base_url.lower().startswith("https://")
    hsts_seconds = int(env.get("QUICKSEND_HSTS_SECONDS") or 31_536_000) if https else 0
    return {
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": https,
        "CSRF_COOKIE_HTTPONLY": False,
        "CSRF_COOKIE_SAMESITE": "Lax",
        "CSRF_COOKIE_SECURE": https,
        "SECURE_HSTS_SECONDS": hsts_seconds,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": hsts_seconds > 0
        and env.get("QUICKSEND_HSTS_INCLUDE_SUBDOMAINS", "0") == "1",
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SECURE_REFERRER_POLICY": "same-origin",
    }


def load_or_exit() -> Config:
    """Load the configuration; on problems print one line each to stderr and exit(2)."""
    try:
        return load()
    except ConfigurationError as exc:
        for line in exc.problems:
            print(f"quicksend: configuration error: {line}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2)
