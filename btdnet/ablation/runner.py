"""Run an ablation: each (variant, seed) trained by the project's trainer and scored on the
synthetic test split (true and swapped expressions), then the table over seeds.

The runs share one synthetic set (generated once under ``out/data``); a finished run is never
repeated and an interrupted one resumes from its last checkpoint (see ``btdnet.ablation.plan``).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from btdnet.ablation.plan import (
    MARK_NAME,
    AblationFolderError,
    RunSpec,
    claim_folder,
    read_result,
    run_state,
)
from btdnet.ablation.rescore import later_records
from btdnet.ablation.table import format_run_list, summarise_runs, write_tables
from btdnet.ablation.variants import KNOWN_VARIANTS, AblationVariant
from btdnet.engine.config import apply_overrides, load_config
from btdnet.engine.trainer import Trainer
from btdnet.evaluation.checkpoint_scores import score_checkpoint
from btdnet.provenance import code_version
from btdnet.safe_write import write_text_atomic
from btdnet.task import ReferringTask

PRECISIONS = ("Pr@0.5", "Pr@0.6", "Pr@0.7", "Pr@0.8", "Pr@0.9")


def base_config(config: Mapping[str, Any], out: Path) -> dict[str, Any]:
    """The config every run starts from: ``config`` with its synthetic set under ``out/data``.

    Raises:
        ValueError: the config is not a referring config on synthetic data in RRSIS-D format
            (the test split and the swapped-expression check need it).
    """
    result = json.loads(json.dumps(dict(config)))  # a deep, plain copy
    data = result.setdefault("data", {})
    if data.get("dataset", "rrsisd") != "rrsisd" or not data.get("generate_synthetic"):
        raise ValueError(
            "the ablation needs a config with data.dataset rrsisd and data.generate_synthetic "
            "(the synthetic set, scored on its test split)"
        )
    data["root"] = str(out / "data")
    result.pop("output_dir", None)
    return result


def prepare_folder(
    out: Path,
    config: Mapping[str, Any],
    *,
    local_rank: int = 0,
    show_progress: bool = True,
    timeout_s: float = 3600.0,
) -> None:
    """Claim ``out``, check that earlier runs there used the same base config, and generate
    the shared synthetic set once. Local rank 0 does the writing; other processes (several
    GPUs) wait for the set's last file, then check the config."""
    plain = json.loads(json.dumps(dict(config)))
    task = ReferringTask.from_config(plain)
    if local_rank == 0:
        claim_folder(out, plain)
    else:
        deadline = time.monotonic() + timeout_s
        while not task.config.data.synthetic_marker().is_file():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{out}: local rank 0 did not prepare the data in time")
            time.sleep(1.0)
    recorded = _read_mark(out).get("config")
    if recorded != plain:
        raise AblationFolderError(
            f"{out}: holds runs of another base config ({_first_difference(recorded, plain)}); "
            "choose another --out, or give the same config and --set values"
        )
    data = task.config.data
    if local_rank == 0 and not data.synthetic_marker().is_file():
        spec = dict(data.generate_synthetic or {})
        data.generator()(data.root, **spec, show_progress=show_progress)


