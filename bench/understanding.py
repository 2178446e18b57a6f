"""Understanding: the intent model's accuracy (held-out split of the training set, the independent set), the
scripted conversations' steps, the training time and the classification time per message on one core.
The same figures as `flask --app app bot eval --json`; the report with per-intent figures is that command's."""

from __future__ import annotations

from bench.common import emit, log
from bot.understanding import evaluate


def run(quick: bool = False) -> dict:
    log("understanding: training on the held-out split, the full set, and running the conversations")
    figures = evaluate.summary()
    figures["classify_target_ms"] = 5.0
    figures["training_target_s"] = 5.0
    return emit("understanding", figures)
