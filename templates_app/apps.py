from django.apps import AppConfig


class TemplatesAppConfig(AppConfig):
    name = "templates_app"
    verbose_name = "Templates"

    def ready(self) -> None:
        from templates_app.demo import seed_templates_demo
        from tenancy.signals import seed_demo_extend

        seed_demo_extend.connect(seed_templates_demo, dispatch_uid="templates_app.seed_demo")
