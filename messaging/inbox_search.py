"""The inbox's ``q``: a customer number in any format, part of a number, a record name or message text.
Each branch finds ids first through an index (docs/benchmarks.md, "Inbox"), then the list filters on them."""

from __future__ import annotations

from django.db.models import Q

from crm.phones import try_normalize_phone
from messaging.models import Conversation, Message

SEARCH_LIMIT = 500  # conversations a text or record-name search can return
RECENT_WINDOW = 10_000  # the organization's most recent messages, always searched in full
PHONE_PUNCTUATION = set(" +-().")


def _record_match_q(org_id: int, text: str) -> Q:
    """Conversations whose matched or "regarding" record's name contains ``text``: one small query per record
    type for the ids, then an indexed lookup on (record_type, record_id) / (regarding_type, regarding_id)."""
    from crm.models import RecordType, model_for

    q = Q(pk__in=[])
    for rt in RecordType.values:
        model = model_for(rt)
        fields = {f.name for f in model._meta.get_fields()}
        name_q = Q(pk__in=[])
        for field in ("first_name", "last_name", "name", "subject", "company"):
            if field in fields:
                name_q |= Q(**{f"{field}__icontains": text})
        ids = list(
            model.objects.filter(organization_id=org_id)
            .filter(name_q)
            .order_by("-pk")
            .values_list("pk", flat=True)[:SEARCH_LIMIT]
        )
        if ids:
            q |= Q(record_type=rt, record_id__in=ids) | Q(regarding_type=rt, regarding_id__in=ids)
    return q


def _text_match_ids(org_id: int, text: str) -> list[int]:
    """Conversations with a message containing ``text``: every match among the organization's most recent
    ``RECENT_WINDOW`` messages first (a bounded backward scan), then up to the limit from anywhere (the
    trigram index on UPPER(body), unordered so a common word stops early instead of sorting every match)."""
    messages = Message.objects.filter(organization_id=org_id)
    threshold = (
        messages.order_by("-id").values_list("id", flat=True)[RECENT_WINDOW - 1 : RECENT_WINDOW].first()
    )
    matching = messages.filter(body__icontains=text)
    recent = matching.filter(id__gte=threshold) if threshold is not None else matching
    ids: dict[int, None] = {}
    for conversation_id in recent.order_by("-id").values_list("conversation_id", flat=True)[
        : SEARCH_LIMIT * 4
    ]:
        ids.setdefault(conversation_id, None)
    if threshold is not None and len(ids) < SEARCH_LIMIT:
        for conversation_id in matching.order_by().values_list("conversation_id", flat=True)[
            : SEARCH_LIMIT * 4
        ]:
            ids.setdefault(conversation_id, None)
    return list(ids)[:SEARCH_LIMIT]


def search_q(org_id: int, text: str) -> Q:
    """``q``: a phone number in any format (exact customer number), digits (part of a customer number),
    else a record name or message text."""
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits and all(ch.isdigit() or ch in PHONE_PUNCTUATION for ch in text):
        e164 = try_normalize_phone(text, "1")
        if e164:
            return Q(customer_number=e164)
        # Ids first, unordered: the trigram index answers at once (ordered by recency the planner may
        # walk the whole recent index instead).
        ids = (
            Conversation.objects.filter(organization_id=org_id, customer_number__contains=digits)
            .order_by()
            .values_list("pk", flat=True)[:SEARCH_LIMIT]
        )
        return Q(pk__in=list(ids))
    q = _record_match_q(org_id, text)
    if len(text) >= 3:
        q |= Q(pk__in=_text_match_ids(org_id, text))
    return q
