"""Merchant templates cannot exhaust the machine, and are validated structurally and against several shapes of
data. Every attack is refused at save (structure) and, for a template that bypassed saving, at render time.

No test asserts on timing: each asserts the error, and pytest-timeout stops a regression that would hang."""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from bot import texts
from core import templating
from core.templating import (
    MAX_ITERATIONS, MAX_OUTPUT_CHARS, CountedList, Schema, Shape, TemplateRenderError, brl, check_structure,
    render_text, validate,
)
from crm.profile import SUGGESTION_SAMPLE, validate_suggestion
from models import BotText
from models.crm import DEFAULT_SUGGESTED_MESSAGE
from models.recovery import DEFAULT_TEMPLATE, LEGACY_DEFAULT_TEMPLATE
from recovery.messages import CartLine, build_variables, sample_variables, validate_template

pytestmark = pytest.mark.timeout(10)

SAMPLE = sample_variables(ZoneInfo("America/Sao_Paulo"))
BIG_CART = {**SAMPLE, "itens": [CartLine(f"Produto {n}", 1, "R$ 1,00") for n in range(200)]}
NOME_X10 = "nome ~ nome ~ nome ~ nome ~ nome ~ nome ~ nome ~ nome ~ nome ~ nome"

# (template, what the save-time check says, what a render that bypassed saving says)
ATTACKS = [
    ("{{ '%0300000000d'|format(1) }}", "o filtro format não é permitido", "o filtro format não é permitido"),
    ("{{ nome|center(200000000) }}", "o filtro center não é permitido", "o filtro center não é permitido"),
    ("{{ nome|indent(200000000) }}", "o filtro indent não é permitido", "o filtro indent não é permitido"),
    ("{{ nome.ljust(200000000) }}", "chamadas de função não são permitidas",
     "chamadas de função não são permitidas"),
    ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
     "só é possível repetir (for) sobre listas como itens", "só é possível repetir (for) sobre listas"),
    ("Oi!{% for a in itens %}{% for b in itens %}{% for c in itens %}{% endfor %}{% endfor %}{% endfor %}",
     "para um carrinho com 30 itens: o texto repete (for) mais de 10.000 vezes ao ser montado na linha 1",
     "o texto repete (for) mais de 10.000 vezes"),
    ("{{ 9**9**9 }}", "potência (**) não é permitida", "número grande demais"),
    ("{{ (nome ~ nome) * 100000 }}", "contas (+, -, *, /, //, %) só podem ser feitas com números",
     "o texto ficaria grande demais"),
    ("{{ '%0300000000d' % 1 }}", "contas (+, -, *, /, //, %) só podem ser feitas com números",
     "formatação de texto com % não é permitida"),
    ("{{ x|replace('', x)|replace('', x)|replace('', x)|replace('', x)|replace('', x) }}".replace("x", NOME_X10),
     "o texto ficaria grande demais", "o texto ficaria grande demais"),
    ("{{ lipsum(1000000) }}", "chamadas de função não são permitidas", "chamadas de função não são permitidas"),
    ("{{ ''.__class__ }}", "não tem o campo __class__", "campo desconhecido: __class__"),
    ("{{ nome.__class__.__mro__ }}", "nome não tem o campo __class__", "campo desconhecido: __class__"),
    ("{{ cycler }}", "variável desconhecida: 'cycler'", "variável desconhecida: 'cycler'"),
    ("{{ namespace }}{{ joiner }}", "variável desconhecida: 'namespace'", "variável desconhecida: 'namespace'"),
    ("{% set x = nome ~ nome %}{% set x = x ~ x %}{% set x = x ~ x %}{{ x }}", "{% set %} não é permitido",
     "{% set %} não é permitido"),
    ("{% with x = nome ~ nome %}{{ x }}{% endwith %}", "{% with %} não é permitido", "{% with %} não é permitido"),
    ("{% for x in [nome ~ nome] %}{% for x in [x ~ x] %}{{ x }}{% endfor %}{% endfor %}",
     "só é possível repetir (for) sobre listas como itens", "só é possível repetir (for) sobre listas"),
    ("{% macro m(x) %}{{ m(x ~ x) }}{% endmacro %}{{ m(nome) }}", "macros ({% macro %}) não são permitidas",
     "macros ({% macro %}) não são permitidas"),
    ("{% if nome %}{{ nome|center(5) }}{% endif %}", "o filtro center não é permitido",
     "o filtro center não é permitido"),
]


