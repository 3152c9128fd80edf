from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM"

    def ready(self) -> None:
        from crm.demo import seed_crm_demo
        from tenancy.signals import seed_demo_extend

        seed_demo_extend.connect(seed_crm_demo, dispatch_uid="crm.seed_demo")

        from quicksend import periodic

        periodic.register("crm.purge_abandoned_imports", "crm.tasks.purge_abandoned_imports", 3600)

        from crm.models import RecordTypeConfig
        from quicksend import org_cache

        org_cache.forget_on_change(RecordTypeConfig)
