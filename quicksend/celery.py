"""The Celery application. Embedded mode runs tasks eagerly; production uses Redis as the broker."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quicksend.settings")

app = Celery("quicksend")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _install_beat_schedule(sender, **kwargs) -> None:
    # One registry of periodic jobs (quicksend/periodic.py) feeds Celery beat and the embedded scheduler.
    from quicksend.periodic import beat_schedule

    sender.conf.beat_schedule = beat_schedule()
