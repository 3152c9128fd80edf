"""The segment counter agrees with Twilio's own calculator (npm sms-segments-calculator) on every vector."""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.segments import GSM_7, UCS_2, SegmentInfo, analyze, apply_gsm_replacements
from messaging.segments.gsm_tables import (
    _ONE_SPACE_INSTEAD_OF_TWO,
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    SMART_ENCODING,
)

VECTORS_FILE = Path(__file__).parent / "data" / "segment_vectors.json"


@cache
def _data() -> dict:
    return json.loads(VECTORS_FILE.read_text("utf-8"))


@cache
def _analyzed() -> list[tuple[dict, SegmentInfo]]:
    return [(v, analyze(v["body"])) for v in _data()["vectors"]]


def test_vectors_come_from_the_pinned_calculator_and_cover_the_hard_cases():
    data = _data()
    assert data["package"] == "sms-segments-calculator@1.3.0"
    vectors = data["vectors"]
    assert len(vectors) > 4000
    bodies = [v["body"] for v in vectors]
    assert any("\U0001f468\u200d\U0001f469" in b for b in bodies)  # ZWJ sequences
    assert any(v["encoding"] == UCS_2 and v["segments"] > 10 for v in vectors)
    assert any(v["encoding"] == GSM_7 and v["segments"] > 10 for v in vectors)
    assert {len(b) for b in bodies} >= {0, 70, 71, 134, 135, 153, 154, 160, 161, 306, 307}


def test_every_vector_agrees_with_twilios_calculator():
    mismatches = []
    for v, info in _analyzed():
        expected = {"encoding": v["encoding"], "segments": v["segments"], "per_segment": v["segment_units"]}
        got = {
            "encoding": info.encoding,
            "segments": info.segments,
            "per_segment": list(info.segment_characters),
        }
        if got != expected:
            mismatches.append((v["body"][:60], got, expected))
    assert mismatches == []


def test_every_vector_counts_characters_in_encoding_units():
    for v, info in _analyzed():
        if v["encoding"] == GSM_7:
            # The calculator's own character count is in septets for GSM-7 ...
            assert info.characters == v["characters"], v["body"][:60]
        else:
            # ... and in grapheme clusters for UCS-2; ours stays in code units (what the limits are in).
            assert info.characters == len(v["body"].encode("utf-16-le", "surrogatepass")) // 2
        assert info.characters == sum(v["segment_units"])


def test_every_vector_names_the_same_offending_characters():
    for v, info in _analyzed():
        assert len(info.offending_characters) == v["non_gsm_count"], v["body"][:60]
        if "non_gsm" in v:
            assert [o.char for o in info.offending_characters] == v["non_gsm"], v["body"][:60]


def test_replacement_table_is_twilios_smart_encoding_except_one_space_for_wide_spaces():
    package_map = _data()["smart_encoding_map"]
    ours = dict(SMART_ENCODING)
    for char in _ONE_SPACE_INSTEAD_OF_TWO:
        assert package_map[char] == "  "
        assert ours.pop(char) == " "
        package_map.pop(char)
    assert ours == package_map


def test_applying_replacements_matches_twilios_smart_encoding():
    checked = 0
    for v in _data()["vectors"]:
        if "non_gsm" not in v or any(c in v["body"] for c in _ONE_SPACE_INSTEAD_OF_TWO):
            continue
        replaced = apply_gsm_replacements(v["body"])
        assert replaced == v.get("smart_body", v["body"])
        info = analyze(replaced)
        assert (info.encoding, info.segments) == (v["smart_encoding"], v["smart_segments"])
        checked += 1
    assert checked > 2000


@pytest.mark.parametrize(
    ("body", "encoding", "segments", "characters", "left"),
    [
        ("", GSM_7, 1, 0, 160),
        ("a" * 160, GSM_7, 1, 160, 0),
        ("a" * 161, GSM_7, 2, 161, 145),
        ("a" * 306, GSM_7, 2, 306, 0),
        ("a" * 307, GSM_7, 3, 307, 152),
        ("{" * 80, GSM_7, 1, 160, 0),
        ("a" * 152 + "€", GSM_7, 1, 154, 6),
        ("a" * 159 + "€", GSM_7, 2, 161, 145),
        ("中" * 70, UCS_2, 1, 70, 0),
        ("中" * 71, UCS_2, 2, 71, 63),
        ("\U0001f600" * 35, UCS_2, 1, 70, 0),
        ("a" * 69 + "\u2019", UCS_2, 1, 70, 0),
    ],
)
def test_boundaries(body, encoding, segments, characters, left):
    info = analyze(body)
    assert (info.encoding, info.segments, info.characters, info.characters_left) == (
        encoding,
        segments,
        characters,
        left,
    )


