"""The named ablation variants of BTDNet: each is a set of ``--set`` config overrides.

Every variant switches parts of the model off from the run's config (which is expected to
hold the full model: BSC, alignment-map supervision, the twin-stream decoder and D-MOLS on).
The switches are ``BTDNetConfig`` fields (``btdnet/models/config.py``), set through
``model.overrides.*`` exactly as on the training command line.

| variant | what it removes |
|---|---|
| ``full`` | nothing: BSC (bidirectional), alignment loss, T-BTD twin streams, D-MOLS |
| ``bsc_one_way`` | BSC's language <- vision direction and its map: LAVT-style one-way fusion |
| ``no_alignment`` | the supervision of BSC's correlation maps (the maps still gate the fusion) |
| ``single_stream`` | T-BTD's background stream: a target-only decoder |
| ``dmols_off`` | both D-MOLS objectives (and their heads) |
| ``dmols_visual_only`` | D-MOLS's word prediction (weight 0): visual reconstruction only |
| ``dmols_language_only`` | D-MOLS's visual reconstruction (weight 0): word prediction only |
| ``family_baseline`` | BSC one-way + single stream + no D-MOLS: the LAVT family's plain model |

Alternative readings (``READING_VARIANTS``; run only when named): the full model with one module
read another way that the paper's description also allows (docs/method.md, "Readings tried").

| variant | what it changes |
|---|---|
| ``bsc_language_first`` | BSC refines the words from the pixels, then injects them; no map gate |
| ``alignment_spatial`` | maps supervised by a KL divergence over pixels, not a per-pixel BCE |
| ``dmols_features`` | D-MOLS reconstructs clean features of masked cells and words |

The full-length table (``DEMO_VARIANTS``; run only when named) starts from the demo's model
(BSC with spatial alignment, T-BTD, D-MOLS off): ``demo``, each module removed from it, D-MOLS
added, and two readings: ``demo_bsc_from_baseline`` (BSC's additions over one-way fusion gated
from zero) and ``demo_background_auxiliary`` (the answer from the target stream alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

_SWITCH = "model.overrides."
# The full model as the ablation tables measured it: every module on, each read the first way
# (docs/method.md). The readings are set explicitly so that ``full`` keeps its meaning whatever
# the defaults of ``BTDNetConfig`` become.
_FULL: dict[str, bool | float | str] = {
    "use_bsc": True,
    "use_alignment_loss": True,
    "use_twin_stream": True,
    "use_dmols": True,
    "bsc_reading": "gated",
    "alignment_kind": "bce",
    "dmols_reconstruct": "inputs",
    "twin_reading": "joint",
}


def _overrides(**changes: bool | float | str) -> tuple[str, ...]:
    """``--set`` overrides: every module switch of the full model, with ``changes`` applied.

    Every switch is set explicitly, so that a variant means the same whatever the run's config
    says about the switches; other values (loss weights, sizes) are the config's.
    """
    values: dict[str, bool | float | str] = {**_FULL, **changes}
    return tuple(f"{_SWITCH}{key}={str(v).lower()}" for key, v in values.items())


@dataclass(frozen=True)
class AblationVariant:
    """One ablation variant: a name, what it means, and its ``--set`` overrides."""

    name: str
    description: str
    overrides: tuple[str, ...]


ABLATION_VARIANTS: dict[str, AblationVariant] = {
    v.name: v
    for v in (
        AblationVariant(
            "full", "the full model (BSC, alignment loss, T-BTD, D-MOLS)", _overrides()
        ),
        AblationVariant(
            "bsc_one_way",
            "one-way pixel-word fusion (LAVT-style), no correlation map, no alignment loss",
            _overrides(use_bsc=False, use_alignment_loss=False),
        ),
        AblationVariant(
            "no_alignment",
            "BSC without supervision of its correlation maps",
            _overrides(use_alignment_loss=False),
        ),
        AblationVariant(
            "single_stream",
            "target stream only (no background stream, no agreement loss)",
            _overrides(use_twin_stream=False),
        ),
        AblationVariant("dmols_off", "no D-MOLS objectives", _overrides(use_dmols=False)),
        AblationVariant(
            "dmols_visual_only",
            "D-MOLS visual reconstruction only (word prediction weight 0)",
            _overrides(dmols_language_weight=0.0),
        ),
        AblationVariant(
            "dmols_language_only",
            "D-MOLS word prediction only (visual reconstruction weight 0)",
            _overrides(dmols_visual_weight=0.0),
        ),
        AblationVariant(
            "family_baseline",
            "one-way fusion + single stream + no D-MOLS (the LAVT family's plain model)",
            _overrides(
                use_bsc=False, use_alignment_loss=False, use_twin_stream=False, use_dmols=False
            ),
        ),
    )
}
"""The variants of the ablation (docs/ablation.md), in the order its tables list them."""

READING_VARIANTS: dict[str, AblationVariant] = {
    v.name: v
    for v in (
        AblationVariant(
            "bsc_language_first",
            "full, BSC read language-first: words refined, then injected; the map gates nothing",
            _overrides(bsc_reading="language_first"),
        ),
        AblationVariant(
            "alignment_spatial",
            "full, alignment maps supervised by KL over pixels (where, not how much)",
            _overrides(alignment_kind="spatial"),
        ),
        AblationVariant(
            "dmols_features",
            "full, D-MOLS reconstructs clean features of masked cells and words",
            _overrides(dmols_reconstruct="features"),
        ),
    )
}
"""Alternative readings of modules that bought nothing; run only when named."""

# The demo's model (configs/synthetic.yaml): BSC with spatial (KL) alignment, T-BTD, no D-MOLS.
_DEMO: dict[str, bool | float | str] = {"use_dmols": False, "alignment_kind": "spatial"}


def _demo(**changes: bool | float | str) -> tuple[str, ...]:
    """``--set`` overrides of the demo's model with ``changes`` applied."""
    return _overrides(**{**_DEMO, **changes})


