"""A one-page HTML report: metrics, targets, the training curve and the sample gallery.

The page is the jinja2 template ``templates/report.html`` (autoescaped: every title, caption,
cell and path is HTML-escaped); this module prepares its values (numbers to two decimals, paths
relative to the page's folder).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import jinja2

from btdnet.colormap import LEGEND, hex_color
from btdnet.safe_write import write_text_atomic

TEMPLATE = "report.html"

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("btdnet.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def cell_text(value: object) -> str:
    """A table cell: a float with two decimals, anything else as ``str``."""
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def write_report_html(
    path: str | Path,
    *,
    title: str,
    intro: str,
    tables: Sequence[tuple[str, Sequence[str], Sequence[Sequence[object]]]],
    targets: dict[str, bool],
    curve: str | Path | None,
    gallery: Sequence[tuple[str | Path, str]],
    files: dict[str, str | Path],
) -> Path:
    """Write the report; pictures and files are linked relative to the page's folder.

    Args:
        tables: ``(heading, header, rows)`` per table.
        targets: ``{description: met}``.
        curve: the training-curve PNG, or None.
        gallery: ``(png, caption)`` per picture.
        files: ``{label: path}`` listed at the end.
    """
    path = Path(path)
    root = path.parent.resolve()

    def rel(target: str | Path) -> str:
        return Path(os.path.relpath(Path(target).resolve(), root)).as_posix()

    page = _ENVIRONMENT.get_template(TEMPLATE).render(
        title=title,
        intro=intro,
        tables=[
            {
                "heading": heading,
                "header": header,
                "rows": [[cell_text(v) for v in r] for r in rows],
            }
            for heading, header, rows in tables
        ],
        targets=targets,
        curve=None if curve is None else rel(curve),
        gallery=[{"src": rel(picture), "caption": caption} for picture, caption in gallery],
        legend=[
            {"color": hex_color(rgb), "words": words}
            for key, rgb, words in LEGEND
            if key in ("prediction", "truth")
        ],
        files=[{"label": k, "href": rel(v), "path": str(v)} for k, v in files.items()],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, page)  # a link at the name is refused
    return path
