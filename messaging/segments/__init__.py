"""The one SMS segment counter: encoding, segments, characters used and left.

It agrees with Twilio's own calculator, the npm package ``sms-segments-calculator`` 1.3.0
(TwilioDevEd/message-segment-calculator), on every input: tests/test_segments.py replays thousands of vectors
generated from that package by tools/segments/gen_vectors.js. The rules, as that package applies them:

- A message is GSM-7 when every character is in the GSM-7 tables (extension characters ``^{}\\[~]|€`` and
  form feed take two septets); anything else makes the whole message UCS-2 (UTF-16 code units, so most
  emoji take two).
- A segment holds 140 bytes: 160 septets or 70 UTF-16 units alone; once a message needs a second segment
  each segment gives 6 bytes to the concatenation header, leaving 153 septets or 67 units.
- A character is never split across segments: a two-septet extension character or a surrogate pair that
  does not fit starts the next segment, and so does a whole grapheme cluster (an emoji ZWJ sequence, a
  letter with its combining marks, a flag). Clusters are found with the same (Unicode 10) rules as the
  package uses, see ``messaging.segments.graphemes``.
- CR LF counts as two characters.
- An empty body still counts as one segment.
"""

from __future__ import annotations

from dataclasses import dataclass

from messaging.segments.graphemes import split_graphemes, units_to_str, utf16_units
from messaging.segments.gsm_tables import GSM7, GSM7_EXTENSION, SMART_ENCODING

GSM_7 = "GSM-7"
UCS_2 = "UCS-2"

MAX_BODY_CHARACTERS = 1600  # Twilio refuses longer bodies (21617)


def body_too_long(length: int | None = None) -> str:
    """The plain-words refusal of a body over ``MAX_BODY_CHARACTERS`` (with its length when known)."""
    limit = f"A message can be at most {MAX_BODY_CHARACTERS:,} characters"
    return f"{limit}; this one has {length:,}." if length is not None else f"{limit}."


_SEGMENT_BITS = 140 * 8
_HEADER_BITS = 6 * 8
_GSM_UNIT_BITS = 7
_UCS_UNIT_BITS = 16

