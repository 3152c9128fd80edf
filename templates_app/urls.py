"""Page routes of the templates_app app."""

urlpatterns: list = []
