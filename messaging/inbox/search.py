"""The inbox's ``q``: a customer number in any format, part of a number, a record name or message text.
Each branch finds ids first through an index (docs/benchmarks.md, "Inbox"), then the list filters on them."""

from __future__ import annotations

from itertools import chain

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import CharField, Q, Subquery, Value, lookups
from django.db.models.functions import Coalesce

from crm.texting import try_organization_phone
from messaging.models import Conversation, Message


class InArray(lookups.In):
    """``id__in_array=[...]``: ``IN`` for the long id lists of a search. PostgreSQL gets one array parameter
    (``= ANY(%s)``) instead of a placeholder per id (500 ids cost ~7 ms of CPU to compile, quote and parse
    that way); other databases get the plain ``IN``."""

    lookup_name = "in_array"

    def get_prep_lookup(self):
        if isinstance(self.rhs, list | tuple) and all(type(v) is int for v in self.rhs):  # our own ids
            return list(self.rhs)
        return super().get_prep_lookup()

    def as_postgresql(self, compiler, connection):
        values = [value for value in self.rhs if value is not None]  # prepared by get_prep_lookup
        if not values:
            raise EmptyResultSet
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", (*lhs_params, values)


Conversation._meta.pk.register_lookup(InArray)

SEARCH_LIMIT = 500  # conversations a text or record-name search can return
RECENT_WINDOW = 10_000  # the organization's most recent messages, always searched in full
PHONE_PUNCTUATION = set(" +-().")


def _record_match_q(org_id: int, text: str) -> Q:
    """Conversations whose matched or "regarding" record's name contains ``text``: the ids of up to
    ``SEARCH_LIMIT`` records of each type (one UNION ALL query on PostgreSQL, one query per type where the
    database cannot limit the parts of a UNION, e.g. SQLite), then an indexed lookup on (record_type,
    record_id) / (regarding_type, regarding_id)."""
    from crm.models import RecordType, model_for

    parts = []
    for rt in RecordType.values:
        model = model_for(rt)
        fields = {f.name for f in model._meta.get_fields()}
        name_q = Q(pk__in=[])
        for field in ("first_name", "last_name", "name", "subject", "company"):
            if field in fields:
                name_q |= Q(**{f"{field}__icontains": text})
        parts.append(
            model.objects.filter(organization_id=org_id)
            .filter(name_q)
            .order_by("-pk")
            .annotate(record_type=Value(rt, output_field=CharField()))
            .values_list("pk", "record_type")[:SEARCH_LIMIT]
        )
    if connection.features.supports_slicing_ordering_in_compound:
        rows = parts[0].union(*parts[1:], all=True)
    else:
        rows = chain.from_iterable(parts)
    found: dict[str, list[int]] = {}
    for pk, rt in rows:
        found.setdefault(rt, []).append(pk)
    q = Q(pk__in=[])
    for rt, ids in found.items():
        q |= Q(record_type=rt, record_id__in=ids) | Q(regarding_type=rt, regarding_id__in=ids)
    return q


def _text_match_ids(org_id: int, text: str) -> list[int]:
    """Conversations with a message containing ``text``, the most recent matches first.

    First a probe: up to ``SEARCH_LIMIT`` matches from anywhere, unordered, through the trigram index on
    UPPER(body) (what ``icontains`` compiles to). A rare text comes back complete in this one query, and
    sorting its message ids here keeps the most recent conversations. A common text fills the probe quickly
    (the planner scans until it has them), but the index cannot give recency: then every match among the
    organization's ``RECENT_WINDOW`` most recent messages comes first (a bounded backward scan of the recent
    index, its lower bound a subquery), then the probe's, then, only if still short of the limit, more
    unordered matches."""
    cap = SEARCH_LIMIT * 4
    messages = Message.objects.filter(organization_id=org_id)
    matching = messages.filter(body__icontains=text).order_by()
    found = list(matching.values_list("id", "conversation_id")[:SEARCH_LIMIT])
    complete = len(found) < SEARCH_LIMIT
    ids: dict[int, None] = {}
    if complete:
        found.sort(reverse=True)
    else:
        window_start = messages.order_by("-id").values("id")[RECENT_WINDOW - 1 : RECENT_WINDOW]
        recent = matching.filter(id__gte=Coalesce(Subquery(window_start), 0)).order_by("-id")
        for conversation_id in recent.values_list("conversation_id", flat=True)[:cap]:
            ids.setdefault(conversation_id, None)
    for _message_id, conversation_id in found:
        ids.setdefault(conversation_id, None)
    if not complete and len(ids) < SEARCH_LIMIT:
        for conversation_id in matching.values_list("conversation_id", flat=True)[:cap]:
            ids.setdefault(conversation_id, None)
            if len(ids) >= SEARCH_LIMIT:
                break
    return list(ids)[:SEARCH_LIMIT]


def search_q(org_id: int, text: str) -> Q:
    """``q``: a phone number in any format (exact customer number), digits (part of a customer number),
    else a record name or message text."""
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits and all(ch.isdigit() or ch in PHONE_PUNCTUATION for ch in text):
        # Fewer than 7 digits is never a whole number: part of one, without reading the default country.
        e164 = try_organization_phone(org_id, text) if len(digits) >= 7 else None
        if e164:
            return Q(customer_number=e164)
        # Ids first, unordered: the trigram index answers at once (ordered by recency the planner may
        # walk the whole recent index instead).
        ids = (
            Conversation.objects.filter(organization_id=org_id, customer_number__contains=digits)
            .order_by()
            .values_list("pk", flat=True)[:SEARCH_LIMIT]
        )
        return Q(id__in_array=list(ids))
    q = _record_match_q(org_id, text)
    if len(text) >= 3:
        q |= Q(id__in_array=_text_match_ids(org_id, text))
    return q
