from django import forms

from messaging.models import PhoneNumber
from tenancy.models import Membership, Team


class ConnectAccountForm(forms.Form):
    account_sid = forms.CharField(
        label="Account SID",
        max_length=64,
        widget=forms.TextInput(attrs={"placeholder": "AC…", "autocomplete": "off"}),
    )
    auth_token = forms.CharField(
        label="Auth Token",
        max_length=128,
        # render_value=False: the token is never sent back to the browser, even after an error.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    friendly_name = forms.CharField(label="Name (optional)", max_length=200, required=False)


class ReplaceTokenForm(forms.Form):
    auth_token = forms.CharField(
        label="New Auth Token",
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


class MessagingSettingsForm(forms.Form):
    default_number = forms.ModelChoiceField(
        queryset=PhoneNumber.objects.none(),
        required=False,
        empty_label="— no default —",
        label="Default sender",
    )
    agents_may_use_any_number = forms.BooleanField(
        required=False,
        label="Agents may send from any number (not only the ones assigned to them or their teams)",
    )

    def __init__(self, *args, sendable=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["default_number"].queryset = sendable
        self.fields["default_number"].label_from_instance = lambda n: n.display_name


class NumberForm(forms.Form):
    label = forms.CharField(max_length=100, required=False, help_text="e.g. “Support – NY”, “Sales East”")
    members = forms.ModelMultipleChoiceField(
        queryset=Membership.objects.none(), required=False, widget=forms.CheckboxSelectMultiple, label="Users"
    )
    teams = forms.ModelMultipleChoiceField(
        queryset=Team.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, org=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["members"].queryset = Membership.objects.filter(organization=org).select_related("user")
        self.fields["members"].label_from_instance = lambda m: (
            f"{m.user.get_full_name() or m.user.username} ({m.get_role_display().lower()})"
        )
        self.fields["teams"].queryset = Team.objects.filter(organization=org)


class MyDefaultNumberForm(forms.Form):
    default_number = forms.ModelChoiceField(
        queryset=PhoneNumber.objects.none(), required=False, empty_label="— the organization's default —"
    )

    def __init__(self, *args, usable=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["default_number"].queryset = usable
        self.fields["default_number"].label_from_instance = lambda n: n.display_name
