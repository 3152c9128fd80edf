"""API routes of the crm app (mounted under /api/v1/)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from crm import api
from crm.models import model_for

router = SimpleRouter(trailing_slash=False)
by_external_id = []
for record_type, viewset in api.RECORD_VIEWSETS.items():
    plural = str(model_for(record_type)._meta.verbose_name_plural)
    router.register(plural, viewset, basename=f"crm-{record_type}")
    by_external_id.append(
        path(
            f"{plural}/by-external-id/<str:external_id>",
            api.EXTERNAL_ID_VIEWS[record_type].as_view(),
            name=f"crm-{record_type}-by-external-id",
        )
    )
router.register("record-types", api.RecordTypeConfigViewSet, basename="crm-record-type")
router.register("imports", api.ImportJobViewSet, basename="crm-import")

urlpatterns = [
    *by_external_id,
    path("phone-matches", api.PhoneMatchView.as_view(), name="crm-phone-matches"),
    *router.urls,
]
