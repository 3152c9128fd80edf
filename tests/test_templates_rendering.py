"""The merge-field renderer and the body check: record, custom, agent, owner and organization fields,
defaults, and the parser under hypothesis."""

from __future__ import annotations

import datetime
import decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm.custom_fields import custom_field_keys
from templates_app.rendering import (
    COMMON,
    FIELD_RE,
    check_body,
    fields_for,
    malformed,
    parse,
    record_fields,
    render,
)
from tests.factories_crm import AccountFactory, CaseFactory, ContactFactory, LeadFactory, OpportunityFactory


@pytest.mark.django_db
def test_lead_fields_and_sender_render(alice, org_a):
    alice.first_name, alice.last_name = "Alice", "Admin"
    lead = LeadFactory(organization=org_a, first_name="Ann", last_name="Lee", company="", owner=alice)
    result = render(
        "Hi {{first_name}} ({{ full_name }}), {{sender_first_name}} here. {{company}}", lead, sender=alice
    )
    assert result.text == "Hi Ann (Ann Lee), Alice here. "
    assert result.missing_fields == ("company",) and result.unknown_fields == ()
    assert render("{{owner_name}}", lead).text == "Alice Admin"


@pytest.mark.django_db
def test_agent_owner_and_org_fields(alice, aaron, org_a):
    alice.first_name, aaron.first_name, aaron.last_name = "Alice", "Aaron", "Agent"
    lead = LeadFactory(organization=org_a, owner=aaron)
    body = "{{agent.first_name}} for {{owner.full_name}} at {{org.name}} ({{owner.email}})"
    assert render(body, lead, sender=alice).text == "Alice for Aaron Agent at Acme (aaron@acme.test)"
    # Without a record the organization comes from the caller (a template for any record).
    assert render("{{org.name}}", None, org=org_a).text == "Acme"


@pytest.mark.django_db
def test_default_stands_in_for_an_empty_field_only(org_a):
    empty = LeadFactory(organization=org_a, first_name="")
    named = LeadFactory(organization=org_a, first_name="Maria")
    body = "Hi {{first_name|default:\"there\"}}, {{ company | default: 'your company' }}!"
    assert render(body, empty).text == "Hi there, " + (empty.company or "your company") + "!"
    assert render(body, named).text.startswith("Hi Maria, ")
    assert render(body, empty).missing_fields == ()
    assert render("{{first_name}}", empty).missing_fields == ("first_name",)


@pytest.mark.django_db
def test_custom_fields_render_and_are_known_for_their_type(org_a, org_b):
    lead = LeadFactory(organization=org_a, custom_fields={"source": "open house", "budget": 450000})
    LeadFactory(organization=org_a, custom_fields={"visit_date": "May 3"})
    LeadFactory(organization=org_b, custom_fields={"secret_b": "x"})
    ContactFactory(organization=org_a, custom_fields={"vip": True})
    assert custom_field_keys(org_a.pk, "lead") == ["budget", "source", "visit_date"]
    assert custom_field_keys(org_a.pk, "contact") == ["vip"]
    known = fields_for("lead", custom_field_keys(org_a.pk, "lead"))
    assert "custom.source" in known and "custom.secret_b" not in known and "custom.vip" not in known
    result = render("From {{custom.source}}, budget {{custom.budget}}, {{custom.visit_date}}", lead)
    assert result.text == "From open house, budget 450000, "
    assert result.missing_fields == ("custom.visit_date",) and result.unknown_fields == ()


@pytest.mark.django_db
def test_custom_field_keys_ignore_records_without_an_object(org_a):
    LeadFactory(organization=org_a, custom_fields={})
    LeadFactory(organization=org_a, custom_fields=["not", "an", "object"])
    assert custom_field_keys(org_a.pk, "lead") == []


@pytest.mark.django_db
def test_values_read_as_people_write_them(org_a):
    contact = ContactFactory(organization=org_a, account=AccountFactory(organization=org_a, name="Initech"))
    assert render("{{account_name}} / {{status}} / {{allow_sms}}", contact).text == "Initech / Active / Yes"
    opportunity = OpportunityFactory(
        organization=org_a, amount=decimal.Decimal("450000"), close_date=datetime.date(2026, 3, 5)
    )
    assert render("{{amount}} by {{close_date}}", opportunity).text == "450,000.00 by March 5, 2026"


@pytest.mark.django_db
def test_unknown_fields_are_reported_not_crashed(org_a):
    account = AccountFactory(organization=org_a, name="Globex Ltd")
    result = render("Dear {{first_name}} at {{name}} {{ nope }} {{agent.shoe_size}}", account)
    assert result.text == "Dear  at Globex Ltd  "
    assert result.unknown_fields == ("first_name", "nope", "agent.shoe_size")