@pytest.mark.parametrize("source,at_save,at_render", ATTACKS, ids=[a[0][:40] for a in ATTACKS])
def test_every_attack_is_refused_at_save_and_at_render(source, at_save, at_render):
    with pytest.raises(TemplateRenderError) as saved:
        validate_template(source)
    assert at_save in saved.value.message
    with pytest.raises(TemplateRenderError) as rendered:
        render_text(source, BIG_CART)
    assert at_render in rendered.value.message


@pytest.fixture
def without_the_compile_check(monkeypatch):
    """Renders as if the structure check at compile time were missing: the runtime limits alone must hold."""
    templating._compiled.cache_clear()
    monkeypatch.setattr(templating, "check_runtime_structure", lambda tree: None)
    yield
    templating._compiled.cache_clear()


@pytest.mark.parametrize("source,message", [
    ("{{ '%0300000000d'|format(1) }}", "o filtro format não é permitido"),
    ("{{ nome|center(200000000) }}", "o filtro center não é permitido"),
    ("{% if nome %}{{ nome|indent(200000000) }}{% endif %}", "o filtro indent não é permitido"),
    ("{{ nome.ljust(200000000) }}", "chamadas de função não são permitidas"),
    ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
     "chamadas de função não são permitidas"),
    ("{% for a in itens %}{% for b in itens %}{% for c in itens %}{% endfor %}{% endfor %}{% endfor %}",
     "mais de 10.000 vezes"),
    ("{% for a in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] %}" * 5 + "{% endfor %}" * 5, "mais de 10.000 vezes"),
    ("{{ 9**9**9 }}", "número grande demais"),
    ("{{ (10**15)**100 }}", "número grande demais"),
    ("{{ (nome ~ nome) * 100000 }}", "o texto ficaria grande demais"),
    ("{{ '%0300000000d' % 1 }}", "formatação de texto com % não é permitida"),
    ("{{ x|replace('', x)|replace('', x)|replace('', x)|replace('', x)|replace('', x) }}".replace("x", NOME_X10),
     "o texto ficaria grande demais"),
    ("{{ lipsum(1000000) }}", "chamadas de função não são permitidas"),
    ("{{ ''.__class__ }}", "campo desconhecido: __class__"),
    ("{{ cycler }}", "variável desconhecida: 'cycler'"),
    ("{{ nome.upper }}", "campo desconhecido: upper"),
    ("{{ itens|join(nome * 4000) }}", "o texto ficaria grande demais"),
    ("{{ 1|round(-1000000000) }}", "o filtro round aceita"),
    ("{{ itens.append }}", "campo desconhecido: append"),
    ("{{ (itens|first).__class__ }}", "campo desconhecido: __class__"),
])
def test_the_runtime_limits_hold_on_their_own(without_the_compile_check, source, message):
    with pytest.raises(TemplateRenderError) as refused:
        render_text(source, BIG_CART)
    assert message in refused.value.message


def test_silent_loops_over_texts_count_too():
    answer = {"resposta": "x" * 1000}
    source = "{% for a in resposta %}{% for b in resposta %}{% for c in resposta %}{% endfor %}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateRenderError, match="mais de 10.000 vezes"):
        render_text(source, answer)


def test_nested_lists_are_counted_recursively():
    variables = {"grupos": [{"itens": list(range(200))} for _ in range(200)]}
    assert render_text("{% for g in grupos %}{% for i in g.itens %}{% endfor %}{% endfor %}ok", {
        "grupos": variables["grupos"][:40]}) == "ok"  # 8 040 iterations: within the limit
    with pytest.raises(TemplateRenderError, match="mais de 10.000 vezes"):
        render_text("{% for g in grupos %}{% for i in g.itens %}{% endfor %}{% endfor %}ok", variables)


def test_the_output_is_capped_while_it_is_streamed():
    many = {"itens": [CartLine("Produto com um nome bem comprido", 1, "R$ 1,00") for _ in range(300)]}
    with pytest.raises(TemplateRenderError) as refused:
        render_text("{% for i in itens %}{{ i.nome }}\n{% endfor %}", many)
    assert refused.value.message == "o texto passou de 4.096 caracteres, o limite de uma mensagem no WhatsApp"
    assert len(render_text("x" * MAX_OUTPUT_CHARS, {})) == MAX_OUTPUT_CHARS


