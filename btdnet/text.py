"""Referring expressions as users type them: what counts as an empty text."""

from __future__ import annotations

import unicodedata

# Unicode categories that print nothing: separators, controls, format characters (zero-width
# space U+200B, joiners, BOM), unassigned/private code points.
_INVISIBLE_CATEGORIES = ("Z", "C")


def clean_expression(text: str) -> str:
    """``text`` stripped of whitespace and invisible characters at either end.

    Returns ``""`` when nothing visible is left (a text made of zero-width spaces, controls or
    whitespace only), which callers refuse as an empty expression.
    """
    visible = [not _invisible(ch) for ch in text]
    if not any(visible):
        return ""
    start, end = visible.index(True), len(visible) - visible[::-1].index(True)
    return text[start:end]


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch).startswith(_INVISIBLE_CATEGORIES)