@pytest.mark.django_db
def test_every_standard_field_of_every_type_renders(org_a):
    records = {
        "lead": LeadFactory(organization=org_a),
        "contact": ContactFactory(organization=org_a),
        "account": AccountFactory(organization=org_a),
        "case": CaseFactory(organization=org_a),
        "opportunity": OpportunityFactory(organization=org_a),
    }
    for record_type, record in records.items():
        names = list(record_fields(record_type)) + list(COMMON)
        body = " ".join("{{" + name + "}}" for name in names)
        assert render(body, record).unknown_fields == (), record_type
    assert {"first_name", "business_phone", "home_phone", "do_not_contact", "external_id"} <= set(
        record_fields("lead")
    )
    assert "mobile_phone_e164" not in record_fields("lead") and "organization" not in record_fields("lead")
    assert {"description", "contact_name", "account_name", "team_name"} <= set(record_fields("case"))


def test_check_body_names_the_unknown_field_and_suggests_one():
    known = fields_for("lead", ["source"])
    assert check_body('Hi {{first_name|default:"x"}} from {{custom.source}} {{org.name}}', known) == []
    problems = check_body("Hi {{frist_name}} {{custom.sauce}}", known)
    assert problems[0].startswith("Unknown merge field {{frist_name}}: did you mean {{first_name}}?")
    assert "{{custom.sauce}}" in problems[1]


def test_check_body_refuses_a_malformed_field():
    problems = check_body("Hi {{first name}} and {{x|default:}}", fields_for("lead"))
    assert len(problems) == 2
    assert problems[0].startswith("{{first name}} is not a merge field")


def test_any_record_templates_know_only_the_common_fields():
    assert set(fields_for("")) == set(COMMON)
    assert check_body("{{first_name}}", fields_for(""))[0].startswith("Unknown merge field {{first_name}}")


# --- the parser, under hypothesis -----------------------------------------------------------------------

PLAIN = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=20)
NAMES = st.sampled_from(["first_name", "company", "custom.source", "agent.first_name", "org.name"])
DEFAULTS = st.none() | st.text(alphabet=st.characters(blacklist_characters="{}\"'"), max_size=10)
SPACES = st.sampled_from(["", " ", "  "])


@st.composite
def bodies(draw):
    """A body of plain text and merge fields, with what each field is and its default."""
    parts, tags = [], []
    for _ in range(draw(st.integers(0, 6))):
        parts.append(draw(PLAIN))
        name, default, pad = draw(NAMES), draw(DEFAULTS), draw(SPACES)
        suffix = "" if default is None else f'{pad}|{pad}default:{pad}"{default}"'
        parts.append("{{" + pad + name + suffix + pad + "}}")
        tags.append((name, default))
    parts.append(draw(PLAIN))
    return parts, tags


@given(bodies())
def test_parser_finds_every_field_with_its_default(case):
    parts, tags = case
    body = "".join(parts)
    assert [(t.path, t.default) for t in parse(body)] == tags
    assert malformed(body) == []


@given(bodies(), st.dictionaries(NAMES, st.text(alphabet=st.characters(blacklist_characters="{}"))))
def test_render_replaces_each_field_by_its_value_or_default(case, values):
    from django.contrib.auth import get_user_model

    from crm.models import Lead
    from tenancy.models import Organization

    parts, tags = case
    # Unsaved objects: the renderer only reads attributes.
    lead = Lead(
        first_name=values.get("first_name", ""),
        company=values.get("company", ""),
        custom_fields={"source": values["custom.source"]} if "custom.source" in values else {},
    )
    agent = get_user_model()(first_name=values.get("agent.first_name", ""))
    org = Organization(name=values.get("org.name", ""))
    result = render("".join(parts), lead, sender=agent, org=org)
    expected = []
    for index, part in enumerate(parts):
        if index % 2 == 0:
            expected.append(part)
        else:
            name, default = tags[index // 2]
            value = values.get(name, "")
            if name == "agent.first_name":
                value = value.strip()  # people's names are trimmed
            expected.append(value if value.strip() or default is None else default)
    assert result.text == "".join(expected)
    assert result.unknown_fields == ()


@given(st.text(max_size=300))
def test_text_without_merge_fields_is_unchanged(text):
    if "{{" not in text:
        assert render(text, None).text == text


@given(
    st.lists(
        st.sampled_from(
            ["{{", "}}", "{{x}}", "{{ first_name }}", '|default:"a"', "{", "}", "a", " ", ".", "é", "👍"]
        ),
        max_size=40,
    )
)
def test_renderer_never_raises_and_leaves_no_field_behind(parts):
    body = "".join(parts)
    result = render(body, None)
    # Without a record every record field is unknown: each is reported once and rendered as nothing (or
    # its default); what is not a field stays as written.
    named = [t.path for t in parse(body)]
    assert result.unknown_fields == tuple(dict.fromkeys(named))
    assert result.text == FIELD_RE.sub(lambda m: (m["dq"] if m["dq"] is not None else m["sq"]) or "", body)


@given(bodies(), st.sampled_from(["frist_name", "custom.sauce", "agent.shoe_size", "orgname"]))
def test_check_body_passes_known_fields_and_names_an_added_unknown_one(case, unknown):
    parts, _tags = case
    known = fields_for("lead", ["source"])
    body = "".join(parts)
    assert check_body(body, known) == []
    problems = check_body(body + " {{" + unknown + "}}", known)
    assert len(problems) == 1 and problems[0].startswith("Unknown merge field {{" + unknown + "}}")
