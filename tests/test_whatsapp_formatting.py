"""The console shows messages as WhatsApp does (web.formatting.whatsapp_html, the ``whatsapp`` filter) without ever
letting a shopper's text become HTML, and phone numbers as Brazilians write them (the ``telefone`` filter)."""

from __future__ import annotations

import pytest
from markupsafe import Markup

from web.formatting import whatsapp_html


@pytest.mark.parametrize("text, html", [
    ("Olá, bem-vinda à *Loja Demo*!", "Olá, bem-vinda à <strong>Loja Demo</strong>!"),
    ("_itálico_ e ~riscado~", "<em>itálico</em> e <s>riscado</s>"),
    ("```SKU-01 *x*```", "<code>SKU-01 *x*</code>"),  # nothing is formatted inside monospace
    ("*_negrito e itálico_*", "<strong><em>negrito e itálico</em></strong>"),
    ("(*Total: R$ 10*)", "(<strong>Total: R$ 10</strong>)"),
    ("*a* e *b*", "<strong>a</strong> e <strong>b</strong>"),
    # Not markers: inside words, around spaces, across lines, unbalanced.
    ("2*3*4 = 24", "2*3*4 = 24"),
    ("https://loja.example/p/tenis_preto_42", "https://loja.example/p/tenis_preto_42"),
    ("nome_do_arquivo.csv", "nome_do_arquivo.csv"),
    ("* não * é", "* não * é"),
    ("*começa\ne termina*", "*começa\ne termina*"),
    ("só um *asterisco", "só um *asterisco"),
    ("", ""),
])
def test_formatting_is_rendered_as_whatsapp_does(text, html):
    rendered = whatsapp_html(text)
    assert isinstance(rendered, Markup) and str(rendered) == html


@pytest.mark.parametrize("attack", [
    "<script>alert(1)</script>",
    "*<img src=x onerror=alert(1)>*",
    "_<a href='javascript:alert(1)'>x</a>_",
    "```</code><script>alert(1)</script>```",
    "~\"><svg onload=alert(1)>~",
    "*x</strong><script>alert(1)</script><strong>*",
    "&lt;script&gt; já escapado",
    "*_~```<iframe>```~_*",
])
def test_a_shoppers_text_never_becomes_html(attack):
    html = str(whatsapp_html(attack))
    for tag in ("<script", "<img", "<a ", "<svg", "<iframe", "</code><", "onerror=alert(1)>"):
        assert tag not in html
    # Only our own tags are left once the escaped text is taken out.
    import re

    assert set(re.findall(r"</?(\w+)", html)) <= {"strong", "em", "s", "code"}
    assert "&lt;" in html or "<" not in attack


def test_deep_or_long_markers_stay_bounded():
    html = str(whatsapp_html("*" * 3000 + "x" + "*" * 3000))
    assert html.count("<strong>") <= 3 and html.count("<strong>") == html.count("</strong>")
    assert str(whatsapp_html("*a " * 2000)).count("<strong>") == 0


def test_the_filters_are_registered_for_pages(app):
    env = app.jinja_env
    assert str(env.from_string("{{ t|whatsapp }}").render(t="*oi* <b>")) == "<strong>oi</strong> &lt;b&gt;"
    phone = env.from_string("{{ p|telefone }}")
    assert phone.render(p="+5511988881001") == "+55 (11) 98888-1001"  # mobile, nine digits
    assert phone.render(p="+551133334444") == "+55 (11) 3333-4444"  # landline, eight
    assert phone.render(p="+14155238886") == "+1 415-523-8886"  # other countries: international format
    assert phone.render(p="+351912345678") == "+351 912 345 678"
    assert phone.render(p="não é telefone") == "não é telefone"  # as it came
    assert phone.render(p=None) == "—"
