"""The merchant's FAQ: which configured topic a question is about, typo- and accent-tolerant."""

from __future__ import annotations

from rapidfuzz import fuzz, process
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.text import normalize
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


class FaqInvalid(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def save_entry(session: Session, entry: FaqEntry | None, *, title: str, keywords: str, answer: str,
               position: str | int = 0, active: bool = True) -> FaqEntry:
    """Create or update a topic from the merchant's form. Keywords are comma separated; the topic key is the
    normalised title. Every problem is reported per field; nothing is written then."""
    errors: dict[str, str] = {}
    title = (title or "").strip()
    answer = (answer or "").strip()
    words = [w.strip() for w in (keywords or "").split(",") if w.strip()]
    topic = normalize(title).replace(" ", "-")[:40]
    if not title:
        errors["title"] = "informe o assunto"
    elif len(title) > 120:
        errors["title"] = "no máximo 120 caracteres"
    if len(words) > 30 or any(len(w) > 60 for w in words):
        errors["keywords"] = "até 30 palavras-chave de até 60 caracteres"
    if not answer:
        errors["answer"] = "informe a resposta"
    elif len(answer) > 1200:
        errors["answer"] = "no máximo 1200 caracteres"
    try:
        position = int(position or 0)
        if not 0 <= position <= 999:
            raise ValueError
    except (TypeError, ValueError):
        errors["position"] = "use um número de 0 a 999"
    if topic and "title" not in errors:
        clash = session.scalar(select(FaqEntry).where(FaqEntry.topic == topic))
        if clash is not None and clash is not entry:
            errors["title"] = "já existe uma dúvida com esse assunto"
    if errors:
        raise FaqInvalid(errors)
    if entry is None:
        entry = FaqEntry(topic=topic, title=title, answer=answer)
        session.add(entry)
    entry.topic, entry.title, entry.answer = topic, title, answer
    entry.keywords = words
    entry.position = position
    entry.active = active
    session.flush()
    return entry
