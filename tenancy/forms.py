"""Forms of the organization pages."""

from django import forms
from django.contrib.auth import get_user_model

from quicksend.bounded_ids import BoundedModelMultipleChoiceField
from tenancy.models import Membership, Role, validate_time_zone

User = get_user_model()


class OrganizationForm(forms.Form):
    name = forms.CharField(max_length=200)
    time_zone = forms.CharField(
        max_length=64, validators=[validate_time_zone], help_text="IANA name, e.g. America/New_York"
    )
    agents_may_delete_records = forms.BooleanField(
        required=False,
        help_text="Off: only admins delete leads, contacts and other records. On: agents may also delete "
        "the records they own. Admins can always delete any record.",
    )


class AddMemberForm(forms.Form):
    email = forms.EmailField()
    first_name = forms.CharField(required=False, max_length=150)
    last_name = forms.CharField(required=False, max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.AGENT)
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        help_text="Used only if the email has no QuickSend account yet: their first password. "
        "Either way they receive an invitation to accept.",
    )


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100)
    members = BoundedModelMultipleChoiceField(
        queryset=Membership.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, org=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["members"].queryset = Membership.objects.filter(organization=org).select_related("user")
        self.fields["members"].label_from_instance = lambda m: m.user.get_full_name() or m.user.username


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, initial="My integration")
