"""The ablation table: mean and spread over seeds per variant, as JSON, Markdown and a chart.

Spread is the sample standard deviation over seeds (``ddof=1``; none with a single seed).
A variant's oIoU is *called* different from the reference variant's only when the gap between
the means exceeds the sum of the two spreads (their mean +- spread bars do not overlap); with
fewer than two seeds on either side nothing is called.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from btdnet.safe_write import atomic_output, write_text_atomic

METRICS: tuple[tuple[str, str], ...] = (
    ("oIoU", "oIoU"),
    ("mIoU", "mIoU"),
    ("Pr@0.5", "Pr@0.5"),
    ("Pr@0.7", "Pr@0.7"),
    ("Pr@0.9", "Pr@0.9"),
    ("BF", "boundary F"),
    ("per_expression_mIoU.position", "position mIoU"),
    ("per_expression_mIoU.relation", "relation mIoU"),
    ("swap_drop", "swap drop"),
    ("train_seconds", "train s"),
    ("train_cpu_seconds", "train CPU s"),
)
"""(result key, column title) of every reported metric, in table order."""

VERDICT_METRICS = ("oIoU", "mIoU", "Pr@0.9", "BF", "per_expression_mIoU.position")
"""The metrics each variant's gap to the reference is judged on (the table's second part)."""


def mean_and_spread(values: Sequence[float]) -> dict[str, Any]:
    """``n``, ``mean``, ``std`` (sample, ddof=1; None for n < 2), ``min``, ``max`` of values.

    An empty sequence gives ``n = 0`` and None everywhere else.
    """
    clean = [float(v) for v in values]
    n = len(clean)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    mean = sum(clean) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in clean) / (n - 1)) if n > 1 else None
    return {"n": n, "mean": mean, "std": std, "min": min(clean), "max": max(clean)}


def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Gap ``b.mean - a.mean`` of two :func:`mean_and_spread` dicts, and whether it is called.

    ``called`` is True when ``|gap| > a.std + b.std`` (both need n >= 2), False when it is not,
    None when it cannot be judged (a side has fewer than two values).
    """
    if a["mean"] is None or b["mean"] is None:
        return {"gap": None, "spread": None, "called": None}
    gap = b["mean"] - a["mean"]
    if a["std"] is None or b["std"] is None:
        return {"gap": gap, "spread": None, "called": None}
    spread = a["std"] + b["std"]
    return {"gap": gap, "spread": spread, "called": abs(gap) > spread}


TIME_KEYS = ("train_seconds", "train_cpu_seconds")
"""A run's training time: of every part of a resumed run since resumes carried it over."""


def run_value(result: Mapping[str, Any], key: str) -> Any:
    """``result[key]`` (None when absent; a dotted key reads a nested record); a training time
    only when it covers the whole run.

    A run resumed before checkpoints carried the time of earlier parts recorded only the last
    part's time (no ``train_seconds_last_part`` key, ``resumed`` true): None for it.
    """
    if key in TIME_KEYS and result.get("resumed") and "train_seconds_last_part" not in result:
        return None
    if key in result:  # "Pr@0.9" is a key, dot and all
        return result[key]
    record, _, name = key.partition(".")  # "per_expression_mIoU.position": a nested record
    nested = result.get(record) if name else None
    return nested.get(name) if isinstance(nested, Mapping) else None


def summarise_runs(
    results: Sequence[Mapping[str, Any]],
    variants: Sequence[tuple[str, str]],
    *,
    reference: str = "full",
) -> dict[str, Any]:
    """Aggregate finished runs into the table's data.

    Args:
        results: one dict per finished run with ``variant``, ``seed`` and the METRICS keys.
        variants: (name, description) of every planned variant, in table order.
        reference: the variant every other one is compared with (its oIoU gap).

    Returns:
        ``{"metrics": [...], "reference": ..., "variants": [{name, description, seeds,
        metrics: {key: mean_and_spread}, vs_reference: compare(...) of oIoU}]}``.
    """
    rows = []
    for name, description in variants:
        runs = sorted((r for r in results if r["variant"] == name), key=lambda r: r["seed"])
        stats = {
            key: mean_and_spread([v for v in (run_value(r, key) for r in runs) if v is not None])
            for key, _ in METRICS
        }
        rows.append(
            {
                "name": name,
                "description": description,
                "seeds": [r["seed"] for r in runs],
                "metrics": stats,
            }
        )
    by_name = {row["name"]: row for row in rows}
    for row in rows:
        ref = by_name.get(reference)
        gaps = (
            {key: compare(ref["metrics"][key], row["metrics"][key]) for key in VERDICT_METRICS}
            if ref is not None and row["name"] != reference
            else None
        )
        row["vs_reference"] = None if gaps is None else gaps["oIoU"]
        row["gaps"] = gaps
    return {"metrics": [k for k, _ in METRICS], "reference": reference, "variants": rows}


def _cell(stats: Mapping[str, Any], digits: int) -> str:
    if stats["mean"] is None:
        return "–"
    if stats["std"] is None:
        return f"{stats['mean']:.{digits}f}"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def _verdict(cmp: Mapping[str, Any] | None) -> str:
    if cmp is None:
        return "(reference)"
    if cmp["gap"] is None:
        return "no runs"
    if cmp["called"] is None:
        return f"{cmp['gap']:+.2f} (fewer than 2 seeds: not judged)"
    word = "exceeds" if cmp["called"] else "within"
    return f"{cmp['gap']:+.2f} ({word} the spread {cmp['spread']:.2f})"


