"""Page routes of the messaging app."""

urlpatterns: list = []