def test_a_render_that_runs_past_its_time_is_stopped(monkeypatch):
    monkeypatch.setattr(templating, "MAX_RENDER_SECONDS", -1.0)  # any check is past the deadline
    with pytest.raises(TemplateRenderError, match="demorou demais"):
        render_text("{% for i in itens %}{{ i.nome }}{% endfor %}", SAMPLE)
    with pytest.raises(TemplateRenderError, match="demorou demais"):
        render_text("Oi {{ nome }}", SAMPLE)


def test_a_huge_stored_template_is_refused_before_compiling():
    with pytest.raises(TemplateRenderError, match="mais de 10.000 caracteres"):
        render_text("{{ nome }}" * 2000, SAMPLE)


def test_deep_nesting_is_refused_not_crashed():
    for source in ("{{ " + "(" * 300 + "1" + ")" * 300 + " }}", "{{ nome" + "|upper" * 60 + " }}",
                   "{% if nome %}" * 60 + "x" + "{% endif %}" * 60):
        with pytest.raises(TemplateRenderError, match="aninhados demais"):
            render_text(source, SAMPLE)


def test_the_bypass_of_a_single_sample_is_caught():
    with pytest.raises(TemplateRenderError) as unknown:
        validate_template("Oi {{ nome }}{% if nome != 'Ana' %}{{ boom }}{% endif %}")
    assert unknown.value.message == "variável desconhecida: 'boom' na linha 1"
    with pytest.raises(TemplateRenderError) as shape:
        validate_template("Oi {{ nome }}{% if nome != 'Ana' %}{{ itens[9].nome }}{% endif %}")
    assert shape.value.message == "para um cliente sem nome: a posição 9 não existe na linha 1"
    # The same template, rendered for the sample shopper alone, would have passed.
    assert render_text("Oi {{ nome }}{% if nome != 'Ana' %}{{ itens[9].nome }}{% endif %}", SAMPLE) == "Oi Ana"


def test_recovery_shapes_name_the_shopper_that_failed():
    cases = {
        "Oi {{ nome }}, use {{ cupom[0] }}": "sem cupom: a posição 0 não existe na linha 1",
        "{% if cupom %}Cupom {{ cupom }}{% endif %}": "sem cupom: a mensagem ficou vazia",
        "{% for i in itens %}{{ i.nome }}{% endfor %}": "para um cliente sem carrinho: a mensagem ficou vazia",
        "Oi {{ nome }}, seu carrinho: {{ itens[1].nome }}": "para um cliente sem carrinho: a posição 1 "
                                                           "não existe na linha 1",
        "Oi {{ nome }}: {% for i in itens %}{{ i.nome }}, {{ i.nome }}, {{ i.nome }}, {{ i.nome }}, {{ i.nome }}, "
        "{{ i.nome }}, {{ i.nome }}, {{ i.nome }}\n{% endfor %}": "para um carrinho com 30 itens: o texto passou de "
                                                               "4.096 caracteres",
        "{% if cupom or itens %}Volte!{% endif %}": "para um cliente sem carrinho e sem cupom: a mensagem ficou vazia",
    }
    for source, message in cases.items():
        with pytest.raises(TemplateRenderError) as refused:
            validate_template(source)
        assert refused.value.message.startswith(message), source


