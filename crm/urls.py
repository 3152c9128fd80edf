"""Page routes of the crm app."""

from django.urls import path

from crm import views
from crm.models import RecordType

urlpatterns = [
    path("crm/imports/", views.import_list, name="crm-imports"),
    path("crm/imports/<int:pk>/", views.import_detail, name="crm-import-detail"),
    path("crm/imports/<int:pk>/status", views.import_status, name="crm-import-status"),
    path("crm/imports/<int:pk>/report.csv", views.import_report, name="crm-import-report"),
    path("settings/record-types/", views.settings_record_types, name="crm-settings-record-types"),
]

for record_type in RecordType.values:
    plural = views.plural_of(record_type)
    v = views.PAGE_VIEWS[record_type]
    urlpatterns += [
        path(f"crm/{plural}/", v["list"], name=f"crm-{record_type}-list"),
        path(f"crm/{plural}/new", v["create"], name=f"crm-{record_type}-create"),
        path(f"crm/{plural}/reassign", v["bulk_reassign"], name=f"crm-{record_type}-bulk-reassign"),
        path(f"crm/{plural}/<int:pk>/", v["detail"], name=f"crm-{record_type}-detail"),
        path(f"crm/{plural}/<int:pk>/edit", v["edit"], name=f"crm-{record_type}-edit"),
        path(f"crm/{plural}/<int:pk>/delete", v["delete"], name=f"crm-{record_type}-delete"),
        path(f"crm/{plural}/<int:pk>/reassign", v["reassign"], name=f"crm-{record_type}-reassign"),
    ]
