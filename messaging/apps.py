from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from messaging import demo, landing
        from tenancy.signals import seed_demo_extend

        seed_demo_extend.connect(demo.seed_messaging_demo, dispatch_uid="messaging.seed_demo")
        user_logged_in.connect(landing.remember_fresh_login, dispatch_uid="messaging.landing")

        # Receiving: stuck delivery statuses, and inbound events whose processing task was lost.
        from quicksend.periodic import register

        register("messaging.poll_stuck_messages", "messaging.tasks.receiving.poll_stuck_messages", 15 * 60)
        register("messaging.requeue_inbound_events", "messaging.tasks.receiving.requeue_inbound_events", 60)
        register("messaging.retry_inbox_steps", "messaging.inbox.tasks.retry_inbox_steps", 30)
        # Sending: single sends lost before their hand-over to Twilio.
        register("messaging.requeue_stranded_sends", "messaging.tasks.sending.requeue_stranded_sends", 30)
        from messaging import failures
        from quicksend import health

        health.DETAILS["processing"] = failures.processing_health
        # --- inbox: signal receivers, the "conv" subscription check, periodic jobs.
        from messaging.inbox import receivers as inbox_receivers
        from messaging.inbox import visibility
        from quicksend import consumers, periodic

        inbox_receivers.connect()
        from crm.signals import record_owner_changed, records_owner_changed
        from messaging.inbox.pages import carry_over_question, carry_over_question_many

        record_owner_changed.connect(carry_over_question, dispatch_uid="inbox.carry_over_question")
        records_owner_changed.connect(carry_over_question_many, dispatch_uid="inbox.carry_over_question_many")
        consumers.SUBSCRIPTION_CHECKS["conv"] = visibility.subscription_check
        # --- the embedded record widget: its one record's routes and live events.
        from messaging import embed_scope

        embed_scope.register()
        consumers.EMBED["subscribe"] = embed_scope.subscription_check
        consumers.EMBED["event"] = embed_scope.event_allowed
        from messaging.inbox import presence

        consumers.ACTIONS["presence"] = presence.receive
        if presence.socket_closed not in consumers.DISCONNECT_HOOKS:
            consumers.DISCONNECT_HOOKS.append(presence.socket_closed)
        periodic.register("inbox-auto-archive", "messaging.inbox.tasks.auto_archive", 3600)
        periodic.register("inbox-history-sync", "messaging.inbox.tasks.sync_history_all", 900)
