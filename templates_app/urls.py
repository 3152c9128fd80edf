"""Page routes of the templates_app app (Settings → Templates)."""

from django.urls import path

from templates_app import views

urlpatterns = [
    path("settings/templates/", views.template_list, name="templates-list"),
    path("settings/templates/new", views.template_create, name="templates-create"),
    path("settings/templates/<int:pk>/edit", views.template_edit, name="templates-edit"),
    path("settings/templates/<int:pk>/duplicate", views.template_duplicate, name="templates-duplicate"),
    path("settings/templates/<int:pk>/delete", views.template_delete, name="templates-delete"),
]
