from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = "Organizations and access"

    def ready(self) -> None:
        from quicksend import periodic
        from tenancy import live_access

        periodic.register("heartbeat", "quicksend.heartbeat", 15)
        live_access.connect()
        from quicksend import consumers
        from tenancy import embed

        consumers.EMBED["session"] = embed.socket_identity
        periodic.register("embed-purge", "tenancy.tasks.purge_embed_launches", 3600)
