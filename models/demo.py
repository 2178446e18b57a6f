"""`flask --app app demo seed`: a believable Brazilian fashion store to try the product with."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.security import hash_password
from models import (
    Cart, CartItem, CartStatus, CouponKind, CouponRule, Customer, FaqEntry, FrequencyUnit, Product, RecoverySettings,
    Role, Store, SystemFlag, TemplateStatus, User, Variant, WhatsAppTemplate, utcnow,
)
from models.recovery import DEFAULT_TEMPLATE

DEMO_FLAG = "demo_data"
DEMO_PASSWORD = "demo-senha-123"

STORES = [
    ("SP-PAULISTA", "Loja Paulista", "São Paulo", "SP", "11"),
    ("RJ-COPACABANA", "Loja Copacabana", "Rio de Janeiro", "RJ", "21"),
    ("BH-SAVASSI", "Loja Savassi", "Belo Horizonte", "MG", "31"),
]

# (store code, name, e-mail, seller code, region DDDs)
SELLERS = [
    ("SP-PAULISTA", "Mariana Souza", "mariana@demo.loja", "V011", ["11", "12", "13"]),
    ("SP-PAULISTA", "Rafael Lima", "rafael@demo.loja", "V012", ["11", "19"]),
    ("RJ-COPACABANA", "Juliana Alves", "juliana@demo.loja", "V021", ["21", "22", "24"]),
    ("RJ-COPACABANA", "Bruno Costa", "bruno@demo.loja", "V022", ["21"]),
    ("BH-SAVASSI", "Camila Rocha", "camila@demo.loja", "V031", ["31", "32", "34"]),
    ("BH-SAVASSI", "Pedro Martins", "pedro@demo.loja", "V032", ["31", "37"]),
]

# (category, brand, base name, price, colours, sizes)
_LINES = [
    ("Calçados", "Passo Firme", "Tênis Corrida", "299.90", ["Preto", "Branco", "Azul"], ["38", "39", "40", "41", "42", "43"]),
    ("Calçados", "Passo Firme", "Tênis Casual Couro", "349.90", ["Preto", "Marrom"], ["39", "40", "41", "42", "43"]),
    ("Calçados", "Brisa", "Sandália Rasteira", "89.90", ["Caramelo", "Preto", "Dourado"], ["34", "35", "36", "37", "38"]),
    ("Calçados", "Brisa", "Chinelo Slide", "59.90", ["Preto", "Rosa"], ["35/36", "37/38", "39/40", "41/42"]),
    ("Roupas", "Algodão Brasil", "Camiseta Básica", "59.90", ["Branca", "Preta", "Cinza", "Verde"], ["P", "M", "G", "GG"]),
    ("Roupas", "Algodão Brasil", "Camisa Polo", "129.90", ["Azul Marinho", "Branca"], ["P", "M", "G", "GG"]),
    ("Roupas", "Denim & Co", "Calça Jeans Slim", "199.90", ["Azul Escuro", "Preta"], ["38", "40", "42", "44", "46"]),
    ("Roupas", "Denim & Co", "Bermuda Jeans", "139.90", ["Azul Claro", "Azul Escuro"], ["38", "40", "42", "44"]),
    ("Roupas", "Flor de Lis", "Vestido Midi Floral", "229.90", ["Azul", "Vermelho"], ["P", "M", "G"]),
    ("Roupas", "Flor de Lis", "Blusa de Linho", "159.90", ["Off-white", "Verde Oliva"], ["P", "M", "G"]),
    ("Roupas", "Inverno Sul", "Jaqueta Corta-vento", "279.90", ["Preta", "Amarela"], ["P", "M", "G", "GG"]),
    ("Roupas", "Inverno Sul", "Moletom Canguru", "189.90", ["Cinza Mescla", "Preto"], ["P", "M", "G", "GG"]),
    ("Esporte", "Passo Firme", "Legging Fitness", "119.90", ["Preta", "Vinho"], ["P", "M", "G"]),
    ("Esporte", "Passo Firme", "Top Esportivo", "79.90", ["Preto", "Lilás"], ["P", "M", "G"]),
    ("Acessórios", "Trilha", "Mochila Urbana 20L", "219.90", ["Preta", "Cinza"], ["Único"]),
    ("Acessórios", "Trilha", "Boné Aba Curva", "69.90", ["Preto", "Bege"], ["Único"]),
    ("Acessórios", "Brilho", "Óculos de Sol Aviador", "249.90", ["Dourado", "Prata"], ["Único"]),
    ("Acessórios", "Brilho", "Relógio Digital", "179.90", ["Preto"], ["Único"]),
    ("Acessórios", "Couro Nobre", "Cinto de Couro", "99.90", ["Marrom", "Preto"], ["90", "100", "110"]),
    ("Acessórios", "Couro Nobre", "Carteira Slim", "89.90", ["Preta", "Caramelo"], ["Único"]),
    ("Acessórios", "Couro Nobre", "Bolsa Tiracolo", "259.90", ["Preta", "Caramelo"], ["Único"]),
    ("Calçados", "Brisa", "Sapatilha Bailarina", "119.90", ["Nude", "Preta", "Vermelha"], ["34", "35", "36", "37", "38"]),
    ("Roupas", "Flor de Lis", "Saia Plissada", "149.90", ["Preta", "Rosa"], ["P", "M", "G"]),
    ("Esporte", "Passo Firme", "Kit 3 Meias Cano Alto", "49.90", ["Branca"], ["34-38", "39-43"]),
]


def demo_products() -> list[dict]:
    """One product per line and colour, one variant per size, each with some stock (a few sizes sold out)."""
    products = []
    for category, brand, base, price, colours, sizes in _LINES:
        for colour in colours:
            name = f"{base} {colour}"
            key = "DEMO-" + hashlib.sha1(name.encode()).hexdigest()[:8].upper()
            variants = []
            for index, size in enumerate(sizes):
                sku = key if len(sizes) == 1 else f"{key}-{size.replace('/', '-')}"
                # Deterministic stock: the largest size of every third product is sold out.
                sold_out = index == len(sizes) - 1 and len(sizes) > 2 and int(key[-1], 16) % 3 == 0
                variants.append({"sku": sku, "size": size, "color": colour, "options": {"Tamanho": size, "Cor": colour},
                                 "price": Decimal(price), "stock": 0 if sold_out else 5 + (index * 3) % 7})
            products.append(
                {
                    "key": key,
                    "name": name,
                    "description": f"{base} da {brand}, cor {colour.lower()}.",
                    "price": Decimal(price),
                    "category": category,
                    "brand": brand,
                    "attributes": {},
                    "url": f"https://loja.example/produto/{key.lower()}",
                    "variants": variants,
                }
            )
    return products


FAQ = [
    ("frete", "Frete e entrega", ["frete", "entrega", "entregam", "prazo", "envio", "enviam", "chega", "correios", "sedex"],
     "Entregamos em todo o Brasil. Frete grátis nas compras acima de R$ 299,00; o prazo aparece no checkout "
     "depois do CEP (capitais em 2 a 5 dias úteis)."),
    ("pagamento", "Formas de pagamento", ["pagamento", "pagar", "parcela", "parcelam", "parcelar", "parcelado", "pix",
                                          "cartao", "credito", "boleto", "juros"],
     "Aceitamos Pix (5% de desconto), cartão de crédito em até 10x sem juros e boleto."),
    ("trocas", "Trocas e devoluções", ["troca", "trocar", "devolucao", "devolver", "defeito", "arrependimento"],
     "Você tem 30 dias para trocar, a primeira troca é grátis. Basta guardar a etiqueta e falar com a gente."),
    ("horario", "Horário de atendimento", ["horario", "abre", "abrem", "fecha", "fecham", "funcionamento", "aberto",
                                           "aberta", "domingo", "sabado"],
     "Atendemos de segunda a sábado, das 9h às 21h, e aos domingos das 14h às 20h."),
]


# Questions shoppers send about each topic, as they type them on WhatsApp: the intent model's examples.
FAQ_EXAMPLES = {
    "frete": ["vcs entregam em Manaus?", "qual o valor do frete pro meu cep?", "quanto tempo demora pra chegar?",
              "tem frete gratis?", "mandam pelos correios ou transportadora?"],
    "pagamento": ["da pra parcelar no cartão?", "aceita pix?", "parcela em quantas vezes sem juros?",
                  "tem desconto pagando no pix?", "posso pagar com boleto?"],
    "trocas": ["se não servir posso trocar?", "como faço pra devolver um produto?", "a troca é gratis?",
               "veio com defeito, e agora?", "quantos dias tenho pra trocar?"],
    "horario": ["que horas vcs abrem?", "a loja abre domingo?", "até que horas posso falar com alguém hoje?",
                "vcs atendem sábado?", "qual o horário de funcionamento?"],
}


def _seed_faq(session: Session) -> None:
    for position, (topic, title, keywords, answer) in enumerate(FAQ):
        session.add(FaqEntry(topic=topic, title=title, keywords=keywords, answer=answer, position=position,
                             examples=list(FAQ_EXAMPLES.get(topic, []))))


# The approved template a web-cart abandoner gets outside the 24 h window. Provider "demo": never sent by a real
# provider (channel.templates.sendable), shown in the simulator in outbox mode.
DEMO_TEMPLATE_BODY = ("Oi, {{1}}! Você deixou {{2}} no carrinho da Loja Demo. Com o cupom {{3}} (válido até {{4}}) "
                      "fica mais barato. Finalize aqui: {{5}}")
DEMO_TEMPLATE_PARAMS = {"1": "nome", "2": "itens", "3": "cupom", "4": "validade", "5": "link"}
# A shopper who left a cart on the shop's site and never wrote: the recoverer reaches her with the template.
DEMO_ABANDONER = ("+5511988881001", "Carla Dias")


def _seed_recovery(session: Session) -> None:
    """Recovery on: 10 minutes, a 10 % coupon valid 24 h, at most one message per shopper every 7 days; the demo
    template mapped for shoppers outside the 24 h window."""
    rule = CouponRule(name="Recuperador de vendas 10%", kind=CouponKind.PERCENT, value=Decimal("10"),
                      min_order=Decimal("0"), recovery_only=True, active=True)
    template = WhatsAppTemplate(
        provider="demo", external_id="demo-recuperacao-carrinho", name="recuperacao_carrinho", language="pt_BR",
        category="marketing", status=TemplateStatus.APPROVED, body=DEMO_TEMPLATE_BODY,
        footer="Para não receber mais mensagens, responda SAIR", buttons=[],
        placeholders=[{"key": str(n), "name": str(n), "component": "body", "index": None} for n in range(1, 6)])
    session.add_all([rule, template])
    session.flush()
    session.add(RecoverySettings(id=1, enabled=True, delay_minutes=10, coupon_rule_id=rule.id, coupon_validity_hours=24,
                                 frequency_count=7, frequency_unit=FrequencyUnit.DAYS, coupon_use_pause_days=30,
                                 template=DEFAULT_TEMPLATE, quiet_start="21:00", quiet_end="09:00",
                                 whatsapp_template_id=template.id, whatsapp_template_params=DEMO_TEMPLATE_PARAMS,
                                 variant_b_whatsapp_template_params={}))


def _seed_web_abandoner(session: Session) -> Cart:
    phone, name = DEMO_ABANDONER
    # simulated: the simulator may show her conversation (type her number there).
    customer = Customer(phone=phone, name=name, ddd=phone[3:5], tags=[], simulated=True)
    now = utcnow()
    cart = Cart(customer=customer, source="store", external_id="demo-site-1001", status=CartStatus.ABANDONED,
                checkout_url="https://loja.example/checkout/demo-site-1001", created_at=now, updated_at=now)
    cart.items = [CartItem(sku="DEMO-TENIS-CORRIDA-PRETO-40", name="Tênis Corrida Preto 40", quantity=1,
                           unit_price=Decimal("299.90")),
                  CartItem(sku="DEMO-CAMISETA-BASICA-BRANCA-M", name="Camiseta Básica Branca M", quantity=2,
                           unit_price=Decimal("59.90"))]
    cart.recompute_total()
    session.add(cart)
    return cart


def web_abandoner(session: Session) -> Cart | None:
    """The demo's web cart, for the caller to start its recovery countdown (the tracker lives in Redis)."""
    return session.scalar(select(Cart).where(Cart.external_id == "demo-site-1001"))


