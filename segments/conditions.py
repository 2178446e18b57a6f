"""The condition language of segments, validated.

A condition is a group or a leaf::

    {"all": [cond, ...]}            every one holds          {"any": [cond, ...]}   at least one holds
    {"field": "orders_count", "op": ">=", "value": 3}

Groups nest up to ``MAX_DEPTH`` levels with at most ``MAX_LEAVES`` leaves in all; a group is never empty. Each field
has a type that decides its operators and values (``FIELDS``). ``validate`` returns a normalised copy (numbers as
``int``/``Decimal`` strings kept as given) or raises ``ConditionInvalid`` naming the path ("all[1].any[0].value")
and saying in Portuguese what is wrong, so the console can put the message next to the right box.

Semantics every evaluator follows (``segments.compile`` in SQL and ``matches`` in Python agree on them):

* A comparison on a value the customer does not have (no purchase yet: no ``days_since_last_purchase``, no
  ``average_ticket``; no birthday, no city…) is false; ``!=`` and ``not_in`` are true for it ("not Mariana's"
  includes customers without a seller). ``is_set`` / ``is_not_set`` test presence.
* Days are whole days: ``days_since_last_purchase`` is ``floor((now - last purchase) / 24 h)``. ``within_days N`` on
  a date is "from ``now`` minus N days on"; ``before``/``after``/``between`` on a date compare calendar days in the
  store's time zone (``between`` includes both ends).
* ``bought`` / ``left_in_cart`` take ``{"product": key}``, ``{"category": c}``, ``{"brand": b}`` or
  ``{"attribute": name, "equals": v}`` (``tamanho`` and ``cor`` are the variant's size and colour, any other name a
  product attribute), optionally with ``"within_days": N``; values are compared exactly as the catalog spells them.
  Bought means a live order (created or paid); left in a cart means a cart not converted.
* ``consent``: ``opted_out`` (asked to receive nothing), ``marketing_opted_out`` (refused marketing only),
  ``subscribed`` (neither). ``recovery_outcome``: ``recovered`` (a recovery message led to a purchase),
  ``sent_not_recovered`` (messages sent, none converted), ``none`` (never sent one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

MAX_DEPTH = 5
MAX_LEAVES = 50
MAX_TEXT = 120
MAX_LIST = 200
MAX_DAYS = 36_500
MAX_MONEY = Decimal("1000000000")

CHURN_BANDS = ("baixo", "medio", "alto", "inativo")  # crm.churn.BANDS
CONSENT_STATES = ("opted_out", "marketing_opted_out", "subscribed")
RECOVERY_OUTCOMES = ("recovered", "sent_not_recovered", "none")
PRODUCT_KEYS = ("product", "category", "brand", "attribute")
ATTRIBUTE_NAME = re.compile(r"[\w \-]{1,60}")
# Attribute names that mean the variant's own columns rather than a product attribute.
VARIANT_ATTRIBUTES = {"tamanho": "size", "cor": "color"}

# Field types and the operators each accepts.
NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=", "between")
MONEY_OPS = ("<", "<=", ">", ">=", "between")
PRESENCE_OPS = ("is_set", "is_not_set")
TEXT_OPS = ("=", "!=", "in", "not_in")
DATE_OPS = ("within_days", "before", "after", "between")
BIRTHDAY_OPS = ("month", "anniversary_within_days")
OPS_BY_TYPE = {
    "count": NUMBER_OPS,  # never missing
    "days": NUMBER_OPS + PRESENCE_OPS,  # missing for who never bought
    "money": MONEY_OPS,  # never missing
    "money_opt": MONEY_OPS + PRESENCE_OPS,
    "id": ("=", "!=", "in", "not_in") + PRESENCE_OPS,
    "text": TEXT_OPS + PRESENCE_OPS,
    "choice": ("=", "!=", "in", "not_in"),
    "tag": ("contains", "not_contains") + PRESENCE_OPS,
    "date": DATE_OPS + PRESENCE_OPS,
    "birthday": BIRTHDAY_OPS + PRESENCE_OPS,
    "products": ("contains", "not_contains"),
}

# field -> (type, the label a person reads, allowed values for "choice")
FIELDS: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    "tag": ("tag", "etiqueta", None),
    "owner": ("id", "vendedor responsável", None),
    "branch": ("id", "filial", None),
    "days_since_last_purchase": ("days", "dias desde a última compra", None),
    "total_revenue": ("money", "valor total das compras", None),
    "orders_count": ("count", "número de compras", None),
    "average_ticket": ("money_opt", "valor médio das compras", None),
    "bought": ("products", "comprou", None),
    "left_in_cart": ("products", "deixou no carrinho", None),
    "first_purchase": ("date", "primeira compra", None),
    "last_purchase": ("date", "última compra", None),
    "customer_since": ("date", "cliente desde", None),
    "birthday": ("birthday", "aniversário", None),
    "source": ("text", "origem (campanha/indicação)", None),
    "city": ("text", "cidade", None),
    "state": ("text", "estado", None),
    "ddd": ("text", "DDD", None),
    "churn_band": ("choice", "risco de perda", CHURN_BANDS),
    "consent": ("choice", "consentimento", CONSENT_STATES),
    "recovery_outcome": ("choice", "resultado da recuperação", RECOVERY_OUTCOMES),
}
ALIASES = {"utm_source": "source", "referral": "source", "responsible": "owner", "store": "branch"}


class ConditionInvalid(ValueError):
    """A condition that cannot be used: ``path`` says where ("all[1].value"), ``message`` what, in Portuguese."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path or 'condição'}: {message}")
        self.path = path
        self.message = message


