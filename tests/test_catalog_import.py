import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from catalog.importer import (
    MAX_FILE_BYTES,
    CatalogImportError,
    ImportReport,
    RowError,
    _read_rows,
    import_catalog,
    parse_price,
)
from models import Product

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def product(session, sku: str) -> Product:
    return session.scalar(select(Product).where(Product.sku == sku))


def count(session) -> int:
    return session.scalar(select(func.count()).select_from(Product))


def refused(session, path: Path) -> list[tuple[int, str]]:
    with pytest.raises(CatalogImportError) as info:
        import_catalog(session, path)
    assert all(isinstance(e, RowError) and e.message for e in info.value.errors)
    return [(e.line, e.field) for e in info.value.errors]


# --- CSV ---------------------------------------------------------------------------------------------


def test_csv_with_commas_creates_products(session, tmp_path):
    path = write(tmp_path, "c.csv",
                 "sku,name,price,category,brand,description,url,active,cor,tamanhos\n"
                 "TS-01,Camiseta Básica,79.90,Roupas,Algodão Brasil,Algodão,"
                 "https://loja.example/ts-01,sim,preta,P|M|G\n"
                 "TN-02,Tênis Corrida,299.90,Calçados,,,,,,\n")
    assert import_catalog(session, path) == ImportReport(created=2, updated=0)
    ts = product(session, "TS-01")
    assert ts.name == "Camiseta Básica" and ts.price == Decimal("79.90") and isinstance(ts.price, Decimal)
    assert ts.category == "Roupas" and ts.brand == "Algodão Brasil" and ts.url == "https://loja.example/ts-01"
    assert ts.active is True
    assert ts.attributes == {"cor": "preta", "tamanhos": ["P", "M", "G"]}
    tn = product(session, "TN-02")
    assert tn.brand is None and tn.url is None and tn.active is True and tn.attributes == {}


def test_csv_with_semicolons_bom_and_portuguese_headers(session, tmp_path):
    content = ("sku;nome;preço;categoria;marca;descrição;ativo;Tamanhos\r\n"
               "SD-01;Sandália Rasteira;89,90;Calçados;Brisa;Confortável, leve;não;34|35|36\r\n"
               "MC-02;Mochila Urbana;R$ 1.299,90;Acessórios;Trilha;;Sim;Único\r\n")
    path = write(tmp_path, "excel.csv", b"\xef\xbb\xbf" + content.encode("utf-8"))
    assert import_catalog(session, path) == ImportReport(created=2, updated=0)
    sd = product(session, "SD-01")
    assert sd.price == Decimal("89.90") and sd.active is False
    assert sd.description == "Confortável, leve"  # a comma inside a ';' file is just text
    assert sd.attributes == {"tamanhos": ["34", "35", "36"]}
    mc = product(session, "MC-02")
    assert mc.price == Decimal("1299.90") and mc.active is True and mc.description is None
    # The same column holds a list in every row once any row uses '|'.
    assert mc.attributes == {"tamanhos": ["Único"]}


def test_quoted_multiline_field_keeps_physical_line_numbers(session, tmp_path):
    path = write(tmp_path, "multi.csv",
                 'sku,name,price,description\n'            # line 1
                 'A-1,Camisa,10,"primeira linha\n'         # line 2
                 'segunda linha\n'                         # line 3
                 'terceira"\n'                             # line 4
                 '\n'                                      # line 5 (blank, skipped)
                 'A-2,Calça,abc,ok\n'                      # line 6
                 'A-3,,20,"x\r\ny"\n'                      # line 7-8
                 'A 4,Boné,30,ok\n')                       # line 9
    assert refused(session, path) == [(6, "price"), (7, "name"), (9, "sku")]
    assert count(session) == 0


def test_multiline_description_is_stored_with_its_line_breaks(session, tmp_path):
    path = write(tmp_path, "multi.csv", 'sku,name,price,description\nA-1,Camisa,10,"linha 1\nlinha 2"\n')
    import_catalog(session, path)
    assert product(session, "A-1").description == "linha 1\nlinha 2"


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