@pytest.mark.parametrize("source,message", [
    ("Oi {{ nome }}!\n{{ cupon }}", "variável desconhecida: 'cupon' na linha 2"),
    ("{{ nome|center(20) }}", "o filtro center não é permitido na linha 1"),
    ("Oi\n{{ nome }}\n{{ nome.upper() }}", "chamadas de função não são permitidas na linha 3"),
    ("{% for c in nome %}{{ c }}{% endfor %}", "só é possível repetir (for) sobre listas como itens na linha 1"),
    ("{% for i in itens %}{{ i.preço }}{% endfor %}", "i não tem o campo preço na linha 1"),
    ("{{ itens.nome }}", "itens é uma lista: escreva {{ itens }} para mostrá-la inteira, ou use "
                         "{% for item in itens %} para chegar a cada item na linha 1"),
    ("{{ nome + '!' }}", "contas (+, -, *, /, //, %) só podem ser feitas com números na linha 1; para juntar "
                         "textos use ~"),
    ("{{ itens[loop] }}", "entre colchetes use só um nome ou número fixo, como itens[0] na linha 1"),
    ("{% include 'x' %}", "incluir outros textos não é permitido na linha 1"),
    ("{% extends 'x' %}", "estender outros textos ({% extends %}) não é permitido na linha 1"),
    ("{% import 'x' as y %}", "importar outros textos não é permitido na linha 1"),
    ("{% block b %}x{% endblock %}", "blocos ({% block %}) não são permitidos na linha 1"),
    ("{% filter upper %}x{% endfilter %}", "o bloco {% filter %} não é permitido: aplique o filtro na "
                                           "variável, como {{ nome|upper }} na linha 1"),
    ("{% call x() %}y{% endcall %}", "o bloco {% call %} não é permitido na linha 1"),
    ("{{ {'a': 1} }}", "dicionários ({...}) não são permitidos na linha 1"),
    ("{{ nome is palindrome }}", "o teste palindrome não existe na linha 1"),
    ("{% for i in itens %}{{ loop.cycle('a', 'b') }}{% endfor %}", "chamadas de função não são permitidas na linha 1"),
    ("{{ loop.index }}", "variável desconhecida: 'loop' na linha 1"),
    ("{{ nome|join(*itens) }}", "argumentos com * ou ** não são permitidos na linha 1"),
])
def test_structure_errors_name_the_line_in_portuguese(source, message):
    with pytest.raises(TemplateRenderError) as refused:
        validate_template(source)
    assert refused.value.message == message


@pytest.mark.parametrize("source,message", [
    ("Oi\n{{ nome", "faltou fechar `}}` na linha 2"),
    ("{% if nome %}Oi", "faltou fechar o bloco `{% if %}` com `{% endif %}` na linha 1"),
    ("{% for i in itens %}{{ i.nome }}", "faltou fechar o bloco `{% for %}` com `{% endfor %}` na linha 1"),
    ("Oi\n{{ nome }}\n{% endfor %}", "`{% endfor %}` sem `{% for %}` correspondente na linha 3"),
    ("{% for i in itens %}x{% endif %}",
     "`{% endif %}` sem `{% if %}` correspondente na linha 1; antes, feche o bloco `{% for %}` com `{% endfor %}`"),
    ("{{ nome }", "faltou fechar `}}` na linha 1; a variável abre com duas chaves e fecha com duas"),
    ("{% if nome", "faltou fechar `%}` na linha 1"),
    ("{{ 'Oi }}", "um texto entre aspas ficou sem fechar na linha 1"),
    ("{# nota", "faltou fechar o comentário com `#}` na linha 1"),
    ("{% foo %}", "comando desconhecido: `{% foo %}` na linha 1"),
    ("{{ nome x }}", "esperava `}}`, mas encontrou `x` na linha 1"),
    ("{{ }}", "faltou uma variável ou valor antes de `}}` na linha 1"),
    ("{{ (nome }}", "faltou fechar o parêntese `)` na linha 1"),
    ("{{ nome $ }}", "caractere inesperado: $ na linha 1"),
])
def test_syntax_errors_are_explained_in_portuguese(source, message):
    with pytest.raises(TemplateRenderError) as refused:
        validate_template(source)
    assert refused.value.message == message
    with pytest.raises(TemplateRenderError) as rendered:
        render_text(source, SAMPLE)
    assert rendered.value.message == message


def test_runtime_errors_name_the_line():
    with pytest.raises(TemplateRenderError) as refused:
        validate_template("Oi {{ nome }}\ntotal\n{{ 1/0 }}")
    assert refused.value.message == "divisão por zero na linha 3"


# --- what merchants already use keeps working, exactly as before -------------------------------------------------


def _as_before(source: str, variables: dict) -> str:
    """The previous sandbox: stock Jinja with the same options."""
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True,
                               keep_trailing_newline=False)
    env.filters["brl"] = brl
    return env.from_string(source).render(**variables).strip()


def test_the_previous_default_recovery_template_still_validates_and_renders_as_before():
    # Stores that saved their settings keep the old default (a loop over itens): it renders exactly as it did.
    sample = sample_variables(ZoneInfo("America/Sao_Paulo"))  # fresh: the coupon's expiry follows the clock
    assert validate_template(LEGACY_DEFAULT_TEMPLATE, sample) == _as_before(LEGACY_DEFAULT_TEMPLATE, sample)
    assert "1x Tênis Corrida Preto, 2x Camiseta Básica Branca (R$\xa0419,70)" in render_text(LEGACY_DEFAULT_TEMPLATE,
                                                                                           SAMPLE)