def _short_verdict(cmp: Mapping[str, Any]) -> str:
    """``+3.10 called`` / ``-0.40 within 2.10`` / ``+1.00 (1 seed)`` / ``–``."""
    if cmp["gap"] is None:
        return "–"
    if cmp["called"] is None:
        return f"{cmp['gap']:+.2f} (1 seed)"
    word = "**called**" if cmp["called"] else f"within {cmp['spread']:.2f}"
    return f"{cmp['gap']:+.2f} {word}"


def format_markdown(summary: Mapping[str, Any], *, title: str = "Ablation") -> str:
    """The table as Markdown: mean ± spread per metric, runs per variant, oIoU gap verdicts."""
    titles = dict(METRICS)
    keys = summary["metrics"]
    head = ["variant", "seeds", *(titles[k] for k in keys), f"oIoU vs {summary['reference']}"]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in summary["variants"]:
        digits = {k: 0 if k.endswith("seconds") else 2 for k in keys}
        cells = [_cell(row["metrics"][k], digits[k]) for k in keys]
        seeds = ",".join(str(s) for s in row["seeds"]) or "–"
        lines.append(
            "| " + " | ".join([row["name"], seeds, *cells, _verdict(row["vs_reference"])]) + " |"
        )
    judged = [row for row in summary["variants"] if row.get("gaps")]
    if judged:
        heads = [titles[k] for k in VERDICT_METRICS]
        lines += [
            "",
            f"Gap of each variant's mean to {summary['reference']}'s, judged on each measure "
            "(called: beyond the sum of the two spreads):",
            "",
            "| variant | " + " | ".join(heads) + " |",
            "|" + "---|" * (len(heads) + 1),
        ]
        for row in judged:
            cells = [_short_verdict(row["gaps"][k]) for k in VERDICT_METRICS]
            lines.append("| " + " | ".join([row["name"], *cells]) + " |")
    lines += [
        "",
        "Mean ± sample standard deviation over seeds (test split, percentages; times in "
        "seconds). `swap drop`: oIoU with the true expressions minus oIoU with each expression "
        "swapped for another object's of the same image, on the samples that have such a "
        "partner. `position mIoU`, `relation mIoU`: mean IoU over the test expressions that "
        "give a position, a relation (btdnet/evaluation/expression_types.py). A gap is called "
        "only when it exceeds the sum of the two spreads.",
    ]
    return "\n".join(lines) + "\n"


def write_tables(summary: Mapping[str, Any], out_dir: str | Path, *, title: str) -> list[Path]:
    """Write ``ablation.json``, ``ablation.md`` and ``ablation.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [
        write_text_atomic(out / "ablation.json", json.dumps(summary, indent=2) + "\n"),
        write_text_atomic(out / "ablation.md", format_markdown(summary, title=title)),
    ]
    chart = plot_chart(summary, out / "ablation.png", title=title)
    return written + ([chart] if chart is not None else [])


RUN_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("best_val_oIoU", "best val oIoU", 2),
    ("oIoU", "test oIoU", 2),
    ("mIoU", "mIoU", 2),
    ("Pr@0.9", "Pr@0.9", 2),
    ("BF", "BF", 2),
    ("swap_drop", "swap drop", 2),
    ("train_cpu_seconds", "train CPU s", 0),
    ("train_seconds", "train wall s", 0),
)
"""(result key, column title, decimals) of the list of finished runs."""

_RATE = re.compile(r"^(?P<name>.+)@lr(?P<factor>[0-9.e+-]+)$")


def split_rate(variant: str) -> tuple[str, float | None]:
    """``demo@lr0.5`` -> ``("demo", 0.5)``; a name without a swept rate -> ``(name, None)``."""
    found = _RATE.match(variant)
    if found is None:
        return variant, None
    try:
        return found["name"], float(found["factor"])
    except ValueError:
        return variant, None


def format_run_list(results: Sequence[Mapping[str, Any]], order: Sequence[str]) -> str:
    """A Markdown table of every finished run, as its ``result.json`` records it.

    A training time that does not cover the whole run (:func:`run_value`) shows as ``-``.
    Rows go seed by seed; within a seed, the base rate (factor 1, or no sweep) first, then
    the other factors in ascending order; within a rate, variants in ``order`` (their base
    names), then any other alphabetically.
    """
    rank = {name: i for i, name in enumerate(order)}

    def key(result: Mapping[str, Any]) -> tuple:
        name, factor = split_rate(str(result["variant"]))
        rate = 1.0 if factor is None else factor
        return (result["seed"], rate != 1.0, rate, rank.get(name, len(rank)), name)

    titles = ["variant", "lr factor", "seed", *(title for _, title, _ in RUN_COLUMNS)]
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    for result in sorted(results, key=key):
        name, factor = split_rate(str(result["variant"]))
        cells = [name, "-" if factor is None else f"{factor:g}", str(result["seed"])]
        for column, _, digits in RUN_COLUMNS:
            value = run_value(result, column)
            cells.append("-" if value is None else f"{float(value):.{digits}f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_chart(summary: Mapping[str, Any], path: Path, *, title: str) -> Path | None:
    """Bars of mean test oIoU and mIoU per variant with ±spread error bars (None: no runs)."""
    rows = [r for r in summary["variants"] if r["metrics"]["oIoU"]["n"] > 0]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(rows) + 2), 4.2))
    width = 0.38
    for offset, key in ((-width / 2, "oIoU"), (width / 2, "mIoU")):
        means = [r["metrics"][key]["mean"] for r in rows]
        errors = [r["metrics"][key]["std"] or 0.0 for r in rows]
        xs = [i + offset for i in range(len(rows))]
        ax.bar(xs, means, width, yerr=errors, capsize=3, label=f"test {key}")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(
        [f"{r['name']}\n(n={r['metrics']['oIoU']['n']})" for r in rows], rotation=30, ha="right"
    )
    ax.set_ylabel("%")
    ax.set_title(f"{title}: mean ± spread over seeds")
    ax.legend()
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path
