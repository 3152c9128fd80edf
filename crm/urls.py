"""Page routes of the crm app."""

urlpatterns: list = []
