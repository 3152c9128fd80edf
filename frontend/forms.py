"""The login form (the layout's pages)."""

from django.contrib.auth.forms import AuthenticationForm


class EmailLoginForm(AuthenticationForm):
    """The login form: people sign in with their email (it is their username)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Please enter a correct email and password. The password is case-sensitive.",
    }
