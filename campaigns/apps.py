from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        from campaigns.automations import triggers
        from campaigns.drip import receivers as drip
        from campaigns.drip.record_activity import campaigns_card
        from crm import record_panels
        from crm.events import record_changed
        from messaging.signals import consent_changed, inbound_message_stored
        from quicksend import periodic

        record_changed.connect(triggers.record_changed_receiver, dispatch_uid="automations.record_changed")
        inbound_message_stored.connect(triggers.inbound_text_receiver, dispatch_uid="automations.inbound")
        periodic.register("automations-wake", "campaigns.tasks.wake_due_enrollments", 15)
        periodic.register("automations-time-triggers", "campaigns.tasks.scan_time_triggers", 60)
        inbound_message_stored.connect(drip.inbound_text_receiver, dispatch_uid="campaigns.inbound")
        consent_changed.connect(drip.consent_receiver, dispatch_uid="campaigns.consent")
        periodic.register("campaigns-dispatch", "campaigns.tasks.dispatch_campaigns", 1)
        record_panels.register(campaigns_card)
