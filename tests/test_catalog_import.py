"""Catalog import: our CSV/JSON (one row per variant), today's one-row-per-product files, Shopify's and Nuvemshop's
product exports; every row or none, every problem by line and field; the CLI and the console upload.

Runs on both backends: the embedded SQLite by default, PostgreSQL with DATABASE_URL set."""

from __future__ import annotations

import importlib.util
import io
import json
import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

import catalog.index
from catalog.importing import (
    MAX_FILE_BYTES,
    CatalogImportError,
    ImportReport,
    RowError,
    import_catalog,
    parse_price,
    read_catalog,
)
from catalog.importing.ours import _legacy_variant_sku
from crm.users import create_user
from models import Product, Variant

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATA = Path(__file__).resolve().parent / "data" / "catalogs"
PASSWORD = "uma-senha-bem-longa"


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def product(session, key: str) -> Product | None:
    return session.scalar(select(Product).where(Product.key == key))


def variant(session, sku: str) -> Variant | None:
    return session.scalar(select(Variant).where(Variant.sku == sku))


def counts(session) -> tuple[int, int]:
    return (session.scalar(select(func.count()).select_from(Product)),
            session.scalar(select(func.count()).select_from(Variant)))


def refused(session, path: Path, **kwargs) -> list[RowError]:
    before = counts(session)
    with pytest.raises(CatalogImportError) as info:
        import_catalog(session, path, **kwargs)
    errors = info.value.errors
    assert errors and all(isinstance(e, RowError) and e.field and e.message and "\n" not in e.message
                          for e in errors)
    assert counts(session) == before
    return errors


def where(errors: list[RowError]) -> list[tuple[int, str]]:
    return [(e.line, e.field) for e in errors]


def sizes_of(p: Product) -> dict[str, tuple]:
    return {v.sku: (v.size, v.color, v.price, v.stock, v.active) for v in p.variants}


# --- our format ------------------------------------------------------------------------------------------------


def test_our_csv_as_excel_saves_it_groups_variants_under_their_product(session):
    report = import_catalog(session, DATA / "ours_excel_semicolon.csv")
    assert report == ImportReport(format="csv", products_created=3, variants_created=5)
    assert (report.created, report.updated) == (3, 0)

    run = product(session, "TENIS-RUN")
    assert run.name == "Tênis Run Leve" and run.category == "Calçados" and run.brand == "Passo Firme"
    # A quoted field keeps its ';', its doubled quotes and its line break.
    assert run.description == 'Solado de borracha; cabedal "respirável".\nPalmilha macia, lavável.'
    assert run.image_url == "https://loja.example/img/run.jpg"  # the first image wins; colours may carry their own
    assert run.attributes == {"material": "tecido"}  # empty on the later rows: given once
    assert run.price == Decimal("299.90") and isinstance(run.price, Decimal) and run.active is True
    assert sizes_of(run) == {
        "TENIS-RUN-PT-39": ("39", "Preto", Decimal("299.90"), 4, True),
        "TENIS-RUN-PT-40": ("40", "Preto", Decimal("299.90"), 0, True),
        "TENIS-RUN-AZ-40": ("40", "Azul-marinho", Decimal("299.90"), 12, True),  # "12.0" is twelve
    }
    az = variant(session, "TENIS-RUN-AZ-40")
    assert az.options == {"Tamanho": "40", "Cor": "Azul-marinho"} and az.compare_at_price == Decimal("349.90")
    assert variant(session, "TENIS-RUN-PT-40").compare_at_price is None
    assert variant(session, "TENIS-RUN-PT-40").available is False  # 0 = sold out

    assert product(session, "VESTIDO-SEDA").price == Decimal("1299.90")  # "R$ 1.299,90"
    linho = product(session, "CAMISA-LINHO")
    assert linho.active is False and linho.variants[0].active is False  # ativo = não
    assert linho.variants[0].stock is None  # empty stock: the shop does not track it


def test_our_csv_with_english_headers_and_product_fields_on_every_row(session):
    report = import_catalog(session, DATA / "ours_english_comma.csv")
    assert (report.format, report.products_created, report.variants_created) == ("csv", 2, 4)
    cap = product(session, "CAP-01")
    assert cap.name == "Boné Aba Curva, Bordado" and cap.description == 'Boné com bordado "Trilha" e fecho ajustável'
    assert cap.url == "https://loja.example/bone" and cap.attributes == {"fabric": "sarja"}
    short = product(session, "SHORT-02")
    # The G costs less but is inactive: the product's price is the lowest *active* price.
    assert short.price == Decimal("89.90") and variant(session, "SHORT-02-G").active is False
    assert [v.size for v in short.variants] == ["P", "M", "G"]


def test_our_json_with_attributes_and_options(session):
    report = import_catalog(session, DATA / "ours.json")
    assert (report.format, report.products_created, report.variants_created) == ("json", 2, 4)
    puffer = product(session, "JAQUETA-PUFFER")
    assert puffer.description == "Jaqueta acolchoada com capuz removível.\nResistente à água."
    assert puffer.attributes == {"material": "nylon", "gênero": "feminino", "tags": ["inverno", "lançamento"]}
    assert variant(session, "PUFFER-PT-M").compare_at_price == Decimal("459.90")
    assert variant(session, "PUFFER-VN-M").stock == 12 and variant(session, "PUFFER-PT-G").stock == 0
    kit = variant(session, "KIT-PANELAS-5")
    assert kit.options == {"Quantidade": "5 peças", "Cor": "Grafite"} and kit.color == "Grafite" and kit.size is None
    assert kit.price == Decimal("1299.90") and kit.stock is None


def test_product_fields_that_disagree_between_rows_name_both_lines(session, tmp_path):
    path = write(tmp_path, "c.csv", "produto;sku;nome;preço;marca\n"
                                    "CAM;CAM-P;Camiseta;50;Trilha\n"
                                    "CAM;CAM-M;;50;\n"
                                    "CAM;CAM-G;Camiseta Lisa;50;Trilha\n")
    [error] = refused(session, path)
    assert (error.line, error.field) == (4, "nome") and "linha 2" in error.message and "Camiseta Lisa" in error.message


