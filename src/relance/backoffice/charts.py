"""Dashboard charts as SVG, drawn on the server by pygal (Kozea, who also make WeasyPrint).

No JavaScript and nothing fetched from elsewhere (``js=[]``): the SVG is served as an image from our own
origin, so the page's Content Security Policy stays strict. Each chart sits beside the table it is drawn
from, so the figures stay readable without the picture (WCAG 1.1.1).
"""

from __future__ import annotations

from decimal import Decimal

import pygal
from lxml import etree
from pygal.style import Style

from relance.backoffice.metrics import Table

STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#1f2937",
    foreground_strong="#111827",
    foreground_subtle="#6b7280",
    colors=("#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#0e7490", "#4d7c0f", "#a16207"),
    font_family="DejaVu Sans, sans-serif",
)


def _number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    return None


def render_svg(table: Table) -> str:
    options = {
        "js": [],
        "style": STYLE,
        "disable_xml_declaration": True,
        "width": 800,
        "height": 400,
        "title": table.title,
        "x_label_rotation": 30,
        "legend_at_bottom": True,
        "truncate_legend": 30,
    }
    if table.kind == "line":
        # One series per row (e.g. one liquidation curve per placement month), x axis = the other columns.
        chart = pygal.Line(**options, dots_size=3, show_minor_x_labels=True)
        chart.x_labels = table.columns[1:]
        for row in table.rows[-8:]:  # the latest cohorts stay legible; the table and exports have them all
            chart.add(str(row[0]), [_number(v) for v in row[1:]])
    else:
        # First column = labels, second = the headline figure.
        chart = pygal.Bar(**options, show_legend=False, show_minor_x_labels=False)
        chart.x_labels = [str(row[0]) for row in table.rows]
        chart.x_labels_major_every = max(1, len(table.rows) // 8)
        chart.add(table.columns[1], [_number(row[1]) for row in table.rows])
    return _without_scripts(chart.render(is_unicode=True))


def _without_scripts(svg: str) -> str:
    """pygal always embeds a small configuration script for its optional tooltips: we drop it."""
    root = etree.fromstring(svg.encode())
    for script in root.iter("{http://www.w3.org/2000/svg}script"):
        script.getparent().remove(script)
    return etree.tostring(root, encoding="unicode")