SINGLE_SEGMENT_LIMIT = {GSM_7: _SEGMENT_BITS // _GSM_UNIT_BITS, UCS_2: _SEGMENT_BITS // _UCS_UNIT_BITS}
MULTI_SEGMENT_LIMIT = {
    GSM_7: (_SEGMENT_BITS - _HEADER_BITS) // _GSM_UNIT_BITS,
    UCS_2: (_SEGMENT_BITS - _HEADER_BITS) // _UCS_UNIT_BITS,
}

_GSM7_CODES = frozenset(ord(c) for c in GSM7)


@dataclass(frozen=True)
class OffendingCharacter:
    """A character (grapheme cluster) that forces UCS-2, with the GSM-7 text to use instead.

    ``replacement`` is None when there is no good GSM-7 stand-in (emoji, most non-Latin scripts) and ""
    when the character is invisible and can simply be removed (zero-width space, word joiner).
    """

    char: str
    replacement: str | None
    count: int


@dataclass(frozen=True)
class SegmentInfo:
    """What a message body costs to send as SMS.

    ``characters`` and ``characters_left`` are in units of the encoding: septets for GSM-7 (an extension
    character counts 2), UTF-16 code units for UCS-2 (most emoji count 2).
    """

    body: str
    encoding: str  # "GSM-7" or "UCS-2"
    segments: int
    characters: int
    characters_left: int  # before another segment starts (0 when the last segment is full)
    segment_limit: int  # units per segment for this message: 160/70 alone, 153/67 when split
    single_segment_limit: int  # 160 or 70
    multi_segment_limit: int  # 153 or 67
    segment_characters: tuple[int, ...]  # units in each segment
    offending_characters: tuple[OffendingCharacter, ...]

    @property
    def is_gsm7(self) -> bool:
        return self.encoding == GSM_7


class _Segment:
    __slots__ = ("header", "sizes", "used")

    def __init__(self, header: bool) -> None:
        self.header = header
        self.sizes: list[int] = []
        self.used = 0

    def push(self, size: int) -> None:
        self.sizes.append(size)
        self.used += size

    def free_bits(self) -> int:
        return _SEGMENT_BITS - (_HEADER_BITS if self.header else 0) - self.used

    def add_header(self) -> list[int]:
        """Make room for the concatenation header; return the characters that no longer fit."""
        self.header = True
        left_over: list[int] = []
        while self.free_bits() < 0:
            size = self.sizes.pop()
            self.used -= size
            left_over.insert(0, size)
        return left_over


def _build_segments(sizes: list[int]) -> list[_Segment]:
    # The package's algorithm, step by step: fill the current segment; when a character does not fit, open
    # a new segment (with header) and, the first time, give the first segment its header too, moving its
    # overflowing tail into the new segment. A character is never split.
    segments = [_Segment(header=False)]
    current = segments[0]
    for size in sizes:
        if current.free_bits() < size:
            previous = current
            current = _Segment(header=True)
            segments.append(current)
            if len(segments) == 2:
                for moved in previous.add_header():
                    current.push(moved)
        current.push(size)
    return segments


def _gsm_replacement(char: str) -> str | None:
    replaced = "".join(SMART_ENCODING.get(c, c) for c in char)
    if all(ord(c) in _GSM7_CODES for c in replaced):
        return replaced
    return None


def analyze(body: str) -> SegmentInfo:
    """Encoding, segment count, characters used and left, and the characters that forced UCS-2."""
    units = utf16_units(body)
    if _GSM7_CODES.issuperset(units):
        # GSM-7 characters never join into clusters (CR LF is counted as two anyway): skip the splitter.
        graphemes = [(i, i + 1) for i in range(len(units))]
    else:
        graphemes = split_graphemes(units)
    # A grapheme is GSM-7 only when it is a single code unit in the table (as in the package).
    gsm_flags = [end - start == 1 and units[start] in _GSM7_CODES for start, end in graphemes]
    encoding = GSM_7 if all(gsm_flags) else UCS_2

    if encoding == GSM_7:
        unit_bits = _GSM_UNIT_BITS
        sizes = [
            2 * _GSM_UNIT_BITS if chr(units[start]) in GSM7_EXTENSION else _GSM_UNIT_BITS
            for start, _end in graphemes
        ]
    else:
        unit_bits = _UCS_UNIT_BITS
        sizes = [(end - start) * _UCS_UNIT_BITS for start, end in graphemes]

    segments = _build_segments(sizes)
    segment_characters = tuple(seg.used // unit_bits for seg in segments)

    offending: dict[str, int] = {}
    if encoding == UCS_2:
        for (start, end), is_gsm in zip(graphemes, gsm_flags, strict=True):
            if not is_gsm:
                char = units_to_str(units[start:end])
                offending[char] = offending.get(char, 0) + 1

    count = len(segments)
    return SegmentInfo(
        body=body,
        encoding=encoding,
        segments=count,
        characters=sum(segment_characters),
        characters_left=max(0, segments[-1].free_bits() // unit_bits),
        segment_limit=SINGLE_SEGMENT_LIMIT[encoding] if count == 1 else MULTI_SEGMENT_LIMIT[encoding],
        single_segment_limit=SINGLE_SEGMENT_LIMIT[encoding],
        multi_segment_limit=MULTI_SEGMENT_LIMIT[encoding],
        segment_characters=segment_characters,
        offending_characters=tuple(
            OffendingCharacter(char=char, replacement=_gsm_replacement(char), count=n)
            for char, n in offending.items()
        ),
    )


def apply_gsm_replacements(body: str) -> str:
    """Replace every character that has a GSM-7 stand-in (smart quotes, dashes, ellipsis, odd spaces…).

    This is Twilio's Smart Encoding table (as the npm calculator emulates it), except that wide spaces
    become one space rather than two. Characters with no stand-in (emoji, other scripts) are kept.
    """
    replaced = "".join(SMART_ENCODING.get(c, c) for c in body)
    # Removing an invisible character can bring two halves of a surrogate pair together: join them into
    # one character, as a UTF-16 string would.
    return units_to_str(utf16_units(replaced))
