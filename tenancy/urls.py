"""Page routes of tenancy: profile, invitations, organization switch, organization settings."""

from django.urls import path

from tenancy import integrations, views

urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("profile/tokens/<int:token_id>/revoke", views.revoke_token, name="token-revoke"),
    path("orgs/<slug:slug>/switch", views.switch_org, name="org-switch"),
    path("settings/organization/", views.settings_organization, name="settings-organization"),
    path("settings/members/", views.settings_members, name="settings-members"),
    path("settings/members/<int:membership_id>", views.member_action, name="settings-member-action"),
    path(
        "settings/invitations/<int:invitation_id>/withdraw",
        views.invitation_withdraw,
        name="settings-invitation-withdraw",
    ),
    path("invitations/<int:invitation_id>/accept", views.invitation_accept, name="invitation-accept"),
    path("invitations/<int:invitation_id>/decline", views.invitation_decline, name="invitation-decline"),
    path("settings/teams/", views.settings_teams, name="settings-teams"),
    path("settings/teams/<int:team_id>", views.settings_team_edit, name="settings-team-edit"),
    path("settings/audit/", views.settings_audit, name="settings-audit"),
    path("settings/integrations/", integrations.settings_integrations, name="settings-integrations"),
    path(
        "settings/integrations/mappings", integrations.mapping_add, name="settings-integrations-mapping-add"
    ),
    path(
        "settings/integrations/mappings/<int:mapping_id>/delete",
        integrations.mapping_delete,
        name="settings-integrations-mapping-delete",
    ),
    path(
        "settings/integrations/rotate-key", integrations.rotate_key, name="settings-integrations-rotate-key"
    ),
]
