"""Page routes of the campaigns app."""

from django.urls import path

from campaigns import views
from campaigns.drip import views as drip_views

urlpatterns = [
    path("settings/automations/", views.automation_list, name="settings-automations"),
    path("settings/automations/new", views.automation_edit, name="settings-automation-new"),
    path("settings/automations/<int:pk>", views.automation_edit, name="settings-automation"),
    path("settings/campaigns/", drip_views.campaign_list, name="settings-campaigns"),
    path("settings/campaigns/new", drip_views.campaign_new, name="settings-campaign-new"),
    path("settings/campaigns/keywords", drip_views.keywords_and_rates, name="settings-campaign-keywords"),
    path("settings/campaigns/<int:pk>", drip_views.campaign_page, name="settings-campaign"),
    path(
        "settings/campaigns/<int:pk>/progress",
        drip_views.campaign_progress,
        name="settings-campaign-progress",
    ),
    path(
        "settings/campaigns/<int:pk>/<str:action>",
        drip_views.campaign_action,
        name="settings-campaign-action",
    ),
]
