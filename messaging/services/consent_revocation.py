"""Consent revoked in free words: "please stop texting me", "leave me alone", "wrong number", "no me
escriba más".

Since 2024 the FCC counts any reasonable way of saying stop as a revocation of consent, not only Twilio's
opt-out keywords. Keywords (STOP, UNSUBSCRIBE, …) are handled by the keyword path as soon as the text arrives;
this module flags the other texts so the thread can offer the agent one click to record the opt-out. It
never opts anyone out by itself: a person decides.

``revokes_consent(text)`` is pure (no database) and cheap enough to run on every inbound message each time a
thread is shown. English and Spanish. Measured on ``tests/data/consent_revocation.csv`` (the test prints
precision and recall).
"""

from __future__ import annotations

import re
import unicodedata

from messaging.services.keywords import KeywordAction, match_keyword

# Verbs of contacting, in the forms people text them.
_CONTACT_EN = (
    r"(?:text|txt|texting|txting|texted|message|messaging|msg|msging|msgs|sms|contact|contacting|call|calling"
    r"|email|emailing|bother|bothering|harass|harassing|spam|spamming|send|sending|write|writing|reach|hit)"
)
_ME = r"(?:me|us|my (?:number|phone|cell|mom|dad|husband|wife|son|daughter)|this (?:number|phone))"

_EN = [
    # "stop texting me", "please stop messaging this number", "quit sending me texts"
    rf"\b(?:stop|quit|cease|end|halt|knock off)\s+(?:all\s+)?(?:the\s+)?{_CONTACT_EN}\w*\b(?:\s+{_ME}\b)?",
    # "stop the texts", "stop these messages", "stop with the messages"
    r"\b(?:stop|quit|end|no more|enough(?: with)?(?: the)?|cancel)\s+(?:with\s+)?"
    r"(?:the\s+|these\s+|your\s+|all\s+(?:the\s+|these\s+|your\s+)?|this\s+)?"
    r"(?:texts?|txts?|messages?|msgs?|sms|spam|reminders?|notifications?"
    r"|alerts?|marketing|promotions?)\b",
    # "don't text me", "do not contact me again", "never message me"
    rf"\b(?:don'?t|do not|dont|never|pls don'?t|please don'?t|stop trying to)\s+(?:ever\s+)?"
    rf"{_CONTACT_EN}\w*\s+{_ME}\b",
    # "leave me alone", "leave us alone"
    r"\bleave (?:me|us|my \w+) (?:the hell )?alone\b",
    # "wrong number", "you have the wrong person", "not the person you're looking for"
    r"\bwrong (?:number|person|phone|cell|guy|girl|lady|contact)\b|\bwrong #",
    r"\bnot (?:the person|who) you(?:'re| are) looking for\b",
    r"\b(?:i|we) (?:don'?t|do not) know (?:any|a|an|who)\b.*\b(?:wrong|stop|this number)\b",
    # "remove me from your list", "take my number off", "delete my number"
    r"\b(?:remove|delete|take|erase|drop|unsubscribe|opt)\s+(?:me|my (?:number|phone|info|cell)|this number)"
    r"(?:\s+(?:from|off|out)\b|$)",
    r"\b(?:remove|delete|erase)\s+(?:me|my (?:phone )?number|this number)\b",
    r"\btake\s+(?:me|my number|this number)\s+(?:from|off)\b",
    r"\bunsubscribe me\b",
    r"\b(?:i want to|i'?d like to|let me|i wish to|please|pls)\s+(?:opt[- ]?out|unsubscribe)\b",
    r"\bopt(?:ing)?[- ]?(?:me )?out\b",
    # "no more texts please", "I don't want these messages", "I do not want to receive texts"
    r"\b(?:i|we) (?:don'?t|do not|no longer) (?:want|wish|need)(?: to (?:receive|get))?(?: any)?(?: more)?"
    r" (?:texts?|messages?|msgs|sms|these|your (?:texts?|messages?))\b",
    r"\b(?:i|we) (?:never|didn'?t) (?:signed? up|subscribe|agreed?|opt(?:ed)? in)\b",
    r"\b(?:lose|delete|forget) my (?:number|phone number|contact)\b",
    # "stop." at the end, unless it is a place: "meet me at the bus stop", "next stop"
    r"(?<!\bbus )(?<!\bthe )(?<!\bnext )(?<!\blast )(?<!\bpit )(?<!\bone )(?<!\bfull )(?<!\brest )"
    r"(?<!\bfirst )"
    r"(?<!\bmy )(?<!\byour )(?<!\ba )"
    r"\bstop(?:\s+it)?(?:\s+(?:now|already|please|pls|immediately))?\s*[.!]*\s*$",
    r"^\s*(?:please|pls|plz|just|ok|okay|seriously|for the last time)[,!.]?\s+stop\b",
    r"\bi said stop\b",
]

