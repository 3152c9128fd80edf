"""Logging filter that keeps secrets out of log lines."""

from __future__ import annotations

import logging
import re

# Twilio auth tokens are 32 hex chars; our API tokens start with "qs_"; Basic auth headers carry both.
_PATTERNS = [
    (re.compile(r"(?i)(auth[_ ]?token['\"]?\s*[:=]\s*['\"]?)[^\s'\",&]+"), r"\1[redacted]"),
    (
        re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(?:basic|token|bearer)\s+)[^\s'\"]+"),
        r"\1[redacted]",
    ),
    (re.compile(r"\bqs_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{20,}"), "qs_[redacted]"),
    # Embed launch tokens (qsl.<claims>.<signature>) and embed session keys (qse_…): docs/embed.md.
    (re.compile(r"\bqsl\.[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}"), "qsl.[redacted]"),
    (re.compile(r"\bqse_[A-Za-z0-9_-]{20,}"), "qse_[redacted]"),
    (re.compile(r"(?i)(signed_request=)[^\s&'\"]+"), r"\1[redacted]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
