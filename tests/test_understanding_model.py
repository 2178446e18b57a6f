"""The intent model: messages it was never trained on, its determinism and speed path, the merchant's FAQ topics
as intents, and the shipped evaluation sets (held-out split, independent messages, scripted conversations)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from bot import faq
from bot.understanding import evaluate, read
from bot.understanding.features import prepare
from bot.understanding.model import TRAINING_FILE, IntentModel, base_model, load_training, store_model
from core.text import normalize
from models.demo import seed

# The messages the issue reported as misunderstood. The training set leaves them out on purpose (a test below
# checks it), so these are messages the model has never seen.
REPORTED = [
    ("quero falar com um vendedor", "handoff"), ("quero falar com uma vendedora", "handoff"),
    ("tem como falar com um consultor?", "handoff"), ("preciso de ajuda de um vendedor", "handoff"),
    ("quero ser atendido por uma pessoa", "handoff"), ("tem alguém aí?", "handoff"),
    ("quero a primeira", "add"), ("vou levar a segunda", "add"), ("quero essa", "add"), ("pode adicionar", "add"),
    ("manda o link", "checkout"), ("pode fechar", "checkout"), ("qto deu?", "cart"), ("ver meu carrinho", "cart"),
    ("o que tem no meu carrinho?", "cart"), ("como pago?", "faq_pagamento"),
    ("até que horas funciona?", "faq_horario"), ("comprei e não serviu, e agora?", "faq_trocas"),
    ("já foi enviado?", "order_status"), ("onde está minha encomenda?", "order_status"), ("obrigado!", "thanks"),
    ("kkkk", "ack"), ("ok", "ack"), ("quero voltar a receber", "opt_in"), ("quero usar o cupom", "coupon"),
    ("ainda tem o 42?", "availability"), ("quero o 1 tamanho unico", "add"),
]


def test_the_reported_messages_are_not_in_the_training_set():
    trained = {normalize(text) for text, _ in load_training()}
    assert [text for text, _ in REPORTED if normalize(text) in trained] == []


@pytest.mark.parametrize("text,intent", REPORTED)
def test_messages_outside_the_training_set(text, intent):
    assert base_model().rank(text)[0].intent == intent


def test_every_intent_has_at_least_forty_examples_and_none_is_repeated():
    data = yaml.safe_load(TRAINING_FILE.read_text(encoding="utf-8"))
    assert len(data) == 26 and min(len(examples) for examples in data.values()) >= 40
    keys = [normalize(text) for examples in data.values() for text in examples]
    assert len(keys) == len(set(keys))


def test_training_is_deterministic():
    examples = load_training()[::3]
    first, second = IntentModel(examples), IntentModel(examples)
    assert first.temperature == second.temperature
    texts = ["quero o 2", "qual o frete pra BH?", "me passa pra alguem", "tem no 38?"]
    assert np.array_equal(first.probabilities(texts), second.probabilities(texts))


def test_the_fast_scores_equal_scikit_learns():
    model = base_model()
    texts = [text for text, _ in load_training()[::25]] + ["", "🙂", "x" * 600, "R$ 59,90 tam M azul"]
    slow = model.classifier.decision_function(model._matrix(texts))
    fast = np.vstack([model.scores(text) for text in texts])
    assert np.allclose(slow, fast, atol=1e-5)


def test_placeholders_make_colours_numbers_and_money_alike():
    assert prepare("tem em VINHO?") == prepare("tem em azul marinho?") == "tem em qcor"
    assert prepare("quero o 2") == prepare("quero o 7")
    assert prepare("até R$ 150,00") == prepare("ate 80 reais") == "ate qdinheiro"
    assert prepare("kkkkk siiim") == "qrisos sim"


# --- the merchant's FAQ ------------------------------------------------------------------------------------


@pytest.fixture
def shop(session):
    seed(session)
    session.commit()
    return session


def test_demo_topics_answer_the_shipped_faq_intents(shop):
    topics = store_model(shop).topics
    assert {intent: topic.topic for intent, topic in topics.items()} == {
        "faq_frete": "frete", "faq_pagamento": "pagamento", "faq_trocas": "trocas", "faq_horario": "horario"}


def test_a_new_topic_becomes_an_intent_when_the_merchant_saves_it(shop):
    before = store_model(shop)
    assert read(shop, "vcs fazem bordado com nome?").intent != "faq:personalizacao"
    faq.save_entry(shop, None, title="Personalização", keywords="bordado, personalizar, gravar nome",
                   answer="Bordamos o nome em camisetas e bonés por R$ 15,00.",
                   examples="vocês bordam nome na camiseta?\nconsigo personalizar o boné?\ndá pra gravar meu nome?")
    shop.commit()
    after = store_model(shop)
    assert after is not before  # trained again for the new configuration
    for text in ("vcs fazem bordado com nome?", "da pra personalizar a camiseta com meu nome?"):
        assert read(shop, text).intent == "faq:personalizacao", text
    # The shipped intents keep working beside it.
    assert read(shop, "qual o valor do frete pra recife?").intent == "faq_frete"
    assert read(shop, "quero o 2").intent == "add"


def test_a_topic_about_shipping_answers_the_shipping_intent(shop):
    from models import FaqEntry

    for entry in shop.query(FaqEntry).all():
        shop.delete(entry)
    shop.flush()
    faq.save_entry(shop, None, title="Entregas", keywords="entrega, prazo, correios",
                   answer="Enviamos em 24 h.", examples="em quantos dias chega?\nentrega em Manaus?")
    shop.commit()
    topics = store_model(shop).topics
    assert list(topics) == ["faq_frete"] and topics["faq_frete"].title == "Entregas"


# --- the shipped evaluation sets ---------------------------------------------------------------------------


def test_held_out_split_and_independent_set():
    split, other = evaluate.held_out(), evaluate.independent()
    assert split.total > 1000 and other.total > 700
    assert split.accuracy >= 0.93 and other.accuracy >= 0.95  # README: the measured figures


@pytest.mark.parametrize("name", [name for name, path in evaluate.CONVERSATION_SETS.items() if path.exists()])
def test_scripted_conversations(name):
    results = evaluate.conversations(evaluate.CONVERSATION_SETS[name])
    steps = [step for result in results for step in result.steps]
    assert len(results) >= 25
    failing = [f"{r.name}: {s.said!r} {s.problems}" for r in results for s in r.steps if not s.ok]
    assert len(failing) <= 0.05 * len(steps), failing  # README: the measured figures
