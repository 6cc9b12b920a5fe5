"""Colours: one ramp for heat pictures (BSC correlation maps, BiCoR-Seg HBIS heatmaps), and
the one scheme every overlay, preview, page and report draws predictions with."""

from __future__ import annotations

import numpy as np

# blue -> cyan -> green -> yellow -> red ramp stops
RAMP = np.array(
    [[0, 0, 128], [0, 128, 255], [0, 200, 80], [255, 230, 0], [220, 20, 20]], dtype=np.float32
)


def colorize(values: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 through a blue-to-red ramp."""
    scaled = np.clip(values, 0.0, 1.0) * (len(RAMP) - 1)
    low = np.floor(scaled).astype(np.int64).clip(0, len(RAMP) - 2)
    frac = (scaled - low)[..., None]
    return np.rint(RAMP[low] * (1 - frac) + RAMP[low + 1] * frac).astype(np.uint8)


# ----------------------------------------------------------------- the overlay colour scheme
# One scheme for every picture of a prediction: btdnet-predict's overlays and scene previews,
# the served page (GET /overlay.json) and the evaluation report's pictures. Masks are drawn
# outline-first: a ring just OUTSIDE the object, over a dark halo, so every pixel of the object
# keeps its own colour ("the green storage tank" stays green); boxes and ground truth have
# colours of their own.
PREDICTION_COLOR: tuple[int, int, int] = (255, 214, 10)  # yellow ring around each object
BOX_COLOR: tuple[int, int, int] = (0, 229, 255)  # cyan bounding box
TRUTH_COLOR: tuple[int, int, int] = (255, 92, 240)  # magenta outline of the ground truth
HALO_COLOR: tuple[int, int, int] = (0, 0, 0)  # dark edge that makes the rings readable

LEGEND: tuple[tuple[str, tuple[int, int, int], str], ...] = (
    ("prediction", PREDICTION_COLOR, "predicted object (ring outside it)"),
    ("box", BOX_COLOR, "bounding box"),
    ("truth", TRUTH_COLOR, "ground truth (outline inside it)"),
)


def hex_color(rgb: tuple[int, int, int]) -> str:
    """``(255, 214, 10)`` -> ``"#ffd60a"``."""
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


def overlay_scheme() -> dict[str, object]:
    """The scheme as JSON for the page: colours as ``#rrggbb`` and the legend's words."""
    colors = {key: hex_color(rgb) for key, rgb, _ in LEGEND}
    colors["halo"] = hex_color(HALO_COLOR)
    return {"colors": colors, "legend": {key: words for key, _, words in LEGEND}}
