"""Page routes of the messaging app."""

from django.urls import include, path

from messaging.twilio import pages as views

urlpatterns = [
    path("settings/twilio/", views.settings_twilio, name="settings-twilio"),
    path("settings/twilio/accounts/<str:pk>", views.twilio_account_action, name="settings-twilio-account"),
    path("settings/twilio/numbers/<str:pk>", views.number_detail, name="settings-twilio-number"),
    path("profile/default-number", views.my_default_number, name="my-default-number"),
    path("", include("messaging.inbox.urls")),
]
