"""Opt-out / opt-in recognition (channel/consent.py): the reported cases, two labelled message sets, properties.

The data files are ``label<TAB>text`` (``\\n`` inside a message is written as the two characters ``\\n``), labels
opt_out, opt_in, unsure, none. ``consent_messages.tsv`` is the set the rules were written against;
``consent_messages_heldout.tsv`` was written after the rules and never tuned on: its thresholds below are the
measured values, not targets.

Recall of opt_out counts a message read as ``unsure_opt_out`` as half a hit: the bot asks before applying it,
so the shopper is not lost, but one more message goes out to someone who already said stop.
Run with ``-s`` to see the confusion tables.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channel.consent import (_GUARD, OPT_IN_WORDS, OPT_OUT_WORDS, Consent, consent_change, explain, is_affirmative,
                          is_negative, normalize, read_consent)

DATA = Path(__file__).parent / "data"
LABELS = ("opt_out", "opt_in", "unsure", "none")
AS_LABEL = {"opt_out": "opt_out", "opt_in": "opt_in", "unsure_opt_out": "unsure", None: "none"}


def load(name: str) -> list[tuple[str, str]]:
    rows = []
    for number, line in enumerate((DATA / name).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        label, text = line.split("\t", 1)
        assert label in LABELS, f"{name}:{number}: bad label {label!r}"
        rows.append((label, text.replace("\\n", "\n")))
    return rows


MAIN = load("consent_messages.tsv")
HELDOUT = load("consent_messages_heldout.tsv")
# A third set, written by another person after both of the above were final, measured once, never tuned on.
ROUND3 = load("consent_messages_round3.tsv")


# --- the reported cases -----------------------------------------------------------------------------------------

REPORTED_OPT_OUTS = [
    # the outside test's list, answered "não entendi" before
    "sairr", "siar", "sai", "SAIR SAIR", "para", "parem", "cancela", "descadastra", "não quero mais", "stop please",
    "STOP ALL", "remover", "sair\nobrigado",
    # typos, elongations
    "descadastar", "cancelra", "stopp", "siiiiair", "saaaair", "paraaaa",
    # conjugations
    "sair", "parar", "pare", "paro", "cancelar", "cancele", "cancelem", "cancelo", "descadastrar", "descadastre",
    "descadastrem", "descadastro", "descadastrar-me", "remove", "remova", "removam", "me remove", "me tira",
    "me tire",
    # filler around
    "sair por favor", "sair pfv", "pf sair", "sair obrigada", "obg sair", "sair valeu", "sair vlw", "já sair",
    "sair agora", "tá, sair", "ok sair", "Sair, obrigado!",
    # phrasings
    "não quero mais receber", "não quero receber mensagens", "não me mande mais nada", "parem de mandar mensagem",
    "chega de mensagem", "me tira dessa lista", "quero sair da lista", "cancelar inscrição",
    "descadastrar meu número", "stop", "STOPALL", "unsubscribe", "opt out", "remove me", "cancel", "quit",
    # emoji and punctuation
    "SAIR!!!", "🛑 sair", "sair.",
    # one clear clause in a longer message; complaints that repeat an opt-out
    "quero sair, obrigado pela atenção", "não, pode parar",
    "Bom dia! Recebi a mensagem de vocês mas não tenho interesse, por favor não me mandem mais nada",
    "já pedi pra sair várias vezes", "eu já pedi pra me tirarem", "para de mandar essa merda",
    "me tira daqui pelo amor de deus",
]

REPORTED_NONE = [
    "tem saia preta?", "saia midi tamanho M", "parei de usar tênis",
    "quero parar de usar salto, tem tênis confortável?",
    "para corrida, qual tênis?", "tem para 42?", "cancelar pedido 1234", "quero cancelar meu pedido",
    "cancela o item 2", "não quero mais o tênis", "sair de casa com esse casaco", "qual o prazo para trocar?",
    "remover o 2 do carrinho", "stop and go", "sai hoje o pedido?", "vou sair agora, depois vejo", "para presente",
    "parcela em 10x?", "pare de enrolar e me manda o link do pedido", "chega quando?", "quando chega?",
    "saia",  # a skirt: this is a clothing shop (decided: not even unsure)
    "já pedi pra cancelar o pedido", "disse pra sair do trabalho cedo", "Para mim, obrigada", "que chato",
    # from the webhook tests, unchanged
    "não quero sair sem o tênis", "sair hoje à noite?", "parar de vender o 42?", "Quero o cupom",
    "stop motion camiseta",
]

REPORTED_UNSURE = [
    "para com isso", "já chega", "sai fora", "não quero", "não quero mais nada disso", "sair do grupo", "me esquece",
    "siar dessa porcaria",  # a stop-word typo with an unknown word
    "saio",  # "I leave" alone: decided unsure
    "quero cancelar", "cancela isso",  # no object: the order or the messages
    "🛑", "Sair? Não, quero continuar", "numero errado",
]

REPORTED_OPT_INS = ["voltar", "VOLTAR", "quero voltar a receber", "voltar a receber mensagens",
                    "quero receber as promoções de novo", "assinar", "start", "unstop", "reativar"]
NOT_OPT_INS = ["voltar ao menu", "quero voltar", "como faço para voltar a loja?"]

AFFIRMATIVE = ["sim", "s", "siiim", "sim!", "sim por favor", "isso", "isso mesmo", "quero", "quero sim", "pode",
               "pode sim", "confirmo", "yes", "claro", "👍", "ok",  # ok: decided yes (see is_affirmative)
               "sim, quero sair", "SAIR"]
NEGATIVE = ["não", "nao", "n", "não quero sair", "nao obrigado", "continuar", "quero continuar recebendo", "👎",
            "não quero"]  # as an answer to "quer parar?", "não quero" is a no


@pytest.mark.parametrize("text", REPORTED_OPT_OUTS)
def test_reported_opt_outs_are_clear(text):
    assert read_consent(text) == "opt_out", explain(text)
    assert consent_change(text) == "opt_out"


@pytest.mark.parametrize("text", REPORTED_NONE)
def test_shopping_messages_stay_shopping(text):
    assert read_consent(text) is None, explain(text)
    assert consent_change(text) is None


@pytest.mark.parametrize("text", REPORTED_UNSURE)
def test_ambiguous_messages_are_unsure_and_not_applied(text):
    assert read_consent(text) == "unsure_opt_out", explain(text)
    assert consent_change(text) is None  # the webhook applies clear cases only


@pytest.mark.parametrize("text", REPORTED_OPT_INS)
def test_opt_ins(text):
    assert read_consent(text) == "opt_in", explain(text)
    assert consent_change(text) == "opt_in"


@pytest.mark.parametrize("text", NOT_OPT_INS)
def test_not_opt_ins(text):
    assert read_consent(text) is None, explain(text)


@pytest.mark.parametrize("text", AFFIRMATIVE)
def test_affirmative_answers(text):
    assert is_affirmative(text) and not is_negative(text)


@pytest.mark.parametrize("text", NEGATIVE)
def test_negative_answers(text):
    assert is_negative(text) and not is_affirmative(text)


@pytest.mark.parametrize("text", ["talvez", "o 2", "tem saia preta?", "", "🙂", "qual o frete?"])
def test_other_answers_are_neither(text):
    assert not is_affirmative(text) and not is_negative(text)


@pytest.mark.parametrize("word", sorted(OPT_OUT_WORDS | OPT_IN_WORDS))
def test_the_advertised_keywords_are_clear(word):
    assert consent_change(word.upper()) == ("opt_out" if word in OPT_OUT_WORDS else "opt_in")


@pytest.mark.parametrize("word", sorted(_GUARD))
def test_real_words_next_to_a_stop_word_are_not_corrected_into_it(word):
    assert consent_change(word) is None, explain(word)


def test_public_api_is_kept():
    assert normalize("  Não QUERO, mais!! ") == "nao quero mais"
    value: Consent | None = consent_change("SAIR")
    assert value == "opt_out"
    assert consent_change("") is None and read_consent(None) is None  # type: ignore[arg-type]


# --- the labelled sets ------------------------------------------------------------------------------------------

def evaluate(rows):
    confusion = collections.Counter()
    wrong = []
    for label, text in rows:
        predicted = AS_LABEL[read_consent(text)]
        confusion[label, predicted] += 1
        if predicted != label:
            wrong.append((label, predicted, text, explain(text)[1]))
    return confusion, wrong


def report(name, confusion, wrong):
    lines = [f"\n{name}: rows = true label, columns = predicted",
             "           " + "".join(f"{label:>9}" for label in LABELS) + "   recall precision"]
    for label in LABELS:
        actual = sum(confusion[label, p] for p in LABELS)
        predicted = sum(confusion[t, label] for t in LABELS)
        hit = confusion[label, label]
        lines.append(f"{label:>10} " + "".join(f"{confusion[label, p]:>9}" for p in LABELS)
                     + f"   {hit / actual if actual else 1:6.1%} {hit / predicted if predicted else 1:8.1%}")
    lines.append(f"opt_out recall (unsure = half): {weighted_recall(confusion):.1%}")
    lines += [f"  {label} -> {predicted}: {text!r} ({why})" for label, predicted, text, why in wrong]
    print("\n".join(lines))


def weighted_recall(confusion):
    total = sum(confusion["opt_out", p] for p in LABELS)
    return (confusion["opt_out", "opt_out"] + 0.5 * confusion["opt_out", "unsure"]) / total


def test_data_sets_are_large_enough():
    main = collections.Counter(label for label, _ in MAIN)
    assert main["opt_out"] >= 250 and main["opt_in"] >= 60 and main["unsure"] >= 40 and main["none"] >= 400
    heldout = collections.Counter(label for label, _ in HELDOUT)
    assert sum(heldout.values()) >= 120 and set(heldout) == set(LABELS)
    assert not {text for _, text in MAIN} & {text for _, text in HELDOUT}
    assert len(ROUND3) >= 150 and set(label for label, _ in ROUND3) == set(LABELS)


# name, rows, max none->opt_out share, min weighted opt_out recall, max opt_out->none count
SETS = [
    ("consent_messages.tsv", MAIN, 0.005, 0.97, 0),
    # Held out, measured once and not tuned on: 51 opt_out, 4 unsure, 1 none out of 56 opt_out messages
    # ("me retirem da lista": "retirar" is not in the word lists). Below the 97 % / zero targets.
    ("consent_messages_heldout.tsv", HELDOUT, 0.005, 0.946, 1),
    # Round 3, measured once: 59 of 60 opt_outs (missed: "saia da lista", read as the skirt), 0 false opt-outs
    # among 70 shopping messages; 2 of its 15 "unsure" were read as clear opt-outs ("pare com isso",
    # "para de me encher"), 1 as nothing ("que saco").
    ("consent_messages_round3.tsv", ROUND3, 0.0, 0.983, 1),
]


@pytest.mark.parametrize(("name", "rows", "max_false_opt_out", "min_recall", "max_missed"), SETS,
                         ids=[s[0] for s in SETS])
def test_labelled_set(name, rows, max_false_opt_out, min_recall, max_missed):
    confusion, wrong = evaluate(rows)
    report(name, confusion, wrong)
    nones = sum(confusion["none", p] for p in LABELS)
    assert confusion["none", "opt_out"] <= max_false_opt_out * nones
    assert weighted_recall(confusion) >= min_recall
    assert confusion["opt_out", "none"] <= max_missed
    # A wrong opt-in re-subscribes someone: none so far on either set.
    assert sum(confusion[t, "opt_in"] for t in LABELS if t != "opt_in") == 0
    assert confusion["opt_out", "opt_in"] == 0 and confusion["opt_in", "opt_out"] == 0


# --- properties ---------------------------------------------------------------------------------------------------

CLEAR_OPT_OUTS = sorted({text for label, text in MAIN if label == "opt_out" and read_consent(text) == "opt_out"}
                        | set(REPORTED_OPT_OUTS))
NONES = sorted({text for label, text in MAIN + HELDOUT if label == "none"})
FILLERS = ["por favor", "pfv", "obrigado", "obrigada", "obg", "valeu", "!!!", "🙏", "😡", "👋", "já", "agora", "ok",
           "oi,", "bom dia,", "\nobrigada", ".", "?!"]
COMMERCE = ["pedido", "tênis 42", "carrinho", "saia preta", "frete", "cupom", "tamanho M", "pedido 1234",
            "quanto custa", "item 2"]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(CLEAR_OPT_OUTS), st.lists(st.sampled_from(FILLERS), max_size=3),
       st.lists(st.sampled_from(FILLERS), max_size=3))
def test_filler_around_a_clear_opt_out_keeps_it_clear(text, before, after):
    padded = " ".join([*before, text, *after])
    assert read_consent(padded) == "opt_out", (padded, explain(padded))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(NONES), st.sampled_from(COMMERCE), st.integers(min_value=0, max_value=40))
def test_a_commerce_word_never_makes_an_opt_out(text, word, position):
    words = text.split(" ")
    at = position % (len(words) + 1)
    changed = " ".join(words[:at] + [word] + words[at:])
    assert read_consent(changed) != "opt_out", (changed, explain(changed))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_a_valid_reading(text):
    assert read_consent(text) in ("opt_out", "opt_in", "unsure_opt_out", None)
    assert consent_change(text) in ("opt_out", "opt_in", None)
    assert not (is_affirmative(text) and is_negative(text))
