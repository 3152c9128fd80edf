"""/healthz reports each component and names what is down."""

import pytest
from django.core.cache import cache

from quicksend.health import HEARTBEAT_KEY, heartbeat
from tests.plugins.servers import wait_until


@pytest.fixture
def no_heartbeat():
    cache.delete(HEARTBEAT_KEY)
    yield
    cache.delete(HEARTBEAT_KEY)


@pytest.mark.django_db
def test_healthz_names_the_missing_worker_heartbeat(client, no_heartbeat):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["components"]["worker"]["ok"] is False
    assert "heartbeat" in body["components"]["worker"]["error"]
    assert body["components"]["database"]["ok"] is True


@pytest.mark.django_db
def test_healthz_is_200_when_everything_answers(client, no_heartbeat):
    heartbeat.apply()
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert all(c["ok"] for c in response.json()["components"].values())


@pytest.mark.django_db
def test_healthz_names_an_unreachable_channel_layer(client, settings, no_heartbeat):
    heartbeat.apply()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["components"]["channel_layer"]["ok"] is False


@pytest.mark.django_db
def test_healthz_names_a_stale_heartbeat(client, settings, no_heartbeat):
    import time

    cache.set(HEARTBEAT_KEY, time.time() - 3600, timeout=None)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "s ago" in response.json()["components"]["worker"]["error"]


@pytest.mark.production
def test_real_worker_heartbeat_makes_healthz_green(celery_worker_process, client, no_heartbeat):
    assert client.get("/healthz").status_code == 503
    heartbeat.delay()

    wait_until(
        lambda: client.get("/healthz").status_code == 200,
        timeout=30,
        message=f"worker never reported:\n{celery_worker_process.log()}",
    )


def test_embedded_scheduler_runs_registered_jobs(db, no_heartbeat):
    from quicksend.periodic import EmbeddedScheduler, jobs

    assert "heartbeat" in [j.name for j in jobs()]
    ran = EmbeddedScheduler().run_due(now=0)
    assert "heartbeat" in ran
    assert cache.get(HEARTBEAT_KEY) is not None


def test_livez_answers_without_dependencies(client):
    assert client.get("/livez").json() == {"status": "ok"}
