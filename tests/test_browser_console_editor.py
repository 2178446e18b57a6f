"""Issue 20 in a real browser: the recovery message editor's chips and errors, and the catalog import's result
where the merchant is looking (laptop, and a 390×844 phone without scrolling)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from models import Product, Variant
from models.recovery import DEFAULT_TEMPLATE
from recovery.config import load_settings
from tests.browser_helpers import save_screenshot
from tests.test_browser import browser, log_in, page, server  # noqa: F401  (the browser tests' fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
BROKEN_QUOTE = 'produto;sku;nome;preço;estoque\nA;A-1;Produto "quebrado;10;1\nB;B-1;Meia;5;2\n'
SHORT_LINE = "produto;sku;nome;preço;estoque\nA;A-1;Meia;10;3\nB;B-1;Bota\n"
GOOD = "produto;sku;nome;preço;estoque\nA;A-1;Meia Esportiva;10;3\nB;B-1;Bota Couro;199,90;2\n"


def _counts(db) -> tuple[int, int]:
    with db.session() as session:
        return (session.scalar(select(func.count()).select_from(Product)),
                session.scalar(select(func.count()).select_from(Variant)))


def _seed_products(db, count: int) -> None:
    """Enough products that the list is far longer than a screen (the errors used to sit under it)."""
    with db.session() as session:
        for n in range(count):
            product = Product(key=f"p{n:03d}", name=f"Produto de vitrine {n:03d}", price=Decimal("10.00"),
                              active=True)
            product.variants.append(Variant(sku=f"p{n:03d}-u", price=Decimal("10.00"), stock=5, active=True))
            session.add(product)
        session.commit()


def _upload(tab, name: str, content: str) -> None:
    if not tab.locator("#arquivo").is_visible():
        tab.locator("summary", has_text="Importar planilha").click()
    tab.locator("#arquivo").set_input_files({"name": name, "mimeType": "text/csv", "buffer": content.encode()})
    tab.get_by_role("button", name="Importar").click()


def _in_viewport(tab, locator) -> bool:
    box = locator.bounding_box()
    size = tab.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= size["height"] and box["x"] >= 0


# --- item 1: the message editor -------------------------------------------------------------------------------


def test_the_itens_chip_previews_a_readable_list_and_a_syntax_error_is_explained(page, server):  # noqa: F811
    from playwright.sync_api import expect

    log_in(page)
    page.goto("/console/recuperacao/mensagem")
    editor = page.locator("#template")
    preview = page.locator("#template-preview")
    editor.fill("Oi {{ nome }}! Seu carrinho:\n")
    editor.press("Control+End")
    page.locator("[data-chips-for=template] [data-variable=itens]").click()
    expect(editor).to_have_value("Oi {{ nome }}! Seu carrinho:\n{{ itens }}")
    expect(preview).to_have_text("Oi Ana! Seu carrinho:\n1x Tênis Corrida Preto (R$\xa0299,90)\n"
                                 "2x Camiseta Básica Branca (R$\xa059,90 cada)")
    assert "CartLine" not in preview.inner_text()
    # A bare count reads badly alone ("0"): it is not offered as a chip, only in the table of variables.
    assert page.locator("[data-chips-for=template] [data-variable=outros_itens]").count() == 0
    # Every chip inserted as it is previews without an error and without Python's words.
    for chip in page.locator("[data-chips-for=template] [data-variable]").all():
        editor.fill("Oi! ")
        editor.press("Control+End")
        chip.click()
        name = chip.get_attribute("data-variable")
        expect(editor).to_have_value("Oi! {{ " + name + " }}")
        expect(page.locator("#template-preview-error")).to_have_text("")
        expect(preview).not_to_be_empty()
        assert not any(word in preview.inner_text() for word in ("CartLine", "None", "[", "{{")), name

    editor.fill("Oi {{ nome }}!\nSeu cupom: {{ cupom }")
    expect(page.locator("#template-preview-error")).to_have_text(
        "faltou fechar `}}` na linha 2; a variável abre com duas chaves e fecha com duas")
    expect(preview).to_have_text("")
    expect(editor).to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Salvar mensagem").click()
    expect(page.locator("#template-error")).to_contain_text("faltou fechar `}}` na linha 2")
    expect(page.get_by_role("alert")).to_contain_text("nada foi salvo")
    with server.db.session() as session:
        assert load_settings(session).template == DEFAULT_TEMPLATE  # nothing saved


def test_the_default_message_reads_plainly_in_the_editor(page, server):  # noqa: F811
    from playwright.sync_api import expect

    log_in(page)
    page.goto("/console/recuperacao/mensagem")
    source = page.locator("#template").input_value()
    assert "{% for" not in source and "{{ itens }}" in source
    expect(page.locator("#template-preview")).to_contain_text("1x Tênis Corrida Preto (R$\xa0299,90)")
    expect(page.locator("#template-preview")).to_contain_text("Total: R$\xa0419,70")
    expect(page.locator("#template-preview-error")).to_have_text("")


# --- item 2: the catalog import's result at the top ------------------------------------------------------------


def test_a_refused_catalog_file_is_explained_at_the_top_and_changes_nothing(page, server):  # noqa: F811
    from playwright.sync_api import expect

    _seed_products(server.db, 60)
    before = _counts(server.db)
    log_in(page)
    page.goto("/console/catalogo")
    _upload(page, "catalogo.csv", BROKEN_QUOTE)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Nada foi importado")
    assert _in_viewport(page, alert), "the result must be where the merchant is looking, without scrolling"
    errors = page.locator(".import-errors tbody tr")
    expect(errors.first).to_contain_text("2")
    expect(errors.first).to_contain_text("nome")
    expect(errors.first).to_contain_text("aspas")
    assert _counts(server.db) == before
    with server.db.session() as session:
        assert session.scalar(select(Product).where(Product.name.like("%quebrado%"))) is None

    _upload(page, "catalogo.csv", SHORT_LINE)
    expect(page.get_by_role("alert")).to_contain_text("Nada foi importado")
    expect(page.locator(".import-errors")).to_contain_text("a linha tem menos colunas que o cabeçalho")
    expect(page.locator(".import-errors tbody tr").first).to_contain_text("3")
    assert _counts(server.db) == before  # the good first line was not imported either

    _upload(page, "catalogo.xlsx", "PK")
    row = page.locator(".import-errors tbody tr").first
    expect(row).to_contain_text("arquivo")
    expect(row).not_to_contain_text("file")


def test_a_catalog_import_result_is_visible_without_scrolling_on_a_phone(browser, server, request):  # noqa: F811
    from playwright.sync_api import expect

    _seed_products(server.db, 60)
    context = browser.new_context(base_url=server.url, locale="pt-BR", viewport=PHONE, is_mobile=True)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    try:
        log_in(tab)
        tab.goto("/console/catalogo")
        _upload(tab, "catalogo.csv", BROKEN_QUOTE)
        alert = tab.get_by_role("alert")
        expect(alert).to_contain_text("Nada foi importado")
        assert tab.evaluate("window.scrollY") == 0
        assert _in_viewport(tab, alert), alert.bounding_box()
        assert _in_viewport(tab, tab.locator(".import-errors tbody tr").first)
        assert tab.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling

        _upload(tab, "catalogo.csv", GOOD)
        done = tab.get_by_role("status").filter(has_text="Catálogo importado")
        expect(done).to_contain_text("2 produtos novos")
        assert _in_viewport(tab, done), done.bounding_box()
        assert tab.locator(".import-errors").count() == 0
    except Exception:
        save_screenshot(tab, request.node.nodeid)
        raise
    finally:
        context.close()
