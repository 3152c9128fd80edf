"""The Django admin shows a staff user only the organization they act for; superusers see all."""

import pytest
from django.contrib.auth.models import Permission

from crm import services
from crm.models import Lead, RecordType
from tests.factories import MembershipFactory


@pytest.fixture
def leads(org_a, org_b, alice, bob):
    return (
        services.do_create_record(org_a, alice, RecordType.LEAD, {"first_name": "AcmeLead"}),
        services.do_create_record(org_b, bob, RecordType.LEAD, {"first_name": "GlobexLead"}),
    )


@pytest.fixture
def support(org_a, client_for):
    user = MembershipFactory(organization=org_a, user__username="support").user
    user.is_staff = True
    user.save()
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_lead", "change_lead", "add_lead"])
    )
    return client_for(user)


@pytest.mark.django_db
def test_staff_sees_only_the_organization_they_act_for(support, leads):
    acme, globex = leads
    page = support.get("/admin/crm/lead/").content.decode()
    assert "AcmeLead" in page and "GlobexLead" not in page
    assert support.get(f"/admin/crm/lead/{acme.pk}/change/").status_code == 200
    # Another organization's record reads as missing (the admin redirects to its index with a message).
    response = support.get(f"/admin/crm/lead/{globex.pk}/change/")
    assert response.status_code == 302
    assert support.post(f"/admin/crm/lead/{globex.pk}/change/", {"first_name": "x"}).status_code == 302
    assert Lead.objects.get(pk=globex.pk).first_name == "GlobexLead"


@pytest.mark.django_db
def test_staff_cannot_point_a_record_at_another_organizations_user(support, leads, bob):
    acme, _ = leads
    response = support.post(
        f"/admin/crm/lead/{acme.pk}/change/",
        {"first_name": "AcmeLead", "owner": bob.pk, "status": "new", "custom_fields": "{}"},
    )
    assert response.status_code == 200  # the form is shown again with an error
    assert "Select a valid choice" in response.content.decode()
    acme.refresh_from_db()
    assert acme.owner_id != bob.pk


@pytest.mark.django_db
def test_superuser_sees_every_organization(leads, client_for, user_factory):
    root = user_factory(username="root", is_staff=True, is_superuser=True)
    page = client_for(root).get("/admin/crm/lead/").content.decode()
    assert "AcmeLead" in page and "GlobexLead" in page


@pytest.mark.django_db
def test_admin_shows_a_bad_phone_as_a_field_error(support, leads):
    acme, _ = leads
    response = support.post(
        f"/admin/crm/lead/{acme.pk}/change/",
        {"first_name": "AcmeLead", "mobile_phone": "555-12", "status": "new", "custom_fields": "{}"},
    )
    assert response.status_code == 200
    assert "is not a valid phone number for Lead mobile" in response.content.decode()