def test_a_product_without_a_name_on_any_row(session, tmp_path):
    path = write(tmp_path, "c.csv", "produto;sku;nome;preço\nCAM;CAM-P;;50\nCAM;CAM-M;;50\n")
    [error] = refused(session, path)
    assert (error.line, error.field) == (2, "nome") and "todas as suas linhas" in error.message


def test_compare_at_price_must_be_above_the_price(session, tmp_path):
    path = write(tmp_path, "c.csv", "produto,sku,nome,preço,preço de\nA,A-1,Camiseta,50,40\nA,A-2,Camiseta,50,50\n")
    assert where(refused(session, path)) == [(2, "preço de"), (3, "preço de")]


@pytest.mark.parametrize("raw,expected", [
    ("299.90", "299.90"), ("299,90", "299.90"), ("R$ 1.299,90", "1299.90"), ("1299", "1299.00"),
    ("R$1299,9", "1299.90"), ("r$ 59,90", "59.90"), ("1,299.90", "1299.90"), ("999999.99", "999999.99"),
    (" 10 ", "10.00"), (12, "12.00"), (Decimal("0.5"), "0.50"),
])
def test_brazilian_prices(raw, expected):
    value = parse_price(raw)
    assert isinstance(value, Decimal) and value == Decimal(expected) and str(value) == expected


@pytest.mark.parametrize("raw", ["0", "-10", "0,00", "1000000", "R$ 1.000.000,00", "abc", "12,345", "1.299",
                                 "10.999", "1,2,3", "R$", True, [10], {"v": 1}, float("nan")])
def test_bad_prices(raw):
    with pytest.raises(ValueError) as info:
        parse_price(raw)
    assert str(info.value)


@pytest.mark.parametrize("cell,stock", [("", None), ("0", 0), ("12", 12), ("12.0", 12), ("12,00", 12), (" 7 ", 7)])
def test_stock_cells(session, tmp_path, cell, stock):
    import_catalog(session, write(tmp_path, "c.csv", f"produto;sku;nome;preço;estoque\nA;A-1;Meia;10;{cell}\n"))
    assert variant(session, "A-1").stock == stock


@pytest.mark.parametrize("cell,words", [("-1", "negativo"), ("12.5", "inteiro"), ("1.000", "ambíguo"),
                                        ("doze", "inválido"), ("99999999999", "alto demais")])
def test_bad_stock_cells(session, tmp_path, cell, words):
    [error] = refused(session, write(tmp_path, "c.csv", f"produto;sku;nome;preço;estoque\nA;A-1;Meia;10;{cell}\n"))
    assert (error.line, error.field) == (2, "estoque") and words in error.message


def test_every_bad_row_is_reported_with_the_files_own_column_names_and_nothing_is_written(session, tmp_path):
    session.add(Product(key="KEEP", name="Existente", price=Decimal("1.00"),
                        variants=[Variant(sku="KEEP-1", price=Decimal("1.00"), options={})]))
    session.flush()
    path = write(tmp_path, "bad.csv",
                 "product,sku,name,price,url,active,stock\n"
                 "OK,OK-1,Produto bom,10,,,\n"                              # 2: fine
                 f"OK,{'X' * 65},,10,,,\n"                                  # 3: sku too long
                 "OK,,,10,,,\n"                                             # 4: sku empty
                 "OK2,OK2-1,,0,,,\n"                                         # 5: price zero (name: see line 5)
                 "OK3,OK3-1,Link,10,ftp://x,talvez,\n"                      # 6: url and active
                 f"OK4,OK4-1,{'N' * 201},\"10,999\",,,\n"                    # 7: name too long, 3 decimals
                 "OK5,OK5-1,Colunas,10,,,,a mais\n"                          # 8: more cells than the header
                 "KEEP,KEEP-1,Atualizado,abc,,,\n")                          # 9: price
    errors = refused(session, path)
    assert where(errors) == [(3, "sku"), (4, "sku"), (5, "price"), (5, "name"), (6, "url"), (6, "active"),
                             (7, "name"), (7, "price"), (8, "linha"), (9, "price")]
    assert product(session, "KEEP").name == "Existente" and variant(session, "KEEP-1").price == Decimal("1.00")


def test_missing_required_columns_are_reported_against_the_header(session, tmp_path):
    errors = refused(session, write(tmp_path, "h.csv", "produto;sku;nome;estoque\nA;A-1;Meia;3\n"))
    assert where(errors) == [(1, "preço")] and "preco" in errors[0].message and "price" in errors[0].message
    assert where(refused(session, write(tmp_path, "h2.csv", "produto;nome;preço\nA;B;1\n"))) == [(1, "sku")]
    assert where(refused(session, write(tmp_path, "h3.csv", "sku,name,nome,price\nA,B,C,1\n"))) == [(1, "nome")]


def test_duplicated_sku_across_products_names_both_lines(session, tmp_path):
    path = write(tmp_path, "dup.csv", "produto;sku;nome;preço\n"
                                      "CAMISA;CAM-01;Camisa;50\n"
                                      "CALCA;CAL-01;Calça;90\n"
                                      "CALCA;CAM-01;Calça;90\n")
    [error] = refused(session, path)
    assert (error.line, error.field) == (4, "sku")
    assert "CAM-01" in error.message and "linha 2" in error.message and "CAMISA" in error.message


def test_quoted_multiline_fields_keep_physical_line_numbers(session, tmp_path):
    path = write(tmp_path, "multi.csv",
                 'produto,sku,nome,preço,descrição\n'     # line 1
                 'A,A-1,Camisa,10,"primeira linha\n'      # line 2
                 'segunda linha\n'                        # line 3
                 'terceira"\n'                            # line 4
                 '\n'                                     # line 5 (blank, skipped)
                 'B,B-1,Calça,abc,ok\n'                   # line 6
                 'C,C-1,,20,"x\r\ny"\n'                   # line 7-8
                 'D,D 4,Boné,30,ok\n')                    # line 9
    assert where(refused(session, path)) == [(6, "preço"), (7, "nome"), (9, "sku")]


def test_blank_trailing_lines_and_excel_separator_rows_are_ignored(session, tmp_path):
    path = write(tmp_path, "c.csv", "produto;sku;nome;preço\r\nA;A-1;Meia;10\r\n;;;\r\n\r\n\r\n   \r\n")
    assert import_catalog(session, path).variants_created == 1


