"""The one sandboxed Jinja environment for every text a merchant can edit (bot texts, recovery messages, CRM
suggestions).

Merchants write these templates, so two layers keep them harmless:

* At **save** time, :func:`validate` parses the template and walks its syntax tree against a :class:`Schema`
  derived from the caller's sample variables: only output, if/for, names the caller declared, their declared
  fields, whitelisted filters, tests, comparisons, ``~`` and arithmetic on numbers are accepted. Then the text is
  rendered with several shapes of data (no cart, no coupon, many items...), each of which must render, within
  the limits below, to a non-empty text. So ``{% if nome != 'Ana' %}...{% endif %}`` cannot hide a problem
  from a single sample.
* At **every render** (so a template stored before these rules cannot hurt a worker either), :func:`render_text`
  compiles only the same node types (names and fields are not checked: StrictUndefined does it), refuses every
  function or method call, offers only whitelisted filters and no globals, guards the binary operators, counts
  every loop iteration, caps the output while streaming it, and stops a render that runs too long.

Every refusal is a :class:`TemplateRenderError` whose ``message`` is Portuguese, shown next to the field.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, fields, is_dataclass, replace
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel.numbers import format_currency
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, Undefined, UndefinedError, nodes
from jinja2.exceptions import TemplateAssertionError, TemplateRuntimeError
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.filters import make_attrgetter
from jinja2.runtime import LoopContext
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from jinja2.utils import pass_environment

# --- limits -------------------------------------------------------------------------------------------------

MAX_OUTPUT_CHARS = 4096  # WhatsApp's limit for a message body; also the cap on any text built inside a render
MAX_ITERATIONS = 10_000  # loop iterations per render, all loops together, nested or not
MAX_RENDER_SECONDS = 0.25  # wall clock per render: a real message renders in about a millisecond
MAX_SOURCE_CHARS = 10_000  # the editors allow 1500-2000; anything longer is not a message template
MAX_SEQUENCE_ITEMS = 10_000  # items a list built with `*` or `+` may have
MAX_INTEGER = 10**15  # numbers an operator may take or produce (a price in cents fits many times over)
MAX_EXPONENT = 100
MAX_ROUND_DIGITS = 10
MAX_NESTING = 40  # depth of blocks and expressions

# Kept for compatibility: the old name of the `*` cap.
MAX_SEQUENCE_RESULT = MAX_SEQUENCE_ITEMS

LOOP_FIELDS = frozenset({"index", "index0", "first", "last", "length", "revindex", "revindex0"})


def _count(n: int) -> str:
    return f"{n:,}".replace(",", ".")


# --- errors -------------------------------------------------------------------------------------------------


class TemplateRenderError(ValueError):
    """A merchant template does not compile or render; ``message`` is shown to them next to the field."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TemplateRefused(SecurityError):
    """A limit or rule hit while rendering; the message is already Portuguese."""


class TemplateStructureError(TemplateSyntaxError):
    """The template uses something merchants may not use; the message is already Portuguese."""


def _too_long() -> TemplateRefused:
    return TemplateRefused(f"o texto ficaria grande demais (mais de {_count(MAX_OUTPUT_CHARS)} caracteres)")


# --- per-render budget: iterations and time -------------------------------------------------------------------


