"""Who may delete a CRM record: admins always; agents only records they own, and only when the organization
allows it. The same rule in the service, the pages, the API and the Django admin."""

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied

from crm import services
from crm.models import Lead
from tenancy.models import AuditLog, Role
from tests.factories import MembershipFactory
from tests.factories_crm import ContactFactory, LeadFactory


def _allow_agents(org, allowed=True):
    org.agents_may_delete_records = allowed
    org.save(update_fields=["agents_may_delete_records"])


@pytest.fixture
def amy(org_a):
    return MembershipFactory(organization=org_a, role=Role.AGENT, user__username="amy").user


# --- the service ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_by_default_an_agent_cannot_delete_even_their_own_lead(org_a, aaron):
    lead = LeadFactory(organization=org_a, owner=aaron)
    with pytest.raises(PermissionDenied, match="Only an admin can delete this lead"):
        services.do_delete_record(lead, aaron)
    assert Lead.objects.filter(pk=lead.pk).exists()
    assert not AuditLog.objects.filter(action="lead.deleted").exists()


@pytest.mark.django_db
def test_when_allowed_an_agent_deletes_their_own_record_but_not_a_colleagues(org_a, aaron, amy):
    _allow_agents(org_a)
    own = LeadFactory(organization=org_a, owner=aaron)
    theirs = ContactFactory(organization=org_a, owner=amy)
    unowned = LeadFactory(organization=org_a, owner=None)
    services.do_delete_record(own, aaron)
    assert not Lead.objects.filter(pk=own.pk).exists()
    with pytest.raises(PermissionDenied, match="only the contacts they own"):
        services.do_delete_record(theirs, aaron)
    with pytest.raises(PermissionDenied, match="only the leads they own"):
        services.do_delete_record(unowned, aaron)


@pytest.mark.django_db
def test_admins_delete_any_record_whatever_the_setting(org_a, alice, aaron):
    lead = LeadFactory(organization=org_a, owner=aaron)
    services.do_delete_record(lead, alice)
    assert AuditLog.objects.filter(action="lead.deleted", actor=alice).exists()


@pytest.mark.django_db
def test_an_admin_of_another_organization_cannot_delete(org_a, bob):
    lead = LeadFactory(organization=org_a)
    with pytest.raises(PermissionDenied, match="Only members of this organization"):
        services.do_delete_record(lead, bob)


@pytest.mark.django_db
def test_a_deactivated_admin_cannot_delete(org_a, alice, aaron):
    other_admin = MembershipFactory(organization=org_a, role=Role.ADMIN, user__username="ada")
    lead = LeadFactory(organization=org_a)
    other_admin.is_active = False
    other_admin.save()
    with pytest.raises(PermissionDenied):
        services.do_delete_record(lead, other_admin.user)


# --- the API --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_agent_gets_403_and_the_record_stays(org_a, aaron, aaron_client):
    lead = LeadFactory(organization=org_a, owner=aaron)
    response = aaron_client.delete(f"/api/v1/leads/{lead.pk}")
    assert response.status_code == 403
    assert "Only an admin can delete this lead" in response.json()["detail"]
    assert Lead.objects.filter(pk=lead.pk).exists()


@pytest.mark.django_db
def test_api_agent_deletes_own_record_when_allowed(org_a, aaron, amy, aaron_client):
    _allow_agents(org_a)
    own = LeadFactory(organization=org_a, owner=aaron)
    theirs = LeadFactory(organization=org_a, owner=amy)
    assert aaron_client.delete(f"/api/v1/leads/{own.pk}").status_code == 204
    assert aaron_client.delete(f"/api/v1/leads/{theirs.pk}").status_code == 403
    assert Lead.objects.filter(pk=theirs.pk).exists()


@pytest.mark.django_db
def test_api_outsider_gets_404_for_another_organizations_record(org_b, alice_client, bob):
    foreign = LeadFactory(organization=org_b, owner=bob)
    assert alice_client.delete(f"/api/v1/leads/{foreign.pk}").status_code == 404
    assert Lead.objects.filter(pk=foreign.pk).exists()


@pytest.mark.django_db
def test_api_me_tells_whether_agents_may_delete(org_a, aaron_client):
    assert aaron_client.get("/api/v1/me").json()["organization"]["agents_may_delete_records"] is False
    _allow_agents(org_a)
    assert aaron_client.get("/api/v1/me").json()["organization"]["agents_may_delete_records"] is True


