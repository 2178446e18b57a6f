"""The merchant's FAQ: which configured topic a question is about, typo- and accent-tolerant."""

from __future__ import annotations

from rapidfuzz import fuzz, process
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.consent import normalize
from models import FaqEntry

def _cutoff(word: str) -> int:
    # One typo in a short word changes much of it: "free" is not "frete".
    return 90 if len(word) <= 5 else 85


def entries(session: Session) -> list[FaqEntry]:
    return list(session.scalars(select(FaqEntry).where(FaqEntry.active).order_by(FaqEntry.position, FaqEntry.id)))


def match(session: Session, text: str) -> FaqEntry | None:
    """The topic whose keywords best match the question, or None."""
    words = normalize(text[:300]).split()
    if not words:
        return None
    best: tuple[float, FaqEntry] | None = None
    for entry in entries(session):
        keywords = [normalize(k) for k in [entry.topic, entry.title, *(entry.keywords or [])] if k]
        single = [k for k in keywords if " " not in k]
        score = 0.0
        for word in words:
            if len(word) < 3:
                continue
            found = process.extractOne(word, single, scorer=fuzz.ratio, score_cutoff=_cutoff(word))
            if found:
                score = max(score, found[1])
        phrase_text = " ".join(words)
        for phrase in (k for k in keywords if " " in k):
            if fuzz.partial_ratio(phrase, phrase_text) >= 90:
                score = max(score, 100.0)
        if score and (best is None or score > best[0]):
            best = (score, entry)
    return best[1] if best else None