def _read_mark(out: Path) -> dict[str, Any]:
    try:
        data = json.loads((out / MARK_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise AblationFolderError(f"{out / MARK_NAME}: unreadable ({error})") from error
    return data if isinstance(data, dict) else {}


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    """The first key path where two nested configs differ, as text."""
    if isinstance(a, dict) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}{key}.")
    return f"{path.rstrip('.') or 'config'}: {a!r} there, {b!r} now"


def run_config(base: Mapping[str, Any], spec: RunSpec) -> dict[str, Any]:
    """A run's resolved config: the base config with the variant's switches and seed."""
    config = apply_overrides(dict(base), spec.overrides)
    config["output_dir"] = str(spec.train_dir)
    return config


def _train(spec: RunSpec, config: dict[str, Any], show_progress: bool) -> dict[str, Any]:
    """Train (or resume) one run; return its timings and training summary."""
    state = run_state(spec)
    if state == "interrupted":
        saved = load_config(spec.train_dir / "config.yaml")  # aliases bounded, file named
        if saved != json.loads(json.dumps(config)):
            raise AblationFolderError(
                f"{spec.train_dir}: interrupted run of another config "
                f"({_first_difference(saved, config)}); remove that folder to restart it"
            )
    elif spec.train_dir.exists():  # a start that saved no checkpoint: ours, begin again
        shutil.rmtree(spec.train_dir)
    trainer = Trainer(
        ReferringTask.from_config(config),
        config,
        spec.train_dir,
        resume=spec.train_dir if state == "interrupted" else None,
        show_progress=show_progress,
    )
    summary = trainer.fit()
    return {
        # every part of a resumed run (None: a checkpoint it resumed from did not record them)
        "train_seconds": summary.total_train_seconds,
        "train_cpu_seconds": summary.total_cpu_seconds,
        "train_seconds_last_part": summary.train_seconds,
        "resumed": state == "interrupted",
        "train_steps": summary.global_step,
        "best_val_oIoU": summary.best_value,
        "eval_batch_size": trainer.settings.eval_batch_size,
    }


def run_one(
    spec: RunSpec,
    base: Mapping[str, Any],
    *,
    show_progress: bool,
    keep_checkpoints: bool,
    worker: int = 0,
) -> dict[str, Any]:
    """Train, score and record one run; return (and write, last) its ``result.json``.

    ``worker`` is the rank of the process that ran it (several GPUs), kept in the result."""
    config = run_config(base, spec)
    training = _train(spec, config, show_progress)
    scores = score_checkpoint(
        spec.train_dir / "checkpoints" / "best",
        config["data"]["root"],
        batch_size=training.pop("eval_batch_size"),
    )
    true, swapped, subset = scores["true"], scores["swapped"], scores["swap_subset"]
    result = {
        "variant": spec.variant.name,
        "seed": spec.seed,
        "overrides": list(spec.overrides),
        "oIoU": true["oIoU"],
        "mIoU": true["mIoU"],
        **{key: true[key] for key in PRECISIONS},
        "BF": true["BF"],
        "per_category": {name: row["oIoU"] for name, row in true["per_category"].items()},
        "per_size": {name: row["oIoU"] for name, row in true["per_size"].items()},
        **later_records(scores["dataset"], true["sample_ious"]),
        "samples": true["samples"],
        "oIoU_swapped": swapped["oIoU"],
        "oIoU_swap_subset": subset["oIoU"],
        "swap_drop": subset["oIoU"] - swapped["oIoU"],
        "swapped_samples": swapped["samples"],
        **training,
        "worker": worker,
        "code": code_version(),
    }
    write_text_atomic(spec.result_path, json.dumps(result, indent=2) + "\n")
    if not keep_checkpoints:
        shutil.rmtree(spec.train_dir / "checkpoints", ignore_errors=True)
    return result


def collect_results(out: Path) -> list[dict[str, Any]]:
    """Every finished run's result under ``out/runs``."""
    return [read_result(p) for p in sorted((out / "runs").glob("*/seed-*/result.json"))]


def write_ablation_tables(
    out: Path, variants: Sequence[AblationVariant], *, title: str
) -> tuple[dict[str, Any], list[Path]]:
    """Aggregate the finished runs under ``out`` into its table files.

    The table lists ``variants`` and every other known variant with a finished run in the
    folder (so a process that ran a few variants does not drop the others' rows), in the
    registry's order; runs of names no longer known are left out.
    """
    results = collect_results(out)
    finished = {r["variant"] for r in results}
    chosen = {v.name for v in variants}
    # variants of the lr sweep (name@lrF) are known only to the run that chose them
    catalogue = {**KNOWN_VARIANTS, **{v.name: v for v in variants}}
    shown = [v for v in catalogue.values() if v.name in chosen or v.name in finished]
    names = {v.name for v in shown}
    results = [r for r in results if r["variant"] in names]
    reference = "full" if "full" in names or not shown else shown[0].name
    summary = summarise_runs(results, [(v.name, v.description) for v in shown], reference=reference)
    summary["runs_finished"] = len(results)
    summary["resumed_runs"] = [f"{r['variant']}/seed-{r['seed']}" for r in results if r["resumed"]]
    order = [v.name for v in catalogue.values()]
    run_list = write_text_atomic(out / "runs.md", format_run_list(results, order))
    return summary, [*write_tables(summary, out, title=title), run_list]


def run_ablation(
    runs: Sequence[RunSpec],
    base: Mapping[str, Any],
    *,
    show_progress: bool = True,
    keep_checkpoints: bool = False,
    worker: int = 0,
    report: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run every spec in order, skipping finished ones; return all their results."""
    results = []
    for number, spec in enumerate(runs, start=1):
        state = run_state(spec)
        prefix = f"[{number}/{len(runs)}] {spec.label}"
        if state == "finished":
            report(f"{prefix}: finished earlier, skipped")
            results.append(read_result(spec.result_path))
            continue
        report(f"{prefix}: {'resuming' if state == 'interrupted' else 'training'}")
        options = {"show_progress": show_progress, "keep_checkpoints": keep_checkpoints}
        result = run_one(spec, base, worker=worker, **options)
        report(
            f"{prefix}: test oIoU {result['oIoU']:.2f}, mIoU {result['mIoU']:.2f}, swap drop "
            f"{result['swap_drop']:.2f}, {result['train_seconds_last_part']:.0f} s"
        )
        results.append(result)
    return results
