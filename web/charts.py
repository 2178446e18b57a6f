"""Dashboard charts drawn on the server as inline SVG with pygal: no JavaScript, nothing fetched by the browser."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pygal
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from markupsafe import Markup
from pygal.style import Style

STYLE = Style(
    background="#ffffff", plot_background="#ffffff", foreground="#1d2327", foreground_strong="#1d2327",
    foreground_subtle="#5f6b73", colors=("#0b6e4f", "#e08a00", "#3b6fb6", "#b3261e", "#7a4fb3", "#5f6b73"),
    font_family="system-ui, sans-serif", label_font_size=12, major_label_font_size=12, legend_font_size=12,
    title_font_size=14, value_font_size=11, tooltip_font_size=12,
)
# pygal adds a <script> with its interactive config even when js=[]; the page's CSP would block it anyway.
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)


def _render(chart, label: str) -> Markup:
    svg = _SCRIPT.sub("", chart.render(is_unicode=True))
    # role/aria-label let screen readers (and tests) find the chart by its name.
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{Markup.escape(label)}" ', 1)
    return Markup(svg)


def _config(**extra):
    base = dict(style=STYLE, js=[], disable_xml_declaration=True, explicit_size=False, width=520, height=320,
                legend_at_bottom=True, print_values=False, show_y_guides=True, margin=12)
    return {**base, **extra}


def _count_axis(counts: list[int]) -> list[int]:
    """Whole-number ticks for counts (pygal would draw 0.2, 0.4... for small numbers)."""
    top = max([*counts, 1])
    step = max(1, -(-top // 8))
    return list(range(0, top + step, step))


def reais(value) -> str:
    return format_currency(value or 0, "BRL", locale="pt_BR")


def funnel_chart(steps: list[tuple[str, str, int]]) -> Markup:
    """Horizontal bars: each step of the funnel with its count; ``steps`` = (key, label, count)."""
    chart = pygal.HorizontalBar(**_config(show_legend=False, print_values=True,
                                          value_formatter=lambda v: format_decimal(v or 0, locale="pt_BR")))
    chart.title = "Funil da recuperação"
    chart.y_labels = _count_axis([count for _, _, count in steps])
    chart.x_labels = [label for _, label, _ in reversed(steps)]
    chart.add("Clientes", [count for _, _, count in reversed(steps)])
    return _render(chart, "Funil da recuperação")


def revenue_chart(days: list[tuple[date, Decimal]]) -> Markup:
    """Recovered revenue per day of the period."""
    chart = pygal.Bar(**_config(show_legend=False, x_label_rotation=0 if len(days) <= 10 else 45,
                                show_minor_x_labels=len(days) <= 16, value_formatter=reais))
    chart.title = "Receita recuperada por dia"
    chart.x_labels = [format_date(day, "dd/MM", locale="pt_BR") for day, _ in days]
    if len(days) > 16:
        chart.x_labels_major = chart.x_labels[:: max(1, len(days) // 8)]
    chart.add("Receita", [float(value) for _, value in days])
    return _render(chart, "Receita recuperada por dia")


def variant_chart(rows: list[tuple[str, int, int]]) -> Markup:
    """Sent and recovered per A/B variant; ``rows`` = (variant label, sent, recovered)."""
    chart = pygal.Bar(**_config(value_formatter=lambda v: format_decimal(v or 0, locale="pt_BR")))
    chart.title = "Conversão por variante"
    chart.y_labels = _count_axis([sent for _, sent, _ in rows])
    chart.x_labels = [label for label, _, _ in rows]
    chart.add("Enviadas", [sent for _, sent, _ in rows])
    chart.add("Recuperadas", [recovered for _, _, recovered in rows])
    return _render(chart, "Conversão por variante")


def skipped_chart(reasons: list[tuple[str, int]]) -> Markup:
    """Attempts not sent, by reason."""
    chart = pygal.HorizontalBar(**_config(show_legend=False, print_values=True,
                                          value_formatter=lambda v: format_decimal(v or 0, locale="pt_BR")))
    chart.title = "Não enviadas, por motivo"
    chart.y_labels = _count_axis([count for _, count in reasons])
    chart.x_labels = [label for label, _ in reversed(reasons)]
    chart.add("Tentativas", [count for _, count in reversed(reasons)])
    return _render(chart, "Não enviadas, por motivo")


def monthly_chart(months: list[tuple[date, Decimal]]) -> Markup:
    """A customer's purchases per calendar month (Clientes, Visão geral); ``months`` = (first day, revenue)."""
    chart = pygal.Bar(**_config(show_legend=False, x_label_rotation=0, value_formatter=reais, height=260))
    chart.title = "Compras nos últimos 12 meses"
    chart.x_labels = [format_date(day, "MMM/yy", locale="pt_BR") for day, _ in months]
    chart.add("Compras", [float(value) for _, value in months])
    return _render(chart, "Compras nos últimos 12 meses")
