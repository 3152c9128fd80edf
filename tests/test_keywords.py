"""Consent keywords are matched as Twilio matches them: the whole message, trimmed, any case."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from messaging.services.keywords import (
    HELP_KEYWORDS,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    KeywordAction,
    find_keyword,
    match_keyword,
)

ALL_KEYWORDS = OPT_OUT_KEYWORDS + OPT_IN_KEYWORDS + HELP_KEYWORDS
EXPECTED = {
    **dict.fromkeys(OPT_OUT_KEYWORDS, KeywordAction.OPT_OUT),
    **dict.fromkeys(OPT_IN_KEYWORDS, KeywordAction.OPT_IN),
    **dict.fromkeys(HELP_KEYWORDS, KeywordAction.HELP),
}


def test_the_lists_are_twilios_advanced_opt_out_defaults():
    assert set(OPT_OUT_KEYWORDS) == {
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
    }
    assert set(OPT_IN_KEYWORDS) == {"START", "YES", "UNSTOP"}
    assert set(HELP_KEYWORDS) == {"HELP", "INFO"}


@pytest.mark.parametrize(
    ("body", "action"),
    [
        ("STOP", KeywordAction.OPT_OUT),
        ("stop", KeywordAction.OPT_OUT),
        ("  Stop \n", KeywordAction.OPT_OUT),
        ("\r\nUNSUBSCRIBE\r\n", KeywordAction.OPT_OUT),
        ("Revoke", KeywordAction.OPT_OUT),
        ("optout", KeywordAction.OPT_OUT),
        ("ＳＴＯＰ", KeywordAction.OPT_OUT),  # full-width letters from some keyboards
        ("\u200bstop\u200b", KeywordAction.OPT_OUT),
        ("Stop.", KeywordAction.OPT_OUT),
        ("STOP!!", KeywordAction.OPT_OUT),
        ("“stop”", KeywordAction.OPT_OUT),
        ("help?", KeywordAction.HELP),
        ("Info", KeywordAction.HELP),
        ("start", KeywordAction.OPT_IN),
        (" Yes ", KeywordAction.OPT_IN),
        ("unstop", KeywordAction.OPT_IN),
        ("Yes!", KeywordAction.NONE),  # opt-in stays exact, as Twilio's block does
        ("stop please", KeywordAction.NONE),
        ("please stop texting me", KeywordAction.NONE),
        ("Don't stop", KeywordAction.NONE),
        ("STOP STOP", KeywordAction.NONE),
        ("S T O P", KeywordAction.NONE),
        ("stopp", KeywordAction.NONE),
        ("opt out", KeywordAction.NONE),
        ("yes, see you at 5", KeywordAction.NONE),
        ("", KeywordAction.NONE),
        ("   ", KeywordAction.NONE),
        ("!!!", KeywordAction.NONE),
    ],
)
def test_examples(body, action):
    assert match_keyword(body) is action


def test_none_body_is_no_keyword():
    assert match_keyword(None) is KeywordAction.NONE
    assert find_keyword(None) == (KeywordAction.NONE, None)


def test_find_keyword_names_the_canonical_keyword_for_the_ledger():
    assert find_keyword(" stopall. ") == (KeywordAction.OPT_OUT, "STOPALL")
    assert find_keyword("Yes") == (KeywordAction.OPT_IN, "YES")
    assert find_keyword("hello") == (KeywordAction.NONE, None)


@pytest.mark.parametrize(
    ("opt_out_type", "body", "action"),
    [
        ("STOP", "Arrêt", KeywordAction.OPT_OUT),  # a custom/other-language keyword Twilio recognised
        ("stop", "hello", KeywordAction.OPT_OUT),
        ("START", "STOP", KeywordAction.OPT_IN),  # Twilio's decision wins over the body
        ("HELP", "aide", KeywordAction.HELP),
        ("", "STOP", KeywordAction.OPT_OUT),
        (None, "START", KeywordAction.OPT_IN),
        ("SOMETHING_NEW", "STOP", KeywordAction.OPT_OUT),  # unknown value: fall back to the body
        ("SOMETHING_NEW", "hi", KeywordAction.NONE),
    ],
)
def test_twilios_opt_out_type_wins_over_the_body(opt_out_type, body, action):
    assert match_keyword(body, opt_out_type) is action


_space = st.text(alphabet=" \t\r\n\u00a0\u2003\u200b", max_size=5)


@given(keyword=st.sampled_from(ALL_KEYWORDS), data=st.data(), before=_space, after=_space)
def test_any_casing_and_surrounding_whitespace_of_a_keyword_matches(keyword, data, before, after):
    flips = data.draw(st.lists(st.booleans(), min_size=len(keyword), max_size=len(keyword)))
    cased = "".join(c.lower() if flip else c for c, flip in zip(keyword, flips, strict=True))
    assert match_keyword(before + cased + after) is EXPECTED[keyword]


_words = st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=12)


@given(word=_words)
def test_any_other_word_matches_nothing(word):
    assume(unicodedata.normalize("NFKC", word).upper() not in ALL_KEYWORDS)
    assert match_keyword(word) is KeywordAction.NONE


@given(
    keyword=st.sampled_from(ALL_KEYWORDS),
    before=_words,
    after=_words,
    case=st.sampled_from(["lower", "upper"]),
)
def test_a_keyword_inside_a_sentence_matches_nothing(keyword, before, after, case):
    word = getattr(keyword, case)()
    for sentence in (f"{before} {word}", f"{word} {after}", f"{before} {word} {after}"):
        assert match_keyword(sentence) is KeywordAction.NONE