def test_an_unclosed_quote_is_refused_where_the_record_starts(session):
    errors = refused(session, DATA / "broken_quote.csv")
    assert where(errors) == [(3, "nome")] and "nunca fechadas" in errors[0].message
    assert session.scalar(select(Product).where(Product.name.like("%quebrado%"))) is None


@pytest.mark.parametrize("cell,words", [('"Produto "quebrado', "depois das aspas"),
                                        ('Produto "quebrado', "no meio de um campo"),
                                        ('Produto "quebrado"', "no meio de um campo")])
def test_a_misplaced_quote_is_refused_not_imported_as_text(session, tmp_path, cell, words):
    path = write(tmp_path, "q.csv", f"produto;sku;nome;preço\nA;A-1;{cell};10\nB;B-1;Boné;20\n")
    [error] = refused(session, path)
    assert (error.line, error.field) == (2, "nome") and words in error.message


def test_inches_after_a_digit_are_text(session, tmp_path):
    path = write(tmp_path, "q.csv", 'produto;sku;nome;preço\nM;M-1;Mochila para notebook 15";189,90\n')
    import_catalog(session, path)
    assert product(session, "M").name == 'Mochila para notebook 15"'


def test_windows_1252_is_refused_with_advice(session, tmp_path):
    [error] = refused(session, DATA / "nuvemshop_export_windows1252.csv")
    assert (error.line, error.field) == (1, "arquivo")
    assert "Windows-1252" in error.message and "UTF-8" in error.message and "variação" in error.message
    ours = "produto;sku;nome;preco\nA;A-1;Meia;10\nB;B-1;Calça;20\n".encode("cp1252")
    [error] = refused(session, write(tmp_path, "c.csv", ours))
    assert (error.line, error.field) == (3, "arquivo") and "\"Calça\"" in error.message


@pytest.mark.parametrize("name,content,line", [("empty.csv", "", 1), ("blank.csv", "\n\n", 1),
                                               ("header-only.csv", "produto,sku,nome,preço\n", 1),
                                               ("empty.json", "[]", 1)])
def test_empty_files_are_refused(session, tmp_path, name, content, line):
    assert where(refused(session, write(tmp_path, name, content))) == [(line, "arquivo")]


def test_unsupported_files(session, tmp_path):
    [error] = refused(session, write(tmp_path, "catalogo.txt", "sku,name,price\nA,B,1\n"))
    assert error.field == "arquivo" and ".csv" in error.message and ".json" in error.message
    [excel] = refused(session, write(tmp_path, "catalogo.csv", b"PK\x03\x04rest-of-a-zip"))
    assert "Excel" in excel.message and "CSV UTF-8" in excel.message


