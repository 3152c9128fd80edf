"""Settings → Templates pages: list and search, the editor and its errors, duplicate, delete, and the rules
as the pages apply them."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command

from templates_app.models import MessageTemplate
from tests.factories_crm import LeadFactory

LIST = "/settings/templates/"
NEW = "/settings/templates/new"


def _shared(org, **kwargs):
    values = {"name": "Welcome", "body": "Hi {{first_name}}", "record_type": "lead", **kwargs}
    return MessageTemplate.objects.create(organization=org, **values)


def _form(**kwargs):
    return {
        "name": "Open house",
        "shortcode": "open",
        "record_type": "lead",
        "visibility": "shared",
        "status": "published",
        "body": 'Hi {{first_name|default:"there"}}!',
        **kwargs,
    }


def test_admin_list_shows_templates_with_search_and_safe_delete(org_a, alice_client):
    _shared(org_a, shortcode="welcome", usage_count=3)
    _shared(org_a, name="Case update", record_type="case", body="About {{subject}}")
    page = alice_client.get(LIST).content.decode()
    assert "Welcome" in page and "Case update" in page and "/welcome" in page and "3 times" in page
    assert 'class="active">Templates</a>' in page  # a tab of Settings for admins
    assert "data-confirm=" in page and "onsubmit" not in page and "onclick" not in page
    found = alice_client.get(LIST + "?q=/wel").content.decode()
    assert "Welcome" in found and "Case update" not in found
    empty = alice_client.get(LIST + "?q=nothing-like-it").content.decode()
    assert "No template matches" in empty


def test_empty_list_says_what_to_do(alice_client):
    assert "Create your first template" in alice_client.get(LIST).content.decode()


def test_agent_sees_published_shared_and_own_templates_without_edit_on_shared(org_a, aaron, aaron_client):
    shared = _shared(org_a)
    _shared(org_a, name="Secret draft", status="draft")
    MessageTemplate.objects.create(organization=org_a, name="Mine", body="Hello", owner=aaron)
    page = aaron_client.get(LIST).content.decode()
    assert "Welcome" in page and "Mine" in page and "Secret draft" not in page
    assert f"/settings/templates/{shared.pk}/edit" not in page
    assert 'class="tabs"' not in page  # no admin Settings tabs for agents
    assert re.search(
        r'<a href="/settings/templates/"[^>]*>.*?<span>Templates</span></a>', page
    )  # the top bar
    response = aaron_client.get(f"/settings/templates/{shared.pk}/edit", follow=True)
    assert "Only an admin can change a shared template" in response.content.decode()


def test_admin_creates_a_template_and_an_unknown_field_is_a_form_error(org_a, alice_client):
    LeadFactory(organization=org_a, first_name="Maria")
    page = alice_client.get(NEW).content.decode()
    # A new template is for any record: the picker offers the fields every record has.
    assert "data-insert-field" in page and 'value="org.name"' in page and 'value="first_name"' not in page
    assert "Maria" in page  # a record to preview on
    refused = alice_client.post(NEW, _form(body="Hi {{frist_name}}"))
    assert refused.status_code == 200
    assert "Unknown merge field {{frist_name}}: did you mean {{first_name}}?" in refused.content.decode()
    assert not MessageTemplate.objects.exists()
    created = alice_client.post(NEW, _form())
    assert created.status_code == 302
    template = MessageTemplate.objects.get()
    editor = alice_client.get(f"/settings/templates/{template.pk}/edit").content.decode()
    assert 'value="first_name"' in editor and 'value="custom.' not in editor
    assert (template.name, template.shortcode, template.visibility, template.record_type) == (
        "Open house",
        "open",
        "shared",
        "lead",
    )


def test_agent_creates_personal_templates_only(org_a, aaron, aaron_client):
    page = aaron_client.get(NEW).content.decode()
    assert 'value="shared"' not in page
    refused = aaron_client.post(NEW, _form(visibility="shared"))
    assert refused.status_code == 200 and not MessageTemplate.objects.exists()
    assert aaron_client.post(NEW, _form(visibility="personal")).status_code == 302
    assert MessageTemplate.objects.get().owner == aaron


def test_edit_duplicate_and_delete(org_a, alice_client):
    template = _shared(org_a, shortcode="welcome")
    edit = f"/settings/templates/{template.pk}/edit"
    editor = alice_client.get(edit).content.decode()
    assert 'value="Welcome"' in editor and "Sent 0 times." in editor
    taken = _shared(org_a, name="Other", shortcode="other")
    clash = alice_client.post(edit, _form(name="Welcome", shortcode="other"))
    assert "/other is already used by another template." in clash.content.decode()
    assert alice_client.post(edit, _form(name="Welcome back", shortcode="welcome")).status_code == 302
    template.refresh_from_db()
    assert template.name == "Welcome back"
    assert alice_client.get(f"/settings/templates/{template.pk}/duplicate").status_code == 405
    copied = alice_client.post(f"/settings/templates/{template.pk}/duplicate")
    copy = MessageTemplate.objects.get(name="Welcome back (copy)")
    assert copied["Location"] == f"/settings/templates/{copy.pk}/edit" and copy.status == "draft"
    assert alice_client.post(f"/settings/templates/{taken.pk}/delete").status_code == 302
    assert not MessageTemplate.objects.filter(pk=taken.pk).exists()


def test_outsider_gets_404_on_every_template_page(org_a, bob_client):
    template = _shared(org_a)
    assert bob_client.get(f"/settings/templates/{template.pk}/edit").status_code == 404
    assert bob_client.post(f"/settings/templates/{template.pk}/edit", _form()).status_code == 404
    assert bob_client.post(f"/settings/templates/{template.pk}/duplicate").status_code == 404
    assert bob_client.post(f"/settings/templates/{template.pk}/delete").status_code == 404
    assert "Welcome" not in bob_client.get(LIST).content.decode()
    assert MessageTemplate.objects.filter(organization=org_a).count() == 1


def test_agent_cannot_delete_a_shared_template(org_a, aaron_client):
    template = _shared(org_a)
    assert aaron_client.post(f"/settings/templates/{template.pk}/delete").status_code == 403
    assert MessageTemplate.objects.filter(pk=template.pk).exists()


@pytest.mark.django_db
def test_seed_demo_adds_templates_once_for_the_composer():
    call_command("seed_demo")
    acme = MessageTemplate.objects.filter(organization__slug="acme-realty")
    count = acme.count()
    assert count >= 5
    call_command("seed_demo")
    assert acme.count() == count
    welcome = acme.get(shortcode="welcome")
    assert welcome.is_published and welcome.visibility == "shared" and welcome.record_type == "lead"
    assert acme.get(shortcode="thanks").owner.email == "agent1@acme.test"
    assert MessageTemplate.objects.filter(organization__slug="globex").exists()