# Spanish, without accents (the text is folded before matching). Requests use the imperative or present
# subjunctive ("no me escriba", "no me manden"); a past tense ("no me escribió") tells, it does not ask.
_CONTACT_ES = (
    r"(?:escrib(?:a|as|an|e|es|en)|mand(?:e|es|en)|envi(?:e|es|en)|contact(?:e|es|en)|llam(?:e|es|en)"
    r"|molest(?:e|es|en)|texte(?:e|es|en)|acos(?:e|es|en)|fastidi(?:e|es|en))\b"
)
_CONTACT_ES_INFINITIVE = (
    r"(?:escribir|mandar|enviar|contactar|llamar|molestar|textear|acosar|fastidiar|mensajear)\w*"
)
_ES = [
    # "no me escriba más", "no me manden mensajes", "no me vuelvan a llamar"
    rf"\bno (?:me|nos) {_CONTACT_ES}",
    rf"\bno (?:me|nos) (?:vuelv\w*|sig\w*) (?:a )?{_CONTACT_ES_INFINITIVE}",
    # "deje de escribirme", "dejen de mandar mensajes", "para de molestarme"
    rf"\b(?:dej\w*|par\w*|termin\w*) de {_CONTACT_ES_INFINITIVE}",
    # "déjame en paz"
    r"\bdej\w*(?:me|nos) en paz\b",
    # "número equivocado", "se equivocó de número", "está equivocado"
    r"\bnumero equivocado\b",
    r"\bequivoc\w* de (?:numero|persona)\b",
    r"\b(?:persona|numero) (?:incorrect[ao]|equivocad[ao])\b",
    # "ya no quiero recibir mensajes", "no quiero más mensajes"
    r"\bno (?:quiero|deseo|necesito) (?:recibir |seguir recibiendo )?"
    r"(?:mas |ningun |ningunos? |sus |tus |estos )?"
    r"(?:mensajes|textos|sms|msj|notificaciones|promociones)\b",
    r"\bno mas (?:mensajes|textos|sms|msj)\b",
    r"\bbasta (?:de|con) (?:los |sus |tus )?(?:mensajes|textos|sms)\b",
    # "bórrenme de su lista", "quítenme de la lista", "eliminen mi número"
    r"\b(?:borr|quit|elimin|sac)\w*(?:me|nos) de (?:su|la|tu|sus|esta) (?:lista|base)\b",
    r"\b(?:borr|quit|elimin)\w* mi numero\b",
    r"\b(?:dar|darme|denme|dame|deme|me quiero dar|quiero darme) de baja\b",
    r"\b(?:no|nunca) (?:me )?(?:suscribi|registre|autorice|pedi)\w*\b",
]

_NEGATIONS_BEFORE_STOP = re.compile(
    r"\b(?:don'?t|do not|dont|never|can'?t|cannot|won'?t|wouldn'?t|didn'?t|couldn'?t|not|no need to)\s+"
    r"(?:\w+\s+)?stop\b"
)

_PATTERNS = re.compile("|".join(f"(?:{p})" for p in (*_EN, *_ES)))

_QUOTES = str.maketrans({"’": "'", "‘": "'", "´": "'", "`": "'", "“": '"', "”": '"'})


def fold(text: str) -> str:
    """Lower case, accents off, curly quotes straight, one space between words."""
    text = unicodedata.normalize("NFKD", text.translate(_QUOTES).lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", text).strip()


def revokes_consent(text: str) -> bool:
    """Does this inbound text ask us, in words, to stop texting (or say we have the wrong person)?

    False for a bare opt-out keyword (the keyword path already opted the number out) and for the many
    harmless uses of the same words ("don't stop", "stop by tomorrow", "leave it at the door").
    """
    folded = fold(text or "")
    if not folded or match_keyword(text) != KeywordAction.NONE:
        return False
    if _NEGATIONS_BEFORE_STOP.search(folded) and not re.search(
        r"\b(?:text|messag|contact|call|write|send)\w* (?:me|us)\b.*\b(?:don'?t|do not|never)\b", folded
    ):
        # "don't stop", "I can't stop laughing": the negated stop is not a request; the other patterns
        # still run without the word stop.
        folded = _NEGATIONS_BEFORE_STOP.sub(" ", folded)
    return bool(_PATTERNS.search(folded))