class _Budget:
    __slots__ = ("iterations", "deadline")

    def __init__(self) -> None:
        self.iterations = 0
        self.deadline = time.monotonic() + MAX_RENDER_SECONDS

    def tick(self) -> None:
        self.iterations += 1
        if self.iterations > MAX_ITERATIONS:
            raise TemplateRefused(f"o texto repete (for) mais de {_count(MAX_ITERATIONS)} vezes ao ser montado")
        self.check_clock()

    def check_clock(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateRefused("o texto demorou demais para ser montado")


# A context variable, not a global: renders happen concurrently in web threads and RQ jobs.
_BUDGET: ContextVar[_Budget | None] = ContextVar("merchant_template_budget", default=None)


def _tick() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.tick()


class CountedList(Sequence):
    """A read-only list whose every iteration step counts against the render's budget: the lists of a render's
    variables are wrapped in it (recursively), so nested loops cannot run silently forever."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable = ()) -> None:
        self._items = tuple(items)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return CountedList(self._items[index])
        return self._items[index]

    def __iter__(self) -> Iterator:
        for item in self._items:
            _tick()
            yield item

    def __reversed__(self) -> Iterator:
        for item in reversed(self._items):
            _tick()
            yield item

    def __contains__(self, value) -> bool:
        return any(item == value for item in self)

    def __eq__(self, other) -> bool:
        if isinstance(other, CountedList):
            return self._items == other._items
        if isinstance(other, (list, tuple)):
            return list(self._items) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        # Printed as it is ({{ opcoes }}), a list reads as its items, "40, 41, 42", never as Python's repr.
        parts: list[str] = []
        total = 0
        for item in self._items:
            text = str(item)
            total += len(text) + 2
            if total > MAX_OUTPUT_CHARS:
                raise _too_long()
            parts.append(text)
        return ", ".join(parts)

    def __add__(self, other):
        if isinstance(other, (CountedList, list, tuple)):
            return CountedList(self._items + tuple(other))
        return NotImplemented

    def __radd__(self, other):
        if isinstance(other, (list, tuple)):
            return CountedList(tuple(other) + self._items)
        return NotImplemented

    def __mul__(self, times):
        if isinstance(times, int):
            return CountedList(self._items * times)
        return NotImplemented

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return repr(list(self._items))


def _counted(value):
    """Hidden filter wrapped around every loop's iterable at compile time: strings, dicts and anything else a
    loop may walk count too, not only the wrapped lists."""
    if isinstance(value, CountedList):
        return value
    return _counting(value)


def _counting(iterable) -> Iterator:
    for item in iterable:
        _tick()
        yield item


def wrap_variables(value, _depth: int = 0):
    """``value`` with every list and tuple (inside dicts, lists and dataclasses too) turned into a CountedList."""
    if _depth > 12 or isinstance(value, (str, bytes, int, float, Decimal, CountedList)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return CountedList(wrap_variables(v, _depth + 1) for v in value)
    if isinstance(value, Mapping):
        return {k: wrap_variables(v, _depth + 1) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        changed = {}
        for f in fields(value):
            current = getattr(value, f.name)
            wrapped = wrap_variables(current, _depth + 1)
            if wrapped is not current and f.init:
                changed[f.name] = wrapped
        if changed:
            try:
                return replace(value, **changed)
            except (TypeError, ValueError):
                return value
        return value
    return value


# --- the whitelisted filters ------------------------------------------------------------------------------------


def brl(value: Decimal | int | str) -> str:
    """R$ 1.234,56"""
    return format_currency(Decimal(str(value)), "BRL", locale="pt_BR")


def _brl_filter(value) -> str:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise TemplateRefused(f"o filtro brl precisa de um número, não de {str(value)[:40]!r}") from None
    if not amount.is_finite() or abs(amount) >= MAX_INTEGER:
        raise TemplateRefused("valor grande demais para o filtro brl")
    return brl(amount)


@pass_environment
def _join(environment, value, d="", attribute=None) -> str:
    separator = str(d)
    items = _counted(value)
    if attribute is not None:
        getter = make_attrgetter(environment, attribute)
        items = (getter(item) for item in items)
    parts: list[str] = []
    total = 0
    for item in items:
        text = str(item)
        total += len(text) + (len(separator) if parts else 0)
        if total > MAX_OUTPUT_CHARS:
            raise _too_long()
        parts.append(text)
    return separator.join(parts)


def _replace(s, old, new, count=None) -> str:
    s, old, new = str(s), str(old), str(new)
    found = len(s) + 1 if old == "" else s.count(old)
    if count is not None:
        count = int(count)
        if count >= 0:
            found = min(found, count)
    if len(s) + found * (len(new) - len(old)) > MAX_OUTPUT_CHARS:
        raise _too_long()
    return s.replace(old, new, -1 if count is None else count)


@pass_environment
def _truncate(environment, s, length=255, killwords=False, end="...", leeway=None) -> str:
    result = JINJA_FILTERS["truncate"](environment, s, length, killwords, end, leeway)
    if len(result) > MAX_OUTPUT_CHARS:
        raise _too_long()
    return result


def _round(value, precision=0, method="common"):
    if not isinstance(precision, int) or not -MAX_ROUND_DIGITS <= precision <= MAX_ROUND_DIGITS:
        raise TemplateRefused(f"o filtro round aceita de -{MAX_ROUND_DIGITS} a {MAX_ROUND_DIGITS} casas")
    return JINJA_FILTERS["round"](value, precision, method)


def _int(value, default=0, base=10):
    try:
        return JINJA_FILTERS["int"](value, default, base)
    except OverflowError:
        return default


SAFE_FILTERS: dict[str, object] = {
    "upper": JINJA_FILTERS["upper"], "lower": JINJA_FILTERS["lower"], "capitalize": JINJA_FILTERS["capitalize"],
    "title": JINJA_FILTERS["title"], "trim": JINJA_FILTERS["trim"],
    "default": JINJA_FILTERS["default"], "d": JINJA_FILTERS["default"],
    "length": len, "count": len, "first": JINJA_FILTERS["first"], "last": JINJA_FILTERS["last"],
    "join": _join, "truncate": _truncate, "replace": _replace,
    "round": _round, "int": _int, "abs": abs, "brl": _brl_filter,
}
_COUNTED_FILTER = "<repetição contada>"  # not a valid identifier: no template can name it

NUMBER_FILTERS = frozenset({"length", "count", "int", "round", "abs"})
TEXT_FILTERS = frozenset({"upper", "lower", "capitalize", "title", "trim", "truncate", "replace", "join", "brl"})


# --- the sandbox ------------------------------------------------------------------------------------------------


def _is_number(value) -> bool:
    return isinstance(value, (int, float, Decimal))


@lru_cache(maxsize=256)
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


class MerchantSandbox(SandboxedEnvironment):
    """Jinja's sandbox with the rules above: no calls, data attributes only, guarded operators, counted loops,
    checked structure."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    # -- structure, at compile time

    def _generate(self, source, name, filename, defer_init=False):
        check_runtime_structure(source)
        for loop in list(source.find_all(nodes.For)):
            loop.iter = nodes.Filter(loop.iter, _COUNTED_FILTER, [], [], None, None, lineno=loop.iter.lineno)
        return super()._generate(source, name, filename, defer_init=defer_init)

    # -- calls and attributes

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's own signature
        raise TemplateRefused("chamadas de função não são permitidas")

    def is_safe_attribute(self, obj, attr, value) -> bool:
        if isinstance(obj, LoopContext):
            return attr in LOOP_FIELDS
        if is_dataclass(obj) and not isinstance(obj, type):
            return attr in _field_names(type(obj))
        return False

    def is_safe_callable(self, obj) -> bool:
        return False

    def getattr(self, obj, attribute):
        if isinstance(obj, Undefined):
            return super().getattr(obj, attribute)
        if isinstance(obj, Mapping):
            if attribute in obj:
                return obj[attribute]
        elif isinstance(attribute, str) and (isinstance(obj, LoopContext) or is_dataclass(obj)):
            try:
                value = getattr(obj, attribute)
            except AttributeError:
                pass
            else:
                if self.is_safe_attribute(obj, attribute, value):
                    return value
        return self.undefined(f"campo desconhecido: {attribute}", obj=obj, name=attribute, exc=TemplateRefused)

    def getitem(self, obj, argument):
        if isinstance(obj, Undefined):
            return super().getitem(obj, argument)
        if isinstance(argument, str):
            return self.getattr(obj, argument)
        if isinstance(obj, Mapping):
            try:
                return obj[argument]
            except (TypeError, LookupError):
                pass
        elif isinstance(obj, (str, CountedList, list, tuple)) and isinstance(argument, (int, slice)):
            try:
                return obj[argument]
            except (IndexError, TypeError):
                pass
        return self.undefined(f"a posição {argument} não existe", obj=obj, name=str(argument),
                              exc=TemplateRefused)

    def unsafe_undefined(self, obj, attribute):
        return self.undefined(f"campo desconhecido: {attribute}", obj=obj, name=attribute, exc=TemplateRefused)

    # -- operators

    def call_binop(self, context, operator, left, right):
        if isinstance(left, Undefined) or isinstance(right, Undefined):
            return super().call_binop(context, operator, left, right)
        for value in (left, right):
            if isinstance(value, int) and abs(value) > MAX_INTEGER:
                raise TemplateRefused("número grande demais para fazer contas")
        if operator == "%" and isinstance(left, str):
            raise TemplateRefused("formatação de texto com % não é permitida")
        if operator == "**" and _is_number(right) and abs(right) > MAX_EXPONENT:
            raise TemplateRefused(f"expoente grande demais (máximo {MAX_EXPONENT})")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple, CountedList)) and isinstance(times, int):
                    limit = MAX_OUTPUT_CHARS if isinstance(seq, str) else MAX_SEQUENCE_ITEMS
                    if len(seq) * times > limit:
                        raise _too_long() if isinstance(seq, str) else TemplateRefused("lista grande demais")
        if operator == "+":
            if isinstance(left, str) and isinstance(right, str) and len(left) + len(right) > MAX_OUTPUT_CHARS:
                raise _too_long()
            if (isinstance(left, (list, tuple, CountedList)) and isinstance(right, (list, tuple, CountedList))
                    and len(left) + len(right) > MAX_SEQUENCE_ITEMS):
                raise TemplateRefused("lista grande demais")
        result = super().call_binop(context, operator, left, right)
        if isinstance(result, int) and abs(result) > MAX_INTEGER:
            raise TemplateRefused("o resultado da conta é um número grande demais")
        return result


