"""Readers shared by the COCO-style referring indexes (RRSIS-D's refs and gRefCOCO's): ids,
entries indexed by id, and the expressions of a ref."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from btdnet.data.errors import ProblemLog


def is_id(value: Any) -> bool:
    """A usable COCO id: an int or a string (not a bool)."""
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def index_by_id(
    entries: list[Any], what: str, path: Path, log: ProblemLog
) -> dict[Any, dict[str, Any]]:
    """Index COCO entries by ``id``; the first of duplicated ids wins (and is reported)."""
    table: dict[Any, dict[str, Any]] = {}
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict) or not is_id(entry.get("id")):
            log.add("unreadable_file", path, f"{what} #{position} has no usable 'id'")
            continue
        if entry["id"] in table:
            log.add(
                "duplicate_id",
                path,
                f"{what} id {entry['id']} occurs more than once; the first is used",
            )
            continue
        table[entry["id"]] = entry
    return table


def ref_expressions(ref: dict[str, Any]) -> list[tuple[Any, str]]:
    """(sent_id, stripped text) of each sentence of a ref: raw, else sent, else the tokens."""
    sentences = ref.get("sentences") if isinstance(ref.get("sentences"), list) else []
    sent_ids = ref.get("sent_ids") if isinstance(ref.get("sent_ids"), list) else []
    out = []
    for position, sentence in enumerate(sentences):
        sentence = sentence if isinstance(sentence, dict) else {}
        sent_id = sentence.get("sent_id")
        if sent_id is None and position < len(sent_ids):
            sent_id = sent_ids[position]
        if sent_id is None:
            sent_id = position
        tokens = sentence.get("tokens")
        candidates = [
            sentence.get("raw"),
            sentence.get("sent"),
            " ".join(str(t) for t in tokens) if isinstance(tokens, list) else None,
        ]
        texts = [text.strip() for text in candidates if isinstance(text, str) and text.strip()]
        out.append((sent_id, texts[0] if texts else ""))
    return out