DEMO_VARIANTS: dict[str, AblationVariant] = {
    v.name: v
    for v in (
        AblationVariant(
            "demo", "the demo's model: BSC + spatial alignment + T-BTD, no D-MOLS", _demo()
        ),
        AblationVariant(
            "demo_bsc_one_way",
            "the demo's model with one-way fusion (no map, no alignment loss)",
            _demo(use_bsc=False, use_alignment_loss=False),
        ),
        AblationVariant(
            "demo_no_alignment",
            "the demo's model without supervision of BSC's maps",
            _demo(use_alignment_loss=False),
        ),
        AblationVariant(
            "demo_single_stream",
            "the demo's model with the target stream only",
            _demo(use_twin_stream=False),
        ),
        AblationVariant(
            "demo_dmols_on", "the demo's model with both D-MOLS objectives", _demo(use_dmols=True)
        ),
        AblationVariant(
            "demo_bsc_from_baseline",
            "the demo's model, BSC's map gating and word update gated from zero",
            _demo(bsc_reading="from_baseline"),
        ),
        AblationVariant(
            "demo_background_auxiliary",
            "the demo's model, the answer from the target stream; background stream auxiliary",
            _demo(twin_reading="auxiliary"),
        ),
    )
}
"""The full-length table at the demo's recipe (docs/ablation.md): the demo's model, each
module removed from it, D-MOLS added, and two new readings; ``family_baseline`` beside them."""

KNOWN_VARIANTS: dict[str, AblationVariant] = {
    **ABLATION_VARIANTS,
    **READING_VARIANTS,
    **DEMO_VARIANTS,
}
"""Every variant a run may name, in table order."""


def select_variants(names: Sequence[str] | None) -> list[AblationVariant]:
    """The variants named (the ablation variants when ``names`` is empty or None), in order.

    Raises:
        ValueError: an unknown or repeated name (the message lists the known ones).
    """
    if not names:
        return list(ABLATION_VARIANTS.values())
    unknown = [n for n in names if n not in KNOWN_VARIANTS]
    if unknown:
        raise ValueError(
            f"unknown ablation variant(s) {', '.join(unknown)}; known: {', '.join(KNOWN_VARIANTS)}"
        )
    repeated = sorted({n for n in names if list(names).count(n) > 1})
    if repeated:
        raise ValueError(f"ablation variant(s) named twice: {', '.join(repeated)}")
    return [KNOWN_VARIANTS[n] for n in names]
