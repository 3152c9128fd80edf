"""Forms of the CRM pages. Related-object choices are scoped to the organization."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from crm.imports import CUSTOM_PREFIX, IMPORTABLE_FIELDS
from crm.models import Account, Contact, CrmRecord, ImportJob, RecordType, RecordTypeConfig, model_for
from tenancy.models import Team

User = get_user_model()

EXCLUDED = {"id", "organization", "created_at", "updated_at", "custom_fields"}


def member_users(org):
    return User.objects.filter(memberships__organization=org, memberships__is_active=True).order_by(
        "first_name", "username"
    )


class UserChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.get_full_name() or obj.username


def record_form_class(record_type: str) -> type[forms.ModelForm]:
    model = model_for(record_type)
    fields = [
        f.name
        for f in model._meta.concrete_fields
        if f.name not in EXCLUDED and f.editable and not f.name.endswith("_e164")
    ]

    class RecordFormBase(forms.ModelForm):
        status = forms.ChoiceField(choices=model.STATUS_CHOICES, required=False)

        def __init__(self, *args, org, **kwargs):
            super().__init__(*args, **kwargs)
            self.fields["owner"] = UserChoiceField(member_users(org), required=False)
            self.fields["team"] = forms.ModelChoiceField(
                Team.objects.filter(organization=org), required=False
            )
            if "account" in self.fields:
                self.fields["account"].queryset = Account.objects.filter(organization=org)
            if "contact" in self.fields:
                self.fields["contact"].queryset = Contact.objects.filter(organization=org)
            for name in model.phone_fields:
                self.fields[name].help_text = "Any format; numbers without a country code use the default."
            for name in ("owner", "team", "status"):
                self.fields[name] = self.fields.pop(name)

        def _post_clean(self):
            # Phone normalization and the rest of the model validation happen in the service (one place).
            pass

    return forms.modelform_factory(model, form=RecordFormBase, fields=fields)


RECORD_FORMS = {rt: record_form_class(rt) for rt in RecordType.values}


class ReassignForm(forms.Form):
    owner = UserChoiceField(User.objects.none())
    team = forms.ModelChoiceField(Team.objects.none(), required=False, empty_label="(keep the team)")

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = member_users(org)
        self.fields["team"].queryset = Team.objects.filter(organization=org)


class ImportUploadForm(forms.Form):
    record_type = forms.ChoiceField(choices=[(RecordType.LEAD, "Leads"), (RecordType.CONTACT, "Contacts")])
    file = forms.FileField(help_text="CSV (comma, semicolon or tab separated), UTF-8 or Latin-1.")


def mapping_choices() -> list[tuple[str, str]]:
    return [("", "(ignore)")] + [(f, f.replace("_", " ")) for f in IMPORTABLE_FIELDS]


class ImportStartForm(forms.Form):
    duplicate_policy = forms.ChoiceField(choices=ImportJob.Policy.choices)
    match_key = forms.ChoiceField(choices=ImportJob.MatchKey.choices, label="Find duplicates by")

    def __init__(self, *args, job: ImportJob, **kwargs):
        super().__init__(*args, **kwargs)
        self.columns = []
        for i, header in enumerate(job.headers):
            guess = job.mapping.get(header, "")
            choices = mapping_choices()
            custom = CUSTOM_PREFIX + (
                guess[len(CUSTOM_PREFIX) :] if guess.startswith(CUSTOM_PREFIX) else header
            )
            choices.append((custom, f"custom field “{custom[len(CUSTOM_PREFIX) :]}”"))
            name = f"col_{i}"
            self.fields[name] = forms.ChoiceField(
                choices=choices, required=False, initial=guess, label=header
            )
            self.columns.append((header, name))

    def mapping(self) -> dict[str, str]:
        return {header: self.cleaned_data.get(name, "") for header, name in self.columns}


class RecordTypeConfigForm(forms.ModelForm):
    class Meta:
        model = RecordTypeConfig
        fields = [
            "sms_phone_field",
            "compliance_field",
            "default_country",
            "priority",
            "allow_create_from_conversation",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        model: type[CrmRecord] = model_for(self.instance.record_type)
        self.fields["sms_phone_field"] = forms.ChoiceField(
            choices=[("", "(none)")] + list(model.phone_fields.items()),
            required=False,
            label="SMS phone field",
        )
        self.fields["compliance_field"] = forms.ChoiceField(
            choices=[("", "(no check)")] + list(model.compliance_fields.items()), required=False
        )
        self.prefix = self.instance.record_type

    def _post_clean(self):
        pass