@dataclass
class _Budget:
    leaves: int = 0


def validate(condition) -> dict:
    """A normalised copy of ``condition``, or ``ConditionInvalid``."""
    return _node(condition, "", 1, _Budget())


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path and not part.startswith("[") else f"{path}{part}"


def _node(node, path: str, depth: int, budget: _Budget) -> dict:
    if not isinstance(node, dict):
        raise ConditionInvalid(path, "esperava um grupo ({\"all\": [...]} ou {\"any\": [...]}) ou uma condição")
    groups = [k for k in ("all", "any") if k in node]
    if groups:
        if len(node) != 1:
            raise ConditionInvalid(path, "um grupo tem só uma chave: \"all\" (todas) ou \"any\" (qualquer uma)")
        key = groups[0]
        if depth > MAX_DEPTH:
            raise ConditionInvalid(path, f"grupos aninhados demais (no máximo {MAX_DEPTH} níveis)")
        children = node[key]
        here = _join(path, key)
        if not isinstance(children, list):
            raise ConditionInvalid(here, "esperava uma lista de condições")
        if not children:
            raise ConditionInvalid(here, "o grupo está vazio; inclua ao menos uma condição")
        return {key: [_node(child, f"{here}[{i}]", depth + 1, budget) for i, child in enumerate(children)]}
    budget.leaves += 1
    if budget.leaves > MAX_LEAVES:
        raise ConditionInvalid(path, f"condições demais (no máximo {MAX_LEAVES})")
    return _leaf(node, path)


def _leaf(node: dict, path: str) -> dict:
    unknown = set(node) - {"field", "op", "value"}
    if unknown:
        raise ConditionInvalid(path, f"chave desconhecida: {sorted(unknown)[0]!r}")
    field = node.get("field")
    if not isinstance(field, str) or ALIASES.get(field, field) not in FIELDS:
        raise ConditionInvalid(_join(path, "field"), f"campo desconhecido: {field!r}" if field is not None
                               else "falta o campo da condição")
    field = ALIASES.get(field, field)
    kind, label, choices = FIELDS[field]
    op = node.get("op")
    if op not in OPS_BY_TYPE[kind]:
        allowed = ", ".join(OPS_BY_TYPE[kind])
        raise ConditionInvalid(_join(path, "op"), f"operador {op!r} não serve para {label} (use: {allowed})")
    where = _join(path, "value")
    if op in PRESENCE_OPS:
        if node.get("value") is not None:
            raise ConditionInvalid(where, f"o operador {op} não leva valor")
        return {"field": field, "op": op}
    if "value" not in node:
        raise ConditionInvalid(where, f"falta o valor de {label}")
    return {"field": field, "op": op, "value": _value(kind, op, node["value"], where, label, choices)}


