"""A generated, realistic Brazilian fashion catalog (deterministic), for the search relevance set and benchmark.

``generated_products()`` gives about 450 products (about 2 600 variants) that share words on purpose: many
tênis, camisa/camiseta/camisa polo, calça/bermuda/jaqueta jeans, saias and sandálias of several kinds, one real
brand the store carries (Mizuno), per-colour products ("Tênis Skate Urban Preto") next to multi-colour ones
("Camiseta Oversized", variants in five colours), sold-out and untracked stock. ``scaled_products(n)`` gives n
products for the benchmark (collections multiply the same lines). Specs have the shape of
``models.demo.demo_products()``; ``insert_products`` writes them with Core (fast) and the caller refreshes
the index.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator
from decimal import Decimal

from sqlalchemy import insert
from unidecode import unidecode

SHOES_F = ["34", "35", "36", "37", "38", "39"]
SHOES = ["37", "38", "39", "40", "41", "42", "43", "44"]
SHOES_ALL = ["34", "35", "36", "37", "38", "39", "40", "41", "42", "43"]
FLIP_FLOPS = ["33/34", "35/36", "37/38", "39/40", "41/42", "43/44"]
LETTERS = ["PP", "P", "M", "G", "GG"]
LETTERS_XL = ["P", "M", "G", "GG", "XG", "XGG"]
LETTERS_SHORT = ["P", "M", "G"]
PLUS = ["G1", "G2", "G3", "G4"]
JEANS = ["36", "38", "40", "42", "44", "46", "48"]
MEN_PANTS = ["38", "40", "42", "44", "46", "48"]
BRAS = ["40", "42", "44", "46", "48"]
BELTS = ["85", "90", "95", "100", "105", "110"]
SOCKS = ["34-38", "39-43"]
ONE = ["Único"]

NEUTRAL = ["Preto", "Branco", "Cinza Mescla", "Azul Marinho", "Bege"]
BRIGHT = ["Vermelho", "Rosa", "Verde Oliva", "Amarelo", "Lilás", "Laranja"]
LEATHER = ["Preto", "Marrom", "Caramelo", "Off-white", "Vinho"]
METAL = ["Dourado", "Prata"]
DENIM = ["Azul Claro", "Azul Escuro", "Preto", "Branco"]
SANDAL = ["Caramelo", "Preto", "Nude", "Dourado", "Branco", "Prata"]

# (category, type, models, sizes, colours, price, gender, material, per-colour products?)
LINES = [
    ("Calçados", "Tênis", ["Skate Urban", "Running Pro", "Jogging Leve", "Chunky Plataforma", "Slip On Lona",
                           "Cano Alto Retrô", "Academia Flex", "Caminhada Conforto"],
     SHOES_ALL, ["Preto", "Branco", "Cinza", "Azul Marinho", "Rosa", "Verde Oliva", "Bege"], 249, None, "Sintético",
     True),
    ("Calçados", "Sapatênis", ["Couro Liso", "Camurça"], SHOES, ["Preto", "Marrom", "Azul Marinho"], 229, "masculino",
     "Couro", True),
    ("Calçados", "Sandália", ["Salto Bloco", "Anabela Palha", "Papete Velcro", "Plataforma Tratorada", "Gladiadora",
                              "Salto Fino Festa"], SHOES_F, SANDAL, 159, "feminino", "Couro", True),
    ("Calçados", "Rasteirinha", ["Trançada", "Tira Fina Strass"], SHOES_F, SANDAL, 79, "feminino", "Sintético", True),
    ("Calçados", "Chinelo", ["Dedo Básico", "Nuvem Acolchoado"], FLIP_FLOPS, ["Preto", "Branco", "Azul", "Rosa",
                                                                          "Verde"], 39, None, "Borracha", False),
    ("Calçados", "Bota", ["Coturno Tratorado", "Chelsea Cano Curto", "Montaria Cano Alto", "Western Bordada"],
     SHOES_ALL, LEATHER, 329, None, "Couro", True),
    ("Calçados", "Sapatilha", ["Bico Fino", "Laço Verniz", "Matelassê"], SHOES_F, ["Preto", "Nude", "Vermelho",
                                                                                   "Off-white"], 99, "feminino",
     "Verniz", True),
    ("Calçados", "Sapato", ["Social Oxford", "Mocassim Drive", "Scarpin Salto Alto", "Derby Couro"], SHOES,
     LEATHER, 279, None, "Couro", True),
    ("Roupas", "Camiseta", ["Básica Gola Redonda", "Gola V", "Oversized", "Estampada Tropical", "Listrada",
                            "Manga Longa", "Henley Botões"], LETTERS_XL, NEUTRAL + BRIGHT[:3], 69, None, "Algodão",
     False),
    ("Roupas", "Camisa", ["Social Slim", "Linho Manga Curta", "Xadrez Flanela", "Oxford", "Estampada Havaiana"],
     LETTERS_XL, ["Branco", "Azul Claro", "Preto", "Verde Oliva", "Rosa"], 159, "masculino", "Algodão", True),
    ("Roupas", "Camisa Polo", ["Piquet", "Listrada", "Slim Bordada"], LETTERS_XL, ["Azul Marinho", "Branco", "Preto",
                                                                                  "Vermelho", "Verde"], 119,
     "masculino", "Piquet", True),
    ("Roupas", "Regata", ["Básica", "Nadador Dry", "Canelada"], LETTERS, NEUTRAL + ["Rosa"], 49, None, "Algodão",
     False),
    ("Roupas", "Blusa", ["Ombro a Ombro", "Tricô Gola Alta", "Seda Decote V", "Manga Bufante", "Babado"],
     LETTERS_SHORT, ["Off-white", "Preto", "Rosa", "Azul Claro", "Vinho"], 129, "feminino", "Viscose", True),
    ("Roupas", "Cropped", ["Canelado", "Alcinha", "Manga Longa"], LETTERS_SHORT, ["Preto", "Branco", "Lilás",
                                                                                 "Verde"], 59, "feminino",
     "Viscolycra", False),
    ("Roupas", "Vestido", ["Midi Plissado", "Longo Estampado", "Curto Tubinho", "Chemise Linho", "Slip Dress Cetim",
                           "Envelope Transpassado"], LETTERS, ["Preto", "Vermelho", "Azul Marinho", "Verde Oliva",
                                                              "Rosa", "Amarelo"], 219, "feminino", "Viscose", True),
    ("Roupas", "Saia", ["Jeans Curta", "Longa Fenda", "Lápis Alfaiataria", "Godê Midi", "Plissada Metalizada"],
     ["36", "38", "40", "42", "44"], ["Preto", "Azul Claro", "Bege", "Rosa", "Prata"], 139, "feminino", "Viscose",
     True),
    ("Roupas", "Calça", ["Jeans Skinny", "Jeans Reta", "Jeans Mom", "Alfaiataria Pantalona", "Jogger Moletom",
                         "Sarja Chino", "Cargo"], JEANS, DENIM + ["Bege", "Verde Oliva"], 189, None, "Jeans", True),
    ("Roupas", "Bermuda", ["Sarja", "Moletom", "Tactel Praia", "Cargo"], MEN_PANTS, ["Bege", "Preto", "Azul Marinho",
                                                                                    "Cinza", "Verde Oliva"], 109,
     "masculino", "Sarja", False),
    ("Roupas", "Short", ["Jeans Cintura Alta", "Saia Linho", "Corrida Dry"], ["34", "36", "38", "40", "42"],
     DENIM + ["Rosa"], 99, "feminino", "Jeans", True),
    ("Roupas", "Jaqueta", ["Jeans Oversized", "Couro Sintético", "Puffer Matelassê", "Bomber Nylon",
                           "Sarja Utilitária"], LETTERS_XL,
     ["Preto", "Azul Claro", "Caramelo", "Verde Oliva", "Off-white"], 299, None, "Nylon", True),
    ("Roupas", "Moletom", ["Careca Básico", "Zíper Capuz", "Oversized Estampado"], LETTERS_XL,
     ["Cinza Mescla", "Preto", "Off-white", "Azul Marinho", "Vinho"], 179, None, "Moletom", False),
    ("Roupas", "Casaco", ["Lã Batida", "Trench Coat", "Teddy Pelúcia"], LETTERS_SHORT, ["Caramelo", "Preto", "Bege",
                                                                                       "Cinza"], 389, "feminino",
     "Lã", True),
    ("Roupas", "Macacão", ["Pantacourt", "Jeans Utilitário", "Longo Linho"], LETTERS_SHORT, ["Preto", "Azul Escuro",
                                                                                            "Terracota", "Verde"],
     239, "feminino", "Linho", True),
    ("Roupas", "Pijama", ["Curto Algodão", "Longo Flanela Xadrez"], LETTERS, ["Rosa", "Azul", "Cinza", "Vermelho"],
     119, None, "Algodão", False),
    ("Roupas", "Cueca", ["Boxer Kit 3", "Slip Algodão"], LETTERS_XL, ["Preto", "Cinza", "Azul Marinho"], 69,
     "masculino", "Algodão", False),
    ("Roupas", "Calcinha", ["Renda Cós Largo", "Algodão Kit 5"], LETTERS, ["Preto", "Nude", "Branco", "Vinho"], 39,
     "feminino", "Renda", False),
    ("Roupas", "Sutiã", ["Sem Bojo Renda", "Push Up", "Nadador Conforto"], BRAS, ["Preto", "Nude", "Branco", "Vinho"],
     89, "feminino", "Renda", False),
    ("Moda Praia", "Biquíni", ["Cortininha", "Hot Pant", "Asa Delta Canelado"], LETTERS_SHORT,
     ["Preto", "Laranja", "Verde", "Amarelo", "Rosa"], 129, "feminino", "Poliamida", True),
    ("Moda Praia", "Maiô", ["Decote Cavado", "Frente Única"], LETTERS_SHORT, ["Preto", "Vermelho", "Azul Marinho"], 159,
     "feminino", "Poliamida", True),
    ("Moda Praia", "Sunga", ["Boxer Estampada", "Slip Lisa"], LETTERS, ["Azul Marinho", "Preto", "Verde"], 79,
     "masculino", "Poliamida", False),
    ("Esporte", "Legging", ["Cintura Alta", "Zero Transparência", "Cirrê Brilho", "Estampada Fitness"], LETTERS,
     ["Preto", "Vinho", "Azul Marinho", "Verde Oliva", "Cinza Mescla"], 129, "feminino", "Suplex", False),
    ("Esporte", "Top", ["Alta Sustentação", "Faixa Canelado", "Nadador Bojo"], LETTERS_SHORT, ["Preto", "Lilás",
                                                                                              "Rosa", "Branco"],
     79, "feminino", "Suplex", False),
    ("Esporte", "Bermuda Ciclista", ["Básica", "Cintura Alta"], LETTERS_SHORT, ["Preto", "Vinho", "Azul Marinho"], 69,
     "feminino", "Suplex", False),
    ("Esporte", "Meia", ["Cano Alto Kit 3", "Soquete Invisível Kit 6", "Cano Médio Esportiva"], SOCKS,
     ["Branco", "Preto", "Cinza"], 39, None, "Algodão", False),
    ("Acessórios", "Bolsa", ["Tiracolo Couro", "Tote Grande", "Transversal Matelassê", "Saco Camurça", "Clutch Festa",
                             "Baguete Croco"], ONE, ["Preto", "Caramelo", "Off-white", "Vinho", "Dourado"], 249,
     "feminino", "Couro", True),
    ("Acessórios", "Mochila", ["Notebook 15", "Escolar Reforçada", "Couro Compacta"], ONE, ["Preto", "Cinza",
                                                                                           "Azul Marinho"], 199,
     None, "Poliéster", False),
    ("Acessórios", "Carteira", ["Porta-cartões", "Zíper Grande", "Couro Dobrável"], ONE, ["Preto", "Marrom",
                                                                                          "Caramelo", "Rosa"], 79,
     None, "Couro", True),
    ("Acessórios", "Cinto", ["Fivela Dourada", "Trançado Elástico", "Reversível"], BELTS, ["Preto", "Marrom",
                                                                                          "Caramelo"], 89, None,
     "Couro", True),
    ("Acessórios", "Boné", ["Aba Reta Snapback", "Trucker Tela", "Dad Hat Bordado"], ONE, ["Preto", "Branco", "Bege",
                                                                                          "Azul Marinho"], 79,
     None, "Sarja", False),
    ("Acessórios", "Chapéu", ["Bucket", "Palha Panamá"], ["P", "M", "G"], ["Bege", "Preto", "Off-white"], 99, None,
     "Palha", True),
    ("Acessórios", "Óculos de Sol", ["Gatinho", "Quadrado Acetato", "Redondo Retrô", "Esportivo Espelhado"], ONE,
     ["Preto", "Dourado", "Marrom", "Prata"], 189, None, "Acetato", True),
    ("Acessórios", "Relógio", ["Analógico Couro", "Dourado Minimalista", "Smartwatch Esportivo"], ONE,
     ["Preto", "Dourado", "Prata", "Rosa"], 219, None, "Aço", True),
    ("Acessórios", "Brinco", ["Argola Média", "Gota Cristal", "Ear Cuff"], ONE, METAL, 49, "feminino", "Metal", True),
    ("Acessórios", "Colar", ["Choker Corrente", "Pingente Coração"], ONE, METAL, 59, "feminino", "Metal", True),
    ("Acessórios", "Cachecol", ["Tricô Trançado", "Lã Xadrez"], ONE, ["Cinza", "Vinho", "Caramelo", "Preto"], 79, None,
     "Lã", False),
]
BRANDS = ["Rua Nova", "Maré Alta", "Atlântica", "Cerrado", "Vila Madalena", "Bossa", "Ipê", "Jabuticaba",
          "Pampa Jeans", "Carioca Fit"]
# Brands per category, so a brand word means something (and one real brand the store carries).
CATEGORY_BRANDS = {
    "Calçados": ["Velox", "Rua Nova", "Cerrado", "Mizuno"],
    "Roupas": ["Maré Alta", "Vila Madalena", "Bossa", "Pampa Jeans", "Ipê"],
    "Moda Praia": ["Maré Alta", "Carioca Fit"],
    "Esporte": ["Carioca Fit", "Velox", "Mizuno"],
    "Acessórios": ["Jabuticaba", "Atlântica", "Bossa"],
}
COLLECTIONS = ["Essencial", "Aurora", "Tropical", "Urbano", "Clássico", "Verão", "Inverno", "Noite", "Praia",
               "Conforto", "Premium", "Eco", "Studio", "Lagoa", "Serra", "Boreal", "Sertão", "Marinha", "Estação",
               "Horizonte"]


def slug(text: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "-", unidecode(text).upper()).strip("-")


def _spec(category: str, type_name: str, model: str, brand: str, colours: list[str], sizes: list[str],
          price: int, gender: str | None, material: str, name: str, key: str, rng: random.Random) -> dict:
    variants = []
    untracked = rng.random() < 0.15
    for colour in colours:
        for index, size in enumerate(sizes):
            roll = rng.random()
            stock = None if untracked else (0 if roll < 0.12 else 1 + int(roll * 17) % 9)
            sku = f"{key}-{slug(colour)}-{slug(size)}"[:64] if len(colours) > 1 else f"{key}-{slug(size)}"[:64]
            variants.append({"sku": sku, "size": size, "color": colour,
                             "options": {"Tamanho": size, "Cor": colour}, "price": Decimal(f"{price}.90"),
                             "stock": stock})
    attributes = {"material": material.lower()}
    if gender:
        attributes["genero"] = gender
    return {
        "key": key, "name": name, "category": category, "brand": brand, "price": Decimal(f"{price}.90"),
        "description": f"{type_name} {model.lower()} da {brand}, em {material.lower()}.", "attributes": attributes,
        "url": f"https://loja.example/produto/{key.lower()}", "variants": variants,
    }


def generated_products(seed: int = 7) -> list[dict]:
    """About 450 products of the lines above: each model in one or two brands, either one product per colour
    (the colour in its name) or one product in several colours."""
    rng = random.Random(seed)
    products, keys = [], set()
    for category, type_name, models, sizes, colours, price, gender, material, per_colour in LINES:
        brands = CATEGORY_BRANDS[category]
        for m, model in enumerate(models):
            for brand in (brands[m % len(brands)], brands[(m + 1) % len(brands)])[: 1 + (m % 2)]:
                chosen = rng.sample(colours, k=min(len(colours), 2 + rng.randrange(3)))
                base = f"{type_name} {model}"
                groups = [[c] for c in chosen] if per_colour else [chosen]
                for group in groups:
                    name = f"{base} {group[0]}" if per_colour else base
                    key = f"GEN-{slug(name)}-{slug(brand)}"[:64]
                    if key in keys:
                        continue
                    keys.add(key)
                    products.append(_spec(category, type_name, model, brand, group, sizes, price, gender, material,
                                          name, key, rng))
    return products


def scaled_products(count: int, seed: int = 11) -> Iterator[dict]:
    """``count`` products for the benchmark: the lines' models in every brand and collection ("Tênis Running Pro
    Aurora Preto"), about five variants each."""
    rng = random.Random(seed)
    made = 0
    round_ = 0
    while True:
        for category, type_name, models, sizes, colours, price, gender, material, per_colour in LINES:
            for model in models:
                collection = COLLECTIONS[round_ % len(COLLECTIONS)]
                brand = CATEGORY_BRANDS[category][(round_ // len(COLLECTIONS)) % len(CATEGORY_BRANDS[category])]
                base = f"{type_name} {model} {collection}"
                if per_colour:
                    colour = colours[(round_ + made) % len(colours)]
                    group, name = [colour], f"{base} {colour}"
                else:
                    group, name = rng.sample(colours, k=min(2, len(colours))), base
                # About five variants a product: a run of its sizes (in two colours for multi-colour lines).
                width = 6 if per_colour else 3
                start = made % max(1, len(sizes) - width + 1)
                run = sizes if len(sizes) <= 3 else sizes[start:start + width]
                key = f"B{made:06d}-{hashlib.sha1(name.encode()).hexdigest()[:6].upper()}"
                yield _spec(category, type_name, model, brand, group, run, price + (made % 7) * 10, gender, material,
                            name, key, rng)
                made += 1
                if made >= count:
                    return
        round_ += 1


def insert_products(conn, specs, first_id: int = 1) -> list[int]:
    """Write product specs with Core (ids from ``first_id``): fast, and bypassing the ORM's flush, so the caller
    refreshes the index (``catalog.index.refresh`` / ``rebuild``)."""
    from models import Product, Variant
    from models.base import utcnow

    now = utcnow()
    products, variants, ids = [], [], []
    for offset, spec in enumerate(specs):
        product_id = first_id + offset
        ids.append(product_id)
        row = {k: v for k, v in spec.items() if k != "variants"}
        products.append({"id": product_id, "active": True, "created_at": now, "updated_at": now, "attributes": {},
                         **row})
        for variant in spec["variants"]:
            variants.append({"product_id": product_id, "active": True, "created_at": now, "updated_at": now,
                             "compare_at_price": None, **variant})
    conn.execute(insert(Product.__table__), products)
    for start in range(0, len(variants), 5000):
        conn.execute(insert(Variant.__table__), variants[start:start + 5000])
    return ids
