"""One colour ramp for heat pictures (BSC correlation maps, BiCoR-Seg HBIS heatmaps)."""

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