def test_the_default_recovery_template_reads_plainly_and_lists_the_cart():
    assert "{% for" not in DEFAULT_TEMPLATE and "item." not in DEFAULT_TEMPLATE
    assert "{{ itens }}" in DEFAULT_TEMPLATE
    text = validate_template(DEFAULT_TEMPLATE)
    assert text.splitlines()[:4] == [
        "Oi, Ana! Vimos que você deixou alguns itens esperando na Loja Demo.",
        "1x Tênis Corrida Preto (R$\xa0299,90)",
        "2x Camiseta Básica Branca (R$\xa059,90 cada)",
        "Total: R$\xa0419,70",
    ]
    assert "CartLine" not in text and "[" not in text
    no_cart = render_text(DEFAULT_TEMPLATE, {**SAMPLE, "itens": [], "total": ""})
    assert "Total" not in no_cart and no_cart.startswith("Oi, Ana! Vimos que")


def test_itens_prints_as_a_ready_list_and_loops_still_reach_each_line():
    variables = build_variables(
        name="Ana", store_name="Loja", items=[(f"Produto {n}", 1 + n % 2, Decimal("10")) for n in range(13)],
        total=Decimal("200"), checkout_url="https://x/c", coupon_code=None, coupon_description=None,
        coupon_url=None, coupon_expires_at=None, timezone=ZoneInfo("America/Sao_Paulo"))
    printed = render_text("{{ itens }}", variables).splitlines()
    assert printed[0] == "1x Produto 0 (R$\xa010,00)" and printed[1] == "2x Produto 1 (R$\xa010,00 cada)"
    assert len(printed) == 11 and printed[-1] == "e mais 3 itens"
    assert render_text("{% for i in itens %}{{ i.nome }};{% endfor %}", variables).count(";") == 10
    assert render_text("{{ itens|first }} | {{ itens|length }} | {{ outros_itens }}", variables) == \
        "1x Produto 0 (R$\xa010,00) | 10 | 3"
    assert render_text("{% for i in itens %}{{ i }}\n{% endfor %}", variables).splitlines() == printed[:10]
    assert render_text("{{ itens[:2] }}", variables) == "1x Produto 0 (R$\xa010,00), 2x Produto 1 (R$\xa010,00 cada)"
    # Any other list printed as it is reads as its items, not as Python's repr.
    assert render_text("{{ opcoes }}", {"opcoes": ["40", "41", "42"]}) == "40, 41, 42"
    assert render_text("{{ itens }}", {"itens": []}) == ""


def test_the_default_crm_suggestion_validates_and_renders_as_before():
    assert validate_suggestion(DEFAULT_SUGGESTED_MESSAGE) == _as_before(DEFAULT_SUGGESTED_MESSAGE, SUGGESTION_SAMPLE)
    with pytest.raises(TemplateRenderError) as refused:
        validate_suggestion("Oi {{ nome }}, sou {{ vendedor }}{% if produtos %}{{ produtos }}{% endif %}"
                            "{% if not codigo_vendedor %}{{ codigo }}{% endif %}")
    assert refused.value.message == "variável desconhecida: 'codigo' na linha 1"
    with pytest.raises(TemplateRenderError) as shape:
        validate_suggestion("{% if produtos %}Vi que você gostou de {{ produtos }}{% endif %}")
    assert shape.value.message == "para uma oportunidade sem produtos: a mensagem ficou vazia"


def test_every_default_bot_text_validates_and_renders_as_before(session):
    base = {"loja": "Loja Demo"}
    menu = _as_before(texts.default_source("menu"), base)
    for key in texts.available_keys():
        source = texts.default_source(key)
        assert texts.preview(session, key, source, store_name="Loja Demo") == \
            _as_before(source, {**base, "menu": menu, **texts.SAMPLES[key]}), key
        for label, variables in texts.validation_shapes(key, {**base, **({} if key == "menu" else {"menu": menu})}):
            assert render_text(source, variables) == _as_before(source, variables), (key, label)


