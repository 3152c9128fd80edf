"""Queries compiled once per process (``quicksend.prepared``) answer as the ORM query they come from, with
every value read at each run: the sender choice of a send, for each kind of sender."""

from __future__ import annotations

import pytest

from messaging.inbox.conversations import get_or_create_conversation
from messaging.models import MessagingSettings
from messaging.services.sending import _chosen_sender_query, chosen_sender
from quicksend.prepared import Prepared
from tenancy.models import Membership
from tests import factories_send
from tests.factories import TeamFactory
from tests.factories_send import connect_line

line = factories_send.line
fast_rates = factories_send.fast_rates

CUSTOMER = "+12065550188"


def _orm_answer(org, membership, customer):
    """The same query built and compiled by the ORM now, with the real values."""
    shape = None if membership is None else (membership.is_active, membership.is_admin)
    membership_id = membership.pk if membership is not None else None
    if membership is not None and not membership.is_active:
        return None
    query = _chosen_sender_query(shape, org_id=org.pk, customer_number=customer, membership_id=membership_id)
    return next(iter(query), None)


def _both(org, membership, customer=CUSTOMER):
    prepared, orm = chosen_sender(org, membership, customer), _orm_answer(org, membership, customer)
    assert (prepared and prepared.pk) == (orm and orm.pk)
    if prepared is not None:
        assert prepared.account.pk == orm.account.pk and prepared.has_thread == orm.has_thread
    return prepared


def test_the_sender_choice_answers_as_its_orm_query_and_sees_each_change_at_once(
    org_a, org_b, alice, aaron, bob, line, twilio_sandbox
):
    admin = Membership.objects.get(user=alice)
    agent = Membership.objects.get(user=aaron)
    second = connect_line(twilio_sandbox, org_a, default=False)
    connect_line(twilio_sandbox, org_b)
    assert _both(org_a, admin).pk == line.number.pk  # the organization's default
    assert _both(org_a, None).pk == line.number.pk
    assert _both(org_a, agent) is None, "an agent with no number assigned"
    team = TeamFactory(organization=org_a)
    team.members.add(agent)
    line.number.assigned_teams.add(team)
    assert _both(org_a, agent).pk == line.number.pk, "the default, once the agent's team may use it"
    line.number.assigned_teams.remove(team)
    assert _both(org_a, agent) is None
    MessagingSettings.objects.filter(organization=org_a).update(agents_may_use_any_number=True)
    assert _both(org_a, agent).pk == line.number.pk
    conversation, _created = get_or_create_conversation(second.number, CUSTOMER)
    chosen = _both(org_a, admin)
    assert (chosen.pk, chosen.has_thread) == (second.number.pk, True), "the customer's thread wins"
    assert conversation.phone_number_id == chosen.pk
    assert _both(org_b, Membership.objects.get(user=bob)).organization_id == org_b.pk
    Membership.objects.filter(pk=agent.pk).update(is_active=False)
    assert _both(org_a, Membership.objects.get(pk=agent.pk)) is None


def test_a_value_the_compiled_query_does_not_carry_is_refused(org_a):
    from messaging.models import PhoneNumber

    prepared = Prepared(lambda shape, org_id: PhoneNumber.objects.filter(organization_id=org_id), org_id=-5)
    assert prepared.first(org_id=org_a.pk) is None
    with pytest.raises(ValueError, match="customer"):
        prepared.first(org_id=org_a.pk, customer="+12065550100")
