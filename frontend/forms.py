from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm

from tenancy.models import Membership, Role, validate_time_zone

User = get_user_model()


class EmailLoginForm(AuthenticationForm):
    """The login form: people sign in with their email (it is their username)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Please enter a correct email and password. The password is case-sensitive.",
    }


class OrganizationForm(forms.Form):
    name = forms.CharField(max_length=200)
    time_zone = forms.CharField(
        max_length=64, validators=[validate_time_zone], help_text="IANA name, e.g. America/New_York"
    )


class AddMemberForm(forms.Form):
    email = forms.EmailField()
    first_name = forms.CharField(required=False, max_length=150)
    last_name = forms.CharField(required=False, max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.AGENT)
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        help_text="Initial password for a new user (leave empty for an existing user).",
    )


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100)
    members = forms.ModelMultipleChoiceField(
        queryset=Membership.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, org=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["members"].queryset = Membership.objects.filter(organization=org).select_related("user")
        self.fields["members"].label_from_instance = lambda m: m.user.get_full_name() or m.user.username


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, initial="My integration")
