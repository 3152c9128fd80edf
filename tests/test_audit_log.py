"""The audit writer: one row per event even when its writer runs again (a retried task)."""

import pytest

from tenancy import audit
from tenancy.models import AuditLog


@pytest.mark.django_db
def test_a_retried_writer_with_the_same_dedupe_key_adds_no_row(org_a, org_b):
    first = audit.record(org_a, None, "conversation.closed", object_type="x", object_id="1", dedupe_key="e:1")
    again = [
        audit.record(org_a, None, "conversation.closed", object_type="x", object_id="1", dedupe_key="e:1")
        for _ in range(10)
    ]
    assert {row.pk for row in again} == {first.pk}
    assert AuditLog.objects.filter(action="conversation.closed").count() == 1


@pytest.mark.django_db
def test_writes_without_a_key_are_each_recorded(org_a):
    audit.record(org_a, None, "member.added", object_type="x", object_id="1")
    audit.record(org_a, None, "member.added", object_type="x", object_id="1")
    assert AuditLog.objects.filter(action="member.added").count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_key_inside_a_callers_transaction_keeps_that_transaction_usable(org_a):
    from django.db import transaction

    with transaction.atomic():
        audit.record(org_a, None, "a", dedupe_key="k")
        audit.record(org_a, None, "a", dedupe_key="k")
        audit.record(org_a, None, "b")
    assert list(AuditLog.objects.order_by("id").values_list("action", flat=True)) == ["a", "b"]