@lru_cache(maxsize=1)
def environment() -> MerchantSandbox:
    env = MerchantSandbox(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True,
                          keep_trailing_newline=False)
    env.filters = {**SAFE_FILTERS, _COUNTED_FILTER: _counted}
    env.globals = {}  # no range, lipsum, dict, cycler, joiner, namespace
    brl(0)  # load babel's pt_BR data now, not inside the first render's time budget
    return env


# --- shapes: what a template's variables look like -------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Shape:
    """What a value looks like to a template: ``kind`` is text, number, bool, list, record or any (unknown,
    e.g. None in the sample); records have ``fields``, lists an ``element`` shape."""

    kind: str
    fields: Mapping[str, Shape] = field(default_factory=dict)
    element: Shape | None = None

    @classmethod
    def of(cls, value) -> Shape:
        if isinstance(value, bool):
            return BOOL
        if isinstance(value, (int, float, Decimal)):
            return NUMBER
        if isinstance(value, str):
            return TEXT
        if isinstance(value, (list, tuple, CountedList)):
            element = ANY
            for index, item in enumerate(value):
                element = Shape.of(item) if index == 0 else element.merge(Shape.of(item))
            return Shape("list", element=element)
        if isinstance(value, Mapping):
            return Shape("record", {str(k): Shape.of(v) for k, v in value.items()})
        if is_dataclass(value) and not isinstance(value, type):
            return Shape("record", {f.name: Shape.of(getattr(value, f.name)) for f in fields(value)})
        return ANY

    def merge(self, other: Shape) -> Shape:
        if self.kind == "any":
            return other
        if other.kind == "any" or other is self:
            return self
        if self.kind != other.kind:
            return ANY
        if self.kind == "record":
            merged = dict(self.fields)
            for name, shape in other.fields.items():
                merged[name] = merged[name].merge(shape) if name in merged else shape
            return Shape("record", merged)
        if self.kind == "list":
            return Shape("list", element=(self.element or ANY).merge(other.element or ANY))
        return self


