"""Django routes of the sandbox: none. The sandbox (REST, control API, phone page) is a plain ASGI app that
quicksend/asgi.py mounts at /sandbox/ in front of Django, so requests under /sandbox/ never reach these
URLs (see sandbox/app.py for why it must not be served by Django views)."""

urlpatterns: list = []
