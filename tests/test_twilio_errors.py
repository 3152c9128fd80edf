"""Twilio errors become domain errors with plain words and a retryable flag; the one client factory."""

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient

from messaging.twilio import client as twilio_client
from messaging.twilio.errors import CODES, TwilioError, classify, describe_code, twilio_call
from tests.plugins.servers import free_port


def rest(status, code=None, msg="boom"):
    return TwilioRestException(status, "https://api.twilio.com/x", msg=msg, code=code)


@pytest.mark.parametrize("code", [21211, 21212, 21606, 21610, 21614, 21617, 20003, 21408, 21612])
def test_client_errors_are_permanent(code):
    error = classify(rest(400 if code != 20003 else 401, code))
    assert error.permanent and not error.retryable
    assert error.code == code
    assert error.message == CODES[code].message


def test_bad_credentials_read_as_the_settings_page_says():
    error = classify(rest(401, 20003))
    assert error.message == "Authentication failed. Please check your Twilio SID and Auth Token."
    assert error.kind == "auth"


def test_a_401_without_a_code_is_still_an_authentication_failure():
    assert classify(rest(401)).kind == "auth"


@pytest.mark.parametrize("exc", [rest(429, 20429), rest(429), rest(500), rest(503, None, "<html>")])
def test_rate_limits_and_server_errors_are_retryable(exc):
    assert classify(exc).retryable


def test_an_unknown_client_error_keeps_twilios_words():
    error = classify(rest(400, 21999, "Something odd"))
    assert not error.retryable
    assert "21999" in error.message and "Something odd" in error.message


def test_network_failures_are_retryable_and_say_which(settings):
    settings.TWILIO_HTTP_TIMEOUT = 7
    unreachable = classify(requests.ConnectionError("refused"))
    timed_out = classify(requests.ReadTimeout("slow"))
    connect_timeout = classify(requests.ConnectTimeout("slow connect"))
    assert unreachable.retryable and "could not be reached" in unreachable.message
    assert timed_out.retryable and "did not answer within 7 seconds" in timed_out.message
    assert connect_timeout.kind == "timeout"


def test_async_codes_have_plain_words():
    assert describe_code(30007) == CODES[30007].message
    assert describe_code("30003").startswith("The recipient's phone is unreachable")
    assert describe_code(12345) == "Twilio reported error 12345."


def test_twilio_call_converts_and_lets_other_errors_through():
    with pytest.raises(TwilioError):
        with twilio_call():
            raise rest(400, 21211)
    with pytest.raises(KeyError):
        with twilio_call():
            raise KeyError("a bug of ours is not a Twilio error")


def test_the_factory_uses_the_base_url_and_timeout_from_settings(settings):
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9/sandbox/"
    settings.TWILIO_HTTP_TIMEOUT = 4.5
    client = twilio_client.client_for_credentials("AC" + "a" * 32, "token")
    assert client.api.base_url == "http://127.0.0.1:9/sandbox"
    assert isinstance(client.http_client, TwilioHttpClient)
    assert client.http_client.timeout == 4.5


def test_without_a_base_url_the_factory_talks_to_real_twilio(settings):
    settings.TWILIO_API_BASE_URL = None
    client = twilio_client.client_for_credentials("AC" + "a" * 32, "token")
    assert client.api.base_url == "https://api.twilio.com"


def test_a_real_connection_failure_through_the_factory_is_classified(settings):
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{free_port()}/sandbox"
    client = twilio_client.client_for_credentials("AC" + "a" * 32, "token")
    with pytest.raises(TwilioError) as info:
        with twilio_call():
            client.api.v2010.accounts("AC" + "a" * 32).fetch()
    assert info.value.kind == "unreachable" and info.value.retryable
