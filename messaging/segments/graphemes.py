"""Grapheme-cluster splitting exactly as the npm package grapheme-splitter 1.0.4 does it.

Twilio's segment calculator (npm `sms-segments-calculator`) never splits a grapheme cluster across two
segments, so the segment count of a UCS-2 message depends on where the clusters are. To agree with it on
every input we port that package's algorithm line by line (Unicode 10 rules, including its quirks) and work
on UTF-16 code units like JavaScript does, rather than using a newer Unicode library that groups some emoji
sequences differently. Keep this in step with tools/segments/ (the vectors test proves it).
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_right
from functools import lru_cache

from messaging.segments.grapheme_break import (
    CONTROL,
    CR,
    E_BASE,
    E_BASE_GAZ,
    E_MODIFIER,
    EXTEND,
    GLUE_AFTER_ZWJ,
    LF,
    LV,
    LVT,
    OTHER,
    PREPEND,
    RANGES,
    REGIONAL_INDICATOR,
    SPACINGMARK,
    ZWJ,
    L,
    T,
    V,
)

_STARTS = [start for start, _end, _prop in RANGES]

# Break types of the original (only "not break" is falsy).
_NOT_BREAK = 0
_BREAK_START = 1
_BREAK = 2
_BREAK_LAST_REGIONAL = 3
_BREAK_PENULTIMATE_REGIONAL = 4


def utf16_units(text: str) -> array:
    """The UTF-16 code units of ``text`` (lone surrogates kept, as in a JavaScript string)."""
    units = array("H")
    units.frombytes(text.encode("utf-16-le", "surrogatepass"))
    if sys.byteorder == "big":
        units.byteswap()
    return units


def units_to_str(units) -> str:
    data = array("H", units)
    if sys.byteorder == "big":
        data.byteswap()
    return data.tobytes().decode("utf-16-le", "surrogatepass")


@lru_cache(maxsize=4096)
def break_property(code: int) -> int:
    i = bisect_right(_STARTS, code) - 1
    if i >= 0:
        start, end, prop = RANGES[i]
        if start <= code <= end:
            return prop
    return OTHER


def _is_surrogate_pair(units, pos: int) -> bool:
    return 0 <= pos < len(units) - 1 and 0xD800 <= units[pos] <= 0xDBFF and 0xDC00 <= units[pos + 1] <= 0xDFFF


def _code_point_at(units, idx: int) -> int:
    code = units[idx]
    if 0xD800 <= code <= 0xDBFF and idx < len(units) - 1:
        low = units[idx + 1]
        if 0xDC00 <= low <= 0xDFFF:
            return (code - 0xD800) * 0x400 + (low - 0xDC00) + 0x10000
        return code
    if 0xDC00 <= code <= 0xDFFF and idx >= 1:
        high = units[idx - 1]
        if 0xD800 <= high <= 0xDBFF:
            return (high - 0xD800) * 0x400 + (code - 0xDC00) + 0x10000
        return code
    return code


def _last_index(seq: list[int], value: int) -> int:
    if value not in seq:
        return -1
    return len(seq) - 1 - seq[::-1].index(value)


def _should_break(start: int, mid: list[int], end: int) -> int:
    if not mid and start == OTHER and end == OTHER:
        return _BREAK_START  # what every rule below comes to for two ordinary characters (the common case)
    every = [start, *mid, end]
    previous = every[-2]
    nxt = end

    # Lookahead terminator for GB10: (E_Base | EBG) Extend* × E_Modifier
    e_modifier_index = _last_index(every, E_MODIFIER)
    if (
        e_modifier_index > 1
        and all(c == EXTEND for c in every[1:e_modifier_index])
        and start not in (EXTEND, E_BASE, E_BASE_GAZ)
    ):
        return _BREAK

    # Lookahead terminator for GB12/GB13 (regional indicator pairs).
    ri_index = _last_index(every, REGIONAL_INDICATOR)
    if (
        ri_index > 0
        and all(c == REGIONAL_INDICATOR for c in every[1:ri_index])
        and previous not in (PREPEND, REGIONAL_INDICATOR)
    ):
        if every.count(REGIONAL_INDICATOR) % 2 == 1:
            return _BREAK_LAST_REGIONAL
        return _BREAK_PENULTIMATE_REGIONAL

    if previous == CR and nxt == LF:  # GB3
        return _NOT_BREAK
    if previous in (CONTROL, CR, LF):  # GB4
        if nxt == E_MODIFIER and all(c == EXTEND for c in mid):
            return _BREAK
        return _BREAK_START
    if nxt in (CONTROL, CR, LF):  # GB5
        return _BREAK_START
    if previous == L and nxt in (L, V, LV, LVT):  # GB6
        return _NOT_BREAK
    if previous in (LV, V) and nxt in (V, T):  # GB7
        return _NOT_BREAK
    if previous in (LVT, T) and nxt == T:  # GB8
        return _NOT_BREAK
    if nxt in (EXTEND, ZWJ):  # GB9
        return _NOT_BREAK
    if nxt == SPACINGMARK:  # GB9a
        return _NOT_BREAK
    if previous == PREPEND:  # GB9b
        return _NOT_BREAK

    # GB10, with the original's index arithmetic (JavaScript's every[-1] is undefined, never a match).
    previous_non_extend = _last_index(every, EXTEND) - 1 if EXTEND in every else len(every) - 2
    if (
        previous_non_extend >= 0
        and every[previous_non_extend] in (E_BASE, E_BASE_GAZ)
        and all(c == EXTEND for c in every[previous_non_extend + 1 : -1])
        and nxt == E_MODIFIER
    ):
        return _NOT_BREAK

    if previous == ZWJ and nxt in (GLUE_AFTER_ZWJ, E_BASE_GAZ):  # GB11
        return _NOT_BREAK

    if REGIONAL_INDICATOR in mid:  # GB12/GB13
        return _BREAK
    if previous == REGIONAL_INDICATOR and nxt == REGIONAL_INDICATOR:
        return _NOT_BREAK

    return _BREAK_START  # GB999


def _next_break(units, index: int) -> int:
    n = len(units)
    if index >= n - 1:
        return n
    prev = break_property(_code_point_at(units, index))
    mid: list[int] = []
    for i in range(index + 1, n):
        if _is_surrogate_pair(units, i - 1):  # the low half of a pair already looked at
            continue
        nxt = break_property(_code_point_at(units, i))
        if _should_break(prev, mid, nxt):
            return i
        mid.append(nxt)
    return n


def split_graphemes(units) -> list[tuple[int, int]]:
    """(start, end) unit offsets of each grapheme cluster; CR LF counts as two, as the calculator does."""
    bounds: list[tuple[int, int]] = []
    index = 0
    n = len(units)
    while index < n:
        brk = _next_break(units, index)
        if brk - index == 2 and units[index] == 0x0D and units[index + 1] == 0x0A:
            bounds.append((index, index + 1))
            bounds.append((index + 1, brk))
        else:
            bounds.append((index, brk))
        index = brk
    return bounds
