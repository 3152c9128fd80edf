"""The OpenAPI schema's finishing touches, in one place (a drf-spectacular postprocessing hook):

* every operation sits under a tag naming its area (``TAGS``: the first path segment after ``/api/v1/``
  decides, unless the view named its own tag);
* an integer id in a path says the range the server takes (1 … 2⁶³−1), like ids in payloads and filters;
* a nullable nested object (``{"allOf": [{"$ref": …}], "nullable": true}``, which OpenAPI 3.0 validators
  read as "never null": ``nullable`` does not reach into the reference) becomes "the object, or null".
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema

from quicksend.bounded_ids import ID_SCHEMA

API_PREFIX = "/api/v1/"

# Tag → (description, first path segments under /api/v1/). The order is the order of the documentation.
TAGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Organization": (
        "The caller, the organization's members, invitations and teams.",
        ("me", "members", "invitations", "teams"),
    ),
    "API tokens": ("Your API tokens (`Authorization: Token <key>`).", ("tokens",)),
    "Audit log": ("Who did what to which object, and when (admins).", ("audit-log",)),
    "Leads": ("CRM leads.", ("leads",)),
    "Contacts": ("CRM contacts.", ("contacts",)),
    "Accounts": ("CRM accounts (companies).", ("accounts",)),
    "Cases": ("CRM cases.", ("cases",)),
    "Opportunities": ("CRM opportunities.", ("opportunities",)),
    "CRM settings": (
        "Record types (which phone field is texted, match priority) and phone-number lookups.",
        ("record-types", "phone-matches"),
    ),
    "Imports": ("CSV imports of leads and contacts.", ("imports",)),
    "Conversations": (
        "The shared inbox: conversations, their threads and actions, and history sync.",
        ("conversations", "history-sync"),
    ),
    "Messages": (
        'Send a message, preview it, its media, and "My Messages" (list and CSV).',
        ("messages", "media"),
    ),
    "Texting": (
        "What a record page's texting widget needs: the person, numbers, consent, threads; your composer "
        "settings.",
        ("texting", "me/composer-settings"),
    ),
    "Consent": ("Opt-outs and opt-ins of customer numbers.", ("consent",)),
    "Notifications": ("Your inbox notifications.", ("notifications",)),
    "Inbox settings": ("Session and idle timeouts, auto-archive, who sees what.", ("inbox-settings",)),
    "Twilio accounts": ("Connect, validate and disconnect Twilio accounts (admins).", ("twilio-accounts",)),
    "Numbers": ("The organization's Twilio numbers, their labels and assignments.", ("numbers",)),
    "Messaging settings": (
        "The default sender (the organization's and your own) and who may use which number.",
        ("messaging-settings", "me/default-number"),
    ),
    "Templates": ("Message templates with merge fields.", ("templates",)),
    "Automations": (
        "Triggers, conditions and steps that text records; their runs (admins).",
        ("automations",),
    ),
    "Campaigns": (
        "Drip campaigns: steps, audience (CSV, CRM filter, records), start/pause/resume/cancel, pre-flight, "
        "results; numbers' own send rates; keyword opt-ins (admins).",
        ("campaigns", "campaign-sender-rates", "keyword-optins"),
    ),
    "Embedding": (
        "The record widget inside a CRM: launch tokens (an admin's API token, or a CRM's signed request), "
        "their exchange for an embed session, and the embed page's record (docs/embed.md).",
        ("embed",),
    ),
}

# A path whose first segments name a tag; longest first, so ``me/default-number`` wins over ``me``.
_TAG_BY_PREFIX = sorted(
    ((prefix, tag) for tag, (_, prefixes) in TAGS.items() for prefix in prefixes),
    key=lambda item: -len(item[0]),
)
# Path ids that are not integers, whatever the model's key: they also take a name or a Twilio SID.
_TEXT_IDS = {
    "/api/v1/record-types/{id}": "The record type's id or its name (`lead`, `contact`, …).",
    "/api/v1/twilio-accounts/{id}": "The account's id or its Account SID (`AC…`).",
}


def tag_for(path: str) -> str | None:
    """The area tag of an API path (``/api/v1/conversations/{id}`` → ``Conversations``), or None."""
    if not path.startswith(API_PREFIX):
        return None
    rest = path[len(API_PREFIX) :]
    for prefix, tag in _TAG_BY_PREFIX:
        if rest == prefix or rest.startswith(prefix + "/"):
            return tag
    return None


def _null_or_object(schema) -> None:
    """Rewrite nullable single-reference ``allOf`` properties, in place, all the way down."""
    if isinstance(schema, list):
        for item in schema:
            _null_or_object(item)
        return
    if not isinstance(schema, dict):
        return
    for key, value in list(schema.items()):
        if (
            isinstance(value, dict)
            and value.get("nullable") is True
            and isinstance(value.get("allOf"), list)
            and len(value["allOf"]) == 1
            and "$ref" in value["allOf"][0]
        ):
            rest = {k: v for k, v in value.items() if k not in ("allOf", "nullable")}
            schema[key] = {
                **rest,
                "oneOf": [value["allOf"][0], {"type": "object", "nullable": True, "enum": [None]}],
            }
        else:
            _null_or_object(value)


def postprocess(result: dict, generator, request, public) -> dict:
    """drf-spectacular ``POSTPROCESSING_HOOKS`` entry: tags by area, bounded path ids."""
    used: set[str] = set()
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            tag = tag_for(path)
            # The default tag is the path's first segment ("v1" here); a view's own tag is kept.
            if tag and operation.get("tags") in (None, [], ["v1"]):
                operation["tags"] = [tag]
            used.update(operation.get("tags", []))
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "path" or parameter.get("name") not in ("id", "pk"):
                    continue
                if path in _TEXT_IDS:
                    parameter["schema"] = {"type": "string", "minLength": 1, "maxLength": 64}
                    parameter["description"] = _TEXT_IDS[path]
                elif parameter.get("schema", {}).get("type") == "integer":
                    parameter["schema"] = dict(ID_SCHEMA)
    for component in result.get("components", {}).get("schemas", {}).values():
        _null_or_object(component)
    result["tags"] = [
        {"name": tag, "description": description} for tag, (description, _) in TAGS.items() if tag in used
    ] + [{"name": tag} for tag in sorted(used - set(TAGS))]
    return result


class PageObjectSchema(AutoSchema):
    """The schema of a view whose ``list`` answers one object (a page: ``results`` and a cursor) rather than
    a bare array, which drf-spectacular would otherwise document as an array of pages."""

    def _is_list_view(self, serializer=None) -> bool:
        if getattr(self.view, "action", None) == "list":
            return False
        return super()._is_list_view(serializer)
