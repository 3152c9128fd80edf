"""What an automation may say: its trigger, conditions and steps, checked on every save.

Each check raises ``DefinitionError`` naming the part at fault ("steps[2].template") and what to fix, so the
API and the settings page show it as is. Pure: the caller passes what it must look up (the organization's
template and number ids, its members).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from crm.models import RecordType

TRIGGERS = {
    "record_created": "A record is created",
    "field_changed": "A field changes",
    "owner_changed": "The owner changes",
    "status_changed": "The status changes",
    "date_reached": "A date is reached",
    "inbound_keyword": "Someone texts a keyword",
    "conversation_idle": "A conversation goes quiet",
    "manual": "Started from the API or a button",
}
OPERATORS = {
    "equals": "equals",
    "not_equals": "does not equal",
    "in": "is one of",
    "empty": "is empty",
    "not_empty": "is not empty",
    "contains": "contains",
    "before": "is before",
    "after": "is after",
}
STEP_TYPES = {
    "send_template": "Send a template",
    "wait": "Wait",
    "branch": "If they replied",
    "assign": "Assign the conversation",
    "update_field": "Update a field",
    "notify": "Notify a user",
}
WAIT_KINDS = ("delay", "until_date", "business_hours", "reply")
SENDERS = ("owner", "last_conversation", "number")
BRANCH_ACTIONS = ("continue", "stop")
MAX_STEPS = 30
MAX_RULES = 30
MAX_DELAY_MINUTES = 366 * 24 * 60
MAX_OFFSET_MINUTES = 366 * 24 * 60
MAX_IDLE_HOURS = 24 * 90
# A notification's text holds 300 characters; the automation's name goes before the message.
MAX_NOTE_LENGTH = 240


class DefinitionError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Context:
    """What the checks need to know about the organization."""

    template_ids: Collection[int] = field(default_factory=set)
    number_ids: Collection[int] = field(default_factory=set)
    user_ids: Collection[int] = field(default_factory=set)
    team_ids: Collection[int] = field(default_factory=set)


def _int(value, where: str, *, minimum: int = 0, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DefinitionError(where, "Enter a whole number.")
    if not minimum <= value <= maximum:
        raise DefinitionError(where, f"Enter a number from {minimum} to {maximum}.")
    return value


def _text(value, where: str, *, required: bool = True, max_length: int = 200) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise DefinitionError(where, "This is required." if required else "Enter text.")
    if len(value) > max_length:
        raise DefinitionError(where, f"At most {max_length} characters.")
    return value.strip()


def _record_type(value, where: str, *, required: bool) -> str:
    if not value and not required:
        return ""
    if value not in RecordType.values:
        raise DefinitionError(where, f"Choose one of: {', '.join(RecordType.values)}.")
    return value


def check_trigger(trigger, ctx: Context) -> dict:
    if not isinstance(trigger, dict):
        raise DefinitionError("trigger", 'Give the trigger as an object, e.g. {"type": "record_created"}.')
    kind = trigger.get("type")
    if kind not in TRIGGERS:
        raise DefinitionError("trigger.type", f"Choose one of: {', '.join(TRIGGERS)}.")
    out: dict = {"type": kind}
    if kind in ("record_created", "field_changed", "owner_changed", "status_changed", "date_reached"):
        out["record_type"] = _record_type(
            trigger.get("record_type"), "trigger.record_type", required=kind == "date_reached"
        )
    if kind == "field_changed":
        out["field"] = _text(trigger.get("field"), "trigger.field", max_length=60)
    if kind in ("field_changed", "status_changed") and trigger.get("to") not in (None, ""):
        out["to"] = _text(str(trigger["to"]), "trigger.to")
    if kind == "date_reached":
        out["field"] = _text(trigger.get("field"), "trigger.field", max_length=60)
        out["offset_minutes"] = _int(
            trigger.get("offset_minutes", 0),
            "trigger.offset_minutes",
            minimum=-MAX_OFFSET_MINUTES,
            maximum=MAX_OFFSET_MINUTES,
        )
        at = trigger.get("at_time")
        if at not in (None, ""):
            out["at_time"] = _clock(at, "trigger.at_time")
    if kind == "inbound_keyword":
        keyword = _text(trigger.get("keyword"), "trigger.keyword", max_length=40)
        if " " in keyword:
            raise DefinitionError("trigger.keyword", "A keyword is one word.")
        out["keyword"] = keyword.upper()
        number = trigger.get("number")
        if number not in (None, ""):
            if number not in ctx.number_ids:
                raise DefinitionError("trigger.number", "Choose one of your organization's numbers.")
            out["number"] = number
    if kind == "conversation_idle":
        out["hours"] = _int(trigger.get("hours"), "trigger.hours", minimum=1, maximum=MAX_IDLE_HOURS)
        waiting_on = trigger.get("waiting_on", "customer")
        if waiting_on not in ("customer", "agent"):
            raise DefinitionError("trigger.waiting_on", "Choose customer or agent.")
        out["waiting_on"] = waiting_on
    return out


def _clock(value, where: str) -> str:
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        raise DefinitionError(where, "Give a time of day as HH:MM, e.g. 10:00.")
    hours, minutes = value[:2], value[3:]
    if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
        raise DefinitionError(where, "Give a time of day as HH:MM, e.g. 10:00.")
    return value


def check_conditions(conditions) -> dict:
    if conditions in (None, {}, ""):
        return {"match": "all", "rules": []}
    if not isinstance(conditions, dict):
        raise DefinitionError("conditions", 'Give conditions as {"match": "all", "rules": [...]}.')
    match = conditions.get("match", "all")
    if match not in ("all", "any"):
        raise DefinitionError("conditions.match", "Choose all or any.")
    rules = conditions.get("rules", [])
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        raise DefinitionError("conditions.rules", f"Give a list of at most {MAX_RULES} rules.")
    out = []
    for i, rule in enumerate(rules):
        where = f"conditions.rules[{i}]"
        if not isinstance(rule, dict):
            raise DefinitionError(where, 'Give each rule as {"field": ..., "op": ..., "value": ...}.')
        name = _text(rule.get("field"), f"{where}.field", max_length=60)
        op = rule.get("op")
        if op not in OPERATORS:
            raise DefinitionError(f"{where}.op", f"Choose one of: {', '.join(OPERATORS)}.")
        value = rule.get("value")
        if op == "in":
            if not isinstance(value, list) or not value:
                raise DefinitionError(f"{where}.value", "Give a list of values.")
            value = [str(v) for v in value]
        elif op not in ("empty", "not_empty"):
            value = _text("" if value is None else str(value), f"{where}.value")
        else:
            value = None
        out.append({"field": name, "op": op, "value": value})
    return {"match": match, "rules": out}


def check_steps(steps, ctx: Context) -> list[dict]:
    if not isinstance(steps, list) or not steps:
        raise DefinitionError("steps", "Add at least one step.")
    if len(steps) > MAX_STEPS:
        raise DefinitionError("steps", f"At most {MAX_STEPS} steps.")
    out = []
    for i, step in enumerate(steps):
        where = f"steps[{i}]"
        if not isinstance(step, dict) or step.get("type") not in STEP_TYPES:
            raise DefinitionError(f"{where}.type", f"Choose one of: {', '.join(STEP_TYPES)}.")
        out.append(_check_step(step, where, ctx))
    return out


def _user(value, where: str, ctx: Context):
    if value == "owner":
        return "owner"
    if value not in ctx.user_ids:
        raise DefinitionError(where, 'Choose a member of your organization, or "owner".')
    return value


def _check_step(step: dict, where: str, ctx: Context) -> dict:
    kind = step["type"]
    out: dict = {"type": kind}
    if kind == "send_template":
        if step.get("template") not in ctx.template_ids:
            raise DefinitionError(f"{where}.template", "Choose one of your organization's templates.")
        out["template"] = step["template"]
        sender = step.get("from", "last_conversation")
        if sender not in SENDERS:
            raise DefinitionError(f"{where}.from", f"Choose one of: {', '.join(SENDERS)}.")
        out["from"] = sender
        if sender == "number":
            if step.get("number") not in ctx.number_ids:
                raise DefinitionError(f"{where}.number", "Choose one of your organization's numbers.")
            out["number"] = step["number"]
    elif kind == "wait":
        wait = step.get("until", "delay")
        if wait not in WAIT_KINDS:
            raise DefinitionError(f"{where}.until", f"Choose one of: {', '.join(WAIT_KINDS)}.")
        out["until"] = wait
        if wait in ("delay", "reply"):
            out["minutes"] = _int(
                step.get("minutes"), f"{where}.minutes", minimum=1, maximum=MAX_DELAY_MINUTES
            )
        if wait == "until_date":
            out["field"] = _text(step.get("field"), f"{where}.field", max_length=60)
    elif kind == "branch":
        for arm in ("if_replied", "if_not_replied"):
            action = step.get(arm, "continue")
            if action not in BRANCH_ACTIONS:
                raise DefinitionError(f"{where}.{arm}", "Choose continue or stop.")
            out[arm] = action
    elif kind == "assign":
        out["user"] = _user(step.get("user"), f"{where}.user", ctx)
    elif kind == "update_field":
        out["field"] = _text(step.get("field"), f"{where}.field", max_length=60)
        out["value"] = _text(
            "" if step.get("value") is None else str(step.get("value")),
            f"{where}.value",
            required=False,
            max_length=500,
        )
    elif kind == "notify":
        # Exactly one of a member (or "owner") and a team.
        team = step.get("team")
        if team not in (None, ""):
            if step.get("user") not in (None, ""):
                raise DefinitionError(f"{where}.team", "Notify a member or a team, not both.")
            if team not in ctx.team_ids:
                raise DefinitionError(f"{where}.team", "Choose one of your organization's teams.")
            out["team"] = team
        else:
            out["user"] = _user(step.get("user"), f"{where}.user", ctx)
        out["text"] = _text(step.get("text"), f"{where}.text", max_length=MAX_NOTE_LENGTH)
    return out


def notify_texts(steps: list[dict]) -> list[tuple[int, str]]:
    """(index, text) of every notify step: their merge fields are checked against the trigger's record
    type by the caller, which knows the organization's custom fields."""
    return [(i, s["text"]) for i, s in enumerate(steps) if s.get("type") == "notify"]


def describe_step(step: dict) -> str:
    """One line in words, for the run log and the settings page."""
    kind = step.get("type")
    if kind == "wait":
        until = step.get("until")
        if until == "delay":
            return f"Wait {_duration(step['minutes'])}"
        if until == "reply":
            return f"Wait for a reply (at most {_duration(step['minutes'])})"
        if until == "business_hours":
            return "Wait until their sending hours"
        return f"Wait until {step.get('field')}"
    if kind == "branch":
        return f"If they replied: {step['if_replied']}; if not: {step['if_not_replied']}"
    if kind == "notify":
        if step.get("team") not in (None, ""):
            return "Notify a team"
        return "Notify the record's owner" if step.get("user") == "owner" else "Notify a member"
    return STEP_TYPES.get(kind, kind)


def _duration(minutes: int) -> str:
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return f"{days} day{'s' if days != 1 else ''}"
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
