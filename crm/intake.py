"""Opportunities from outside: one JSON object, a JSON list, or a CSV file (managers' lists, integrations).
All rows or none; every bad row reported with its line (1-based, the CSV header is line 1) and field."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.people import upsert_customer
from core.inputs import InputError, parse_moment
from core.phones import InvalidPhone, normalize_phone
from core.templating import TemplateRenderError
from crm import access
from crm.opportunities import BEHAVIOR_REASONS, PRIORITIES, Created, create
from crm.profile import validate_suggestion
from models import Customer, OpportunityStatus, OpportunityType, User

MAX_ROWS = 5000
CSV_COLUMNS = ("phone", "name", "type", "reason", "campaign", "message", "deadline", "priority", "skus")
ALLOWED_TYPES = {"manual": OpportunityType.MANUAL, "segment": OpportunityType.SEGMENT,
                 "behavior": OpportunityType.BEHAVIOR}
TEXT_LIMITS = {"name": 120, "reason": 40, "campaign": 120, "message": 2000}


@dataclass
class RowError:
    line: int
    field: str
    message: str

    def as_json(self) -> dict:
        return {"line": self.line, "field": self.field, "message": self.message}


class IntakeInvalid(ValueError):
    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} error(s)")
        self.errors = errors


@dataclass
class Spec:
    line: int
    phone: str
    name: str | None
    type: OpportunityType
    reason: str
    campaign: str | None = None
    message: str | None = None
    deadline: datetime | None = None
    priority: int = PRIORITIES["normal"]
    skus: list[str] = field(default_factory=list)


def _text(row: dict, name: str, line: int, errors: list[RowError]) -> str | None:
    value = row.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        errors.append(RowError(line, name, "deve ser um texto"))
        return None
    value = value.strip()
    if "\x00" in value or len(value) > TEXT_LIMITS.get(name, 200):
        errors.append(RowError(line, name, f"texto inválido ou com mais de {TEXT_LIMITS.get(name, 200)} caracteres"))
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        errors.append(RowError(line, name, "contém caracteres inválidos"))
        return None
    return value or None


def parse_row(row: Any, line: int, now: datetime) -> tuple[Spec | None, list[RowError]]:
    errors: list[RowError] = []
    if not isinstance(row, dict):
        return None, [RowError(line, "body", "cada oportunidade deve ser um objeto JSON")]
    unknown = set(row) - set(CSV_COLUMNS) - {"recommended_skus"}
    for name in sorted(unknown):
        errors.append(RowError(line, str(name)[:40], "campo desconhecido"))
    phone = None
    raw_phone = _text(row, "phone", line, errors)
    if raw_phone is None:
        errors.append(RowError(line, "phone", "obrigatório"))
    else:
        try:
            phone = normalize_phone(raw_phone)
        except InvalidPhone:
            errors.append(RowError(line, "phone", "número de telefone inválido"))
    kind = (_text(row, "type", line, errors) or "manual").lower()
    if kind not in ALLOWED_TYPES:
        errors.append(RowError(line, "type", "use manual, segment ou behavior"))
    reason = _text(row, "reason", line, errors)
    if kind == "behavior" and reason not in BEHAVIOR_REASONS:
        errors.append(RowError(line, "reason", f"use um de: {', '.join(sorted(BEHAVIOR_REASONS))}"))
    campaign = _text(row, "campaign", line, errors)
    if kind == "segment" and not campaign:
        errors.append(RowError(line, "campaign", "obrigatório para oportunidades de segmento"))
    message = _text(row, "message", line, errors)
    if message:
        try:
            validate_suggestion(message)
        except TemplateRenderError as exc:
            errors.append(RowError(line, "message", str(exc)))
    deadline = None
    raw_deadline = _text(row, "deadline", line, errors)
    if raw_deadline:
        try:
            deadline = parse_moment(raw_deadline, "deadline")
        except InputError as exc:
            errors.append(RowError(line, "deadline", exc.message))
        else:
            if deadline <= now:
                errors.append(RowError(line, "deadline", "o prazo já passou"))
    priority_name = (_text(row, "priority", line, errors) or "normal").lower()
    if priority_name not in PRIORITIES:
        errors.append(RowError(line, "priority", "use low, normal ou high"))
    skus = row.get("recommended_skus", row.get("skus")) or []
    if isinstance(skus, str):
        skus = [s.strip() for s in skus.split(";") if s.strip()]
    if not isinstance(skus, list) or not all(isinstance(s, str) and 0 < len(s) <= 64 for s in skus) or len(skus) > 20:
        errors.append(RowError(line, "recommended_skus", "lista de até 20 SKUs"))
        skus = []
    name = _text(row, "name", line, errors)
    if errors:
        return None, errors
    default_reason = {"manual": "manual", "segment": "campaign"}.get(kind, "")
    return Spec(line, phone, name, ALLOWED_TYPES[kind], reason or default_reason, campaign,
                message, deadline, PRIORITIES[priority_name], skus), []


def parse_csv(text: str, now: datetime) -> list[Spec]:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = reader.fieldnames or []
    except csv.Error:
        raise _malformed(reader) from None
    missing = [c for c in ("phone",) if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if missing or unknown:
        problem = f"faltam colunas: {', '.join(missing)}" if missing else f"colunas desconhecidas: {', '.join(unknown)}"
        raise IntakeInvalid([RowError(1, "header", f"{problem}; use {','.join(CSV_COLUMNS)}")])
    return parse_rows(_csv_rows(reader), now, first_line=2)


def _csv_rows(reader: csv.DictReader):
    try:
        for row in reader:
            yield {k: v for k, v in row.items() if k is not None}
    except csv.Error:
        raise _malformed(reader) from None


def _malformed(reader: csv.DictReader) -> IntakeInvalid:
    # The csv module's own message is English and about its internals; say what to fix, and where: its
    # line count stops before the record it could not read.
    return IntakeInvalid([RowError(reader.line_num + 1, "body",
                                   "CSV mal formado: aspas sem fechar ou quebra de linha dentro de um campo sem aspas")])


def parse_rows(rows, now: datetime, *, first_line: int = 1) -> list[Spec]:
    specs, errors = [], []
    for offset, row in enumerate(rows):
        if offset >= MAX_ROWS:
            raise IntakeInvalid([RowError(first_line + offset, "body", f"no máximo {MAX_ROWS} linhas por envio")])
        spec, row_errors = parse_row(row, first_line + offset, now)
        errors += row_errors
        if spec is not None:
            specs.append(spec)
    if errors:
        raise IntakeInvalid(errors)
    if not specs:
        raise IntakeInvalid([RowError(first_line, "body", "nenhuma oportunidade enviada")])
    return specs


def create_all(session: Session, specs: list[Spec], actor: User, now: datetime) -> list[tuple[Spec, Created]]:
    """Create every opportunity, or none: a user confined to a branch may not reach a customer of another one
    (refused by line, before anything is written); the customers they add are their branch's."""
    branch = access.branch_of(actor)
    if branch is not None:
        phones = sorted({spec.phone for spec in specs})
        visible = set(session.scalars(select(Customer.phone).where(
            Customer.phone.in_(phones), access.customer_clause(session, actor))))
        known = set(session.scalars(select(Customer.phone).where(Customer.phone.in_(phones))))
        foreign = [spec for spec in specs if spec.phone in known and spec.phone not in visible]
        if foreign:
            raise IntakeInvalid([RowError(spec.line, "phone", "cliente atendido por outra loja") for spec in foreign])
    outcomes = []
    for spec in specs:
        customer = upsert_customer(session, spec.phone, spec.name)
        if branch is not None and customer.store_id is None and customer.owner_seller_id is None:
            customer.store_id = branch
        outcomes.append((spec, create(session, customer, type=spec.type, reason=spec.reason, now=now,
                                      priority=spec.priority, actor=actor, campaign=spec.campaign,
                                      message=spec.message, deadline=spec.deadline, recommended_skus=spec.skus)))
    return outcomes


def backlog_ids(outcomes: list[tuple[Spec, Created]]) -> list[int]:
    return sorted({c.opportunity.id for _, c in outcomes
                   if c.opportunity is not None and c.opportunity.status is OpportunityStatus.BACKLOG})
