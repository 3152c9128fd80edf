"""Layout tags shared by every page: icons from the one SVG sprite and initials avatars."""

from __future__ import annotations

import re
import zlib

from django import template
from django.templatetags.static import static
from django.utils.html import format_html

register = template.Library()
_PHONE = re.compile(r"^[+\d][\d\s()-]*$")


@register.simple_tag
def icon(name: str, size: str = "") -> str:
    """An inline icon (decorative: the control around it carries the accessible name)."""
    css = f"icon {size}".strip()
    return format_html(
        '<svg class="{}" aria-hidden="true" focusable="false"><use href="{}#{}"></use></svg>',
        css,
        static("frontend/icons.svg"),
        name,
    )


def initials_of(name: str) -> str:
    words = [w for w in (name or "").replace("@", " ").replace(".", " ").split() if w[:1].isalnum()]
    if not words:
        return "?"
    if len(words) == 1:
        return words[0][:2]
    return words[0][0] + words[-1][0]


@register.simple_tag
def avatar(name: str, size: str = "") -> str:
    """Initials in a circle whose colour is stable for a name (the same person looks the same everywhere)."""
    shade = zlib.crc32((name or "").encode()) % 6
    css = f"avatar {size} c{shade}".strip() if shade else f"avatar {size}".strip()
    if _PHONE.match((name or "").strip()):  # a bare number has no initials: a person icon instead
        return format_html('<span class="{}" aria-hidden="true">{}</span>', css, icon("user", "sm"))
    return format_html('<span class="{}" aria-hidden="true">{}</span>', css, initials_of(name))
