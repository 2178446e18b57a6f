"""The merchant's FAQ topics: listing and saving them. Which topic a question is about is the intent model's
business (bot.understanding.model trains one intent per topic)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.text import normalize
from models import FaqEntry

# Example questions train the intent model (bot.understanding.model): enough to teach a topic, not a corpus.
MAX_EXAMPLES = 40
MAX_EXAMPLE_LENGTH = 200


def entries(session: Session) -> list[FaqEntry]:
    return list(session.scalars(select(FaqEntry).where(FaqEntry.active).order_by(FaqEntry.position, FaqEntry.id)))


class FaqInvalid(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def save_entry(session: Session, entry: FaqEntry | None, *, title: str, keywords: str, answer: str,
               position: str | int = 0, active: bool = True, examples: str = "") -> FaqEntry:
    """Create or update a topic from the merchant's form. Keywords are comma separated; example questions (the
    intent model's training data) one per line, blank lines ignored; the topic key is the normalised title.
    Every problem is reported per field; nothing is written then."""
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
    questions = [line.strip() for line in (examples or "").splitlines() if line.strip()]
    if len(questions) > MAX_EXAMPLES:
        errors["examples"] = f"no máximo {MAX_EXAMPLES} perguntas de exemplo (uma por linha)"
    elif any(len(q) > MAX_EXAMPLE_LENGTH for q in questions):
        errors["examples"] = f"cada pergunta de exemplo pode ter até {MAX_EXAMPLE_LENGTH} caracteres"
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
    entry.examples = questions
    entry.position = position
    entry.active = active
    session.flush()
    return entry
