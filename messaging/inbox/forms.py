"""Forms of the inbox pages: the organization's inbox settings, a member's notification preferences and the
carry-over question after a record's owner changed."""

from __future__ import annotations

from django import forms

from messaging.models import InboxSettings


class InboxSettingsForm(forms.ModelForm):
    class Meta:
        model = InboxSettings
        fields = ["agent_visibility", "idle_timeout_minutes", "session_timeout_minutes", "auto_archive_days"]
        labels = {
            "agent_visibility": "Agents see",
            "idle_timeout_minutes": "Idle timeout (minutes)",
            "session_timeout_minutes": "Session timeout (minutes)",
            "auto_archive_days": "Archive quiet conversations after (days)",
        }
        widgets = {"agent_visibility": forms.RadioSelect}


class NotificationPreferencesForm(forms.Form):
    desktop_notifications = forms.BooleanField(required=False, label="Desktop notifications")
    notification_sound = forms.BooleanField(required=False, label="Play a sound")


class CarryOverForm(forms.Form):
    carry_over = forms.TypedChoiceField(
        choices=[("yes", "Carry over to the new owner"), ("no", "End here")],
        coerce=lambda v: v == "yes",
        widget=forms.RadioSelect,
        initial="yes",
        label="The conversations",
    )
