"""Consent keywords in inbound messages: opt-out, opt-in and help, matched the way Twilio matches them.

Twilio's rule (Advanced Opt-Out defaults, shared/twilio/FACTS.md): only a message that is *just* the
keyword counts, in any case, with surrounding whitespace ignored. "STOP" and " stop\\n" opt out; "stop
please" and "please stop texting me" do not.

One deliberate widening, in the direction of honouring consent: an opt-out or help keyword wrapped in
punctuation ("Stop.", "STOP!!", "“stop”") also counts. A person who writes that wants to stop, US rules
require honouring any reasonable opt-out, and the mismatch can only make us stricter than Twilio. Opt-in
stays exact: re-subscribing someone Twilio still blocks would only produce sends Twilio refuses (21610).

When Twilio tells us its own decision (the ``OptOutType`` field, sent with Advanced Opt-Out, which may use
custom or other-language keywords), that decision wins over the body.
"""

from __future__ import annotations

import enum
import string
import unicodedata

OPT_OUT_KEYWORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT")
OPT_IN_KEYWORDS = ("START", "YES", "UNSTOP")
HELP_KEYWORDS = ("HELP", "INFO")


class KeywordAction(enum.StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    NONE = "none"


_ACTION_BY_KEYWORD: dict[str, KeywordAction] = {
    **dict.fromkeys(OPT_OUT_KEYWORDS, KeywordAction.OPT_OUT),
    **dict.fromkeys(OPT_IN_KEYWORDS, KeywordAction.OPT_IN),
    **dict.fromkeys(HELP_KEYWORDS, KeywordAction.HELP),
}
_ACTION_BY_OPT_OUT_TYPE = {
    "STOP": KeywordAction.OPT_OUT,
    "START": KeywordAction.OPT_IN,
    "HELP": KeywordAction.HELP,
}

# Invisible characters phones and copy-paste leave around a word; not whitespace to str.strip().
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
# ASCII punctuation plus the typographic quotes, dashes and ellipsis phones substitute.
_PUNCTUATION = string.punctuation + "“”‘’«»„‚‹›–—…¡¿。！？"


def _trim(text: str, extra: str = "") -> str:
    previous = None
    while text != previous:
        previous = text
        text = text.strip().strip(_INVISIBLE + extra)
    return text


def _normalize(body: str) -> str:
    # NFKC folds full-width and compatibility letters ("ＳＴＯＰ") into plain ones.
    return _trim(unicodedata.normalize("NFKC", body)).upper()


def find_keyword(body: str | None) -> tuple[KeywordAction, str | None]:
    """The action a message body asks for and the canonical keyword ("STOP", …) it used, if any."""
    if not body:
        return KeywordAction.NONE, None
    word = _normalize(body)
    action = _ACTION_BY_KEYWORD.get(word)
    if action is not None:
        return action, word
    bare = _trim(word, _PUNCTUATION)
    action = _ACTION_BY_KEYWORD.get(bare)
    if action in (KeywordAction.OPT_OUT, KeywordAction.HELP):
        return action, bare
    return KeywordAction.NONE, None


def match_keyword(body: str | None, opt_out_type: str | None = None) -> KeywordAction:
    """What an inbound message asks for: OPT_OUT, OPT_IN, HELP or NONE.

    ``opt_out_type`` is Twilio's ``OptOutType`` webhook field (STOP / START / HELP); when present and known
    it decides, whatever the body says.
    """
    if opt_out_type:
        action = _ACTION_BY_OPT_OUT_TYPE.get(opt_out_type.strip().upper())
        if action is not None:
            return action
    return find_keyword(body)[0]
