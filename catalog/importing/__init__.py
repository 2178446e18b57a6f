"""Catalog import: products and their variants from a merchant's file, every row or none, every problem by line.

``import_catalog(session, path, format="auto")`` reads the whole file, validates every record and, only when no
record has a problem, upserts the products (by product key) and their variants (by SKU) in the caller's session,
inside a savepoint, then refreshes the search index (``catalog.index.refresh``) in the same transaction. The
caller commits. Otherwise it raises ``CatalogImportError`` carrying one ``RowError`` per problem: the physical line
of the file where the record (CSV record, JSON object) starts, the field as the file names it (``arquivo`` for the
file as a whole, ``linha`` for a record as a whole) and a message in Brazilian Portuguese.

Formats (``format="auto"`` tells them apart by extension and header; ``csv``, ``json``, ``shopify`` and
``nuvemshop`` force one):

**Ours**, CSV (``,`` or ``;``, UTF-8 with or without BOM) or JSON (a list of objects with the same keys): one row
per variant, grouped by the product key. Header names, accents and case ignored (Portuguese / English):

========================  ============================================================  ==========
column                    also accepted                                                 level
========================  ============================================================  ==========
produto                   product, codigo, código do produto, referencia, ref,          product key
                          product_key, product_code
sku                       codigo sku, variant_sku                                       variant, required
nome                      nome do produto, titulo, name, title                          product, required
preço                     preco de venda, valor, price                                  variant, required
preço de                  preço original, preço cheio, preço antigo, compare_at_price   variant
estoque                   quantidade, qtd, qtde, stock, quantity, inventory             variant
tamanho                   tam, numeração, size                                          variant
cor                       color, colour                                                 variant
ativo                     ativa, situação, status, active                               variant
categoria                 category                                                      product
marca                     brand                                                         product
descrição                 description                                                   product
url                       link, url do produto, product_url                             product
imagem                    url da imagem, foto, image, image_url                         product
========================  ============================================================  ==========

Any other column is a product attribute (``material``, ``gênero``); a value with ``|`` becomes a list. JSON also
takes an ``atributos``/``attributes`` object and an ``opcoes``/``options`` object (every option of the variant,
``{"Tamanho": "42", "Cor": "Preto", "Material": "Couro"}``). Product-level values may repeat on every row of the
product (they must then agree, or the later line is an error) or be on its first row only; ``imagem`` is the
exception: the first image given wins (each colour's row may carry its own photo). ``preço de`` must be higher
than ``preço``. ``estoque``: empty = not tracked, ``0`` = sold out, ``12`` or ``12.0`` = twelve; negative,
fractional or ambiguous (``1.000``) values are errors.

**Today's format** (before variants; one row per product, ``sku`` the product's code, ``tamanhos`` = ``38|39|40``):
a file *without* a ``produto`` column. Each row is then a product whose key is its ``sku``, with one variant per
listed size named exactly as migration 0007 names them (``<sku>-<size>``; the ``sku`` itself for one size or none),
the row's colour (``cor``, capitalised as 0007 did) and price, so an old file re-imported after the migration
updates the same variants (a size whose SKU is not found updates the product's variant of that size: 0007 numbered
sizes that collapse to one SKU, ``P/M`` and ``P-M``, across the whole catalog). With a ``produto`` column,
``tamanhos`` is refused with advice (one row per size).

**Shopify's product CSV export**: Handle, Title, Body (HTML), Vendor, Type / Product Category, Tags, Published,
Status, Option1..3 Name/Value, Variant SKU, Variant Price, Variant Compare At Price, Variant Inventory Qty,
Variant Inventory Tracker, Variant Inventory Policy, Image Src (and the 2024 export's names: URL handle,
Description, SKU, Price, Compare-at price, Inventory quantity, Inventory tracker, Product image URL...). Rows of a
handle after the first carry only variant columns; image-only rows are skipped. The category is Type, else the last
level of Product Category. A product is active when its Status is active (or empty) and Published is not FALSE;
its variants follow it. No tracker = untracked stock; policy "continue" (sells when out of stock) = untracked; a
negative quantity (oversold) counts as 0. A compare-at price not above the price is ignored, as Shopify does. A
variant without SKU is an error naming its line. Other columns are ignored.

**Nuvemshop's product CSV export** (``;``): Identificador URL, Nome, Categorias, Nome/Valor da variação 1..3,
Preço, Preço promocional, Estoque, SKU, Exibir na loja, Descrição, Tags, Marca, Sexo, Faixa etária (others
ignored). Rows after a product's first repeat the Identificador URL and carry the variant. A promotional price
becomes the price and the regular price the "de" price. An empty Estoque is untracked ("infinito"). A variant
without SKU gets ``<identificador>-<valores>`` (Nuvemshop does not require SKUs), stable across imports.

For every platform format, options named Tamanho/Tam/Numeração/Size/Talla/Taille... become the variant's size and
Cor/Color/Colour/Couleur... its colour; every option is kept in ``Variant.options``. HTML descriptions become plain
text. A product key over 64 characters (long handles) is shortened with a hash suffix, the same way every time.

CSV as spreadsheets write it (RFC 4180): a field with the separator, a quote or a line break is quoted, its quotes
doubled. A quote inside an unquoted field (``Produto "quebrado``) or text after a closing quote is refused with the
line and the column, not imported as text; an inch mark after a digit (``Mochila 15"``) is text. A quote never
closed is refused on the line where its record starts. Blank lines and Excel's ``;;;;`` rows are skipped.

Encoding: UTF-8, with or without BOM. A Windows-1252 ("ANSI") file is refused with the line and word of its first
accented character and how to save it as UTF-8, as the issue asks: any byte decodes as Windows-1252, so decoding it
would silently store wrong names for the files that are in another encoding (Mac, ISO-8859-15, UTF-8 saved twice),
and one re-save fixes the file for every later import.

Upsert: a product is found by key, a variant by SKU; fields the file does not carry (a column that is absent) are
left as they are, a present but empty cell clears an optional field. In our format the attribute columns replace
the product's attributes; a platform export only replaces the attributes it carries (tags, sexo, faixa etária).
A product's variants that are not in the file are left as they are, unless ``deactivate_missing=True`` (then they
are deactivated, never deleted). A SKU that the file puts under another product moves there. Afterwards every
product the import touched has ``price`` = the lowest price among its active variants (all its variants when none
is active); in our format a product is active when at least one of its variants is, in the platform formats it
follows the platform's status. At most MAX_ERRORS problems are listed, then one line says how many more there are.

Modules, in import order (each imports only the ones above it): ``errors`` (RowError, CatalogImportError,
FieldError), ``values`` (cell parsers and limits), ``files`` (bytes, encoding, CSV records, JSON objects),
``columns`` (a header's columns for a format), ``assemble`` (rows grouped into products), ``ours``, ``platforms``,
``shopify`` and ``nuvemshop`` (each format's rows), ``read`` (``read_catalog``) and ``write`` (``import_catalog``).
"""

from catalog.importing.assemble import ParsedCatalog, ParsedProduct, ParsedVariant
from catalog.importing.errors import FILE_FIELD, MAX_ERRORS, ROW_FIELD, CatalogImportError, RowError
from catalog.importing.files import MAX_FILE_BYTES
from catalog.importing.read import FORMAT_LABELS, FORMATS, read_catalog
from catalog.importing.values import parse_price
from catalog.importing.write import ImportReport, import_catalog

__all__ = [
    "FILE_FIELD",
    "FORMATS",
    "FORMAT_LABELS",
    "MAX_ERRORS",
    "MAX_FILE_BYTES",
    "ROW_FIELD",
    "CatalogImportError",
    "ImportReport",
    "ParsedCatalog",
    "ParsedProduct",
    "ParsedVariant",
    "RowError",
    "import_catalog",
    "parse_price",
    "read_catalog",
]
