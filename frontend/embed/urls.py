"""Page routes of the embedded record widget (docs/embed.md)."""

from django.urls import path

from frontend.embed import pages

urlpatterns = [
    path("embed/<slug:org>/r/<str:record_type>/<str:external_id>/", pages.embed_record, name="embed-record"),
    path("embed/<slug:org>/r/<str:record_type>/", pages.embed_unsaved, name="embed-unsaved"),
    path("embed/<slug:org>/phone/<str:phone>/", pages.embed_phone, name="embed-phone"),
    path("embed/<slug:org>/salesforce/canvas", pages.salesforce_canvas, name="embed-salesforce-canvas"),
]
