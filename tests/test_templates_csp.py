"""Every template works under the Content Security Policy: no inline handlers, no inline scripts, no
``confirm()``; destructive forms ask through ``data-confirm`` (frontend/static/frontend/confirm.js)."""

import re
from pathlib import Path

import pytest
from django.template.loader import get_template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = sorted(
    p for p in ROOT.glob("*/templates/**/*.html") if ".venv" not in p.parts and "var" not in p.parts
)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)


def test_the_walk_finds_the_templates():
    names = {p.name for p in TEMPLATES}
    assert {"base.html", "settings_members.html", "settings_team_edit.html", "record_detail.html"} <= names


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_template_has_no_inline_script_handler_or_confirm(path):
    text = path.read_text()
    assert not INLINE_HANDLER.search(text), "inline event handler (onclick=, onsubmit=, …)"
    assert not INLINE_SCRIPT.search(text), "inline <script> without src"
    assert "confirm(" not in text
    assert "javascript:" not in text.lower()


def test_base_layout_loads_the_confirmation_module():
    source = get_template("base.html").template.source
    assert "frontend/confirm.js" in source and 'type="module"' in source


@pytest.mark.django_db
def test_member_and_team_confirmations_escape_names(alice_client, org_a):
    from tenancy.models import Team
    from tests.factories import MembershipFactory

    MembershipFactory(organization=org_a, user__first_name='"><img src=x>', user__email="eve@acme.test")
    team = Team.objects.create(organization=org_a, name="' + alert(document.domain) + '")
    members = alice_client.get("/settings/members/").content.decode()
    assert "<img src=x>" not in members
    assert 'data-confirm="Remove &quot;&gt;&lt;img src=x&gt;' in members
    edit = alice_client.get(f"/settings/teams/{team.pk}").content.decode()
    assert 'data-confirm="Delete the team “&#x27; + alert(document.domain) + &#x27;”?' in edit
