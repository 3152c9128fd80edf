"""One way to answer an error: services raise DomainError (or Django's ValidationError for several field
errors); the API's exception handler answers them, and pages show them through ``attempt``."""

from __future__ import annotations

from django import forms
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import RequestFactory

from messaging.inbox.actions import NeedsConfirmation
from messaging.services.sending import SendRefused
from messaging.twilio.errors import CODES, TwilioError
from quicksend.api import exception_handler
from quicksend.errors import FAILED, Conflict, DomainError, PageErrorMiddleware, attempt


def _answer(exc):
    response = exception_handler(exc, {})
    return response.status_code, response.data


def test_a_domain_error_is_answered_with_its_words_its_field_and_its_status():
    assert _answer(DomainError("The team needs a name.", field="name")) == (
        400,
        {"detail": "The team needs a name.", "field": "name"},
    )
    assert _answer(DomainError("Nothing to do.")) == (400, {"detail": "Nothing to do."})
    assert _answer(Conflict("Someone accepted it first.")) == (409, {"detail": "Someone accepted it first."})
    assert _answer(SendRefused("The message is empty.", field="body"))[1]["field"] == "body"


def test_subclasses_add_their_details_and_status():
    status, body = _answer(NeedsConfirmation("Ann owns it. Assign it to you?", 7))
    assert (status, body["needs_confirmation"], body["owner_id"]) == (409, True, 7)
    retry = TwilioError("Twilio is down.", kind="server_error", retryable=True)
    assert _answer(retry) == (
        503,
        {"detail": "Twilio is down.", "code": None, "kind": "server_error", "retryable": True},
    )
    auth = TwilioError(CODES[20003].message, code=20003, kind="auth")
    assert _answer(auth)[0] == 400


def test_django_validation_errors_keep_their_fields_and_permission_denied_keeps_its_words():
    assert _answer(ValidationError({"owner": "Not a member."})) == (400, {"owner": ["Not a member."]})
    assert _answer(ValidationError("A team needs a name.")) == (400, {"detail": ["A team needs a name."]})
    assert _answer(PermissionDenied("Only an admin can do this.")) == (
        403,
        {"detail": "Only an admin can do this."},
    )


class _TeamForm(forms.Form):
    name = forms.CharField()


def _refuse(error):
    def service():
        raise error

    return service


def test_a_page_shows_a_refusal_on_the_field_it_names_else_on_top_of_the_form():
    form = _TeamForm({"name": "x"})
    assert form.is_valid()
    assert attempt(form, _refuse(DomainError("Taken.", field="name"))) is FAILED
    assert form.errors == {"name": ["Taken."]}
    other = _TeamForm({"name": "x"})
    other.is_valid()
    attempt(other, _refuse(ValidationError({"name": "Too short.", "color": "Unknown."})))
    assert other.errors["name"] == ["Too short."] and other.non_field_errors() == ["Unknown."]


def test_a_page_action_shows_a_refusal_as_an_error_message_and_returns_the_result_otherwise():
    request = RequestFactory().post("/")
    request.session = {}
    request._messages = FallbackStorage(request)
    assert attempt(request, lambda: 42) == 42
    assert attempt(request, _refuse(TwilioError("Twilio said no.")), prefix="Acme: ") is FAILED
    assert [str(m) for m in get_messages(request)] == ["Acme: Twilio said no."]


def _page_request(method: str, path: str, referer: str = ""):
    extra = {"HTTP_REFERER": referer} if referer else {}
    request = getattr(RequestFactory(), method)(path, **extra)
    request.session = {}
    request._messages = FallbackStorage(request)
    return request


def test_a_refusal_no_page_caught_returns_to_the_page_with_its_words_never_a_server_error():
    middleware = PageErrorMiddleware(lambda request: None)
    request = _page_request("post", "/crm/leads/3/reassign", referer="http://testserver/crm/leads/3")
    response = middleware.process_exception(request, ValidationError("Choose an active member."))
    assert (response.status_code, response["Location"]) == (302, "http://testserver/crm/leads/3")
    assert [str(m) for m in get_messages(request)] == ["Choose an active member."]
    elsewhere = _page_request("post", "/crm/leads/3/reassign", referer="https://evil.example/")
    assert middleware.process_exception(elsewhere, DomainError("No."))["Location"] == "/"
    again = _page_request("get", "/settings/", referer="http://testserver/settings/")
    assert middleware.process_exception(again, DomainError("No."))["Location"] == "/"


def test_the_api_and_other_exceptions_are_left_to_their_own_handlers():
    middleware = PageErrorMiddleware(lambda request: None)
    assert middleware.process_exception(_page_request("post", "/api/v1/teams"), DomainError("No.")) is None
    assert middleware.process_exception(_page_request("post", "/crm/"), KeyError("x")) is None
