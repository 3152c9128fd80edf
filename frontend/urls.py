"""Page routes of the layout: home, login and logout."""

from django.contrib.auth import views as auth_views
from django.urls import path

from frontend import views
from frontend.forms import EmailLoginForm

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True, authentication_form=EmailLoginForm),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
