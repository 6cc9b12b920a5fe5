"""A one-page HTML report: metrics, targets, the training curve and the sample gallery."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.ok { color: #1a7f37; font-weight: bold; } .miss { color: #c62828; font-weight: bold; }
figure { display: inline-block; margin: 0 12px 18px 0; vertical-align: top; max-width: 520px; }
figure img { max-width: 100%; border: 1px solid #ddd; } figcaption { font-size: 0.9em; }
"""


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.2f}"
        return html.escape(str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


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
    root = path.parent

    def rel(target: str | Path) -> str:
        return html.escape(Path(os.path.relpath(Path(target).resolve(), root.resolve())).as_posix())

    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
    ]
    parts.append(f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>")
    parts.append(f"<p>{html.escape(intro)}</p>")
    for heading, header, rows in tables:
        parts.append(f"<h2>{html.escape(heading)}</h2>{_table(header, rows)}")
    if targets:
        items = "".join(
            f"<li class='{'ok' if met else 'miss'}'>{'met' if met else 'missed'}: "
            f"{html.escape(name)}</li>"
            for name, met in targets.items()
        )
        parts.append(f"<h2>Targets</h2><ul>{items}</ul>")
    if curve is not None:
        parts.append(f"<h2>Training</h2><img src='{rel(curve)}' alt='training curve'>")
    if gallery:
        parts.append("<h2>Samples</h2>")
        for picture, caption in gallery:
            parts.append(
                f"<figure><img src='{rel(picture)}' alt='{html.escape(caption)}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    listing = "".join(
        f"<li>{html.escape(label)}: <a href='{rel(target)}'>{html.escape(str(target))}</a></li>"
        for label, target in files.items()
    )
    parts.append(f"<h2>Files</h2><ul>{listing}</ul></body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
