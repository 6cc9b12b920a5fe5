"""Closed-set scoring protocols: which classes of a data set enter mIoU / mF1 (evaluation.md).

``geoseg`` (UNetFormer / BiCoR-Seg, the papers' protocol) scores Vaihingen and Potsdam mIoU/mF1
over the five classes without clutter, OA over all six; ``mmseg`` includes clutter. LoveDA uses
all seven classes in both. Class names come from the data sets' palettes
(:data:`bicor.data.palettes.CLASS_NAMES`), the one list of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from bicor.data.palettes import CLASS_NAMES

PROTOCOL_NAMES: tuple[str, ...] = ("geoseg", "mmseg")
CLUTTER = "clutter"  # the ISPRS class the geoseg protocol leaves out of the means


@dataclass(frozen=True)
class ClosedSetProtocol:
    """Which classes a dataset has and which of them enter mIoU / mF1 (OA uses all)."""

    dataset: str
    name: str
    class_names: tuple[str, ...]
    eval_classes: tuple[int, ...]


def closed_set_protocol(dataset: str, name: str = "geoseg") -> ClosedSetProtocol:
    """The scoring protocol of ``dataset`` in {"loveda", "vaihingen", "potsdam"}.

    ``name="geoseg"`` (default) drops clutter from the Vaihingen/Potsdam means;
    ``name="mmseg"`` keeps all six classes. LoveDA scores all seven classes in both.
    """
    key = dataset.lower()
    if name not in PROTOCOL_NAMES:
        raise ValueError(f"unknown closed-set protocol {name!r}; choose one of {PROTOCOL_NAMES}")
    if key not in CLASS_NAMES:
        raise ValueError(
            f"no closed-set protocol for dataset {dataset!r}; known: {', '.join(CLASS_NAMES)}"
        )
    names = CLASS_NAMES[key]
    scored = tuple(i for i, n in enumerate(names) if not (name == "geoseg" and n == CLUTTER))
    return ClosedSetProtocol(key, name, names, scored)