def _int(value, where: str, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        else:
            raise ConditionInvalid(where, f"{what} deve ser um número inteiro")
    if not low <= value <= high:
        raise ConditionInvalid(where, f"{what} deve estar entre {low} e {high}")
    return value


def _money(value, where: str, label: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConditionInvalid(where, f"{label} deve ser um valor em reais, como 150 ou 99.90")
    try:
        amount = Decimal(str(value).replace(",", ".")) if isinstance(value, str) else Decimal(str(value))
    except InvalidOperation:
        raise ConditionInvalid(where, f"{label} deve ser um valor em reais, como 150 ou 99.90") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_MONEY:
        raise ConditionInvalid(where, f"{label} deve ser um valor entre 0 e {MAX_MONEY}")
    if amount != amount.quantize(Decimal("0.01")):
        raise ConditionInvalid(where, f"{label} tem no máximo dois decimais")
    return str(amount.quantize(Decimal("0.01")))


def _text(value, where: str, label: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConditionInvalid(where, f"{label}: informe um texto")
    if len(value) > MAX_TEXT:
        raise ConditionInvalid(where, f"{label}: no máximo {MAX_TEXT} caracteres")
    return value.strip()


def _date(value, where: str) -> str:
    if not isinstance(value, str):
        raise ConditionInvalid(where, "informe uma data no formato AAAA-MM-DD")
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise ConditionInvalid(where, f"data inválida: {value!r} (use AAAA-MM-DD)") from None
    if not 2000 <= parsed.year <= 2100 or len(value) != 10:
        raise ConditionInvalid(where, "a data deve estar entre 2000 e 2100, no formato AAAA-MM-DD")
    return parsed.isoformat()


def _pair(value, where: str, one, key=lambda v: v) -> list:
    if not isinstance(value, list) or len(value) != 2:
        raise ConditionInvalid(where, "\"entre\" leva uma lista de dois valores: [de, até]")
    low, high = one(value[0], f"{where}[0]"), one(value[1], f"{where}[1]")
    if key(low) > key(high):
        raise ConditionInvalid(where, "o primeiro valor de \"entre\" deve ser menor ou igual ao segundo")
    return [low, high]


def _list(value, where: str, one) -> list:
    if not isinstance(value, list) or not value:
        raise ConditionInvalid(where, "esperava uma lista com ao menos um valor")
    if len(value) > MAX_LIST:
        raise ConditionInvalid(where, f"no máximo {MAX_LIST} valores na lista")
    return [one(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _value(kind: str, op: str, value, where: str, label: str, choices):
    if kind in ("count", "days"):
        def one(v, w):
            return _int(v, w, 0, MAX_DAYS if kind == "days" else 10_000_000, label)
        return _pair(value, where, one) if op == "between" else one(value, where)
    if kind in ("money", "money_opt"):
        def one(v, w):
            return _money(v, w, label)
        return _pair(value, where, one, Decimal) if op == "between" else one(value, where)
    if kind == "id":
        def one(v, w):
            return _int(v, w, 1, 2**31 - 1, label)
        return _list(value, where, one) if op in ("in", "not_in") else one(value, where)
    if kind in ("text", "tag"):
        def one(v, w):
            return _text(v, w, label)
        return _list(value, where, one) if op in ("in", "not_in") else one(value, where)
    if kind == "choice":
        def one(v, w):
            if v not in choices:
                raise ConditionInvalid(w, f"{label}: valor desconhecido {v!r} (use: {', '.join(choices)})")
            return v
        return _list(value, where, one) if op in ("in", "not_in") else one(value, where)
    if kind == "date":
        if op == "within_days":
            return _int(value, where, 0, MAX_DAYS, "o número de dias")
        return _pair(value, where, _date) if op == "between" else _date(value, where)
    if kind == "birthday":
        if op == "month":
            return _int(value, where, 1, 12, "o mês")
        return _int(value, where, 0, 366, "o número de dias")
    if kind == "products":
        return _products(value, where)
    raise AssertionError(kind)  # pragma: no cover - FIELDS and OPS_BY_TYPE cover every kind


def _products(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConditionInvalid(where, "informe o produto, a categoria, a marca ou o atributo: "
                                      "{\"category\": \"Calçados\"}")
    keys = [k for k in PRODUCT_KEYS if k in value]
    unknown = set(value) - set(PRODUCT_KEYS) - {"equals", "within_days"}
    if unknown:
        raise ConditionInvalid(_join(where, sorted(unknown)[0]), "chave desconhecida")
    if len(keys) != 1:
        raise ConditionInvalid(where, "escolha um só: product, category, brand ou attribute")
    key = keys[0]
    out: dict = {key: _text(value[key], _join(where, key), {"product": "produto", "category": "categoria",
                                                            "brand": "marca", "attribute": "atributo"}[key])}
    if key == "attribute" and not ATTRIBUTE_NAME.fullmatch(out[key]):
        raise ConditionInvalid(_join(where, key), "nome de atributo inválido (letras, números, espaço, _ ou -)")
    if key == "attribute":
        if "equals" not in value:
            raise ConditionInvalid(_join(where, "equals"), "falta o valor do atributo (\"equals\")")
        out["equals"] = _text(value["equals"], _join(where, "equals"), "valor do atributo")
    elif "equals" in value:
        raise ConditionInvalid(_join(where, "equals"), "\"equals\" só vale com \"attribute\"")
    if value.get("within_days") is not None:
        out["within_days"] = _int(value["within_days"], _join(where, "within_days"), 0, MAX_DAYS,
                                  "o número de dias")
    return out


def leaves(condition: dict):
    """Every leaf of a validated condition."""
    for key in ("all", "any"):
        if key in condition:
            for child in condition[key]:
                yield from leaves(child)
            return
    yield condition
