"""The README.md (model card) uploaded with a model to the Hugging Face Hub.

Built with huggingface_hub's ``ModelCard`` and ``ModelCardData`` (the metadata the Hub reads:
license, ``library_name``, pipeline tag, tags, and the best metrics as a ``model-index`` of
``EvalResult`` entries) from the model folder's ``config.json`` and, when given, the training
run's folder (``config.yaml``: data and recipe; ``metrics.jsonl``: the best evaluation, with
its split and protocol). The text adds the install line, the code link and a usage snippet.
Nothing is invented: a fact the files do not hold is written as "not recorded".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from btdnet.engine.config import ConfigError, safe_yaml
from btdnet.models.serialization import CONFIG_NAME, CheckpointError

# per model type: the metric that selects the best checkpoint, and the metrics shown
METRICS = {
    "btdnet": ("oIoU", ("oIoU", "mIoU", "Pr@0.5", "Pr@0.7", "Pr@0.9", "gIoU", "cIoU", "N_acc")),
    "bicor": ("mIoU", ("mIoU", "mF1", "OA")),
}
NOT_RECORDED = "not recorded"
# A code link the card may show: https, no spaces, quotes or angle brackets (it goes into
# Markdown and a shell line).
CODE_URL = re.compile(r"^https://[^\s\"'<>`\\]+$")


@dataclass(frozen=True)
class BestEvaluation:
    """The best record of a run's ``metrics.jsonl`` on the split that selects checkpoints."""

    split: str
    protocol: str
    epoch: Any
    step: Any
    metrics: dict[str, float]
    selection: str | None = None  # the rule that chose the checkpoint, when the run wrote it


