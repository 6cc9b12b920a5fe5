"""The demo's report page (``btdnet.report.page``, a jinja2 template): every value escaped,
numbers to two decimals, links relative to the page's folder."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from btdnet.report.page import write_report_html


class _Events(HTMLParser):
    """The page as (tag, attributes) starts and text pieces, entities decoded."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data) -> None:
        if data.strip() and self.lasttag != "style":
            self.texts.append(data.strip())


def _write(tmp_path: Path, **changes) -> tuple[str, _Events]:
    arguments = {
        "title": "demo <report>",
        "intro": 'the "true" & swapped expressions',
        "tables": [("Test metrics (%)", ["expressions", "oIoU"], [["true", 66.6249], ["x", 3]])],
        "targets": {"oIoU>=60": True, "minutes<=5": False},
        "curve": tmp_path / "training_curve.png",
        "gallery": [(tmp_path / "overlays" / "1_best.png", "best (IoU 0.91): <the> ship")],
        "files": {"metrics.json": tmp_path / "metrics.json"},
    }
    arguments.update(changes)
    path = write_report_html(tmp_path / "report.html", **arguments)
    text = path.read_text(encoding="utf-8")
    events = _Events()
    events.feed(text)
    return text, events


def test_values_are_escaped(tmp_path):
    hostile = "<script>alert('x')</script>"
    text, events = _write(
        tmp_path,
        title=hostile,
        tables=[("t", [hostile], [[hostile, 1.0]])],
        gallery=[(tmp_path / "a.png", hostile)],
        files={hostile: tmp_path / "m.json"},
    )
    assert "<script>" not in text
    assert "&lt;script&gt;alert(" in text
    assert [tag for tag, _ in events.tags].count("script") == 0
    assert events.texts.count(hostile) >= 4  # title, h1, header, cell, caption, file label
    assert ("img", {"src": "a.png", "alt": hostile}) in events.tags


def test_page_holds_tables_targets_curve_gallery_and_files(tmp_path):
    _, events = _write(tmp_path)
    texts = events.texts
    assert texts[:3] == ["demo <report>", "demo <report>", 'the "true" & swapped expressions']
    assert "66.62" in texts and "3" in texts and "66.6249" not in texts  # floats: 2 decimals
    assert "met: oIoU>=60" in texts and "missed: minutes<=5" in texts
    classes = [attrs.get("class") for tag, attrs in events.tags if tag == "li"]
    assert classes[:2] == ["ok", "miss"]
    images = [attrs for tag, attrs in events.tags if tag == "img"]
    assert images == [
        {"src": "training_curve.png", "alt": "training curve"},
        {"src": "overlays/1_best.png", "alt": "best (IoU 0.91): <the> ship"},
    ]
    links = [attrs["href"] for tag, attrs in events.tags if tag == "a"]
    assert links == ["metrics.json"]
    assert str(tmp_path / "metrics.json") in texts[-1]


def test_empty_sections_are_left_out(tmp_path):
    _, events = _write(tmp_path, targets={}, curve=None, gallery=[], files={})
    assert "Targets" not in events.texts and "Training" not in events.texts
    assert "Samples" not in events.texts and "Files" in events.texts
    assert not [tag for tag, _ in events.tags if tag in ("img", "figure", "a")]


def test_gallery_legend_uses_the_shared_colour_scheme(tmp_path):
    from btdnet.colormap import PREDICTION_COLOR, TRUTH_COLOR, hex_color

    _text, events = _write(tmp_path)
    styles = [attrs.get("style") or "" for tag, attrs in events.tags if tag == "span"]
    assert any(hex_color(PREDICTION_COLOR) in style for style in styles)
    assert any(hex_color(TRUTH_COLOR) in style for style in styles)
    words = " ".join(events.texts)
    assert "predicted object (ring outside it)" in words
    assert "ground truth (outline inside it)" in words
