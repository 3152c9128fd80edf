"""Page routes of the campaigns app."""

from django.urls import path

from campaigns import views

urlpatterns = [
    path("settings/automations/", views.automation_list, name="settings-automations"),
    path("settings/automations/new", views.automation_edit, name="settings-automation-new"),
    path("settings/automations/<int:pk>", views.automation_edit, name="settings-automation"),
]
