"""What a campaign step says to one recipient: merge fields, the opt-out line of the first message, and the
checks an admin sees before starting (brand name, opt-out language)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from templates_app.rendering import render

OPT_OUT_LINE = "Reply STOP to opt out"
# Words that already tell the person how to stop (CTIA: the first message must).
_OPT_OUT_WORDS = re.compile(
    r"\b(stop|unsubscribe|opt[\s-]?out|cancel|end|quit)\b to (opt[\s-]?out|stop|unsubscribe|end|cancel)|"
    r"\b(reply|text|txt|send)\s+(stop|unsubscribe|optout|cancel|end|quit)\b",
    re.IGNORECASE,
)


# Any {{ … }} merge field, including CSV headers with spaces ({{First Name}}), with an optional default.
_ANY_FIELD = re.compile(r"\{\{\s*([^{}|]+?)\s*(?:\|\s*default:\s*(?:\"([^\"]*)\"|'([^']*)'))?\s*\}\}")


def has_opt_out_language(body: str) -> bool:
    return bool(_OPT_OUT_WORDS.search(body or ""))


def with_opt_out(body: str) -> str:
    """The first message's body, with "Reply STOP to opt out" added unless it already says how to stop."""
    if has_opt_out_language(body):
        return body
    return f"{body.rstrip()} {OPT_OUT_LINE}." if body.strip() else f"{OPT_OUT_LINE}."


def brand_warning(first_body: str, brand: str) -> str:
    """A warning when the first message does not name the brand (carriers filter anonymous texts)."""
    if not brand.strip():
        return "Give the campaign a brand name: carriers expect the first message to say who is texting."
    if brand.strip().casefold() not in (first_body or "").casefold():
        return f"The first message does not mention “{brand.strip()}”: say who is texting in it."
    return ""


@dataclass(frozen=True)
class Composed:
    text: str
    missing: tuple[str, ...]


def compose(body: str, *, merge: dict, record=None, org=None, first: bool = False) -> Composed:
    """The step's text for one recipient: CSV merge values first (by column name, any case), then the
    record's fields; ``first`` adds the opt-out line."""
    values = {str(k).strip().casefold(): str(v) for k, v in (merge or {}).items()}
    empty: list[str] = []

    def merge_value(match: re.Match) -> str:
        name = match.group(1).strip()
        if name.casefold() not in values:
            return match.group(0)  # a record field: the renderer below fills it
        value = values[name.casefold()].strip() or (match.group(2) or match.group(3) or "")
        if not value and name not in empty:
            empty.append(name)
        return value

    partly = _ANY_FIELD.sub(merge_value, body or "")
    result = render(partly, record, org=org)
    missing = tuple(empty) + tuple(result.missing_fields)
    text = with_opt_out(result.text) if first else result.text
    return Composed(text=text, missing=missing)
