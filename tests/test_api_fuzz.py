"""Fuzzing the REST API from its own OpenAPI schema (schemathesis): every operation of ``/api/schema/`` gets
generated requests — valid ones and ones that break the schema — as an organization's admin with an API
token, against a small world of real objects (numbers, conversations, records, a template, a team), and
must never answer 5xx; a 2xx answer must match its documented shape.

The app runs in process (WSGI) inside the test's transaction, so the run works the same in both run modes
(SQLite embedded, PostgreSQL when ``DATABASE_URL`` is set). Only loopback is reachable while it runs: the
Twilio client points at the test sandbox, and any other address is refused before a packet leaves.

The run is deterministic: a fixed seed and a bounded number of examples per operation keep it inside CI's
time. To look for more bugs locally, vary them:

    QUICKSEND_FUZZ_SEED=7 QUICKSEND_FUZZ_EXAMPLES=100 pytest tests/test_api_fuzz.py
"""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.checks import not_a_server_error, response_schema_conformance

from messaging.inbox import actions as inbox
from templates_app.models import MessageTemplate
from tenancy.services import do_create_api_token
from tests.factories import TeamFactory
from tests.factories_crm import AccountFactory, CaseFactory, ContactFactory, LeadFactory, OpportunityFactory
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory, store_inbound

SEED = int(os.environ.get("QUICKSEND_FUZZ_SEED", "20261204"))
MAX_EXAMPLES = int(os.environ.get("QUICKSEND_FUZZ_EXAMPLES", "10"))
# Stateful runs: scenarios that follow the schema's links (create a record, then read, change, reassign and
# delete it; list conversations, then act on one), each a few steps long.
SCENARIOS = int(os.environ.get("QUICKSEND_FUZZ_SCENARIOS", "40"))
CHECKS = [not_a_server_error, response_schema_conformance]
QUIET = list(HealthCheck)  # the world is built once per test by fixtures; hypothesis only varies requests

# Path prefix → the seeded object a generated id is swapped for (half of the time), so requests reach real
# objects and not only 404s.
_SEEDED_KINDS = {
    "/api/v1/accounts/": "account",
    "/api/v1/cases/": "case",
    "/api/v1/contacts/": "contact",
    "/api/v1/leads/": "lead",
    "/api/v1/opportunities/": "opportunity",
    "/api/v1/conversations/": "conversation",
    "/api/v1/notifications/": "notification",
    "/api/v1/numbers/": "number",
    "/api/v1/teams/": "team",
    "/api/v1/templates/": "template",
    "/api/v1/members/": "member",
    "/api/v1/tokens/": "token",
    "/api/v1/twilio-accounts/": "twilio_account",
    "/api/v1/record-types/": "record_type",
    "/api/v1/messages/": "message",
    "/api/v1/audit-log/": "audit",
}


def _is_loopback(host) -> bool:
    if host in (None, "", "localhost", "testserver"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture
def loopback_only(monkeypatch):
    """Refuse every connection and name lookup that would leave this machine (a fuzzed media URL, a
    webhook): the run may reach the in-process app, the sandbox and the local databases only."""
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else None
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(host):
            raise ConnectionRefusedError(f"the fuzz run may not reach {host}")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host if not isinstance(host, bytes) else host.decode()):
            raise socket.gaierror(socket.EAI_NONAME, f"the fuzz run may not look up {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def fuzz_world(org_a, alice, aaron, bob, twilio_sandbox, django_capture_on_commit_callbacks):
    """Acme's objects the generated requests can reach (and Globex's admin Bob, whose data must stay his)."""
    account = TwilioAccountFactory(organization=org_a)
    number = PhoneNumberFactory(account=account, phone_number="+14155550142")
    PhoneNumberFactory(account=account, phone_number="+14155550143")
    with django_capture_on_commit_callbacks(execute=True):
        message = store_inbound(number, "+12025550147", "Hello")
        store_inbound(number, "+12025550148", "Is the house still for sale?")
    conversation = message.conversation
    inbox.do_assign_conversation_to_me(conversation, alice)
    team = TeamFactory(organization=org_a, name="Sales")
    lead = LeadFactory(organization=org_a, owner=aaron)
    _token, key = do_create_api_token(alice, org_a, "fuzz")
    from messaging.models import Notification
    from tenancy.models import ApiToken, AuditLog, Membership

    ids = {
        "account": AccountFactory(organization=org_a).pk,
        "case": CaseFactory(organization=org_a).pk,
        "contact": ContactFactory(organization=org_a).pk,
        "lead": lead.pk,
        "opportunity": OpportunityFactory(organization=org_a).pk,
        "conversation": conversation.pk,
        "notification": (
            Notification.objects.filter(organization=org_a).values_list("pk", flat=True).first()
        ),
        "number": number.pk,
        "team": team.pk,
        "template": MessageTemplate.objects.create(
            organization=org_a, name="Hello", body="Hi {{first_name}}"
        ).pk,
        "member": Membership.objects.get(organization=org_a, user=aaron).pk,
        "token": ApiToken.objects.filter(organization=org_a).values_list("pk", flat=True).first(),
        "twilio_account": account.pk,
        "record_type": "lead",
        "message": message.pk,
        "audit": AuditLog.objects.filter(organization=org_a).values_list("pk", flat=True).first(),
    }
    return {"key": key, "ids": {k: v for k, v in ids.items() if v is not None}}


@pytest.fixture
def api_schema(fuzz_world, loopback_only):
    # The app is called in this thread, inside the test's transaction: like Django's test client, keep
    # the per-request connection housekeeping from closing the connection that holds it.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler())
        schema.config.seed = SEED
        seeded = fuzz_world["ids"]

        @schema.hook
        def flatmap_path_parameters(context, path_parameters):
            path = context.operation.path
            kind = next((k for prefix, k in _SEEDED_KINDS.items() if path.startswith(prefix)), None)
            if kind is None or kind not in seeded or not path_parameters or "id" not in path_parameters:
                return st.just(path_parameters)
            return st.sampled_from([path_parameters, {**path_parameters, "id": seeded[kind]}])

        yield schema
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=QUIET)
def test_no_request_makes_the_api_fail(case, fuzz_world):
    case.call_and_validate(headers={"Authorization": f"Token {fuzz_world['key']}"}, checks=CHECKS)


def test_no_sequence_of_linked_requests_makes_the_api_fail(api_schema, fuzz_world):
    headers = {"Authorization": f"Token {fuzz_world['key']}"}
    linked = []

    class Scenarios(api_schema.as_state_machine()):
        # Every scenario starts from the same world (a savepoint rolled back after it): what one created
        # or deleted must not change what the next one generates, or replaying a seed would diverge.
        def setup(self):
            self.savepoint = transaction.atomic()
            self.savepoint.__enter__()

        def teardown(self):
            transaction.set_rollback(True)
            self.savepoint.__exit__(None, None, None)

        def get_call_kwargs(self, case):
            return {"headers": headers}

        def after_call(self, response, case):
            if case.operation.path.count("{"):
                linked.append(response.status_code)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, headers=headers)

    run_state_machine_as_test(
        seed(SEED)(Scenarios),
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=5,
            deadline=None,
            database=None,
            suppress_health_check=QUIET,
        ),
    )
    # The scenarios reached objects through links (paths with ids), and some of them existed.
    assert linked and any(code < 400 for code in linked), linked