TEXT, NUMBER, BOOL, ANY = Shape("text"), Shape("number"), Shape("bool"), Shape("any")
LOOP_SHAPE = Shape("record", {**{name: NUMBER for name in ("index", "index0", "length", "revindex", "revindex0")},
                              "first": BOOL, "last": BOOL})


@dataclass(frozen=True, eq=False)
class Schema:
    """The variables a template may use, and their shapes; built once from the caller's sample."""

    names: Mapping[str, Shape]

    @classmethod
    def from_sample(cls, sample: Mapping) -> Schema:
        return cls({str(name): Shape.of(value) for name, value in sample.items()})

    def list_names(self) -> list[str]:
        return [name for name, shape in self.names.items() if shape.kind == "list"]


# --- the structure check ----------------------------------------------------------------------------------------

_REFUSED_STATEMENTS: dict[type, str] = {
    nodes.Macro: "macros ({% macro %}) não são permitidas",
    nodes.CallBlock: "o bloco {% call %} não é permitido",
    nodes.Import: "importar outros textos não é permitido",
    nodes.FromImport: "importar outros textos não é permitido",
    nodes.Include: "incluir outros textos não é permitido",
    nodes.Extends: "estender outros textos ({% extends %}) não é permitido",
    nodes.Block: "blocos ({% block %}) não são permitidos",
    nodes.Assign: "{% set %} não é permitido: use as variáveis diretamente",
    nodes.AssignBlock: "{% set %} não é permitido: use as variáveis diretamente",
    nodes.With: "{% with %} não é permitido: use as variáveis diretamente",
    nodes.FilterBlock: "o bloco {% filter %} não é permitido: aplique o filtro na variável, como {{ nome|upper }}",
    nodes.ScopedEvalContextModifier: "o bloco {% autoescape %} não é permitido",
    nodes.EvalContextModifier: "o bloco {% autoescape %} não é permitido",
    nodes.Scope: "este bloco não é permitido",
    nodes.OverlayScope: "este bloco não é permitido",
    nodes.ExprStmt: "{% do %} não é permitido",
    nodes.Break: "{% break %} não é permitido",
    nodes.Continue: "{% continue %} não é permitido",
}
_ARITHMETIC = (nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod)
_PATH = (nodes.Name, nodes.Getattr, nodes.Getitem)