def test_upsert_updates_existing_products_and_keeps_fields_the_file_does_not_carry(session, tmp_path):
    session.add(Product(sku="TS-01", name="Camiseta velha", price=Decimal("50.00"), category="Roupas",
                        brand="Antiga", url="https://loja.example/velha", attributes={"cor": "azul"}, active=False))
    session.flush()
    path = write(tmp_path, "c.csv", "sku;nome;preco;marca;ativo\nTS-01;Camiseta nova;79,90;;sim\nTS-02;Outra;10;;\n")
    assert import_catalog(session, path) == ImportReport(created=1, updated=1)
    ts = product(session, "TS-01")
    assert ts.name == "Camiseta nova" and ts.price == Decimal("79.90") and ts.active is True
    assert ts.brand is None  # present but empty: cleared
    assert ts.category == "Roupas" and ts.url == "https://loja.example/velha"  # absent columns: kept
    assert ts.attributes == {"cor": "azul"}  # no attribute column in the file: kept
    assert count(session) == 2


def test_attribute_columns_replace_the_attributes_on_update(session, tmp_path):
    session.add(Product(sku="TS-01", name="Camiseta", price=Decimal("50.00"), attributes={"cor": "azul", "gola": "v"}))
    session.flush()
    import_catalog(session, write(tmp_path, "c.csv", "sku,name,price,cor\nTS-01,Camiseta,50,verde\n"))
    assert product(session, "TS-01").attributes == {"cor": "verde"}


def test_duplicate_sku_is_reported_on_the_later_line(session, tmp_path):
    path = write(tmp_path, "dup.csv", "sku,name,price\nA-1,Um,10\nA-2,Dois,20\nA-1,Um de novo,30\n")
    with pytest.raises(CatalogImportError) as info:
        import_catalog(session, path)
    [error] = info.value.errors
    assert (error.line, error.field) == (4, "sku") and "linha 2" in error.message
    assert count(session) == 0


def test_every_bad_row_is_reported_and_nothing_is_written(session, tmp_path):
    session.add(Product(sku="KEEP", name="Existente", price=Decimal("1.00")))
    session.flush()
    long_sku = "X" * 65
    path = write(tmp_path, "bad.csv",
                 "sku,name,price,url,active,cor\n"
                 "OK-1,Produto bom,10,,,\n"                       # 2: fine
                 f"{long_sku},Nome,10,,,\n"                       # 3: sku too long
                 ",Sem sku,10,,,\n"                               # 4: sku empty
                 "OK-2,,0,,,\n"                                   # 5: name empty, price zero
                 "OK-3,Link,10,ftp://x,talvez,\n"                 # 6: url and active
                 f"OK-4,{'N' * 201},\"10,999\",,,\n"              # 7: name too long, 3 decimals
                 "OK-5,Colunas,10,,,,a mais\n"                    # 8: more cells than the header
                 "KEEP,Atualizado,abc,,,\n")                      # 9: price
    errors = refused(session, path)
    assert errors == [(3, "sku"), (4, "sku"), (5, "name"), (5, "price"), (6, "url"), (6, "active"),
                      (7, "name"), (7, "price"), (8, "row"), (9, "price")]
    assert count(session) == 1
    assert product(session, "KEEP").name == "Existente"


def test_missing_required_columns_are_reported_against_the_header(session, tmp_path):
    assert refused(session, write(tmp_path, "h.csv", "codigo;nome\nA;B\n")) == [(1, "sku"), (1, "price")]
    assert refused(session, write(tmp_path, "h2.csv", "sku,name,nome,price\nA,B,C,1\n")) == [(1, "nome")]


def test_unclosed_quote_is_reported_where_the_record_starts(session, tmp_path):
    path = write(tmp_path, "q.csv", 'sku,name,price\nA,Um,10\nB,"Dois,20\nC,Três,30\n')
    assert refused(session, path) == [(3, "row")]


