"""Open WebSockets follow a user's access: what tenancy tells ``quicksend.consumers`` (connected in
``TenancyConfig.ready``).

- ``membership_is_active``: a socket's user must still be an active member of its session's organization;
- when a user logs out, is deactivated or changes password, when a membership is created, changed or removed,
  and when a team's members change, that user's sockets check their access again at once
  (``realtime.publish_access_changed``). Model signals, so every path counts: services, the admin, a shell.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import m2m_changed, post_delete, post_save

from quicksend import consumers, realtime
from tenancy.models import Membership, Team


def membership_is_active(user, org_id) -> bool:
    """``consumers.CONNECTION_CHECKS``: with an organization chosen in the session, the user must still be an
    active member of it."""
    if org_id is None:
        return True
    return Membership.objects.filter(user=user, organization_id=org_id, is_active=True).exists()


def _user_logged_out(sender, request=None, user=None, **kwargs) -> None:
    if user is None:
        return
    session = getattr(request, "session", None)
    if session is not None:
        # Django flushes the session just after this signal; end it now, or a socket told below could check
        # before the flush, find its session still there and stay open.
        session.flush()
    realtime.publish_access_changed(user_ids=[user.pk])


def _user_saved(sender, instance, created=False, update_fields=None, **kwargs) -> None:
    # A login only stamps last_login: nothing about access changed.
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    realtime.publish_access_changed(user_ids=[instance.pk])


def _membership_changed(sender, instance, **kwargs) -> None:
    realtime.publish_access_changed(user_ids=[instance.user_id])


def _team_members_changed(sender, instance, action, pk_set=None, **kwargs) -> None:
    if isinstance(instance, Team):
        # pk_set holds memberships; a clear gives none, so its members are read before it.
        if action == "pre_clear":
            pk_set = set(instance.members.values_list("pk", flat=True))
        elif action not in ("post_add", "post_remove"):
            return
        user_ids = list(Membership.objects.filter(pk__in=pk_set or ()).values_list("user_id", flat=True))
    elif action in ("post_add", "post_remove", "post_clear"):  # one membership's teams changed
        user_ids = [instance.user_id]
    else:
        return
    realtime.publish_access_changed(user_ids=user_ids)


def connect() -> None:
    if membership_is_active not in consumers.CONNECTION_CHECKS:
        consumers.CONNECTION_CHECKS.append(membership_is_active)
    user_logged_out.connect(_user_logged_out, dispatch_uid="live_access.logout")
    post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="live_access.user")
    post_save.connect(_membership_changed, sender=Membership, dispatch_uid="live_access.membership_saved")
    post_delete.connect(_membership_changed, sender=Membership, dispatch_uid="live_access.membership_removed")
    m2m_changed.connect(_team_members_changed, sender=Team.members.through, dispatch_uid="live_access.teams")
