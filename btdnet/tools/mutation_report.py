"""The mutation run's reports: the per-module Markdown table and the before/after comparison.

Written and read by ``btdnet.tools.mutation`` (``summary.json`` -> ``report.md``, ``compare.md``).
"""

from __future__ import annotations

import json
from pathlib import Path


def rate(survived: int, scored: int) -> str:
    return f"{100.0 * survived / scored:.1f}%" if scored else "-"


def format_report(results: list[dict], rev: str) -> str:
    """Markdown: the total survival over scored modules, one row per module (skipped ones with
    their reason, outside the total), then every survivor's diff."""
    run = sum(r["killed"] + r["survived"] for r in results)
    survived = sum(r["survived"] for r in results)
    skipped = [r for r in results if r.get("skipped")]
    lines = [
        f"# Mutation testing ({rev})",
        "",
        f"{survived} of {run} mutants survived ({rate(survived, run)}) over "
        f"{len(results) - len(skipped)} modules; {len(skipped)} skipped.",
        "",
        "| module | mutants | run | killed | survived | survival |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.get("skipped"):
            lines.append(f"| {r['module']} | - | - | - | - | skipped: {r['skipped']} |")
            continue
        share = rate(r["survived"], r["killed"] + r["survived"])
        lines.append(
            f"| {r['module']} | {r['mutants_total']} | {r['mutants_run']} | {r['killed']} "
            f"| {r['survived']} | {share} |"
        )
    for r in results:
        for s in r["survivors"]:
            lines += ["", f"## {r['module']}:{s['line']} {s['operator']}", "", "```diff"]
            lines += [s["diff"].rstrip(), "```"]
    return "\n".join(lines) + "\n"


def same_sample(before: dict, after: dict) -> bool:
    def key(r: dict) -> set:
        return {(o["operator"], o["occurrence"]) for o in r.get("outcomes", [])}

    return key(before) == key(after)


def compare(before: list[dict], after: list[dict]) -> str:
    """Markdown table of two runs' summaries (same code, same seeded sample): per module
    killed/survived before and after, and the totals over the modules scored in both runs.
    A module whose two samples differ (another code or seed) is an error, not a row."""
    old = {r["module"]: r for r in before}
    lines = [
        "| module | before: killed / survived | after: killed / survived |",
        "|---|---|---|",
    ]
    totals = {"before": [0, 0], "after": [0, 0]}
    for new in after:
        prev = old.get(new["module"], {"skipped": "not in that run"})
        pair = {"before": prev, "after": new}
        cells = [
            f"skipped: {r['skipped']}" if r.get("skipped") else f"{r['killed']} / {r['survived']}"
            for r in pair.values()
        ]
        lines.append(f"| {new['module']} | {cells[0]} | {cells[1]} |")
        if prev.get("skipped") or new.get("skipped"):
            continue
        if not same_sample(prev, new):
            raise SystemExit(f"mutation: {new['module']}: the two runs sampled other mutants")
        for side, r in pair.items():
            totals[side][0] += r["killed"] + r["survived"]
            totals[side][1] += r["survived"]
    cells = [f"{s} of {n} survived ({rate(s, n)})" for n, s in totals.values()]
    lines.append(f"| modules scored in both | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def read_summary(path: Path) -> list[dict]:
    """A run's ``summary.json`` (``path`` is the file or the run's --out folder)."""
    path = path / "summary.json" if path.is_dir() else path
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SystemExit(f"mutation: {path}: cannot read the run summary ({error})") from error
    if not isinstance(results, list) or not all(
        isinstance(r, dict) and {"module", "killed", "survived"} <= r.keys() for r in results
    ):
        raise SystemExit(f"mutation: {path}: not a summary.json written by the mutation tool")
    return results
