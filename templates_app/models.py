"""Message templates: reusable bodies with merge fields (``{{first_name}}``), per organization."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from crm.models import RecordType
from tenancy.models import Organization

SHORTCODE_RE = r"^[a-z0-9][a-z0-9_-]*$"


class MessageTemplate(models.Model):
    """A saved message body.

    ``record_type`` blank: usable with any record (only the agent, owner and organization fields); else only
    with that type (its fields, see ``templates_app.rendering.fields_for``). ``owner`` blank: a shared
    template, managed by admins and offered to everyone once published; else a personal template only its
    owner sees and manages. Agents see a shared template only when it is published.
    """

    class Status(models.TextChoices):
        PUBLISHED = "published", "Published"
        DRAFT = "draft", "Draft"

    class Visibility(models.TextChoices):
        SHARED = "shared", "Shared"
        PERSONAL = "personal", "Personal"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    body = models.TextField(max_length=1600)
    record_type = models.CharField(
        max_length=20, choices=RecordType.choices, blank=True, help_text="Blank: usable with any record."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Set for a personal template (its owner's only); blank for a shared one.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PUBLISHED)
    shortcode = models.CharField(
        max_length=30,
        blank=True,
        validators=[RegexValidator(SHORTCODE_RE, "Use lowercase letters, digits, - and _.")],
        help_text='Typed after "/" in the composer to find the template.',
    )
    usage_count = models.PositiveIntegerField(default=0, help_text="Messages sent from this template.")
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["organization", "name"], name="template_org_name")]
        constraints = [
            # One "/code" per organization, so typing it in the composer finds one template.
            models.UniqueConstraint(
                fields=["organization", "shortcode"],
                condition=~Q(shortcode=""),
                name="template_unique_shortcode",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def visibility(self) -> str:
        return self.Visibility.PERSONAL if self.owner_id else self.Visibility.SHARED

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED

    def get_visibility_display(self) -> str:
        return self.Visibility(self.visibility).label
