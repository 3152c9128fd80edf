"""docker-compose.yml parses, names every service with a health check, and .env.example gives every
variable the production settings require (there is no Docker engine here to run it)."""

from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from quicksend.config import REQUIRED_IN_PRODUCTION, ConfigurationError, load

ROOT = Path(__file__).resolve().parents[1]


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def test_compose_names_every_service_with_a_health_check():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    for name in ("postgres", "redis", "web", "worker", "beat"):
        assert "test" in services[name]["healthcheck"], f"{name} has no health check"
    for name in ("web", "worker", "beat"):
        assert services[name]["env_file"] == ".env.example"


def test_env_example_covers_every_required_setting():
    env = _env_example()
    missing = [name for name in REQUIRED_IN_PRODUCTION if name not in env]
    assert not missing


def test_env_example_placeholders_are_refused_until_filled_in():
    with pytest.raises(ConfigurationError) as excinfo:
        load(_env_example())
    assert any("QUICKSEND_ENCRYPTION_KEYS" in p for p in excinfo.value.problems)


def test_compose_commands_use_the_celery_queue_the_settings_use():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "quicksend" in compose["services"]["worker"]["command"]


@pytest.mark.django_db
def test_healthcheck_command_names_the_down_component():
    from django.core.cache import cache

    from quicksend.health import HEARTBEAT_KEY

    cache.delete(HEARTBEAT_KEY)
    with pytest.raises(CommandError, match="worker: no worker/scheduler heartbeat"):
        call_command("healthcheck", "--component", "worker")