def test_files_over_the_limit_are_refused_before_reading(session, tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: no need to write 20 MB
    [error] = refused(session, path)
    assert error.field == "arquivo" and "20 MB" in error.message


@pytest.mark.parametrize("text,line", [
    ('[\n  {"produto": "A", "sku": "A-1", "nome": "x", "preço": 1},\n  {"sku": "B" "nome": "y"}\n]\n', 3),
    ('[\n  {"produto": "A", "sku": "A-1", "nome": "x", "preço": 1}\n  {"sku": "B"}\n]\n', 3),
    ('[\n  {"sku": "A", "nome": "x", "preço": 1},\n\n\n  {"sku": "B", "nome": "x", "preço": 1,}\n]\n', 5),
    ('[\n  {"sku": "A", "nome": "x", "preço": 1}\n', 3),
    ('{"sku": "A", "nome": "x", "preço": 1}', 1),
    ('[{"sku": "A", "nome": "x", "preço": 1}]\n\n[]', 3),
    ('\n\n  nada disso é JSON', 3),
])
def test_json_syntax_errors_give_one_error_with_its_line(session, tmp_path, text, line):
    assert where(refused(session, write(tmp_path, "s.json", text))) == [(line, "arquivo")]


def test_json_bad_objects_are_reported_on_the_line_where_they_start(session, tmp_path):
    text = (
        "[\n"                                                                              # 1
        '  {"produto": "A", "sku": "A-1", "nome": "Bom", "preço": "10,00"},\n'             # 2
        '  {"produto": "A", "sku": "A-2",\n'                                               # 3
        '   "preço": [10]},\n'                                                             # 4
        '  "não é um objeto",\n'                                                           # 5
        '  {"produto": "B", "sku": "B-1", "nome": {"x": 1}, "preço": 1, "ativo": "quem sabe"},\n'  # 6
        '  {"produto": "C", "sku": "A-1", "nome": "Repetido", "preço": 1},\n'              # 7
        '  {"produto": "D", "sku": "D-1", "nome": "Atributo", "preço": 1, "atributos": {"cor": {"r": 1}}},\n'  # 8
        '  {"sku": "E 5", "preço": 1.999}\n'                                               # 9
        "]\n"
    )
    assert where(refused(session, write(tmp_path, "bad.json", text))) == [
        (3, "preço"), (5, "linha"), (6, "nome"), (6, "ativo"), (7, "sku"), (8, "atributos.cor"),
        (9, "sku"), (9, "preço"), (9, "produto")]


# --- Shopify ------------------------------------------------------------------------------------------------------


def test_shopify_export(session):
    report = import_catalog(session, DATA / "shopify_export.csv")
    assert report == ImportReport(format="shopify", products_created=3, variants_created=5)
    [tucano] = [p for p in session.scalars(select(Product)) if p.name == "Camiseta Estampada Tucano"]
    # A handle longer than the 64-character column keeps its start and a stable hash.
    assert len(tucano.key) == 64 and tucano.key.startswith("camiseta-estampada-tucano-")
    assert tucano.description == ("Camiseta & estampa\n\nAlgodão orgânico,\nestampa feita à mão.\n\n"
                                  "• Unissex\n• Lavar do avesso")
    assert (tucano.brand, tucano.category) == ("Algodão Brasil", "Camisetas")  # Type before Product Category
    assert tucano.attributes == {"tags": ["estampada", "verão"]}
    assert tucano.image_url == "https://cdn.shopify.com/tucano-branca.jpg" and tucano.active is True
    assert sizes_of(tucano) == {
        "TUC-BR-P": ("P", "Branca", Decimal("69.90"), 7, True),
        "TUC-BR-M": ("M", "Branca", Decimal("69.90"), 0, True),  # oversold (-3) counts as 0
        "TUC-PT-M": ("M", "Preta", Decimal("74.90"), None, True),  # policy "continue": always available
    }
    assert variant(session, "TUC-BR-P").options == {"Color": "Branca", "Size": "P"}
    assert variant(session, "TUC-PT-M").compare_at_price is None  # not above the price: no discount
    assert variant(session, "TUC-BR-P").compare_at_price == Decimal("89.90")

    vale = product(session, "vale-presente")
    assert vale.category == "Gift Cards"  # no Type: the last level of Product Category
    [card] = vale.variants
    assert (card.options, card.size, card.color, card.stock) == ({}, None, None, None)  # "Default Title"; untracked
    archived = product(session, "sandalia-verao-2019")
    assert archived.active is False and archived.variants[0].active is False


def test_shopify_export_again_updates_nothing(session):
    import_catalog(session, DATA / "shopify_export.csv")
    again = import_catalog(session, DATA / "shopify_export.csv")
    assert (again.products_unchanged, again.variants_unchanged, again.variants_created) == (3, 5, 0)


def test_shopify_variant_without_sku_is_an_error_naming_its_line(session, tmp_path):
    path = write(tmp_path, "products_export.csv",
                 "Handle,Title,Option1 Name,Option1 Value,Variant SKU,Variant Price,Image Src\n"
                 "meia,Meia Cano Alto,Tamanho,P,MEIA-P,19.90,https://cdn.shopify.com/meia.jpg\n"
                 ",,,M,,19.90,\n"
                 "meia,,,G,,19.90,\n"
                 "meia,,,,,,https://cdn.shopify.com/meia-2.jpg\n")
    errors = refused(session, path)
    assert where(errors) == [(3, "Handle"), (4, "Variant SKU")] and "sem SKU" in errors[1].message


def test_shopify_2024_column_names(session, tmp_path):
    path = write(tmp_path, "products_export_1.csv",
                 "Title,URL handle,Description,Vendor,Type,Tags,Published on online store,Status,SKU,"
                 "Option1 name,Option1 value,Option2 name,Option2 value,Price,Compare-at price,Inventory tracker,"
                 "Inventory quantity,Continue selling when out of stock,Product image URL\n"
                 "Blusa Tricô,blusa-trico,<p>Tricô macio</p>,Inverno Sul,Blusas,,TRUE,Active,BLU-P-CR,"
                 "Tamanho,P,Cor,Cru,129.90,159.90,shopify,4,DENY,https://cdn.shopify.com/blusa.jpg\n"
                 ",blusa-trico,,,,,,,BLU-M-CR,,M,,Cru,129.90,159.90,shopify,0,DENY,\n")
    report = import_catalog(session, path)
    assert report.format == "shopify" and report.variants_created == 2
    blusa = product(session, "blusa-trico")
    assert (blusa.name, blusa.description, blusa.category) == ("Blusa Tricô", "Tricô macio", "Blusas")
    assert sizes_of(blusa)["BLU-M-CR"] == ("M", "Cru", Decimal("129.90"), 0, True)


@pytest.mark.parametrize("size_name", ["TAMANHO", "tamanho", "Tam.", "Size", "SIZE", "Talla", "Taille", "Numeração",
                                       "Número"])
@pytest.mark.parametrize("color_name", ["COR", "Cor", "Color", "Colour", "Couleur", "Cores"])
def test_platform_option_names_in_any_language_and_case(session, tmp_path, size_name, color_name):
    path = write(tmp_path, "p.csv", f"Handle,Title,Option1 Name,Option1 Value,Option2 Name,Option2 Value,"
                                    f"Option3 Name,Option3 Value,Variant SKU,Variant Price\n"
                                    f"bota,Bota,{color_name},Caramelo,Material,Couro,{size_name},38,BOTA-38,399.90\n")
    import_catalog(session, path)
    bota = variant(session, "BOTA-38")
    assert (bota.size, bota.color) == ("38", "Caramelo")
    assert bota.options == {color_name: "Caramelo", "Material": "Couro", size_name: "38"}


def test_forcing_a_format(session, tmp_path):
    shopify_as_txt = write(tmp_path, "export.txt", (DATA / "shopify_export.csv").read_text(encoding="utf-8"))
    assert import_catalog(session, shopify_as_txt, format="shopify").format == "shopify"
    [error] = refused(session, DATA / "ours_english_comma.csv", format="shopify")
    assert (error.line, error.field) == (1, "arquivo") and "Handle" in error.message
    [error] = refused(session, DATA / "ours_english_comma.csv", format="nuvemshop")
    assert "Identificador URL" in error.message
    assert where(refused(session, DATA / "ours_english_comma.csv", format="json")) == [(1, "arquivo")]
    assert where(refused(session, DATA / "ours.json", format="xml")) == [(0, "arquivo")]


# --- Nuvemshop ----------------------------------------------------------------------------------------------------


def test_nuvemshop_export(session):
    report = import_catalog(session, DATA / "nuvemshop_export.csv")
    assert report == ImportReport(format="nuvemshop", products_created=3, variants_created=6)
    biquini = product(session, "biquini-cortininha")
    assert (biquini.name, biquini.category, biquini.brand) == ("Biquíni Cortininha Estampado", "Biquínis", "Mar Aberto")
    assert biquini.description == "Biquíni com proteção UV 50+.\n\nForro duplo."
    assert biquini.attributes == {"tags": ["praia", "verão"], "sexo": "Feminino", "faixa etária": "Adulto"}
    # A promotional price is the price; the regular one becomes the "de" price.
    p = variant(session, "BIQ-CORT-P-FOL")
    assert (p.price, p.compare_at_price, p.stock, p.size, p.color) == (Decimal("119.90"), Decimal("149.90"), 5, "P",
                                                                       None)
    assert p.options == {"Tamanho": "P", "Estampa": "Folhagem"}
    g = variant(session, "BIQ-CORT-G-ONC")
    assert (g.price, g.compare_at_price, g.stock) == (Decimal("149.90"), None, None)  # empty Estoque: untracked
    assert biquini.price == Decimal("119.90")
    # No SKU in the shop: one made from the identifier and the option values, the same on every import.
    chinelo = product(session, "chinelo-slide")
    assert sorted(v.sku for v in chinelo.variants) == ["chinelo-slide-preto-37-38", "chinelo-slide-preto-39-40"]
    assert {v.size for v in chinelo.variants} == {"37/38", "39/40"}
    assert product(session, "cinto-couro").active is False  # Exibir na loja = NÃO
    assert import_catalog(session, DATA / "nuvemshop_export.csv").variants_unchanged == 6


def test_nuvemshop_promotional_price_above_the_price(session, tmp_path):
    text = (DATA / "nuvemshop_export.csv").read_text(encoding="utf-8").replace("149,90;119,90", "149,90;169,90", 1)
    [error] = refused(session, write(tmp_path, "n.csv", text))
    assert (error.line, error.field) == (2, "Preço promocional") and "menor que o preço" in error.message


# --- today's format (before variants) -----------------------------------------------------------------------------


def _migration():
    spec = importlib.util.spec_from_file_location("m0007", ROOT / "migrations" / "versions" / "0007_variants.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_todays_format_becomes_one_variant_per_listed_size_named_as_the_migration_names_them(session):
    report = import_catalog(session, DATA / "legacy_one_row_per_product.csv")
    assert (report.format, report.legacy, report.products_created, report.variants_created) == ("csv", True, 4, 8)
    tenis = product(session, "TN-CORRIDA")
    assert sizes_of(tenis) == {f"TN-CORRIDA-{s}": (s, "Preto", Decimal("299.90"), None, True)
                               for s in ("38", "39", "40")}
    assert variant(session, "TN-CORRIDA-39").options == {"Tamanho": "39", "Cor": "Preto"}
    assert tenis.attributes == {"material": "mesh"}  # "cor" and "tamanhos" are the variants' now
    assert sizes_of(product(session, "MOCHILA-25")) == {"MOCHILA-25": ("Único", "Cinza", Decimal("189.90"), None, True)}
    assert sizes_of(product(session, "CANECA-01")) == {"CANECA-01": (None, None, Decimal("39.90"), None, True)}
    assert sorted(v.sku for v in product(session, "CAMISA-PM").variants) == ["CAMISA-PM-G", "CAMISA-PM-P-M",
                                                                           "CAMISA-PM-P-M-1"]
    migration = _migration()
    for size in ("38", "P/M", "Único", "gg", "", None):
        for several in (True, False):
            ours = _legacy_variant_sku("TN-CORRIDA", size, several)
            assert ours == migration._variant_sku("TN-CORRIDA", size, several)


def test_an_old_file_reimported_after_the_migration_updates_the_migrated_variants(session, tmp_path):
    # The shape migration 0007 left: the old SKU as key, one variant per size, untracked stock.
    session.add(Product(key="TN-CORRIDA", name="Tênis Corrida Preto", price=Decimal("279.90"), attributes={},
                        variants=[Variant(sku=f"TN-CORRIDA-{s}", size=s, color="Preto", price=Decimal("279.90"),
                                          options={"Tamanho": s, "Cor": "Preto"}) for s in ("38", "39", "40")]))
    session.flush()
    path = write(tmp_path, "antigo.csv", "sku;nome;preço;cor;tamanhos\nTN-CORRIDA;Tênis Corrida Preto;299,90;preto;"
                                         "38|39|40\n")
    report = import_catalog(session, path)
    assert (report.products_updated, report.variants_created, report.variants_updated) == (1, 0, 3)
    assert product(session, "TN-CORRIDA").price == Decimal("299.90") and counts(session) == (1, 3)


def test_sizes_in_one_cell_with_a_product_column_are_refused_with_advice(session, tmp_path):
    path = write(tmp_path, "c.csv", "produto;sku;nome;preço;tamanhos\nTN;TN-1;Tênis;299,90;38|39|40\n")
    [error] = refused(session, path)
    assert (error.line, error.field) == (1, "tamanhos") and "uma linha" in error.message
    json_path = write(tmp_path, "c.json", json.dumps([{"produto": "TN", "sku": "TN-1", "nome": "Tênis", "preço": 1,
                                                       "tamanhos": ["38", "39"]}]))
    assert where(refused(session, json_path)) == [(1, "tamanhos")]


# --- upsert --------------------------------------------------------------------------------------------------------


def test_prices_and_stock_update_through_the_same_import(session, tmp_path):
    import_catalog(session, DATA / "ours_excel_semicolon.csv")
    path = write(tmp_path, "precos.csv", "produto;sku;nome;preço;estoque\n"
                                         "TENIS-RUN;TENIS-RUN-PT-40;Tênis Run Leve;279,90;9\n"
                                         "TENIS-RUN;TENIS-RUN-PT-41;Tênis Run Leve;279,90;2\n")
    report = import_catalog(session, path)
    assert (report.products_updated, report.variants_updated, report.variants_created) == (1, 1, 1)
    run = product(session, "TENIS-RUN")
    assert run.price == Decimal("279.90")  # the lowest active variant price, after the import
    pt40 = variant(session, "TENIS-RUN-PT-40")
    assert (pt40.price, pt40.stock, pt40.size, pt40.color) == (Decimal("279.90"), 9, "40", "Preto")  # no size column
    assert pt40.compare_at_price is None
    # Left as they were: the variant not in the file, and the columns the file does not carry.
    assert variant(session, "TENIS-RUN-PT-39").stock == 4 and variant(session, "TENIS-RUN-PT-39").active
    assert (run.category, run.brand, run.attributes) == ("Calçados", "Passo Firme", {"material": "tecido"})
    assert variant(session, "TENIS-RUN-PT-41").options == {}


def test_deactivate_missing_variants(session, tmp_path):
    import_catalog(session, DATA / "ours_excel_semicolon.csv")
    path = write(tmp_path, "c.csv", "produto;sku;nome;preço\nTENIS-RUN;TENIS-RUN-AZ-40;Tênis Run Leve;299,90\n")
    report = import_catalog(session, path, deactivate_missing=True)
    assert report.variants_deactivated == 2
    assert [v.sku for v in product(session, "TENIS-RUN").variants if v.active] == ["TENIS-RUN-AZ-40"]
    assert product(session, "VESTIDO-SEDA").variants[0].active  # a product not in the file: untouched


def test_a_sku_the_file_puts_under_another_product_moves_there(session, tmp_path):
    import_catalog(session, write(tmp_path, "a.csv", "produto;sku;nome;preço\nCAMISA;CAM-AZ;Camisa;50\n"))
    import_catalog(session, write(tmp_path, "b.csv", "produto;sku;nome;preço\nCAMISA-AZUL;CAM-AZ;Camisa Azul;55\n"))
    assert variant(session, "CAM-AZ").product.key == "CAMISA-AZUL"
    assert product(session, "CAMISA").variants == [] and product(session, "CAMISA").active is False


def test_the_search_index_is_refreshed_in_the_same_transaction(session, monkeypatch):
    calls = []
    monkeypatch.setattr(catalog.index, "refresh",
                        lambda s, ids: calls.append((s is session, s.in_transaction(), list(ids))))
    import_catalog(session, DATA / "ours_excel_semicolon.csv")
    ids = sorted(p.id for p in session.scalars(select(Product)))
    assert calls == [(True, True, ids)]
    import_catalog(session, DATA / "ours_excel_semicolon.csv")
    assert len(calls) == 1  # nothing changed, nothing to refresh


def test_a_failure_while_writing_rolls_back_to_before_the_import(session, monkeypatch):
    session.add(Product(key="KEEP", name="Existente", price=Decimal("1.00"),
                        variants=[Variant(sku="KEEP-1", price=Decimal("1.00"), options={})]))
    session.flush()

    def conflict(s, ids):
        raise IntegrityError("insert", {}, Exception("duplicate key"))

    monkeypatch.setattr(catalog.index, "refresh", conflict)
    [error] = refused(session, DATA / "ours_excel_semicolon.csv")
    assert error.field == "arquivo" and "ao mesmo tempo" in error.message
    assert [p.key for p in session.scalars(select(Product))] == ["KEEP"]  # the session is still usable


def test_the_example_files_import(session):
    for name in ("catalogo.csv", "catalogo.json", "shopify_products.csv", "nuvemshop_produtos.csv",
                 "catalogo_antigo.csv", "catalogo_antigo.json"):
        report = import_catalog(session, EXAMPLES / name)
        assert report.products_created + report.products_updated + report.products_unchanged >= 3, name
    tenis = product(session, "TENIS-CORRIDA")
    assert {v.color for v in tenis.variants} == {"Preto", "Azul-marinho"} and len(tenis.variants) == 5
    assert variant(session, "TENIS-CORRIDA-PRETO-41").available is False


# --- CLI -------------------------------------------------------------------------------------------------------------


def test_cli_imports_and_commits(app, session, tmp_path):
    path = write(tmp_path, "ok.csv", "produto;sku;nome;preço;estoque\n"
                                     "TS;TS-P;Camiseta;79,90;3\nTS;TS-M;Camiseta;79,90;\n")
    result = app.test_cli_runner().invoke(args=["catalog", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "imported csv: 1 new, 0 updated and 0 unchanged products; 2 new" in result.output
    assert variant(session, "TS-M").price == Decimal("79.90") and variant(session, "TS-P").stock == 3

    again = app.test_cli_runner().invoke(args=["catalog", "import", str(path)])
    assert again.exit_code == 0 and "0 new, 0 updated and 1 unchanged products" in again.output


def test_cli_prints_one_line_per_error_and_exits_1(app, session, tmp_path):
    path = write(tmp_path, "ruim.csv", "sku;nome;preço\nTS-01;Camiseta;79,90\nTS-02;;10\nTS-03;Boné;grátis\n")
    result = app.test_cli_runner().invoke(args=["catalog", "import", str(path)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if ": line " in line]
    assert lines == [f"{path}: line 3: nome: campo obrigatório vazio",
                     f"{path}: line 4: preço: preço inválido \"grátis\": use um valor como 299,90 ou R$ 1.299,90"]
    assert "nothing imported (2 problem(s))" in result.output
    assert counts(session) == (0, 0)


def test_cli_format_option_and_file_level_errors(app, session, tmp_path):
    runner = app.test_cli_runner()
    export = tmp_path / "export.txt"
    shutil.copy(DATA / "nuvemshop_export.csv", export)
    refused_txt = runner.invoke(args=["catalog", "import", str(export)])
    assert refused_txt.exit_code == 1 and f"{export}: line 0: arquivo: formato não suportado" in refused_txt.output
    forced = runner.invoke(args=["catalog", "import", str(export), "--format", "nuvemshop"])
    assert forced.exit_code == 0 and "imported nuvemshop: 3 new" in forced.output
    assert runner.invoke(args=["catalog", "import", str(export), "--format", "xml"]).exit_code == 2
    assert runner.invoke(args=["catalog", "import", str(tmp_path / "nao-existe.csv")]).exit_code == 2
    windows = runner.invoke(args=["catalog", "import", str(DATA / "nuvemshop_export_windows1252.csv")])
    assert windows.exit_code == 1 and ": line 1: arquivo: o arquivo está em Windows-1252" in windows.output


def test_cli_deactivate_missing(app, session, tmp_path):
    import_catalog(session, DATA / "ours_english_comma.csv")
    session.commit()
    path = write(tmp_path, "c.csv", "product,sku,name,price\nSHORT-02,SHORT-02-P,Short de Corrida,89.90\n")
    result = app.test_cli_runner().invoke(args=["catalog", "import", str(path), "--deactivate-missing"])
    assert result.exit_code == 0 and "1 deactivated" in result.output, result.output  # the G was inactive already
    session.expire_all()
    assert [v.active for v in product(session, "SHORT-02").variants] == [True, False, False]


# --- console ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def console(runtime, session):
    from app import create_app

    app = create_app({"RUNTIME": runtime, "TESTING": True, "WTF_CSRF_ENABLED": False})
    create_user(session, email="dona@loja.example", role="admin", password=PASSWORD, name="Dona")
    session.commit()
    client = app.test_client()
    assert client.post("/entrar", data={"email": "dona@loja.example", "password": PASSWORD}).status_code == 302
    return client


def upload(client, name: str, content: str | bytes, **form):
    data = content.encode() if isinstance(content, str) else content
    return client.post("/console/catalogo", data={"arquivo": (io.BytesIO(data), name), **form},
                       content_type="multipart/form-data")


def test_console_upload_errors_are_shown_at_the_top_with_line_and_field(console, session):
    response = upload(console, "catalogo.csv", (DATA / "broken_quote.csv").read_bytes())
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    main = page.split("<main", 1)[1]
    assert main.index("Nada foi importado") < main.index("Importar planilha") < main.index('name="q"')
    assert re.search(r"<td>3</td><td>nome</td><td>aspas \(&#34;\) abertas e nunca fechadas", page)
    assert counts(session) == (0, 0)
    bad = upload(console, "catalogo.csv", "produto;sku;nome;preço;estoque\nA;A-1;Meia;10;-1\n")
    assert bad.status_code == 400 and "<td>2</td><td>estoque</td>" in bad.get_data(as_text=True)
    assert upload(console, "catalogo.xlsx", b"PK\x03\x04").status_code == 400
    assert upload(console, "catalogo.csv", "x", formato="xml").status_code == 400


def test_console_upload_success_is_reported_at_the_top_and_lists_variants(console, session):
    response = upload(console, "export.csv", (DATA / "shopify_export.csv").read_bytes())
    assert response.status_code == 303
    page = console.get("/console/catalogo").get_data(as_text=True)
    main = page.split("<main", 1)[1]
    assert main.index("Catálogo importado (Shopify): 3 produtos novos; 5 variantes novas.") < main.index("<h1>")
    assert counts(session) == (3, 5)
    # Variants grouped by colour, each size a chip; sold-out and inactive ones marked.
    assert re.search(r'<span class="vname">Branca</span>\s*<span class="v ok" title="SKU TUC-BR-P · 7 em estoque">P'
                     r"<small>7</small></span><span class=\"v out\"", page)
    assert "(esgotada)" in page and "3 variantes · 1 esgotada" in page
    assert "SKU VALE-100 · estoque não controlado" in page


def test_console_search_finds_names_product_keys_and_variant_skus(console, session):
    import_catalog(session, DATA / "ours_excel_semicolon.csv")
    import_catalog(session, DATA / "ours_english_comma.csv")
    session.commit()
    for query in ("tênis run", "TENIS-RUN", "run-az-40"):
        found = console.get(f"/console/catalogo?q={query}").get_data(as_text=True)
        assert "Tênis Run Leve" in found and "Short de Corrida" not in found, query
        assert "R$\xa0299,90" in found
    assert "1 produto(s)" in console.get("/console/catalogo?q=short-02-g").get_data(as_text=True)


def test_console_upload_with_a_forced_format_and_deactivation(console, session):
    import_catalog(session, DATA / "nuvemshop_export.csv")
    session.commit()
    text = (DATA / "nuvemshop_export.csv").read_bytes().decode("utf-8").split("\r\n")
    kept = "\r\n".join(text[:2]) + "\r\n"  # the header and the first variant only
    response = upload(console, "export.txt", kept, formato="nuvemshop", desativar_ausentes="1")
    assert response.status_code == 303
    flash = console.get("/console/catalogo").get_data(as_text=True)
    assert "Catálogo importado (Nuvemshop): 1 produto atualizado; 2 variantes desativadas." in flash
    session.expire_all()
    assert not variant(session, "BIQ-CORT-M-FOL").active


# --- robustness ------------------------------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
_keys = st.sampled_from(["produto", "product", "sku", "nome", "name", "preço", "price", "preço de", "estoque", "stock",
                         "tamanho", "cor", "ativo", "url", "imagem", "categoria", "atributos", "opcoes", "tamanhos",
                         "material"])


def _imports_or_refuses(session, path: Path) -> None:
    savepoint = session.begin_nested()
    try:
        import_catalog(session, path)
    except CatalogImportError as exc:
        assert exc.errors and all(e.line >= 0 and e.field and e.message for e in exc.errors)
    finally:
        savepoint.rollback()


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.dictionaries(_keys, _json_values), max_size=4))
def test_any_json_value_imports_or_is_refused_never_an_exception(session, tmp_path, items):
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(items))
    _imports_or_refuses(session, path)


_HEADERS = [
    "produto;sku;nome;preço;estoque;tamanho;cor;preço de",
    "sku;nome;preço;cor;tamanhos",
    "Handle,Title,Option1 Name,Option1 Value,Variant SKU,Variant Price,Variant Inventory Qty,Status",
    '"Identificador URL";Nome;"Nome da variação 1";"Valor da variação 1";Preço;"Preço promocional";Estoque;SKU',
]


@hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(_HEADERS),
       st.text(alphabet=st.sampled_from(list('ab1,;."|\n\r R$-<>0P') + ["\x00", "é"]), max_size=80))
def test_any_csv_text_imports_or_is_refused_never_an_exception(session, tmp_path, header, body):
    path = tmp_path / "fuzz.csv"
    path.write_text(header + "\n" + body, encoding="utf-8", newline="")
    _imports_or_refuses(session, path)


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200), suffix=st.sampled_from([".csv", ".json"]))
def test_any_bytes_are_read_or_refused(tmp_path, data, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        read_catalog(path)
    except CatalogImportError as exc:
        assert exc.errors


def _mostly(good: list[str], bad: list[str]):
    return st.one_of(*[st.sampled_from(good)] * 6, st.sampled_from(bad))


_ROW = st.fixed_dictionaries({
    "produto": _mostly(["A", "B", "C"], ["", "A" * 65]),
    "sku": _mostly(["S1", "S2", "S3", "S4", "B"], ["", "S 5"]),
    "nome": _mostly(["Camisa", "", 'Tênis "Pro"'], ["Calça"]),
    "preço": _mostly(["10", "R$ 1.299,90", "9,9"], ["0", "", "abc"]),
    "preço de": _mostly(["", "2000"], ["5"]),
    "estoque": _mostly(["", "0", "3", "12.0"], ["-1"]),
    "tamanho": _mostly(["", "P", "M"], ["X" * 40]),
    "cor": _mostly(["", "Preto", "Azul"], ["Y" * 41]),
    "ativo": _mostly(["", "sim", "não"], ["talvez"]),
})


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(_ROW, min_size=1, max_size=5), min_size=1, max_size=3), st.booleans())
def test_successive_imports_keep_every_product_priced_and_active_from_its_variants(session, tmp_path, files,
                                                                                   deactivate):
    savepoint = session.begin_nested()
    try:
        for number, rows in enumerate(files):
            path = tmp_path / f"f{number}.csv"
            lines = [";".join(_ROW_COLUMNS)] + [";".join('"' + r[k].replace('"', '""') + '"' for k in _ROW_COLUMNS)
                                                for r in rows]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            try:
                import_catalog(session, path, deactivate_missing=deactivate)
            except CatalogImportError as exc:
                assert exc.errors
        for p in session.scalars(select(Product)):
            live = [v.price for v in p.variants if v.active]
            if p.variants:
                assert p.price == min(live or [v.price for v in p.variants])
                assert p.active == bool(live)
    finally:
        savepoint.rollback()