def test_not_utf8_is_a_clear_error(session, tmp_path):
    path = write(tmp_path, "latin.csv", "sku;nome;preço\nA;Calça;10\n".encode("cp1252"))
    with pytest.raises(CatalogImportError) as info:
        import_catalog(session, path)
    [error] = info.value.errors
    assert error.line == 1 and "UTF-8" in error.message


@pytest.mark.parametrize("name,content,line", [("empty.csv", "", 1), ("blank.csv", "\n\n", 1),
                                               ("header-only.csv", "sku,name,price\n", 1), ("empty.json", "[]", 1)])
def test_empty_files_are_refused(session, tmp_path, name, content, line):
    assert refused(session, write(tmp_path, name, content)) == [(line, "file")]


def test_unsupported_extension(session, tmp_path):
    with pytest.raises(CatalogImportError) as info:
        import_catalog(session, write(tmp_path, "catalogo.xlsx", b"PK\x03\x04"))
    [error] = info.value.errors
    assert error.field == "file" and ".csv" in error.message and ".json" in error.message


def test_files_over_the_limit_are_refused_before_reading(session, tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: no need to write 20 MB
    with pytest.raises(CatalogImportError) as info:
        import_catalog(session, path)
    [error] = info.value.errors
    assert error.field == "file" and "20 MB" in error.message


# --- JSON --------------------------------------------------------------------------------------------


def test_json_good_file(session, tmp_path):
    body = [
        {"sku": "TS-01", "name": "Camiseta", "price": 79.90, "attributes": {"Cor": "preta"}, "tamanhos": ["P", "M"]},
        {"sku": "TS-02", "nome": "Calça", "preço": "R$ 1.299,90", "ativo": "não", "category": None},
        {"sku": 12345, "name": "Boné", "price": 50, "active": False, "peso_kg": 0.25},
    ]
    path = write(tmp_path, "c.json", json.dumps(body, indent=2, ensure_ascii=False))
    assert import_catalog(session, path) == ImportReport(created=3, updated=0)
    ts = product(session, "TS-01")
    assert ts.price == Decimal("79.90") and ts.attributes == {"cor": "preta", "tamanhos": ["P", "M"]}
    calca = product(session, "TS-02")
    assert calca.price == Decimal("1299.90") and calca.active is False and calca.category is None
    bone = product(session, "12345")
    assert bone.price == Decimal("50.00") and bone.attributes == {"peso_kg": 0.25}


def test_json_bad_objects_are_reported_on_the_line_where_they_start(session, tmp_path):
    text = (
        "[\n"                                                                 # 1
        '  {"sku": "A-1", "name": "Bom", "price": "10,00"},\n'                # 2
        '  {"sku": "A-2",\n'                                                  # 3
        '   "name": "Preço errado",\n'                                        # 4
        '   "price": [10]},\n'                                                # 5
        '  "não é um objeto",\n'                                              # 6
        '  {"sku": "A-3", "name": {"x": 1}, "price": 1, "active": "quem sabe"},\n'   # 7
        '\n'                                                                  # 8
        '  {"sku": "A-1", "name": "Repetido", "price": 1},\n'                 # 9
        '  {"sku": "A-4", "name": "Atributo", "price": 1, "attributes": {"cor": {"r": 1}}},\n'  # 10
        '  {"sku": "A 5", "price": 1.999}\n'                                  # 11
        "]\n"
    )
    errors = refused(session, write(tmp_path, "bad.json", text))
    assert errors == [(3, "price"), (6, "row"), (7, "name"), (7, "active"), (9, "sku"), (10, "attributes.cor"),
                      (11, "sku"), (11, "price"), (11, "name")]
    assert count(session) == 0


@pytest.mark.parametrize("text,line", [
    ('[\n  {"sku": "A", "name": "x", "price": 1},\n  {"sku": "B" "name": "y"}\n]\n', 3),
    ('[\n  {"sku": "A", "name": "x", "price": 1}\n  {"sku": "B"}\n]\n', 3),
    ('[\n  {"sku": "A", "name": "x", "price": 1},\n\n\n  {"sku": "B", "name": "x", "price": 1,}\n]\n', 5),
    ('[\n  {"sku": "A", "name": "x", "price": 1}\n', 3),
    ('{"sku": "A", "name": "x", "price": 1}', 1),
    ('[{"sku": "A", "name": "x", "price": 1}]\n\n[]', 3),
    ('\n\n  nada disso é JSON', 3),
])
def test_json_syntax_errors_give_one_error_with_its_line(session, tmp_path, text, line):
    assert refused(session, write(tmp_path, "s.json", text)) == [(line, "file")]


def test_json_with_bom_and_upsert(session, tmp_path):
    session.add(Product(sku="TS-01", name="Velha", price=Decimal("1.00"), brand="Marca", attributes={"cor": "azul"}))
    session.flush()
    body = json.dumps([{"sku": "TS-01", "name": "Nova", "price": "2"}]).encode()
    path = write(tmp_path, "c.json", b"\xef\xbb\xbf" + body)
    assert import_catalog(session, path) == ImportReport(created=0, updated=1)
    ts = product(session, "TS-01")
    assert (ts.name, ts.price, ts.brand, ts.attributes) == ("Nova", Decimal("2.00"), "Marca", {"cor": "azul"})


def test_the_example_files_import(session):
    csv_report = import_catalog(session, EXAMPLES / "catalog.csv")
    assert csv_report.created >= 5 and csv_report.updated == 0
    json_report = import_catalog(session, EXAMPLES / "catalog.json")
    assert json_report.created == 0 and json_report.updated >= 5


# --- CLI ---------------------------------------------------------------------------------------------


def test_cli_imports_and_commits(app, session, tmp_path):
    path = write(tmp_path, "ok.csv", "sku;nome;preço\nTS-01;Camiseta;79,90\nTS-02;Calça;R$ 199,90\n")
    result = app.test_cli_runner().invoke(args=["catalog", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "imported 2 new and 0 updated products" in result.output
    assert product(session, "TS-02").price == Decimal("199.90")

    again = app.test_cli_runner().invoke(args=["catalog", "import", str(path)])
    assert again.exit_code == 0 and "imported 0 new and 2 updated products" in again.output


def test_cli_reports_every_error_by_line_and_field(app, session, tmp_path):
    path = write(tmp_path, "ruim.csv", "sku;nome;preço\nTS-01;Camiseta;79,90\nTS-02;;10\nTS-03;Boné;grátis\n")
    result = app.test_cli_runner().invoke(args=["catalog", "import", str(path)])
    assert result.exit_code == 1
    assert "ruim.csv: line 3: nome: campo obrigatório vazio" in result.output
    assert "ruim.csv: line 4: preço: preço inválido" in result.output
    assert "nothing imported (2 problem(s))" in result.output
    assert count(session) == 0


def test_cli_refuses_an_unsupported_file(app, session, tmp_path):
    path = write(tmp_path, "catalogo.txt", "sku,name,price\nA,B,1\n")
    result = app.test_cli_runner().invoke(args=["catalog", "import", str(path)])
    assert result.exit_code == 1
    assert "catalogo.txt: line 0: file: formato não suportado" in result.output
    assert count(session) == 0


# --- robustness --------------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.dictionaries(st.sampled_from(["sku", "name", "nome", "price", "preço", "active", "url", "category",
                                                 "attributes", "cor", "tamanhos"]), _json_values), max_size=4))
def test_any_json_value_is_a_row_error_never_an_exception(tmp_path, items):
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(items))
    try:
        _read_rows(path)
    except CatalogImportError as exc:
        assert exc.errors and all(e.line >= 1 and e.field and e.message for e in exc.errors)


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.sampled_from(list('ab1,;."|\n\r R$-') + ["\x00", "é"]), max_size=80))
def test_any_csv_text_is_a_row_error_never_an_exception(tmp_path, body):
    path = tmp_path / "fuzz.csv"
    path.write_text("sku;nome;preço;cor\n" + body, encoding="utf-8", newline="")
    try:
        _read_rows(path)
    except CatalogImportError as exc:
        assert exc.errors and all(e.line >= 1 and e.field and e.message for e in exc.errors)
