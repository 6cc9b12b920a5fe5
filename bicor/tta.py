"""Test-time augmentation of the BiCoR-Seg authors' test scripts (ttach's product of views).

A :class:`TestTimeAugment` is the product of horizontal flip x vertical flip x rotation by 90
degrees x scales: each view augments the input in that order, the model runs, the logits are
mapped back in the reverse order (scale back to the input size, rotate back, unflip) and the
logits of all views are averaged. The authors' settings (their ``test_*.py -t ...``):

- Vaihingen ``d4``: flips, rot90 and scales 0.5, 0.75, 1, 1.25, 1.5 (40 views);
- LoveDA ``d4``: horizontal flip and scales 0.75, 1, 1.25, 1.5 (8 views);
- Potsdam ``lr``: horizontal and vertical flips (4 views), what their README runs; their
  config names ``d4``, which for Potsdam is flips x scales 0.75, 1, 1.25, 1.5 (16 views;
  ``--tta authors-d4``). Which one the paper's Potsdam number used is not stated.

Scaling is bicubic (``align_corners=False``) both ways; the way back resizes to the exact input
size (ttach multiplies by ``1 / scale``, which can miss a pixel at odd sizes).

``AUTHORS_TTA`` holds those three settings by data set; :func:`parse_tta_spec` reads the
``scripts/benchmark.py --tta`` words (``authors``, ``flips``, ``hflip,vflip,rot90``) and scales.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor

ModelFn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class TestTimeAugment:
    """The views to average. The default is a single plain forward pass."""

    __test__ = False  # not a pytest test class

    hflip: bool = False
    vflip: bool = False
    rot90: bool = False
    scales: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        scales = tuple(float(s) for s in self.scales)
        if not scales or any(not (0 < s < math.inf) for s in scales):  # NaN fails too
            raise ValueError(f"TTA scales must be positive numbers, got {self.scales}")
        object.__setattr__(self, "scales", scales)

    @classmethod
    def from_config(cls, section: dict | None) -> TestTimeAugment:
        """From ``eval.tta: {hflip, vflip, rot90, scales}`` (missing keys: no augmentation)."""
        section = dict(section or {})
        unknown = sorted(set(section) - {"hflip", "vflip", "rot90", "scales"})
        if unknown:
            raise ValueError(f"unknown eval.tta keys {unknown}; known: hflip, vflip, rot90, scales")
        scales: Sequence[float] = section.get("scales") or (1.0,)
        return cls(
            hflip=bool(section.get("hflip", False)),
            vflip=bool(section.get("vflip", False)),
            rot90=bool(section.get("rot90", False)),
            scales=tuple(scales),
        )

    def describe(self) -> dict[str, Any]:
        """JSON-ready settings: ``{hflip, vflip, rot90, scales, views}``."""
        return {
            "hflip": self.hflip,
            "vflip": self.vflip,
            "rot90": self.rot90,
            "scales": list(self.scales),
            "views": self.num_views,
        }

    @property
    def num_views(self) -> int:
        return (1 + self.hflip) * (1 + self.vflip) * (1 + self.rot90) * len(self.scales)

    def views(self) -> list[tuple[bool, bool, bool, float]]:
        """Every (hflip, vflip, rot90, scale) combination, the identity first."""
        return list(
            itertools.product(
                (False, True) if self.hflip else (False,),
                (False, True) if self.vflip else (False,),
                (False, True) if self.rot90 else (False,),
                self.scales,
            )
        )

    def __call__(self, model_fn: ModelFn, batch: Tensor) -> Tensor:
        """(n, 3, H, W) -> (n, K, H, W) logits averaged over the views."""
        size = batch.shape[-2:]
        total = None
        for hflip, vflip, rot, scale in self.views():
            x = batch.flip(-1) if hflip else batch
            x = x.flip(-2) if vflip else x
            x = x.rot90(1, dims=(-2, -1)) if rot else x
            if scale != 1.0:
                target = (round(x.shape[-2] * scale), round(x.shape[-1] * scale))
                x = F.interpolate(x, size=target, mode="bicubic", align_corners=False)
            y = model_fn(x)
            if scale != 1.0:
                back = (size[1], size[0]) if rot else tuple(size)
                y = F.interpolate(y, size=back, mode="bicubic", align_corners=False)
            y = y.rot90(-1, dims=(-2, -1)) if rot else y
            y = y.flip(-2) if vflip else y
            y = y.flip(-1) if hflip else y
            total = y if total is None else total + y
        return total / self.num_views


AUTHORS_TTA: dict[str, TestTimeAugment] = {
    # test_vaihingen.py -t d4: ttach HorizontalFlip, VerticalFlip, Rotate90([90]), Scale(5 scales)
    "vaihingen": TestTimeAugment(
        hflip=True, vflip=True, rot90=True, scales=(0.5, 0.75, 1.0, 1.25, 1.5)
    ),
    # test_loveda.py -t d4: HorizontalFlip and Scale([0.75, 1.0, 1.25, 1.5])
    "loveda": TestTimeAugment(hflip=True, scales=(0.75, 1.0, 1.25, 1.5)),
    # test_potsdam.py -t lr: HorizontalFlip, VerticalFlip
    "potsdam": TestTimeAugment(hflip=True, vflip=True),
}
# The views of each test script's ``-t d4``, the TTA the authors' configs name
# (``test_time_aug = 'd4'``; nothing reads that variable). For Vaihingen and LoveDA it is what
# their README runs; for Potsdam the README runs ``-t lr`` (4 views) while its ``d4`` is
# HorizontalFlip x VerticalFlip x Scale([0.75, 1, 1.25, 1.5]) (Rotate90 commented out): 16.
AUTHORS_D4_TTA: dict[str, TestTimeAugment] = {
    **AUTHORS_TTA,
    "potsdam": TestTimeAugment(hflip=True, vflip=True, scales=(0.75, 1.0, 1.25, 1.5)),
}
TTA_WORDS = ("authors", "authors-d4", "flips", "hflip", "vflip", "rot90")


def parse_tta_spec(
    spec: str | None, scales: Sequence[float] | None = None, dataset: str | None = None
) -> TestTimeAugment:
    """The views of ``scripts/benchmark.py --tta SPEC --tta-scales ...``.

    ``spec``: None (no flips or rotation), ``authors`` (the setting the authors' README runs
    for ``dataset``, ``AUTHORS_TTA``), ``authors-d4`` (its test script's ``-t d4``, which the
    configs name, ``AUTHORS_D4_TTA``; no ``scales`` with either), or comma-separated words
    among ``flips`` (= ``hflip,vflip``), ``hflip``, ``vflip``, ``rot90``. ``scales``: the
    scales of every view (default 1 only). Raises ValueError naming the unknown word or the
    missing data set.
    """
    words = [w.strip() for w in (spec or "").split(",") if w.strip()]
    unknown = sorted(set(words) - set(TTA_WORDS))
    if unknown:
        raise ValueError(f"--tta: unknown word(s) {unknown}; known: {', '.join(TTA_WORDS)}")
    for word, table in (("authors", AUTHORS_TTA), ("authors-d4", AUTHORS_D4_TTA)):
        if word not in words:
            continue
        if len(words) > 1 or scales:
            raise ValueError(f"--tta {word} stands alone (it fixes flips, rotation and scales)")
        if dataset not in table:
            known = ", ".join(table)
            raise ValueError(f"--tta {word}: the authors tested only {known}, not {dataset}")
        return table[dataset]
    return TestTimeAugment(
        hflip="hflip" in words or "flips" in words,
        vflip="vflip" in words or "flips" in words,
        rot90="rot90" in words,
        scales=tuple(scales) if scales else (1.0,),
    )
