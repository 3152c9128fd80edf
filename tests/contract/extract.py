"""Regenerate twilio_api_v2010_subset.json from Twilio's full OpenAPI spec (run by hand, not by tests):

    python tests/contract/extract.py path/to/twilio_api_v2010.json

Keeps the operations the sandbox implements (their parameters and responses, without examples) and every
component schema they reference.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OPERATIONS = {
    "/2010-04-01/Accounts/{Sid}.json": ["get"],
    "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json": ["get"],
    "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}.json": ["get", "post"],
    "/2010-04-01/Accounts/{AccountSid}/Messages.json": ["get", "post"],
    "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json": ["get", "post", "delete"],
    "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media.json": ["get"],
    "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}.json": ["get"],
}


def strip_examples(node):
    if isinstance(node, dict):
        return {k: strip_examples(v) for k, v in node.items() if k not in ("examples", "example")}
    if isinstance(node, list):
        return [strip_examples(v) for v in node]
    return node


def refs(node, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/"):
                found.add(value.rsplit("/", 1)[1])
            else:
                refs(value, found)
    elif isinstance(node, list):
        for value in node:
            refs(value, found)


def main(source: str) -> None:
    spec = json.loads(Path(source).read_text())
    paths = {}
    for path, methods in OPERATIONS.items():
        item = spec["paths"][path]
        paths[path] = {m: strip_examples(item[m]) for m in methods}
    schemas = spec["components"]["schemas"]
    needed: set[str] = set()
    refs(paths, needed)
    while True:
        before = len(needed)
        for name in list(needed):
            refs(schemas[name], needed)
        if len(needed) == before:
            break
    subset = {
        "openapi": spec["openapi"],
        "info": {**spec["info"], "x-subset-of": "twilio_api_v2010.json (twilio/twilio-oai)"},
        "servers": spec.get("servers", []),
        "paths": paths,
        "components": {
            "securitySchemes": spec["components"].get("securitySchemes", {}),
            "schemas": {name: strip_examples(schemas[name]) for name in sorted(needed)},
        },
    }
    out = Path(__file__).with_name("twilio_api_v2010_subset.json")
    out.write_text(json.dumps(subset, indent=1, ensure_ascii=False) + "\n")
    print(f"{out}: {len(paths)} paths, {len(needed)} schemas")


if __name__ == "__main__":
    main(sys.argv[1])
