"""Which bands the model sees and how their values become 0..255: one rule for whole images
(:func:`btdnet.raster.image_io.read_image`) and scene tiles
(:class:`btdnet.raster.source.SceneSource`).

Bands (``--bands 3,2,1``, 1-based as in GDAL): three band numbers give R, G, B in that order;
one gives a grey picture (the band repeated). Without ``--bands``: the first three bands (an
IRRG file stays IRRG, as in training), or the first band of one- and two-band files.

Stretch (``--stretch``), the same for every band the model sees:

- ``auto`` (default): 8-bit data as it is; any other type ``percentile``;
- ``percentile[:LOW,HIGH]``: linear between the LOW and HIGH percentiles (default 2 and 98) of
  each band over the scene's valid pixels, computed ONCE per scene on a decimated read of at
  most :data:`STRETCH_SAMPLE_SIDE` pixels a side, so a whole image and every tile of a scene
  share the same limits; applies to 8-bit data too;
- ``minmax:MIN,MAX``: linear between fixed values MIN and MAX for every band and every scene
  (the choice for consistent results over many scenes);
- ``none``: the values as they are, clipped to 0..255.

Values outside the limits are clipped; nodata and non-finite pixels become 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STRETCH_SAMPLE_SIDE = 1024
STRETCH_KINDS = ("auto", "percentile", "minmax", "none")


def real_values(band: np.ndarray) -> np.ndarray:
    """A band as real numbers: the amplitude of complex samples (SAR), the values otherwise."""
    return np.abs(band) if np.iscomplexobj(band) else band


class BandsError(ValueError):
    """A ``--bands`` or ``--stretch`` value that cannot be used; one line."""


@dataclass(frozen=True)
class Stretch:
    """How band values become 0..255 (see the module docstring)."""

    kind: str = "auto"
    low: float = 2.0
    high: float = 98.0

    def resolved(self, dtypes: list[str]) -> Stretch:
        """``auto`` made concrete for data of these dtypes (``none`` for all-uint8)."""
        if self.kind != "auto":
            return self
        return Stretch("none") if all(d == "uint8" for d in dtypes) else Stretch("percentile")

    def limits(self, sample: np.ndarray, valid: np.ndarray) -> list[tuple[float, float]]:
        """Per band (low, high) for (C, h, w) ``sample`` over bool (h, w) ``valid`` pixels."""
        if self.kind == "none":
            return [(0.0, 255.0)] * sample.shape[0]
        if self.kind == "minmax":
            return [(self.low, self.high)] * sample.shape[0]
        if self.kind != "percentile":
            raise BandsError(f"stretch {self.kind!r} must be resolved first")
        limits = []
        for band in sample:
            values = real_values(band[valid & np.isfinite(band)]).astype(np.float64)
            if values.size == 0:
                limits.append((0.0, 0.0))
                continue
            low, high = np.percentile(values, [self.low, self.high])
            limits.append((float(low), float(high)))
        return limits


def parse_stretch(text: str) -> Stretch:
    """``auto``, ``none``, ``percentile``, ``percentile:LOW,HIGH`` or ``minmax:MIN,MAX``."""
    kind, _, numbers = str(text).strip().lower().partition(":")
    if kind not in STRETCH_KINDS:
        raise BandsError(
            f"stretch must be one of auto, percentile[:LOW,HIGH], minmax:MIN,MAX or none, "
            f"not {text!r}"
        )
    if kind in ("auto", "none"):
        if numbers:
            raise BandsError(f"stretch {kind} takes no values, got {text!r}")
        return Stretch(kind)
    if not numbers and kind == "percentile":
        return Stretch(kind)
    try:
        low, high = (float(v) for v in numbers.split(","))
    except ValueError:
        raise BandsError(f"stretch {kind} needs two numbers LOW,HIGH, got {text!r}") from None
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        raise BandsError(f"stretch {kind}: LOW must be below HIGH, got {text!r}")
    if kind == "percentile" and not 0 <= low < high <= 100:
        raise BandsError(f"stretch percentile: LOW and HIGH must lie in 0..100, got {text!r}")
    return Stretch(kind, low, high)


def parse_bands(text: str | None) -> tuple[int, ...] | None:
    """``"3,2,1"`` -> ``(3, 2, 1)``; one or three 1-based band numbers; None/empty: None."""
    if text is None or not str(text).strip():
        return None
    parts = [p.strip() for p in str(text).split(",")]
    if not all(p.isascii() and p.isdigit() for p in parts) or len(parts) not in (1, 3):
        raise BandsError(
            f"bands must be three band numbers R,G,B (or one, grey), 1-based as in GDAL, "
            f"such as 3,2,1; got {text!r}"
        )
    bands = tuple(int(p) for p in parts)
    if min(bands) < 1:
        raise BandsError(f"band numbers start at 1 (as in GDAL), got {text!r}")
    return bands


def select_bands(count: int, bands: tuple[int, ...] | None, where: str) -> list[int]:
    """The three 1-based band numbers to read as R, G, B from a file of ``count`` bands."""
    if bands is None:
        return [1, 2, 3] if count >= 3 else [1, 1, 1]
    if max(bands) > count:
        raise BandsError(
            f"{where}: has {count} band{'s' if count != 1 else ''}; bands "
            f"{','.join(map(str, bands))} asks for band {max(bands)}"
        )
    return list(bands) * 3 if len(bands) == 1 else list(bands)


def apply_stretch(bands: np.ndarray, limits: list[tuple[float, float]]) -> np.ndarray:
    """(C, h, w) bands -> uint8 (C, h, w), linear between each band's ``limits``, clipped."""
    out = np.zeros(bands.shape, dtype=np.uint8)
    for index, (band, (low, high)) in enumerate(zip(bands, limits)):
        if high <= low:
            continue
        if (low, high) == (0.0, 255.0) and band.dtype == np.uint8:
            out[index] = band
            continue
        scaled = (real_values(band).astype(np.float64) - low) * (255.0 / (high - low))
        out[index] = np.round(np.clip(np.nan_to_num(scaled, nan=0.0), 0.0, 255.0))
    return out


def sample_shape(height: int, width: int) -> tuple[int, int]:
    """The decimated size the percentiles are computed on (the scene itself when small)."""
    factor = max(1, -(-max(height, width) // STRETCH_SAMPLE_SIDE))
    return max(1, height // factor), max(1, width // factor)


__all__ = [
    "STRETCH_SAMPLE_SIDE",
    "BandsError",
    "Stretch",
    "apply_stretch",
    "parse_bands",
    "parse_stretch",
    "real_values",
    "sample_shape",
    "select_bands",
]