def read_run(run_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(config.yaml, metrics.jsonl records)`` of a training run's output folder."""
    run = Path(run_dir)
    config_path, metrics_path = run / "config.yaml", run / "metrics.jsonl"
    if not config_path.is_file() or not metrics_path.is_file():
        raise CheckpointError(
            f"{run}: not a training run folder (needs config.yaml and metrics.jsonl)"
        )
    try:
        config = safe_yaml(config_path.read_text(encoding="utf-8")) or {}  # aliases bounded
        records = [
            json.loads(line)
            for line in metrics_path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
    except (yaml.YAMLError, ConfigError, ValueError, RecursionError) as error:
        raise CheckpointError(f"{run}: unreadable run files ({error})") from error
    return config, records


def best_evaluation(
    records: list[dict[str, Any]], model_type: str, config: dict[str, Any]
) -> BestEvaluation | None:
    """The record with the highest selection metric on the first evaluated split (the metric
    the run's own rule names, e.g. ``"best mF1 on test ..."``, when it wrote one)."""
    key, shown = METRICS[model_type]
    rules = [r["selection"] for r in records if isinstance(r.get("selection"), str)]
    named = rules[0].split()[1] if rules and rules[0].startswith("best ") else None
    key = named if named in shown else key
    scored = [r for r in records if isinstance(r.get(key), int | float)]
    if not scored:
        return None
    split = str(scored[0].get("split", NOT_RECORDED))
    best = max(
        (r for r in scored if str(r.get("split", NOT_RECORDED)) == split), key=lambda r: r[key]
    )
    protocol = best.get("protocol") or (config.get("eval") or {}).get("protocol") or NOT_RECORDED
    metrics = {name: float(best[name]) for name in shown if isinstance(best.get(name), int | float)}
    rule = best.get("selection") if isinstance(best.get("selection"), str) else None
    return BestEvaluation(split, str(protocol), best.get("epoch"), best.get("step"), metrics, rule)


def card_data(
    model_type: str,
    name: str,
    license_id: str,
    best: BestEvaluation | None,
    run_config: dict[str, Any] | None,
) -> Any:
    """The card's metadata as huggingface_hub's ``ModelCardData``; the best evaluation's metrics
    become ``EvalResult`` entries when the run names its data set."""
    from huggingface_hub import EvalResult, ModelCardData

    task = "referring-image-segmentation" if model_type == "btdnet" else "semantic-segmentation"
    dataset = ((run_config or {}).get("data") or {}).get("dataset")
    results = [
        EvalResult(
            task_type="image-segmentation",
            task_name=task,
            dataset_type=str(dataset),
            dataset_name=str(dataset),
            dataset_split=best.split,
            metric_type=metric,
            metric_name=f"{metric} ({best.protocol} protocol)",
            metric_value=round(value, 2),
        )
        for metric, value in (best.metrics.items() if best is not None and dataset else [])
    ]
    return ModelCardData(
        license=license_id,
        library_name="btdnet",
        pipeline_tag="image-segmentation",
        tags=["remote-sensing", "image-segmentation", model_type, task],
        model_name=name if results else None,
        eval_results=results or None,
    )


def code_links(code_url: str | None) -> tuple[str | None, str | None]:
    """``(code URL, installed version)``: ``code_url``, else the package metadata's Source /
    Repository / Homepage URL; the version of the installed ``btdnet`` distribution."""
    try:
        meta = metadata.metadata("btdnet")
        version = meta["Version"]
    except metadata.PackageNotFoundError:
        return code_url, None
    urls = dict(
        entry.split(", ", 1) for entry in meta.get_all("Project-URL") or [] if ", " in entry
    )
    found = next((urls[k] for k in ("Source", "Repository", "Homepage") if k in urls), None)
    return code_url or found, version


def install_section(code_url: str | None) -> str:
    """The install line and the code link (what the package records; nothing guessed)."""
    if code_url is not None and not CODE_URL.match(code_url):
        raise ValueError(f"code URL {code_url!r}: not an https:// URL without spaces or quotes")
    url, version = code_links(code_url)
    url = url if url is not None and CODE_URL.match(url) else None
    trained = f" (this card: btdnet {version})" if version else ""
    if url is None:
        return (
            f"Code: the btdnet toolkit{trained}; its source link is {NOT_RECORDED} (give "
            "`--code-url` when publishing). Install it from its source folder:\n\n"
            "```bash\npip install .            # in the toolkit's checkout\n```\n"
        )
    return f'Code: <{url}>{trained}.\n\n```bash\npip install "btdnet @ git+{url}"\n```\n'


def _model_table(model_type: str, variant: str, config: dict[str, Any]) -> str:
    rows = [
        ("model", "BTDNet (referring)" if model_type == "btdnet" else "BiCoR-Seg (closed-set)"),
        ("variant", variant),
    ]
    for label, names in (
        ("image encoder", ("image_encoder", "encoder_name", "encoder")),
        ("text encoder", ("text_encoder",)),
        ("input size", ("image_size", "img_size")),
        ("max tokens", ("max_tokens",)),
        ("classes", ("num_classes",)),
    ):
        value = next((config[n] for n in names if config.get(n) is not None), None)
        if value is not None:
            rows.append((label, f"`{value}`"))
    if model_type == "btdnet" and config.get("text_encoder") is None:
        rows.append(("text encoder", "the toolkit's default (offline all-MiniLM-L6-v2)"))
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def _training_section(run_config: dict[str, Any] | None) -> str:
    if run_config is None:
        return f"Training data and recipe: {NOT_RECORDED} (no run folder was given).\n"
    data = run_config.get("data") or {}
    train = run_config.get("train") or {}
    facts = [
        ("data set", data.get("dataset")),
        ("train split", data.get("train_split")),
        ("evaluation splits", data.get("eval_splits")),
        ("epochs", train.get("epochs")),
        ("batch size (per process)", train.get("batch_size")),
        ("learning rate", train.get("lr")),
        ("schedule", train.get("schedule")),
        ("mixed precision", train.get("mixed_precision")),
        ("seed", run_config.get("seed")),
    ]
    lines = [f"- {name}: {NOT_RECORDED if value is None else value}" for name, value in facts]
    if data.get("generate_synthetic"):
        lines.append("- the data set is this toolkit's synthetic benchmark (RRSIS-D format)")
    dump = yaml.safe_dump(run_config, sort_keys=False).rstrip()
    block = (
        f"<details><summary>full training config</summary>\n\n```yaml\n{dump}\n```\n\n</details>"
    )
    return "\n".join(lines) + "\n\n" + block + "\n"


def results_section(best: BestEvaluation | None) -> str:
    if best is None:
        return f"Evaluation: {NOT_RECORDED}.\n"
    header = "| " + " | ".join(best.metrics) + " |\n|" + "---|" * len(best.metrics) + "\n"
    values = "| " + " | ".join(f"{v:.2f}" for v in best.metrics.values()) + " |\n"
    rule = ""
    if best.selection:
        rule = (
            f"\nCheckpoint chosen by: {best.selection}. A checkpoint chosen on the split it is "
            "scored on gives an optimistic score.\n"
        )
    return (
        f"Best evaluation of the training run (`metrics.jsonl`): split **{best.split}**, "
        f"protocol **{best.protocol}**, epoch {best.epoch}, step {best.step} (percentages).\n\n"
        + header
        + values
        + rule
    )


def _usage(model_type: str, repo_id: str) -> str:
    if model_type == "bicor":
        return (
            "```python\nfrom bicor.models.bicor_seg import load_bicor\n\n"
            f'model = load_bicor("{repo_id}")  # downloads once, then the Hugging Face cache\n```\n'
        )
    return (
        "```python\nfrom btdnet.predict import Predictor\n\n"
        f'predictor = Predictor.from_pretrained("{repo_id}")\n'
        'predictor.set_image("scene.tif")\n'
        'ship = predictor.predict("the white ship at the lower dock")\n'
        "print(ship.score, ship.bbox, ship.mask.shape)\n```\n\n"
        f"```bash\nbtdnet-predict --checkpoint {repo_id} --image scene.tif "
        '--text "the bridge" --out out/\n'
        f"btdnet-serve --checkpoint {repo_id}   # web page and HTTP API on 127.0.0.1:8000\n```\n"
    )


def model_card(
    model_dir: str | Path,
    repo_id: str,
    *,
    run_dir: str | Path | None = None,
    license_id: str = "apache-2.0",
    code_url: str | None = None,
) -> str:
    """The model card (Markdown with YAML front matter, a huggingface_hub ``ModelCard``) of a
    saved model folder; ``code_url`` links the toolkit's source (default: the package's)."""
    from huggingface_hub import ModelCard

    meta = json.loads((Path(model_dir) / CONFIG_NAME).read_text(encoding="utf-8"))
    model_type = str(meta.get("model_type"))
    if model_type not in METRICS:
        raise CheckpointError(f"{model_dir}: model_type {model_type!r} has no model card")
    config = meta.get("config") or {}
    variant = str(meta.get("variant") or config.get("variant") or NOT_RECORDED)
    run_config, records = read_run(run_dir) if run_dir is not None else (None, [])
    best = best_evaluation(records, model_type, run_config or {})
    name = repo_id.split("/")[-1]
    data = card_data(model_type, name, license_id, best, run_config)
    parts = [
        f"# {name}\n",
        f"Weights of a {model_type} model trained with the btdnet toolkit "
        "(`model.safetensors` + `config.json`, loadable without executing code).\n",
        "## Model\n",
        _model_table(model_type, variant, config) + "\n",
        "## Training\n",
        _training_section(run_config),
        "## Results\n",
        results_section(best),
        "## Install\n",
        install_section(code_url),
        "## Use\n",
        _usage(model_type, repo_id),
        "## License\n",
        f"`{license_id}`.\n",
    ]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(parts))
    return str(card)
