"""Segment count as Twilio bills it (FACTS.md "Segments and media"), for ``num_segments`` and rate limits.

The sandbox needs only the count; the product's own calculator lives with the messaging core.
"""

from __future__ import annotations

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")


def count_segments(body: str) -> int:
    """1 for an empty body (Twilio bills a media-only MMS as one); GSM-7 160/153, else UCS-2 70/67."""
    if not body:
        return 1
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in body):
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in body)
        single, part = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, part = 70, 67
    return 1 if units <= single else -(-units // part)