_ROW_COLUMNS = ["produto", "sku", "nome", "preço", "preço de", "estoque", "tamanho", "cor", "ativo"]


def test_a_platform_export_keeps_the_attributes_it_does_not_carry(session, tmp_path):
    import_catalog(session, write(tmp_path, "a.csv", "produto;sku;nome;preço;material;tags\n"
                                                     "vale-presente;VALE-100;Vale;100;papel;antigo\n"))
    import_catalog(session, DATA / "shopify_export.csv")
    assert product(session, "vale-presente").attributes == {"material": "papel"}  # Tags empty in the export


def test_an_old_file_finds_the_migrated_variant_of_a_size_whose_sku_collapsed(session, tmp_path):
    # 0007 numbered the second of "P/M" and "P-M" after the SKUs taken in the whole catalog, not "-1".
    session.add(Product(key="POLO", name="Camisa Polo", price=Decimal("99.90"), attributes={}, variants=[
        Variant(sku="POLO-P-M", size="P/M", price=Decimal("99.90"), options={"Tamanho": "P/M"}),
        Variant(sku="POLO-P-M-57", size="P-M", price=Decimal("99.90"), options={"Tamanho": "P-M"})]))
    session.flush()
    report = import_catalog(session, write(tmp_path, "antigo.csv", "sku;nome;preço;tamanhos\nPOLO;Camisa Polo;"
                                                                   "109,90;P/M|P-M\n"))
    assert (report.variants_created, report.variants_updated) == (0, 2)
    assert {v.sku: v.price for v in product(session, "POLO").variants} == {"POLO-P-M": Decimal("109.90"),
                                                                          "POLO-P-M-57": Decimal("109.90")}