class _Checker:
    """Walks a parsed template. With a schema (save time) names, fields, loop sources and arithmetic operands
    are checked against it; without one (every compile) only the node types, filters and loop sources are."""

    def __init__(self, schema: Schema | None) -> None:
        self.schema = schema

    def fail(self, node: nodes.Node, message: str):
        raise TemplateStructureError(message, getattr(node, "lineno", None) or 1)

    # statements

    def body(self, statements: list[nodes.Node], scope: dict, depth: int) -> None:
        for statement in statements:
            self.statement(statement, scope, depth)

    def statement(self, node: nodes.Node, scope: dict, depth: int) -> None:
        if depth > MAX_NESTING:
            self.fail(node, "o texto tem blocos ou expressões aninhados demais")
        if isinstance(node, nodes.Template):
            self.body(node.body, scope, depth + 1)
        elif isinstance(node, nodes.Output):
            for child in node.nodes:
                if not isinstance(child, nodes.TemplateData):
                    self.expr(child, scope, depth + 1)
        elif isinstance(node, nodes.If):
            self.expr(node.test, scope, depth + 1)
            self.body(node.body, scope, depth + 1)
            self.body(node.elif_, scope, depth + 1)
            self.body(node.else_, scope, depth + 1)
        elif isinstance(node, nodes.For):
            self.loop(node, scope, depth)
        elif type(node) in _REFUSED_STATEMENTS:
            self.fail(node, _REFUSED_STATEMENTS[type(node)])
        else:
            self.fail(node, "este trecho usa um recurso que não é permitido")

    def loop(self, node: nodes.For, scope: dict, depth: int) -> None:
        if node.recursive:
            self.fail(node, "o for recursivo não é permitido")
        if not isinstance(node.target, nodes.Name):
            self.fail(node, "use uma variável só no for, por exemplo {% for item in itens %}")
        if node.target.name == "loop":
            self.fail(node, "loop é um nome reservado: escolha outro nome para a variável do for")
        shape = self.expr(node.iter, scope, depth + 1) if isinstance(node.iter, _PATH) else None
        if shape is None or (self.schema is not None and shape.kind != "list"):
            self.fail(node, self._loop_hint())
        inner = {**scope, node.target.name: (shape.element or ANY) if shape.kind == "list" else ANY,
                 "loop": LOOP_SHAPE}
        if node.test is not None:
            self.expr(node.test, inner, depth + 1)
        self.body(node.body, inner, depth + 1)
        self.body(node.else_, scope, depth + 1)

    def _loop_hint(self) -> str:
        lists = self.schema.list_names() if self.schema is not None else []
        if self.schema is not None and not lists:
            return "este texto não tem listas para repetir com for"
        return f"só é possível repetir (for) sobre listas como {lists[0] if lists else 'itens'}"

    # expressions

    def expr(self, node: nodes.Node, scope: dict, depth: int) -> Shape:
        if depth > MAX_NESTING:
            self.fail(node, "o texto tem blocos ou expressões aninhados demais")
        depth += 1
        strict = self.schema is not None
        if isinstance(node, nodes.Const):
            return Shape.of(node.value)
        if isinstance(node, nodes.Name):
            if not strict:
                return ANY
            if node.name not in scope:
                self.fail(node, f"variável desconhecida: '{node.name}'")
            return scope[node.name]
        if isinstance(node, nodes.Getattr):
            return self.field(node, self.expr(node.node, scope, depth), node.attr)
        if isinstance(node, nodes.Getitem):
            return self.item(node, scope, depth)
        if isinstance(node, nodes.Filter):
            return self.filter(node, scope, depth)
        if isinstance(node, nodes.Test):
            if node.name not in environment().tests:
                self.fail(node, f"o teste {node.name} não existe")
            self.arguments(node, scope, depth)
            self.expr(node.node, scope, depth)
            return BOOL
        if isinstance(node, nodes.Compare):
            self.expr(node.expr, scope, depth)
            for operand in node.ops:
                self.expr(operand.expr, scope, depth)
            return BOOL
        if isinstance(node, (nodes.And, nodes.Or)):
            return self.expr(node.left, scope, depth).merge(self.expr(node.right, scope, depth))
        if isinstance(node, nodes.Not):
            self.expr(node.node, scope, depth)
            return BOOL
        if isinstance(node, (nodes.Neg, nodes.Pos)):
            self.numbers(node, [self.expr(node.node, scope, depth)])
            return NUMBER
        if isinstance(node, nodes.CondExpr):
            self.expr(node.test, scope, depth)
            shape = self.expr(node.expr1, scope, depth)
            return shape.merge(self.expr(node.expr2, scope, depth)) if node.expr2 is not None else shape
        if isinstance(node, nodes.Concat):
            for child in node.nodes:
                self.expr(child, scope, depth)
            return TEXT
        if isinstance(node, nodes.Pow):
            if strict:
                self.fail(node, "potência (**) não é permitida")
            self.expr(node.left, scope, depth)
            self.expr(node.right, scope, depth)
            return ANY
        if isinstance(node, _ARITHMETIC):
            self.numbers(node, [self.expr(node.left, scope, depth), self.expr(node.right, scope, depth)])
            return NUMBER
        if isinstance(node, (nodes.List, nodes.Tuple)):
            element = ANY
            for index, item in enumerate(node.items):
                if strict and not isinstance(item, nodes.Const):
                    self.fail(node, "listas escritas no texto só podem ter valores fixos, como ['pago', 'enviado']")
                shape = self.expr(item, scope, depth)
                element = shape if index == 0 else element.merge(shape)
            return Shape("list", element=element)
        if isinstance(node, nodes.Call):
            self.fail(node, "chamadas de função não são permitidas")
        if isinstance(node, nodes.Dict):
            self.fail(node, "dicionários ({...}) não são permitidos")
        self.fail(node, "este trecho usa um recurso que não é permitido")

    def numbers(self, node: nodes.Node, shapes: list[Shape]) -> None:
        if self.schema is not None and any(shape.kind != "number" for shape in shapes):
            self.fail(node, "contas (+, -, *, /, //, %) só podem ser feitas com números; para juntar textos use ~")

    def field(self, node: nodes.Node, base: Shape, name: str) -> Shape:
        if self.schema is None:
            return ANY
        if base.kind == "record" and name in base.fields:
            return base.fields[name]
        owner = _describe_path(node.node)
        if base.kind == "list":
            self.fail(node, f"{owner} é uma lista: escreva {{{{ {owner} }}}} para mostrá-la inteira, ou use "
                            f"{{% for item in {owner} %}} para chegar a cada item")
        self.fail(node, f"{owner} não tem o campo {name}")

    def item(self, node: nodes.Getitem, scope: dict, depth: int) -> Shape:
        base = self.expr(node.node, scope, depth)
        key = node.arg
        if isinstance(key, nodes.Const) and isinstance(key.value, str):
            return self.field(node, base, key.value)
        if self.schema is None:
            if isinstance(key, nodes.Slice):
                for part in (key.start, key.stop, key.step):
                    if part is not None:
                        self.expr(part, scope, depth)
            else:
                self.expr(key, scope, depth)
            return ANY
        if isinstance(key, nodes.Const) and isinstance(key.value, int) and not isinstance(key.value, bool):
            if base.kind == "list":
                return base.element or ANY
            if base.kind in ("text", "any"):
                return base
        elif isinstance(key, nodes.Slice) and all(
                part is None or (isinstance(part, nodes.Const) and isinstance(part.value, int))
                for part in (key.start, key.stop, key.step)):
            if base.kind in ("list", "text", "any"):
                return base
        else:
            self.fail(node, "entre colchetes use só um nome ou número fixo, como itens[0]")
        self.fail(node, f"{_describe_path(node.node)} não é uma lista nem um texto")

    def filter(self, node: nodes.Filter, scope: dict, depth: int) -> Shape:
        if node.name not in SAFE_FILTERS:
            self.fail(node, f"o filtro {node.name} não é permitido")
        self.arguments(node, scope, depth)
        base = self.expr(node.node, scope, depth) if node.node is not None else ANY
        if node.name in NUMBER_FILTERS:
            return NUMBER
        if node.name in TEXT_FILTERS:
            return TEXT
        if node.name in ("first", "last"):
            return (base.element or ANY) if base.kind == "list" else (TEXT if base.kind == "text" else ANY)
        if node.name in ("default", "d") and base.kind == "any" and node.args:
            return self.expr(node.args[0], scope, depth)
        return base

    def arguments(self, node: nodes.Filter | nodes.Test, scope: dict, depth: int) -> None:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            self.fail(node, "argumentos com * ou ** não são permitidos")
        for argument in node.args:
            self.expr(argument, scope, depth)
        for keyword in node.kwargs:
            self.expr(keyword.value, scope, depth)