def test_extension_character_is_never_split_across_segments():
    # 152 letters and "{" would be 154 septets, one more than a split segment holds: "{" moves on whole.
    info = analyze("a" * 152 + "{" + "a" * 10)
    assert info.segment_characters == (152, 12)


def test_surrogate_pair_at_a_segment_boundary_moves_whole_to_the_next_segment():
    info = analyze("中" * 66 + "\U0001f600" + "中" * 4)
    assert info.segment_characters == (66, 6)


def test_zwj_family_is_kept_in_one_segment():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 11 UTF-16 units
    info = analyze("中" * 60 + family)
    assert info.segments == 2
    assert info.segment_characters == (60, 11)


def test_offending_characters_come_with_gsm_replacements():
    info = analyze("It’s “great” — see you… \U0001f44d\u00a0ok\u200b")
    found = {o.char: o.replacement for o in info.offending_characters}
    assert found == {
        "’": "'",
        "“": '"',
        "”": '"',
        "—": "-",
        "…": "...",
        "\U0001f44d": None,
        "\u00a0": " ",
        "\u200b": "",
    }
    assert info.encoding == UCS_2
    fixed = apply_gsm_replacements(info.body)
    assert fixed == 'It\'s "great" - see you... \U0001f44d ok'
    assert analyze(fixed.replace("\U0001f44d", "")).encoding == GSM_7


def test_offending_characters_are_counted_once_each_with_their_count():
    info = analyze("“a” “b”")
    assert [(o.char, o.count) for o in info.offending_characters] == [("“", 2), ("”", 2)]


_gsm_text = st.text(alphabet=sorted(GSM7))
_gsm_basic_text = st.text(alphabet=sorted(GSM7_BASIC - {"\r", "\n"}))


@given(_gsm_text)
def test_gsm_only_text_is_never_ucs2(body):
    info = analyze(body)
    assert info.encoding == GSM_7
    assert info.offending_characters == ()


@given(st.text(), st.text(min_size=1))
def test_segment_count_never_drops_when_text_is_appended(body, more):
    assert analyze(body + more).segments >= analyze(body).segments


@given(_gsm_basic_text)
def test_basic_gsm_text_follows_160_153(body):
    info = analyze(body)
    n = len(body)
    assert info.characters == n
    assert info.segments == (1 if n <= 160 else math.ceil(n / 153))
    assert info.characters_left == (160 - n if n <= 160 else info.segments * 153 - n)


# Characters that never join into clusters: GSM-7, CJK, and single emoji without modifiers.
_unclustered = st.text(
    alphabet=st.one_of(
        st.sampled_from(sorted(GSM7 - {"\r"})),
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
        st.characters(min_codepoint=0x1F600, max_codepoint=0x1F64F),
    )
)


@given(_unclustered)
def test_segments_respect_their_limits_and_add_up(body):
    info = analyze(body)
    assert info.characters == sum(info.segment_characters)
    assert len(info.segment_characters) == info.segments
    limit = info.single_segment_limit if info.segments == 1 else info.multi_segment_limit
    assert info.segment_limit == limit
    assert all(units <= limit for units in info.segment_characters)
    assert info.characters_left == limit - info.segment_characters[-1]


@given(st.text(alphabet=sorted(GSM7 | set(SMART_ENCODING))))
def test_text_of_gsm_and_replaceable_characters_becomes_gsm7(body):
    info = analyze(body)
    assert all(o.replacement is not None for o in info.offending_characters)
    assert analyze(apply_gsm_replacements(body)).encoding == GSM_7


def test_extension_characters_count_two():
    for char in GSM7_EXTENSION:
        assert analyze(char).characters == 2