def test_a_product_that_gives_a_variant_to_a_later_product_is_repriced(session, tmp_path):
    import_catalog(session, write(tmp_path, "a.csv", "produto;sku;nome;preço\nCAMISA;CAM-1;Camisa;50\n"
                                                     "CAMISA;CAM-2;Camisa;80\n"))
    import_catalog(session, write(tmp_path, "b.csv", "produto;sku;nome;preço\nCAMISA;CAM-2;Camisa;80\n"
                                                     "CAMISA-NOVA;CAM-1;Camisa Nova;50\n"))
    assert product(session, "CAMISA").price == Decimal("80.00") and product(session, "CAMISA-NOVA").price == 50


# --- issue 20: a refused file is explained where the merchant is looking, and changes nothing -------------------------


def test_a_line_with_fewer_columns_than_the_header_is_refused_not_padded(session, tmp_path):
    path = tmp_path / "curta.csv"
    path.write_text("produto;sku;nome;preço;estoque\nA;A-1;Meia;10;3\nB;B-1;Bota;99\n", encoding="utf-8")
    errors = refused(session, path)
    assert where(errors) == [(3, "linha")]
    assert errors[0].message == ('a linha tem menos colunas que o cabeçalho (4 em vez de 5; faltam "estoque"): '
                                 'confira o separador e as aspas')
    assert counts(session) == (0, 0)  # the good first line was not imported either


