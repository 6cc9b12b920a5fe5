"""A fair comparison: each variant at its own learning rate, chosen on the validation split.

A module added to a model may need another learning rate than the model without it; comparing
every variant at one rate can favour the one the rate was tuned for. The sweep trains each
variant at ``base lr x factor`` for a few factors at one seed (the *sweep seed*), reads each
run's best validation oIoU (the trainer's own model selection, on the val split: the test split
is never used to choose), and keeps per variant the factor with the highest one. The table's
seeds then run at that rate; the sweep seed's run at the chosen rate is reused, not repeated.

A swept variant is named ``<variant>@lr<factor>`` (``demo@lr0.5``) and carries
``train.lr=<base lr x factor>`` after the variant's own overrides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from btdnet.ablation.variants import AblationVariant


def swept_name(name: str, factor: float) -> str:
    """``demo`` at factor 0.5 -> ``demo@lr0.5``."""
    return f"{name}@lr{factor:g}"


def at_factor(variant: AblationVariant, factor: float, base_lr: float) -> AblationVariant:
    """``variant`` trained at ``base_lr * factor``."""
    lr = base_lr * factor
    return AblationVariant(
        swept_name(variant.name, factor),
        f"{variant.description}; lr {lr:.3g} ({factor:g} x {base_lr:.3g}, chosen on val)",
        (*variant.overrides, f"train.lr={lr!r}"),
    )


def sweep_scores(results: Sequence[Mapping[str, Any]], seed: int) -> dict[str, Any]:
    """``{swept variant name: best validation oIoU}`` of the runs at the sweep ``seed``."""
    return {r["variant"]: r.get("best_val_oIoU") for r in results if r.get("seed") == seed}


def sweep_runs(
    variants: Sequence[AblationVariant], factors: Sequence[float], base_lr: float
) -> list[AblationVariant]:
    """The sweep's runs, rate by rate: every variant at the base rate (the factor closest to 1)
    before any at another, so a sweep cut short still compares every variant at one rate."""
    ordered = sorted(factors, key=lambda f: (abs(f - 1), f))
    return [at_factor(v, f, base_lr) for f in ordered for v in variants]


def check_factors(factors: Sequence[float]) -> list[float]:
    """Distinct positive factors, in the given order; ValueError otherwise."""
    values = [float(f) for f in factors]
    if not values or any(not f > 0 for f in values) or len(set(values)) != len(values):
        raise ValueError(f"--lr-factors must be distinct positive numbers, got {list(factors)}")
    return values


def choose_factors(
    results: Sequence[Mapping[str, Any]],
    variants: Sequence[AblationVariant],
    factors: Sequence[float],
    *,
    seed: int,
) -> tuple[dict[str, float], list[str]]:
    """Each variant's factor with the best validation oIoU among the sweep's runs (the
    results of ``seed``, the sweep seed: the table's other seeds, which run at the chosen rate
    later, never change the choice).

    Ties go to the factor closest to 1 (the base rate), then to the smaller one. Returns
    ``({variant: factor}, [variants whose sweep is not finished])``.
    """
    score = sweep_scores(results, seed)
    chosen: dict[str, float] = {}
    missing: list[str] = []
    for variant in variants:
        values = {f: score.get(swept_name(variant.name, f)) for f in factors}
        if any(v is None for v in values.values()):
            missing.append(variant.name)
            continue
        chosen[variant.name] = max(factors, key=lambda f: (values[f], -abs(f - 1), -f))
    return chosen, missing


def format_sweep(
    results: Sequence[Mapping[str, Any]],
    variants: Sequence[AblationVariant],
    factors: Sequence[float],
    chosen: Mapping[str, float],
    *,
    base_lr: float,
    seed: int,
) -> str:
    """The sweep as Markdown: validation oIoU per variant and factor, the choice in bold."""
    score = sweep_scores(results, seed)
    header = " | ".join(f"x{f:g} ({base_lr * f:.3g})" for f in factors)
    lines = [
        f"Learning-rate sweep at seed {seed}: best validation oIoU of each run (val split; "
        "the test split is not used to choose). Bold: the rate the table's seeds use.",
        "",
        f"| variant | {header} |",
        "|---|" + "---|" * len(factors),
    ]
    for variant in variants:
        cells = []
        for f in factors:
            value = score.get(swept_name(variant.name, f))
            text = "–" if value is None else f"{value:.2f}"
            cells.append(f"**{text}**" if chosen.get(variant.name) == f else text)
        lines.append(f"| {variant.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


__all__ = [
    "at_factor",
    "check_factors",
    "choose_factors",
    "format_sweep",
    "sweep_runs",
    "sweep_scores",
    "swept_name",
]
