"""How fast the segment counter is: analyze() per body, for typical and worst-case bodies.

Usage: /work/main/.venv/bin/python bench/segments_bench.py   (runs ~10 s)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from messaging.segments import analyze  # noqa: E402

_REMINDER = "Hi Jane, your appointment is confirmed for Tue 10am at 12 Main St. Reply C to cancel. "
BODIES = {
    "ASCII, 172 chars": _REMINDER * 2,
    "ASCII, 1,600 chars": "x" * 1600,
    "smart quotes + emoji, 300 units": ("It’s “ready” 👍 " * 20)[:300],
    "CJK, 1,600 chars": "中" * 1600,
    "emoji ZWJ families, 1,600 units": "👨\u200d👩\u200d👧\u200d👦" * 145,
    "worst case: 1 letter + 1,599 combining marks": "e" + "\u0301" * 1599,
}


def main() -> None:
    for label, body in BODIES.items():
        body = body[:1600]
        n = 0
        start = time.perf_counter()
        while time.perf_counter() - start < 1.5:
            analyze(body)
            n += 1
        elapsed = time.perf_counter() - start
        info = analyze(body)
        print(f"{label:48s} {elapsed / n * 1e6:10.0f} µs/call  ({info.encoding}, {info.segments} segments)")


if __name__ == "__main__":
    main()
