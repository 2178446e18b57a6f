"""What a shopper's message means: the intent (a trained classifier, ``model``), the entities in it
(``entities``: item references, quantities, sizes, colours, money, dates) and how sure we are. What it means
*here* (which product "essa" is, what "sim" answers) is the conversation's business: ``bot.engine``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from bot.understanding.entities import Entities, extract
from bot.understanding.model import FaqTopic, Guess, store_model
from core.text import normalize


@dataclass(frozen=True)
class Reading:
    guesses: list[Guess]  # the likeliest intents, best first
    entities: Entities
    topics: dict[str, FaqTopic]  # FAQ intent -> the merchant's topic that answers it
    known_words: int  # how many of its words the model has seen in training (0: nothing it can read)
    request: str = ""  # the part of the message the intent was read from (one sentence of several, say)

    @property
    def intent(self) -> str:
        return self.guesses[0].intent

    @property
    def confidence(self) -> float:
        return self.guesses[0].confidence


# A greeting before a request ("boa noite, queria falar com alguém") says nothing about the request.
_GREETING = re.compile(r"^(?:(?:o+i+e*|ola+|opa+|ei|hey|e ?ai|eae|bom dia|boa tarde|boa noite|tudo bem|tudo bom|td bem|"
                       r"tudo certo|blz|beleza|gente|moca|amiga|amigo|pessoal)\b ?)+")


def without_greeting(text: str) -> str:
    """The request after the greeting, when there is one of at least two words; else the message."""
    clean = normalize(text)
    rest = _GREETING.sub("", clean).strip()
    return rest if rest != clean and len(rest.split()) >= 2 else text


# Intents that carry no request of their own: in a message of several sentences, the first sentence with
# another intent is what to act on ("Boa tarde. Vocês têm sapatilha nude 36? Agradeço desde já.").
COURTESY = {"greeting", "thanks", "ack", "goodbye", "help", "affirm", "deny"}
_SENTENCES = re.compile(r"[.!?;\n]+")


def read(session: Session, text: str, *, today: date | None = None) -> Reading:
    model = store_model(session).model
    request = without_greeting(text)
    guesses = model.rank(request, top=3)
    sentences = [part for part in _SENTENCES.split(text) if len(normalize(part).split()) >= 2]
    if len(sentences) > 1:
        for sentence in sentences:
            candidate = model.rank(without_greeting(sentence), top=3)
            if candidate[0].intent not in COURTESY and candidate[0].confidence >= 0.4:
                request, guesses = sentence.strip(), candidate
                break
    topics = store_model(session).topics
    return Reading(guesses=guesses, entities=extract(request, today=today), topics=topics,
                   known_words=model.known_words(request), request=request)


def warm_up(database) -> float:
    """Train the store's model now, before a shopper's message waits for it; the seconds it took. A database
    that does not answer yet is not fatal: the first message trains it then."""
    import logging
    import time

    started = time.perf_counter()
    try:
        with database.session() as session:
            store_model(session)
    except Exception as exc:  # noqa: BLE001 - a worker must start even if the database is still coming up
        logging.getLogger(__name__).warning("intent model not trained at start (%s): the first message will",
                                            type(exc).__name__)
    return time.perf_counter() - started
