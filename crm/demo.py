"""Demo CRM data for `manage.py seed_demo` (idempotent: records are keyed by external id)."""

from __future__ import annotations

from crm import services
from crm.models import RecordType, model_for

DEMO = {
    "acme-realty": {
        RecordType.ACCOUNT: [
            {"external_id": "demo-acc-1", "name": "Harbor View Condos", "main_phone": "(617) 555-0140"},
            {"external_id": "demo-acc-2", "name": "Maple Street Rentals", "main_phone": "(617) 555-0141"},
        ],
        RecordType.CONTACT: [
            {
                "external_id": "demo-con-1",
                "first_name": "Justin",
                "last_name": "Reed",
                "company": "Harbor View Condos",
                "mobile_phone": "(617) 555-0150",
                "email": "justin@example.com",
                "_account": "demo-acc-1",
                "_owner": "agent1@acme.test",
            },
            {
                "external_id": "demo-con-2",
                "first_name": "Priya",
                "last_name": "Shah",
                "mobile_phone": "617-555-0151",
                "_owner": "agent2@acme.test",
                "allow_sms": False,
            },
            {
                "external_id": "demo-con-3",
                "first_name": "Tom",
                "last_name": "Baker",
                "mobile_phone": "+1 617 555 0152",
                "do_not_contact": True,
                "_owner": "agent1@acme.test",
            },
        ],
        RecordType.LEAD: [
            {
                "external_id": "demo-lead-1",
                "first_name": "Maria",
                "last_name": "Lopez",
                "company": "Lopez Homes",
                "mobile_phone": "(415) 555-0134",
                "status": "new",
                "custom_fields": {"source": "open house"},
                "_owner": "agent1@acme.test",
            },
            {
                "external_id": "demo-lead-2",
                "first_name": "Chen",
                "last_name": "Wei",
                "mobile_phone": "415.555.0135",
                "status": "contacted",
                "_owner": "agent2@acme.test",
            },
            {
                "external_id": "demo-lead-3",
                "first_name": "Olivia",
                "last_name": "Brown",
                "mobile_phone": "4155550136",
                "status": "qualified",
                "_owner": "admin@acme.test",
            },
        ],
        RecordType.CASE: [
            {
                "external_id": "demo-case-1",
                "subject": "Lockbox code not working",
                "_contact": "demo-con-1",
                "_account": "demo-acc-1",
                "_owner": "agent1@acme.test",
            },
        ],
        RecordType.OPPORTUNITY: [
            {
                "external_id": "demo-opp-1",
                "name": "12 Elm St listing",
                "amount": "450000.00",
                "_account": "demo-acc-2",
                "_owner": "admin@acme.test",
            },
        ],
    },
    "globex": {
        RecordType.CONTACT: [
            {
                "external_id": "demo-con-1",
                "first_name": "Hank",
                "last_name": "Scorpio",
                "mobile_phone": "+44 7911 123456",
                "_owner": "agent@globex.test",
            },
        ],
        RecordType.LEAD: [
            {
                "external_id": "demo-lead-1",
                "first_name": "Homer",
                "last_name": "Simpson",
                "mobile_phone": "+44 7911 123457",
                "_owner": "agent@globex.test",
            },
        ],
    },
}


def seed_crm_demo(sender, organization, members, stdout=None, **kwargs) -> None:
    spec = DEMO.get(organization.slug)
    if not spec:
        return
    actor = next((m.user for m in members.values() if m.is_admin), None)
    created = 0
    for record_type in (
        RecordType.ACCOUNT,
        RecordType.CONTACT,
        RecordType.LEAD,
        RecordType.CASE,
        RecordType.OPPORTUNITY,
    ):
        model = model_for(record_type)
        for row in spec.get(record_type, []):
            data = {k: v for k, v in row.items() if not k.startswith("_")}
            if "_owner" in row and row["_owner"] in members:
                data["owner"] = members[row["_owner"]].user
            if "_account" in row:
                data["account"] = model_for(RecordType.ACCOUNT).objects.get(
                    organization=organization, external_id=row["_account"]
                )
            if "_contact" in row:
                data["contact"] = model_for(RecordType.CONTACT).objects.get(
                    organization=organization, external_id=row["_contact"]
                )
            if model.objects.filter(organization=organization, external_id=data["external_id"]).exists():
                continue
            services.do_create_record(organization, actor, record_type, data)
            created += 1
    if stdout is not None and created:
        stdout.write(f"  {organization.name}: {created} CRM records added")
