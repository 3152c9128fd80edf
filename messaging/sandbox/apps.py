from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "messaging.sandbox"
    label = "sandbox"
    verbose_name = "Twilio-compatible sandbox"