class DemoRefused(RuntimeError):
    pass


def is_empty(session: Session) -> bool:
    return not any(
        session.scalar(select(func.count()).select_from(model)) for model in (Store, User, Product)
    )


def seed(session: Session) -> str:
    """Load the demo store. Returns 'seeded' or 'already seeded'; refuses a database with real data."""
    if session.get(SystemFlag, DEMO_FLAG) is not None:
        return "already seeded"
    if not is_empty(session):
        raise DemoRefused("o banco já tem dados que não são de demonstração; a carga de demonstração foi recusada")
    stores = {}
    for code, name, city, state, ddd in STORES:
        stores[code] = Store(code=code, name=name, city=city, state=state, ddd=ddd, active=True)
        session.add(stores[code])
    session.flush()
    password_hash = hash_password(DEMO_PASSWORD)
    session.add(User(email="admin@demo.loja", name="Administradora Demo", role=Role.ADMIN, password_hash=password_hash, region_ddds=[]))
    for code, store in stores.items():
        session.add(
            User(email=f"gerente.{code.lower()}@demo.loja", name=f"Gerente {store.name}", role=Role.MANAGER,
                 password_hash=password_hash, store_id=store.id, region_ddds=[])
        )
    for store_code, name, email, seller_code, ddds in SELLERS:
        session.add(
            User(email=email, name=name, role=Role.SELLER, password_hash=password_hash, store_id=stores[store_code].id,
                 seller_code=seller_code, region_ddds=ddds, max_portfolio=300, active=True)
        )
    for spec in demo_products():
        variants = spec.pop("variants")
        product = Product(**spec)
        product.variants = [Variant(**variant) for variant in variants]
        session.add(product)
    _seed_recovery(session)
    _seed_web_abandoner(session)
    _seed_faq(session)
    session.add(SystemFlag(key=DEMO_FLAG, value="1"))
    session.flush()
    return "seeded"