# --- the pages ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_page_hides_delete_from_an_agent_who_may_not_and_refuses_the_post(org_a, aaron, aaron_client):
    lead = LeadFactory(organization=org_a, owner=aaron)
    detail = aaron_client.get(f"/crm/leads/{lead.pk}/")
    assert detail.status_code == 200
    assert b'data-testid="delete-record"' not in detail.content
    assert aaron_client.get(f"/crm/leads/{lead.pk}/delete").status_code == 403
    assert aaron_client.post(f"/crm/leads/{lead.pk}/delete", {"confirmed": "yes"}).status_code == 403
    assert Lead.objects.filter(pk=lead.pk).exists()


@pytest.mark.django_db
def test_page_offers_delete_to_the_owning_agent_when_allowed(org_a, aaron, amy, aaron_client):
    _allow_agents(org_a)
    own = LeadFactory(organization=org_a, owner=aaron)
    theirs = LeadFactory(organization=org_a, owner=amy)
    assert b'data-testid="delete-record"' in aaron_client.get(f"/crm/leads/{own.pk}/").content
    assert b'data-testid="delete-record"' not in aaron_client.get(f"/crm/leads/{theirs.pk}/").content
    response = aaron_client.post(f"/crm/leads/{own.pk}/delete", {"confirmed": "yes"})
    assert response.status_code == 302
    assert not Lead.objects.filter(pk=own.pk).exists()


@pytest.mark.django_db
def test_page_admin_sees_delete_with_a_confirmation_and_no_inline_script(org_a, alice_client):
    lead = LeadFactory(organization=org_a, first_name="O'Neil", last_name="<b>x</b>")
    page = alice_client.get(f"/crm/leads/{lead.pk}/").content.decode()
    assert 'data-testid="delete-record"' in page
    assert "data-confirm=" in page and "onsubmit" not in page and "onclick" not in page
    assert "<b>x</b>" not in page


@pytest.mark.django_db
def test_page_outsider_gets_404(org_b, alice_client):
    foreign = LeadFactory(organization=org_b)
    assert alice_client.post(f"/crm/leads/{foreign.pk}/delete", {"confirmed": "yes"}).status_code == 404
    assert Lead.objects.filter(pk=foreign.pk).exists()


@pytest.mark.django_db
def test_admin_turns_the_setting_on_from_the_organization_page(org_a, alice_client):
    response = alice_client.post(
        "/settings/organization/",
        {"name": "Acme", "time_zone": "UTC", "agents_may_delete_records": "on"},
    )
    assert response.status_code == 302
    org_a.refresh_from_db()
    assert org_a.agents_may_delete_records is True
    entry = AuditLog.objects.get(action="organization.updated")
    assert entry.changes == {"agents_may_delete_records": [False, True]}


# --- the Django admin -----------------------------------------------------------------------------------


@pytest.fixture
def staff_agent(org_a, client_for):
    user = MembershipFactory(organization=org_a, role=Role.AGENT, user__username="staffer").user
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_lead", "delete_lead"]))
    return user


@pytest.mark.django_db
def test_django_admin_follows_the_rule_for_staff_who_are_agents(org_a, staff_agent, client_for):
    client = client_for(staff_agent)
    lead = LeadFactory(organization=org_a, owner=staff_agent)
    assert client.get(f"/admin/crm/lead/{lead.pk}/delete/").status_code == 403
    assert client.post(f"/admin/crm/lead/{lead.pk}/delete/", {"post": "yes"}).status_code == 403
    refused = client.post(
        "/admin/crm/lead/", {"action": "delete_selected", "_selected_action": [lead.pk], "post": "yes"}
    )
    assert refused.status_code in (200, 302, 403)
    assert Lead.objects.filter(pk=lead.pk).exists()
    _allow_agents(org_a)
    assert client.post(f"/admin/crm/lead/{lead.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Lead.objects.filter(pk=lead.pk).exists()
    assert AuditLog.objects.filter(action="lead.deleted", actor=staff_agent).exists()


@pytest.mark.django_db
def test_django_admin_superuser_deletes_through_the_service(org_a, client_for, user_factory):
    root = user_factory(username="root", is_staff=True, is_superuser=True)
    lead = LeadFactory(organization=org_a)
    assert client_for(root).post(f"/admin/crm/lead/{lead.pk}/delete/", {"post": "yes"}).status_code == 302
    assert AuditLog.objects.filter(action="lead.deleted", actor=root).exists()
