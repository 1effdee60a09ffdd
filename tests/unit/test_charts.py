"""The report's inline SVG charts: marks where there is data, a reason where there is none."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import storecast.charts as charts
from storecast.charts import Line


def _svg(figure: str) -> ET.Element:
    return ET.fromstring(re.search(r"<svg.*</svg>", figure, flags=re.S).group(0))  # type: ignore[union-attr]


def test_a_line_chart_draws_its_lines_and_bands_inside_the_plot() -> None:
    figure = charts.line_chart(
        "t", [Line("a", [0, 1, 2], [1, 3, 2], bands=[([0, 1, 1], [2, 4, 3])]), Line("b", [1], [2])], "x", "y"
    )
    svg = _svg(figure)
    marks = [e for e in svg.iter() if e.get("class") == "mark"]
    # a's band and line, b's line and its single point
    assert [m.tag.split("}")[-1] for m in marks] == ["polygon", "polyline", "polyline", "circle"]
    for mark in marks[:2]:
        for point in mark.get("points", "").split():
            x, y = map(float, point.split(","))
            assert charts.LEFT <= x <= charts.WIDTH - charts.RIGHT
            assert charts.TOP <= y <= charts.HEIGHT - charts.BOTTOM


def test_charts_without_data_say_so() -> None:
    assert 'class="chart empty"' in charts.line_chart("t", [], "x", "y")
    assert 'class="chart empty"' in charts.bar_chart("t", [], {}, "x")
    assert 'class="chart empty"' in charts.heat_map("t", [], [], [])


def test_bars_and_cells_escape_their_labels() -> None:
    bars = charts.bar_chart("t", ["<b>"], {"g": [1.0]}, "x")
    assert "&lt;b&gt;" in bars
    assert "<b>" not in bars.replace("<b>", "", 0)[bars.index("<svg") :]
    cells = _svg(charts.heat_map("t", ["f"], ["d1", "d2"], [[0.0, 0.5]], darkest_at=0.25))
    fills = [e.get("fill") for e in cells.iter() if e.get("class") == "mark"]
    assert fills == ["rgb(255,255,255)", "rgb(255,0,0)"]