def _describe_path(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_describe_path(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        key = node.arg.value
        return f"{_describe_path(node.node)}.{key}" if isinstance(key, str) else f"{_describe_path(node.node)}[{key}]"
    return "este valor"


def check_runtime_structure(tree: nodes.Template) -> None:
    """Run on every compile (MerchantSandbox._generate): only the node types, filters and loop sources a merchant
    may use; names and fields are left to StrictUndefined and the sandbox."""
    _Checker(None).statement(tree, {}, 0)


def check_structure(source: str, schema: Schema) -> None:
    """Parse ``source`` and check it against ``schema``; raises TemplateRenderError naming the line."""
    try:
        tree = environment().parse(source)
        _Checker(schema).statement(tree, dict(schema.names), 0)
    except TemplateError as exc:
        raise TemplateRenderError(_describe(exc, source)) from None
    except RecursionError:
        raise TemplateRenderError("o texto tem blocos ou expressões aninhados demais") from None


def validate(source: str, schema_sample: Mapping, shapes: list[dict], labels: list[str] | None = None, *,
             empty_message: str = "o texto ficou vazio") -> str:
    """Check ``source``'s structure against the variables of ``schema_sample``, then render it with every
    shape of data in ``shapes``: each must render, within the limits, to a non-empty text. Returns the first
    rendering. ``labels[i]`` (e.g. "sem cupom") prefixes the error of shape i; an empty label prefixes nothing."""
    check_structure(source, Schema.from_sample(schema_sample))
    first: str | None = None
    for index, variables in enumerate(shapes):
        label = labels[index] if labels and index < len(labels) else ""
        try:
            rendered = render_text(source, variables)
            if not rendered.strip():
                raise TemplateRenderError(empty_message)
        except TemplateRenderError as exc:
            raise TemplateRenderError(f"{label}: {exc.message}" if label else exc.message) from None
        if first is None:
            first = rendered
    return first if first is not None else ""


# --- rendering --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _compiled(source: str):
    return environment().from_string(source)


def render_text(source: str, variables: dict) -> str:
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateRenderError(f"o texto tem mais de {_count(MAX_SOURCE_CHARS)} caracteres")
    try:
        template = _compiled(source)
        token = _BUDGET.set(budget := _Budget())
        try:
            stream = template.generate(**wrap_variables(dict(variables)))
            try:
                parts: list[str] = []
                size = 0
                for chunk in stream:
                    size += len(chunk)
                    if size > MAX_OUTPUT_CHARS:
                        raise TemplateRefused(f"o texto passou de {_count(MAX_OUTPUT_CHARS)} caracteres, o limite "
                                              "de uma mensagem no WhatsApp")
                    budget.check_clock()
                    parts.append(chunk)
            finally:
                stream.close()
        finally:
            _BUDGET.reset(token)
        return "".join(parts).strip()
    except TemplateError as exc:
        raise TemplateRenderError(_describe(exc, source)) from None
    except (RecursionError, SyntaxError):
        raise TemplateRenderError("o texto tem blocos ou expressões aninhados demais") from None
    except ZeroDivisionError as exc:
        raise TemplateRenderError(_with_line(exc, "divisão por zero")) from None
    except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as exc:
        # A merchant's template can fail like any expression ({{ nome|round }}): their input error, in their words.
        raise TemplateRenderError(_with_line(exc, _runtime_text(exc))) from None


# --- messages ---------------------------------------------------------------------------------------------------


def _template_line(exc: BaseException) -> int | None:
    """The template line a runtime error happened on: Jinja rewrites the traceback to point at it."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _with_line(exc: BaseException, text: str) -> str:
    line = getattr(exc, "lineno", None) if isinstance(exc, TemplateSyntaxError) else _template_line(exc)
    return at_line(text, line)


def at_line(text: str, line: int | None) -> str:
    """``text`` with " na linha N" after its first clause: "faltou fechar `}}` na linha 2", "variável
    desconhecida: 'cupon' na linha 2", "... com números na linha 1; para juntar textos use ~"."""
    if not line:
        return text
    cut = _clause_end(text)
    return f"{text[:cut]} na linha {line}{text[cut:]}"


def _clause_end(text: str) -> int:
    """Where the first clause ends: the first "; " outside `code` and brackets, else the end."""
    code, depth = False, 0
    for index, char in enumerate(text):
        if char == "`":
            code = not code
        elif code:
            continue
        elif char in "{[(":
            depth += 1
        elif char in "}])":
            depth = max(0, depth - 1)
        elif depth == 0 and char == ";" and text[index + 1:index + 2] == " ":
            return index
    return len(text)


def _runtime_text(exc: BaseException) -> str:
    """A Python error inside a merchant's expression, said in Portuguese (never Python's English)."""
    text = str(exc)
    if found := re.match(r"(?:do_|test_|_)?([a-z]\w*)\(\) (?:missing|takes|got)", text):
        return (f"o filtro ou teste {found.group(1)} recebeu valores a mais ou a menos entre parênteses")
    if "not supported between instances" in text:
        return "só é possível comparar (<, >, <=, >=) números com números, ou textos com textos"
    if "unsupported operand" in text or "can only concatenate" in text or "can't multiply" in text:
        return "contas (+, -, *, /, //, %) só podem ser feitas com números; para juntar textos use ~"
    if any(words in text for words in ("is not iterable", "has no len()", "__round__", "bad operand type",
                                       "not all arguments converted", "must be real number", "invalid literal")):
        return "um filtro ou teste foi usado com um valor de outro tipo (por exemplo, length num número ou round num texto)"
    return "o texto não pôde ser montado: confira os filtros, as contas e as comparações"


def _unclosed_tag(source: str | None, line: int | None) -> str | None:
    """For Jinja's "unexpected '}'": the tag on ``line`` closed with a single brace, `{{ nome }` or `{% if x }`."""
    if not source or not line:
        return None
    lines = source.splitlines()
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    if re.search(r"\{\{[^}]*\}(?!\})", text):
        return "faltou fechar `}}`; a variável abre com duas chaves e fecha com duas"
    if re.search(r"\{%[^}]*(?<!%)\}", text):
        return "faltou fechar `%}`"
    return None


def _last_opener(source: str | None) -> str | None:
    """The kind of the tag opened last in ``source``: "{{" or "{%"."""
    if not source:
        return None
    variable, block = source.rfind("{{"), source.rfind("{%")
    if variable < 0 and block < 0:
        return None
    return "{{" if variable > block else "{%"


def _describe(exc: TemplateError, source: str | None = None) -> str:
    text = str(exc.message if getattr(exc, "message", None) else exc)
    source = getattr(exc, "source", None) or source
    if isinstance(exc, TemplateStructureError):
        return _with_line(exc, text)
    if isinstance(exc, (TemplateAssertionError, TemplateRuntimeError)) and (
            found := re.match(r"No (filter|test) named '([^']+)'", text)):
        kind, name = found.groups()
        text = f"o filtro {name} não é permitido" if kind == "filter" else f"o teste {name} não existe"
        return _with_line(exc, text)
    if isinstance(exc, TemplateSyntaxError) and not isinstance(exc, TemplateAssertionError):
        if text == "unexpected '}'" and (unclosed := _unclosed_tag(source, exc.lineno)):
            return _with_line(exc, unclosed)
        if text == "unexpected 'end of template'" and (opener := _last_opener(source)):
            return _with_line(exc, "faltou fechar `}}`" if opener == "{{" else "faltou fechar `%}`")
        return _with_line(exc, _translate_syntax(text))
    if isinstance(exc, UndefinedError):
        if text.endswith(" is undefined"):
            text = f"variável desconhecida: {text[:-len(' is undefined')]}"
        elif found := re.search(r"has no (?:attribute|element) (.+)$", text):
            text = f"campo desconhecido: {found.group(1).strip(chr(39))}"
        elif re.match(r"No (first|last) item, sequence was empty", text):
            text = "a lista está vazia: first e last precisam de pelo menos um item (use {% if %} antes)"
        elif not text.isascii() or text.startswith(("campo desconhecido", "a posição")):
            pass  # already ours
        else:
            text = "um valor usado no texto não existe"
    elif text == "method must be common, ceil or floor":
        text = "o filtro round aceita 'common', 'ceil' ou 'floor'"
    elif isinstance(exc, TemplateRuntimeError) and not isinstance(exc, TemplateRefused) and text.isascii():
        text = "o texto não pôde ser montado: confira os filtros, as contas e as comparações"
    return _with_line(exc, text)


_TOKENS = {
    "end of print statement": "`}}`", "end of statement block": "`%}`", "end of template": "o fim do texto",
    "name": "um nome", "integer": "um número", "float": "um número", "string": "um texto entre aspas",
}


def _token(description: str) -> str:
    return _TOKENS.get(description, f"`{description}`")


def _translate_syntax(text: str) -> str:
    """Jinja's common syntax errors said plainly in Portuguese; anything else keeps Jinja's words."""
    innermost = re.search(r"innermost block that needs to be closed is '(\w+)'", text)
    block = innermost.group(1) if innermost else None
    if text.startswith("unexpected end of template, expected 'end of print statement'"):
        return "faltou fechar `}}`"
    if text.startswith("unexpected end of template, expected 'end of statement block'"):
        return "faltou fechar `%}`"
    if found := re.match(r"unexpected end of template, expected '(.+)'", text):
        closing = found.group(1)
        if closing in (")", "]"):
            return f"faltou fechar {'o parêntese' if closing == ')' else 'o colchete'} `{closing}`"
        return "o texto terminou no meio de um comando ou de uma expressão"
    if text.startswith("Unexpected end of template") and block:
        return f"faltou fechar o bloco `{{% {block} %}}` com `{{% end{block} %}}`"
    if found := re.match(r"Encountered unknown tag '(\w+)'", text):
        tag = found.group(1)
        still_open = f"; antes, feche o bloco `{{% {block} %}}` com `{{% end{block} %}}`" if block else ""
        if tag.startswith("end") and tag[3:]:
            return f"`{{% {tag} %}}` sem `{{% {tag[3:]} %}}` correspondente{still_open}"
        if tag in ("else", "elif"):
            return f"`{{% {tag} %}}` fora de lugar: ele só vale dentro de um `{{% if %}}`{still_open}"
        return f"comando desconhecido: `{{% {tag} %}}`"
    if found := re.match(r"unexpected '(.+)', expected '(.)'", text):
        closing = found.group(2)
        return f"faltou fechar {'o parêntese' if closing == ')' else 'o colchete'} `{closing}`"
    if text == "unexpected '}'":
        return "`}` fora de lugar: confira se `{{` fecha com `}}` e `{%` com `%}`"
    if found := re.match(r"unexpected char (['\"])(.)\1 at \d+", text):
        char = found.group(2)
        return "um texto entre aspas ficou sem fechar" if char in "'\"" else f"caractere inesperado: {char}"
    if found := re.match(r"unexpected '(end of print statement|end of statement block)'$", text):
        return f"faltou uma variável ou valor antes de {_token(found.group(1))}"
    if text == "unexpected 'end of template'":
        return "o texto terminou no meio de um comando ou de uma expressão"
    if found := re.match(r"unexpected '(.+)'$", text):
        return f"{_token(found.group(1))} fora de lugar"
    if found := re.match(r"expected token '(.+)', got '(.+)'", text):
        return f"esperava {_token(found.group(1))}, mas encontrou {_token(found.group(2))}"
    if found := re.match(r"Expected an expression, got '(.+)'", text):
        return f"faltou uma variável ou valor antes de {_token(found.group(1))}"
    if text == "Missing end of comment tag":
        return "faltou fechar o comentário com `#}`"
    if text == "Missing end of raw directive":
        return "faltou fechar `{% raw %}` com `{% endraw %}`"
    if text == "tag name expected":
        return "faltou o comando dentro de `{% %}`"
    if text == "expected name or number":
        return "faltou o nome do campo depois do ponto"
    # Anything else: Portuguese, not Jinja's English.
    return "há um erro de escrita aqui: confira se `{{` fecha com `}}`, `{%` com `%}` e se as aspas fecham"
