"""Page routes of the campaigns app."""

urlpatterns: list = []
