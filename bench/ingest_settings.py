"""Settings for bench/ingest_webhooks.py only: the app's settings plus a trivial empty-TwiML view (the
baseline the webhooks are compared with). Never used outside the benchmark."""

from quicksend.settings import *  # noqa: F403

ROOT_URLCONF = "bench.ingest_urls"
