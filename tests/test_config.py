"""Start-up configuration: production mode refuses to start with one clear line per problem."""

import subprocess
import sys
from pathlib import Path

import pytest

from quicksend import config

ROOT = Path(__file__).resolve().parents[1]
GOOD_KEY = "3q2Bpd0mRkpq6GaoBGHZOXHU4_lpr6wwzoR4QgP5G6s="
PROD = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "SECRET_KEY": "s" * 50,
    "QUICKSEND_ENCRYPTION_KEYS": GOOD_KEY,
    "PUBLIC_BASE_URL": "https://sms.example.com",
    "ALLOWED_HOSTS": "sms.example.com",
}


def test_production_without_secret_key_names_it():
    env = {k: v for k, v in PROD.items() if k != "SECRET_KEY"}
    with pytest.raises(config.ConfigurationError) as excinfo:
        config.load(env)
    assert excinfo.value.problems == ["SECRET_KEY is required in production mode but is not set."]


def test_every_problem_gets_its_own_line():
    env = {**PROD, "QUICKSEND_ENCRYPTION_KEYS": f"{GOOD_KEY},not-a-key", "PUBLIC_BASE_URL": "sms.example.com"}
    del env["ALLOWED_HOSTS"]
    with pytest.raises(config.ConfigurationError) as excinfo:
        config.load(env)
    problems = excinfo.value.problems
    assert len(problems) == 3
    assert any("ALLOWED_HOSTS" in p for p in problems)
    assert any("key #2 is not a valid Fernet key" in p for p in problems)
    assert any("PUBLIC_BASE_URL must start with http" in p for p in problems)


def test_complete_production_config_loads_keys_newest_first():
    second = "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg="
    cfg = config.load({**PROD, "QUICKSEND_ENCRYPTION_KEYS": f"{GOOD_KEY}, {second}"})
    assert cfg.mode == "production"
    assert cfg.encryption_keys == [GOOD_KEY, second]
    assert cfg.public_base_url == "https://sms.example.com"


def test_embedded_mode_generates_secrets_once(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "VAR_DIR", tmp_path)
    first = config.load({})
    second = config.load({})
    assert first.mode == "embedded"
    assert first.secret_key == second.secret_key
    assert first.encryption_keys == second.encryption_keys
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_make_run_shows_the_products_error_pages_unless_debug_is_asked_for(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "VAR_DIR", tmp_path)
    assert config.load({}).debug is False  # `make run`: our 404/500 pages, not Django's URL listing
    assert config.load({"DEBUG": "1"}).debug is True


def _start(env_overrides: dict) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT), **env_overrides}
    code = "import quicksend.wsgi"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_process_exits_with_one_line_per_problem():
    env = {k: v for k, v in PROD.items() if k != "SECRET_KEY"}
    env["QUICKSEND_ENCRYPTION_KEYS"] = "bad"
    result = _start(env)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "quicksend: configuration error: SECRET_KEY is required in production mode but is not set.",
        lines[1],
    ]
    assert "QUICKSEND_ENCRYPTION_KEYS key #1 is not a valid Fernet key" in lines[1]
    assert "Traceback" not in result.stderr


def test_process_exits_clearly_when_the_database_is_unreachable():
    env = {**PROD, "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere"}
    result = _start(env)
    assert result.returncode == 2
    assert "cannot connect to the database at DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_https_public_url_turns_on_hsts_and_secure_cookies():
    derived = config.security_settings("https://sms.example.com", {})
    assert derived["SECURE_HSTS_SECONDS"] == 31_536_000
    assert derived["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert derived["SESSION_COOKIE_SECURE"] is True and derived["CSRF_COOKIE_SECURE"] is True
    assert derived["SESSION_COOKIE_HTTPONLY"] is True
    assert derived["SESSION_COOKIE_SAMESITE"] == "Lax" and derived["CSRF_COOKIE_SAMESITE"] == "Lax"


def test_plain_http_public_url_keeps_hsts_off_and_cookies_usable_over_http():
    derived = config.security_settings("http://127.0.0.1:8000", {"QUICKSEND_HSTS_SECONDS": "600"})
    assert derived["SECURE_HSTS_SECONDS"] == 0
    assert derived["SESSION_COOKIE_SECURE"] is False and derived["CSRF_COOKIE_SECURE"] is False
    assert derived["SESSION_COOKIE_HTTPONLY"] is True
    assert derived["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_hsts_length_and_subdomains_are_configurable():
    derived = config.security_settings(
        "HTTPS://sms.example.com",
        {"QUICKSEND_HSTS_SECONDS": "3600", "QUICKSEND_HSTS_INCLUDE_SUBDOMAINS": "1"},
    )
    assert (derived["SECURE_HSTS_SECONDS"], derived["SECURE_HSTS_INCLUDE_SUBDOMAINS"]) == (3600, True)


def _settings_of(env_overrides: dict, names: list[str]) -> dict:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT), "DJANGO_SETTINGS_MODULE": "quicksend.settings"}
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, **env_overrides},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return __import__("json").loads(result.stdout.strip().splitlines()[-1])


def test_production_settings_over_https_send_hsts_and_secure_cookies():
    names = ["SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY"]
    values = _settings_of(PROD, names)
    assert values == {
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
    }
    plain = _settings_of({**PROD, "PUBLIC_BASE_URL": "http://sms.internal"}, names)
    assert (plain["SECURE_HSTS_SECONDS"], plain["SESSION_COOKIE_SECURE"]) == (0, False)
