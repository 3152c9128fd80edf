"""``/api/v1/automations``: admins build, validate, activate, dry-run and run automations and read the run
log; agents and other organizations get nothing."""

from __future__ import annotations

import pytest

from campaigns.models import Automation, Enrollment
from crm.models import Lead
from tests import factories_send
from tests.automation_helpers import daytime_number, template

line = factories_send.line
fast_rates = factories_send.fast_rates
inline_tasks = factories_send.inline_tasks

pytestmark = pytest.mark.django_db(transaction=True)


def payload(template_id, **extra):
    return {
        "name": "Welcome",
        "trigger": {"type": "manual"},
        "steps": [{"type": "send_template", "template": template_id, "from": "last_conversation"}],
        **extra,
    }


def test_an_admin_creates_activates_and_runs_an_automation_for_a_record(
    org_a, alice, line, inline_tasks, client_for
):
    welcome = template(org_a, "Hello {{first_name}}!")
    api = client_for(alice)
    created = api.post("/api/v1/automations", payload(welcome.pk, status="active"), format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["status"] == "active"
    lead = Lead.objects.create(organization=org_a, first_name="Ann", mobile_phone=daytime_number())
    ran = api.post(
        f"/api/v1/automations/{created.json()['id']}/run",
        {"record": {"type": "lead", "id": lead.pk}},
        format="json",
    )
    assert ran.status_code == 202, ran.json()
    assert ran.json()["status"] == "completed"
    log = api.get(f"/api/v1/automations/{created.json()['id']}/runs").json()["results"]
    assert [r["result"] for r in log][:2] == ["done", "sent"]
    detail = api.get(f"/api/v1/automations/{created.json()['id']}").json()
    assert detail["counts"]["completed"] == 1


def test_a_definition_error_names_the_part_at_fault(org_a, alice, client_for):
    api = client_for(alice)
    response = api.post("/api/v1/automations", payload(999999), format="json")
    assert response.status_code == 400
    assert response.json() == {"steps[0].template": ["Choose one of your organization's templates."]}
    bad_trigger = api.post(
        "/api/v1/automations", payload(template(org_a).pk, trigger={"type": "sometimes"}), format="json"
    )
    assert bad_trigger.status_code == 400 and "trigger.type" in bad_trigger.json()


def test_another_organizations_template_cannot_be_used(org_a, org_b, alice, bob, client_for):
    theirs = template(org_b, "Globex says hi")
    response = client_for(alice).post("/api/v1/automations", payload(theirs.pk), format="json")
    assert response.status_code == 400


def test_the_dry_run_renders_without_sending(org_a, alice, line, client_for):
    welcome = template(org_a, "Hello {{first_name}}!")
    automation = client_for(alice).post("/api/v1/automations", payload(welcome.pk), format="json").json()
    lead = Lead.objects.create(organization=org_a, first_name="Ann", mobile_phone=daytime_number())
    response = client_for(alice).post(
        f"/api/v1/automations/{automation['id']}/test",
        {"record": {"type": "lead", "id": lead.pk}},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["steps"][0]["text"] == "Hello Ann!"
    assert not Enrollment.objects.exists()


def test_running_a_draft_automation_is_refused_in_words(org_a, alice, client_for):
    automation = (
        client_for(alice).post("/api/v1/automations", payload(template(org_a).pk), format="json").json()
    )
    lead = Lead.objects.create(organization=org_a, first_name="Ann", mobile_phone=daytime_number())
    response = client_for(alice).post(
        f"/api/v1/automations/{automation['id']}/run",
        {"record": {"type": "lead", "id": lead.pk}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"status": ["Activate the automation before running it."]}


def test_agents_cannot_manage_automations(org_a, aaron, client_for):
    assert client_for(aaron).get("/api/v1/automations").status_code == 403
    assert (
        client_for(aaron).post("/api/v1/automations", payload(template(org_a).pk), format="json").status_code
        == 403
    )


def test_another_organizations_automation_and_records_are_not_found(org_a, org_b, alice, bob, client_for):
    automation = (
        client_for(alice).post("/api/v1/automations", payload(template(org_a).pk), format="json").json()
    )
    outsider = client_for(bob)
    assert outsider.get(f"/api/v1/automations/{automation['id']}").status_code == 404
    assert outsider.get(f"/api/v1/automations/{automation['id']}/runs").status_code == 404
    assert outsider.get("/api/v1/automations").json()["results"] == []
    lead = Lead.objects.create(organization=org_a, first_name="Ann", mobile_phone=daytime_number())
    theirs = client_for(bob).post(
        "/api/v1/automations", payload(template(org_b).pk, status="active"), format="json"
    )
    response = outsider.post(
        f"/api/v1/automations/{theirs.json()['id']}/run",
        {"record": {"type": "lead", "id": lead.pk}},
        format="json",
    )
    assert response.status_code == 404
    assert Automation.objects.get(pk=automation["id"]).status == "draft"


def test_an_out_of_range_record_id_is_a_clear_400(org_a, alice, client_for):
    automation = (
        client_for(alice).post("/api/v1/automations", payload(template(org_a).pk), format="json").json()
    )
    response = client_for(alice).post(
        f"/api/v1/automations/{automation['id']}/run",
        {"record": {"type": "lead", "id": 9223372036854775808}},
        format="json",
    )
    assert response.status_code == 400 and "record" in response.json()


@pytest.mark.parametrize("value", ["²", "9223372036854775808", "-3", "x"])
def test_a_run_log_filter_that_is_not_a_record_id_is_a_400_naming_it(org_a, alice, client_for, value):
    automation = (
        client_for(alice).post("/api/v1/automations", payload(template(org_a).pk), format="json").json()
    )
    response = client_for(alice).get(f"/api/v1/automations/{automation['id']}/runs?record_id={value}")
    assert response.status_code == 400 and "record_id" in response.json()
