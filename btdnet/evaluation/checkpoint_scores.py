"""Score a saved referring checkpoint on the synthetic test split, with its true expressions
and with each expression swapped for another object's expression of the same image (a model
that reads the sentence must score far lower then). Used by the demo and the ablation runner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, Subset

from btdnet.data import build_referring_dataset
from btdnet.engine.accelerator import make_accelerator
from btdnet.evaluation.referring_eval import evaluate_referring
from btdnet.evaluation.swap import SwappedExpressionDataset
from btdnet.models import BTDNet, load_model


def score_dataset(model: BTDNet, dataset: Any, accelerator: Any, batch_size: int) -> dict:
    """``evaluate_referring`` of ``dataset`` in order, with every sample's IoU kept."""
    loader = accelerator.prepare(DataLoader(dataset, batch_size=batch_size, shuffle=False))
    return evaluate_referring(model, loader, accelerator, show_progress=False, keep_samples=True)


def load_test_split(model: BTDNet, data_root: str | Path) -> Any:
    """The synthetic (RRSIS-D format) test split under ``data_root``, tokenised and sized for
    ``model``."""
    return build_referring_dataset(
        "rrsisd",
        data_root,
        "test",
        model.tokenizer,
        image_size=model.config.image_size,
        max_tokens=model.config.max_tokens,
    )


def score_checkpoint(
    checkpoint: str | Path, data_root: str | Path, *, batch_size: int = 16
) -> dict:
    """Score a checkpoint on the synthetic test split with true and with swapped expressions.

    Returns ``true`` (all test samples), ``swapped`` (each expression replaced by another
    object's expression from the same image), ``swap_subset`` (the samples that have such a
    partner, with their true expressions), plus the loaded ``model`` and the ``dataset``.
    """
    accelerator = make_accelerator()
    model = load_model(checkpoint).to(accelerator.device)  # the prepared loaders' device
    model.eval()
    test = load_test_split(model, data_root)
    swapped_set = SwappedExpressionDataset(test, seed=0)
    return {
        "true": score_dataset(model, test, accelerator, batch_size),
        "swapped": score_dataset(model, swapped_set, accelerator, batch_size),
        "swap_subset": score_dataset(
            model, Subset(test, swapped_set.indices), accelerator, batch_size
        ),
        "model": model,
        "dataset": test,
        "swapped_set": swapped_set,
    }


__all__ = ["load_test_split", "score_checkpoint", "score_dataset"]
