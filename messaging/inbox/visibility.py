"""Who may see which conversation: the one place the inbox visibility rules live.

Used by the conversation list and detail API (``visible_conversations``), the WebSocket subscription check
(``may_see_conversation``) and the notification fan-out (``members_who_may_see``).

Rules (organization setting ``InboxSettings.agent_visibility``; admins always see everything):

- ``all``: every conversation of the organization;
- ``own``: conversations the agent owns;
- ``team``: conversations the agent owns or one of their teams owns;
- ``records``: conversations the agent owns, or whose matched or "regarding" record the agent owns.

Under every rule an agent also sees *unclaimed* conversations (no owner, no team) on numbers they may send
from, so a first text can be accepted by someone.
"""

from __future__ import annotations

from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet

from messaging.models import Conversation, InboxSettings
from tenancy.models import Membership, Organization


def inbox_settings_for(org: Organization | int) -> InboxSettings:
    org_id = org if isinstance(org, int) else org.pk
    # One row per organization: a plain LIMIT 1, no ORDER BY (this runs on every agent's inbox request).
    found = next(iter(InboxSettings.objects.filter(organization_id=org_id)[:1]), None)
    return found or InboxSettings(organization_id=org_id)


def _owned_record_q(user_id: int) -> Q:
    from crm.models import RecordType, model_for

    q = Q(pk__in=[])
    for record_type in RecordType.values:
        owned = model_for(record_type).objects.filter(
            owner_id=user_id, organization_id=OuterRef("organization_id")
        )
        q |= Q(record_type=record_type) & Exists(owned.filter(pk=OuterRef("record_id")))
        q |= Q(regarding_type=record_type) & Exists(owned.filter(pk=OuterRef("regarding_id")))
    return q


def visibility_q(membership: Membership, settings: InboxSettings | None = None) -> Q | None:
    """The filter a membership's conversations must match; None means "all of the organization"."""
    if not membership.is_active:
        return Q(pk__in=[])
    if membership.is_admin:
        return None
    settings = settings or inbox_settings_for(membership.organization_id)
    rule = settings.agent_visibility
    if rule == InboxSettings.Visibility.ALL:
        return None
    from messaging.access import numbers_usable_by

    q = Q(owner_id=membership.user_id)
    if rule == InboxSettings.Visibility.TEAM:
        q |= Q(team__in=membership.teams.values("pk"))
    elif rule == InboxSettings.Visibility.RECORDS:
        q |= _owned_record_q(membership.user_id)
    usable = numbers_usable_by(membership).values("pk")
    q |= Q(owner__isnull=True, team__isnull=True, phone_number__in=usable)
    return q


def visible_conversations(membership: Membership, queryset: QuerySet | None = None) -> QuerySet[Conversation]:
    """The organization's conversations this membership may see (a lazy queryset: one SQL query)."""
    qs = queryset if queryset is not None else Conversation.objects.all()
    qs = qs.filter(organization_id=membership.organization_id)
    q = visibility_q(membership)
    return qs if q is None else qs.filter(q)


def may_see_conversation(membership: Membership | None, conversation_id: int) -> bool:
    if membership is None:
        return False
    return visible_conversations(membership).filter(pk=conversation_id).exists()


def members_who_may_see(
    conversation: Conversation, settings: InboxSettings | None = None
) -> list[Membership]:
    """Active memberships that may see ``conversation`` (notification fan-out), in the members' order.

    Two queries whatever the number of agents: the members, then, when the rule is restrictive (never for
    "all" or for admins), one row with each agent's visibility filter evaluated on this conversation."""
    members = list(
        Membership.objects.filter(
            organization_id=conversation.organization_id, is_active=True
        ).select_related("user", "organization")
    )
    settings = settings or inbox_settings_for(conversation.organization_id)
    filters = {m.pk: visibility_q(m, settings) for m in members}
    restricted = {f"may_see_{pk}": q for pk, q in filters.items() if q is not None}
    seen: dict[str, bool] = {}
    if restricted:
        checks = {name: ExpressionWrapper(q, output_field=BooleanField()) for name, q in restricted.items()}
        seen = Conversation.objects.filter(pk=conversation.pk).values(**checks).first() or {}
    return [m for m in members if filters[m.pk] is None or seen.get(f"may_see_{m.pk}")]


def subscription_check(user, org_id, conversation_id: int) -> bool:
    """``quicksend.consumers.SUBSCRIPTION_CHECKS["conv"]``: the socket's session organization must be the
    conversation's, and the member must be allowed to see it (default deny)."""
    if org_id is None or not getattr(user, "is_authenticated", False):
        return False
    membership = (
        Membership.objects.filter(user=user, organization_id=org_id, is_active=True).select_related(
            "organization"
        )
    ).first()
    return may_see_conversation(membership, conversation_id)
