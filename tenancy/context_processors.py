from tenancy.models import Membership


def tenancy(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "current_org": getattr(request, "org", None),
        "current_membership": getattr(request, "membership", None),
        "is_org_admin": bool(getattr(request, "membership", None) and request.membership.is_admin),
        "user_memberships": Membership.objects.select_related("organization").filter(
            user=user, is_active=True
        ),
    }