def test_unnamed_trailing_header_columns_do_not_make_lines_short(session, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("produto;sku;nome;preço;;\nA;A-1;Meia;10\n", encoding="utf-8")
    import_catalog(session, path)
    assert counts(session) == (1, 1)


def test_every_file_and_line_error_is_in_portuguese(session, tmp_path):
    files = {"vazio.csv": "", "x.xlsx": "PK", "cab.csv": "nome;preço\nMeia;10\n",
             "aspas.csv": 'produto;sku;nome;preço\nA;A-1;Produto "quebrado;10\n',
             "aberta.csv": 'produto;sku;nome;preço\nA;A-1;"Produto quebrado;10\nB;B-1;Boa;5\n', "j.json": "[{"}
    for name, content in files.items():
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        for error in refused(session, path):
            assert error.field not in ("file", "line", "row"), (name, error)
            assert not any(word in error.message for word in ("file", "Error", "expected", "unexpected")), \
                (name, error)


def test_console_refused_upload_is_the_first_thing_on_the_page_and_changes_nothing(console, session):
    session.add(Product(key="KEEP", name="Existente", price=Decimal("1.00"),
                        variants=[Variant(sku="KEEP-1", price=Decimal("1.00"), stock=1)]))
    session.commit()
    for content, line, field in (('produto;sku;nome;preço\nA;A-1;Produto "quebrado;10\n', "2", "nome"),
                                 ("produto;sku;nome;preço;estoque\nA;A-1;Meia;10;3\nB;B-1;Bota\n", "3", "linha")):
        response = upload(console, "catalogo.csv", content)
        assert response.status_code == 400
        main = response.get_data(as_text=True).split("<main", 1)[1]
        first = re.search(r"<(?:div|section|h1)[^>]*>", main.split(">", 1)[1]).group(0)
        assert main.index('role="alert"') < main.index("<h1") + 200  # right under the title, above the form
        assert main.index("Nada foi importado") < main.index("Importar planilha") < main.index("Existente")
        assert f"<td>{line}</td><td>{field}</td>" in main, first
        session.expire_all()
        assert counts(session) == (1, 1)
    file_level = upload(console, "catalogo.xlsx", b"PK\x03\x04").get_data(as_text=True)
    assert "<td>—</td><td>arquivo</td>" in file_level and "<td>file</td>" not in file_level
