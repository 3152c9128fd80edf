"""``python manage.py twilio_sandbox --port 8020``: the Twilio-compatible sandbox as its own server.

Used by production-mode tests and benchmarks; the embedded mode mounts the same app inside the product.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from sandbox import demo


class Command(BaseCommand):
    help = "Run the Twilio-compatible sandbox (REST /sandbox/2010-04-01/, control API /sandbox/control/)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8020)
        parser.add_argument("--log-level", default="warning")

    def handle(self, *args, host: str, port: int, log_level: str, **options):
        import uvicorn

        from sandbox.app import application

        base = f"http://{host}:{port}/sandbox"
        self.stdout.write(
            f"Twilio sandbox on {base}  (client.api.base_url = {base!r})\n"
            f"  demo account {demo.DEMO_ACCOUNT_SID} / token {demo.DEMO_AUTH_TOKEN}\n"
            f"  customer phone {base}/phone/   control API {base}/control/"
        )
        self.stdout.flush()
        # One process, one event loop: the sandbox's state lives in memory of this process.
        uvicorn.run(
            application,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            lifespan="on",
            proxy_headers=False,
            timeout_keep_alive=30,
            backlog=4096,
        )