def test_bot_texts_are_checked_for_every_shape_when_saved(session):
    with pytest.raises(TemplateRenderError) as refused:
        texts.save_override(session, "greeting", "Olá, {{ nome[0] }}!", store_name="Loja Demo")
    assert refused.value.message == "para um cliente sem nome: a posição 0 não existe na linha 1"
    with pytest.raises(TemplateRenderError) as unknown:
        texts.save_override(session, "menu", "Menu da {{ loja }}\n{{ menu }}", store_name="Loja Demo")
    assert unknown.value.message == "variável desconhecida: 'menu' na linha 2"
    with pytest.raises(TemplateRenderError) as loop:
        texts.preview(session, "search_results", "{% for p in produtos %}{{ p.nome|center(9) }}{% endfor %}",
                      store_name="Loja Demo")
    assert loop.value.message == "o filtro center não é permitido na linha 1"
    with pytest.raises(TemplateRenderError) as no_list:
        texts.preview(session, "checkout", "{% for x in link %}{{ x }}{% endfor %}", store_name="Loja Demo")
    assert no_list.value.message == "este texto não tem listas para repetir com for na linha 1"
    saved = texts.save_override(session, "cart_summary", "{% for i in itens %}{{ loop.index }}. {{ i.nome }}\n"
                                "{% else %}Carrinho vazio{% endfor %}Total: {{ total }}", store_name="Loja Demo")
    assert saved.body.startswith("{% for i in itens %}")


def test_a_stored_override_that_breaks_the_rules_falls_back_to_the_default(session):
    session.add(BotText(key="greeting", body="{% set x = nome ~ nome %}{{ x }}{{ nome|center(200000000) }}"))
    session.flush()
    assert texts.render(session, "greeting", store_name="Loja", nome="Bia").startswith("Olá, Bia!")


def test_common_templates_still_work_as_before():
    source = (
        "Oi {{ nome|title }}! {% if itens %}Você deixou {{ itens|length }} "
        "{{ 'item' if itens|length == 1 else 'itens' }}: {{ itens|join(', ', attribute='nome') }}; o primeiro é "
        "{{ (itens|first).nome|lower }} e custa {{ itens[0].preco }}.{% endif %}\n"
        "{% for i in itens if i.quantidade > 1 %}{{ loop.index }}/{{ loop.length }} {{ i.quantidade * 2 }}"
        "{% endfor %}\n{{ cupom|default('sem cupom', true) }} {{ loja|upper|truncate(9) }}"
        "{{ link_checkout|truncate(12, true, '…', 0) }} "
        "{{ desconto|replace('%', ' por cento') }} {{ (7.456)|round(1) }} {{ '12'|int + 1 }} {{ -3|abs }} "
        "{{ 5|brl }} {{ nome[0] }}{{ nome[1:] }} {{ nome is string }} {{ 'Ana' in ['Ana', 'Bia'] }}")
    rendered = validate_template(source, SAMPLE)
    assert rendered == _as_before(source, SAMPLE)
    assert "deixou 2 itens: Tênis Corrida Preto, Camiseta Básica Branca; o primeiro é tênis corrida preto" in rendered
    assert rendered.endswith("LOJA DEMOhttps://loj… 10 por cento de desconto 7.5 13 3 R$\xa05,00 Ana True True")


def test_shapes_and_schema_are_derived_from_the_sample():
    schema = Schema.from_sample(SAMPLE)
    assert schema.names["nome"].kind == "text" and schema.names["itens"].kind == "list"
    assert set(schema.names["itens"].element.fields) == {"nome", "quantidade", "preco"}
    assert schema.names["itens"].element.fields["quantidade"].kind == "number"
    assert schema.list_names() == ["itens"]
    assert Shape.of([]).element.kind == "any" and Shape.of(None).kind == "any"
    check_structure("{% for i in itens %}{{ i.nome }}{% endfor %}", schema)
    with pytest.raises(TemplateRenderError, match="variável desconhecida: 'x'"):
        check_structure("{{ x }}", schema)


def test_validate_returns_the_first_rendering_and_labels_the_failing_shape():
    assert validate("Oi {{ nome }}", {"nome": "Ana"}, [{"nome": "Ana"}, {"nome": "Bia"}]) == "Oi Ana"
    with pytest.raises(TemplateRenderError) as refused:
        validate("{{ nome }}", {"nome": "Ana"}, [{"nome": "Ana"}, {"nome": ""}], ["", "para um cliente sem nome"])
    assert refused.value.message == "para um cliente sem nome: o texto ficou vazio"


