"""Page routes of the inbox."""

from django.urls import path

from messaging.inbox import pages

urlpatterns = [
    path("inbox/", pages.inbox, name="inbox"),
    path("inbox/conversations/<int:pk>", pages.inbox, name="inbox-conversation"),
    path("inbox/carry-over", pages.carry_over, name="inbox-carry-over"),
    path("messages/", pages.my_messages, name="my-messages-page"),
    path("settings/inbox/", pages.settings_inbox, name="settings-inbox"),
    path("profile/notifications", pages.notification_preferences, name="notification-preferences"),
]
