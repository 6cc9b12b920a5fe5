"""Stress regimes of the synthetic generator: each makes one thing that BTDNet claims to
handle harder, and leaves the rest of the generator as it is.

- ``default``: nothing changes (the benchmark as always: same arguments, same bytes).
- ``distractors``: 6-10 objects, every scene with 4-6 instances of one category. Stresses
  language alignment: the words must pick one of many look-alikes.
- ``low_contrast``: objects and shadows blended 35% of the way from the ground to their
  colours, object edges blurred (Gaussian, radius 1.5 px). Stresses target vs background.
- ``tiny``: objects half as long (a quarter of the area). Stresses small objects.

Select one with ``generate_synthetic_rrsisd(..., regime=NAME)``, ``make_synthetic.py
--regime NAME`` or a training config's ``data.generate_synthetic.regime``. Ground-truth masks
stay the objects' exact polygons in every regime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Regime:
    """The generator's knobs that a regime sets (the defaults are the ``default`` regime).

    Attributes:
        name: the regime's name.
        description: one line for ``--help`` and the docs.
        min_objects / max_objects: objects drawn per scene.
        distractor_prob: probability that one category is given several instances up front.
        distractor_instances: (fewest, most) instances of that category.
        size_scale: object length multiplier (0.5: a quarter of the area).
        contrast: 1 draws objects and shadows at full strength; c < 1 blends them to a share c
            of the way from the ground beneath.
        edge_blur: Gaussian blur radius (pixels) of object edges; 0 keeps them sharp.
    """

    name: str
    description: str
    min_objects: int = 3
    max_objects: int = 7
    distractor_prob: float = 0.7
    distractor_instances: tuple[int, int] = (2, 3)
    size_scale: float = 1.0
    contrast: float = 1.0
    edge_blur: float = 0.0

    def sample_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``sample_scene`` that carry this regime."""
        return {
            "min_objects": self.min_objects,
            "max_objects": self.max_objects,
            "distractor_prob": self.distractor_prob,
            "distractor_instances": self.distractor_instances,
            "size_scale": self.size_scale,
            "contrast": self.contrast,
            "edge_blur": self.edge_blur,
        }


REGIMES: dict[str, Regime] = {
    r.name: r
    for r in (
        Regime("default", "the standard synthetic benchmark"),
        Regime(
            "distractors",
            "many same-category distractors: 6-10 objects, 4-6 of one category in every scene",
            min_objects=6,
            max_objects=10,
            distractor_prob=1.0,
            distractor_instances=(4, 6),
        ),
        Regime(
            "low_contrast",
            "low contrast and blurred edges: objects and shadows at 35% strength, edges "
            "blurred by 1.5 px",
            contrast=0.35,
            edge_blur=1.5,
        ),
        Regime("tiny", "tiny objects: half the length, a quarter of the area", size_scale=0.5),
    )
}


def get_regime(name: str) -> Regime:
    """The regime called ``name``; ``ValueError`` lists the known ones."""
    if name not in REGIMES:
        raise ValueError(f"unknown synthetic regime {name!r}; choose from {', '.join(REGIMES)}")
    return REGIMES[name]
