"""``quicksend.bulk.update_rows``: ``bulk_update`` in one ``UPDATE … FROM (VALUES …)`` on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connection

from campaigns.drip.models import CampaignRecipient
from quicksend.bulk import update_rows
from tests import factories_send
from tests.campaign_helpers import campaign, enroll, people

line = factories_send.line
fast_rates = factories_send.fast_rates


def test_each_row_gets_its_own_values_and_nothing_else_changes(
    org_a, alice, line, django_assert_max_num_queries
):
    drip = campaign(org_a, alice, [line.number])
    enroll(drip, people(4))
    rows = list(CampaignRecipient.objects.filter(campaign=drip).order_by("pk"))
    first, second, third, untouched = rows
    at = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    first.step_index, first.next_at, first.waiting_reason, first.sender = (
        2,
        at,
        'Held: it\'s "quoted"',
        line.number,
    )
    second.step_index, second.next_at, second.waiting_reason, second.sender = 1, None, "", None
    third.status, third.claimed_until = CampaignRecipient.Status.COMPLETED, at
    third.phone = "+19999999999"  # not among the fields written: stays as stored
    with django_assert_max_num_queries(1 if connection.vendor == "postgresql" else 3):  # else bulk_update
        updated = update_rows(
            [third, first, second],
            ["step_index", "next_at", "waiting_reason", "sender", "status", "claimed_until"],
        )
    assert updated == 3
    fresh = {r.pk: r for r in CampaignRecipient.objects.filter(campaign=drip)}
    assert (fresh[first.pk].step_index, fresh[first.pk].next_at) == (2, at)
    assert fresh[first.pk].waiting_reason == 'Held: it\'s "quoted"'
    assert fresh[first.pk].sender_id == line.number.pk
    assert (fresh[second.pk].step_index, fresh[second.pk].next_at, fresh[second.pk].sender_id) == (
        1,
        None,
        None,
    )
    assert fresh[third.pk].status == CampaignRecipient.Status.COMPLETED
    assert fresh[third.pk].claimed_until == at
    assert fresh[third.pk].phone != "+19999999999"
    assert fresh[untouched.pk].step_index == untouched.step_index
    assert fresh[untouched.pk].status == untouched.status


def test_nothing_to_write_is_no_statement(django_assert_num_queries, db):
    with django_assert_num_queries(0):
        assert update_rows([], ["status"]) == 0
