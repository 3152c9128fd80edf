"""Message templates: reusable bodies with merge fields (``{{first_name}}``), per organization."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from crm.models import RecordType
from tenancy.models import Organization


class MessageTemplate(models.Model):
    """A saved message body. ``record_type`` blank: usable with any record; else only with that type (its
    merge fields are that type's, see ``templates_app.rendering.FIELDS``)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    body = models.TextField(max_length=1600)
    record_type = models.CharField(max_length=20, choices=RecordType.choices, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["organization", "name"], name="template_org_name")]

    def __str__(self) -> str:
        return self.name