def test_counted_lists_behave_like_the_lists_they_wrap():
    wrapped = CountedList([1, 2, 3])
    assert len(wrapped) == 3 and wrapped[0] == 1 and list(wrapped[1:]) == [2, 3] and 2 in wrapped
    assert wrapped == [1, 2, 3] and list(reversed(wrapped)) == [3, 2, 1]
    assert str(wrapped) == "1, 2, 3" and repr(wrapped) == "[1, 2, 3]"  # printed, a list reads as its items
    assert render_text("{{ itens }}", {"itens": [1, 2]}) == "1, 2"
    assert render_text("{{ itens|last }}{{ itens|first }}{{ itens|length }}", {"itens": (1, 2)}) == "212"
    assert MAX_ITERATIONS == 10_000 and MAX_OUTPUT_CHARS == 4096


FRAGMENTS = ["{{ ", " }}", "{% ", " %}", "if ", "for ", "in ", "endif", "endfor", "else", "nome", "itens", "i", ".",
             "nome", "|", "upper", "join", "center", "(", ")", "[", "]", "0", "9", "'", "~", "*", "**", "%", "+",
             "-", "/", "range", "loop", ".index", "set ", "=", ",", "x", " ", "\n", "{#", "#}", "not ", "and ",
             "__class__", "cupom", "replace", "''", "9**9", "macro ", "call", "endmacro", "lipsum"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30))
def test_anything_a_merchant_types_is_either_accepted_or_refused_in_portuguese(fragments):
    source = "".join(fragments)
    for check in (validate_template, lambda text: render_text(text, BIG_CART)):
        try:
            check(source)
        except TemplateRenderError as exc:
            assert exc.message and "Traceback" not in exc.message


@pytest.mark.parametrize("source,message", [
    ("Oi {{ nome }}!\nSeu cupom: {{ cupom }", "faltou fechar `}}` na linha 2; a variável abre com duas chaves e "
                                             "fecha com duas"),
    ("Oi {{ nome }} {{", "faltou fechar `}}` na linha 1"),
    ("Oi\n{% if cupom }x{% endif %}", "faltou fechar `%}` na linha 2"),
    ("{{ nome + }}", "faltou uma variável ou valor antes de `}}` na linha 1"),
    ("Oi\n\n{{ nome|round }}", "um filtro ou teste foi usado com um valor de outro tipo (por exemplo, length num "
                               "número ou round num texto) na linha 3"),
    ("{{ nome > 1 }}", "só é possível comparar (<, >, <=, >=) números com números, ou textos com textos na linha 1"),
    ("{{ nome|replace('a') }}", "o filtro ou teste replace recebeu valores a mais ou a menos entre parênteses na "
                                "linha 1"),
    ("{{ nome|round(2, 'x') }}", "o filtro round aceita 'common', 'ceil' ou 'floor' na linha 1"),
])
def test_what_merchants_mistype_is_said_in_portuguese_with_the_line(source, message):
    with pytest.raises(TemplateRenderError) as refused:
        validate_template(source)
    assert refused.value.message == message
    for english in ("unexpected", "expected", "TypeError", "not supported", "argument", "method"):
        assert english not in refused.value.message


def test_no_syntax_error_falls_back_to_jinjas_english():
    sources = ["{{ nome }", "{{", "{%", "{% if %}", "{{ nome|upper( }}", "{{ 1 ++ }}", "{% for x in %}", "{{ 'a' ~ }}",
               "{% if cupom == %}x{% endif %}", "{{ nome is }}", "{% for %}", "{{ nome.}}", "{{ nome !}}"]
    for source in sources:
        with pytest.raises(TemplateRenderError) as refused:
            validate_template(source)
        text = refused.value.message
        assert "na linha 1" in text, source
        assert not any(word in text for word in ("unexpected", "expected", "Encountered", "template", "token")), \
            (source, text)


def test_bot_text_syntax_errors_are_said_in_portuguese_with_the_line(session):
    with pytest.raises(TemplateRenderError) as refused:
        texts.save_override(session, "greeting", "Olá!\n{{ loja }", store_name="Loja Demo")
    assert refused.value.message.startswith("faltou fechar `}}` na linha 2")
