"""The template editor's form. Rules and checks live in ``templates_app.services``; this only shapes input."""

from __future__ import annotations

from django import forms

from crm.models import RecordType
from templates_app.models import MessageTemplate


class TemplateForm(forms.Form):
    name = forms.CharField(max_length=100)
    shortcode = forms.CharField(
        max_length=31,
        required=False,
        label="Short code",
        help_text='Type "/" and this in the composer to find the template (letters, digits, - and _).',
    )
    record_type = forms.ChoiceField(
        choices=[("", "Any record"), *RecordType.choices],
        required=False,
        label="For",
        help_text="A record type lets you merge its fields; “Any record” only the agent, owner and "
        "organization ones.",
    )
    visibility = forms.ChoiceField(
        choices=[
            (MessageTemplate.Visibility.SHARED, "Shared: everyone in the organization"),
            (MessageTemplate.Visibility.PERSONAL, "Personal: only me"),
        ],
        widget=forms.RadioSelect,
        label="Who can use it",
    )
    status = forms.ChoiceField(
        choices=[
            (MessageTemplate.Status.PUBLISHED, "Published: offered in the composer"),
            (MessageTemplate.Status.DRAFT, "Draft: hidden from agents and the composer"),
        ],
        widget=forms.RadioSelect,
    )
    body = forms.CharField(
        max_length=1600,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6, "data-template-body": ""}),
        label="Message",
    )

    def __init__(self, *args, is_admin: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not is_admin:
            # Agents make personal templates only; the service refuses anything else as well.
            self.fields["visibility"].choices = [self.fields["visibility"].choices[1]]
            self.fields["visibility"].initial = MessageTemplate.Visibility.PERSONAL

    @classmethod
    def initial_for(cls, template: MessageTemplate) -> dict:
        return {
            "name": template.name,
            "shortcode": template.shortcode,
            "record_type": template.record_type,
            "visibility": template.visibility,
            "status": template.status,
            "body": template.body,
        }
