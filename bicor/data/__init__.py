"""Closed-set data: LoveDA, ISPRS Vaihingen and Potsdam read as the official archives unpack.

``build_closed_set_dataset(name, root, split, mode=...)`` is the entry point; its items are
``{"pixel_values", "mask", "sample_id"}`` (see :mod:`bicor.data.tile_dataset`).
``check_closed_set_dataset`` reports what a user's copy holds; :mod:`bicor.data.outputs`
writes colour predictions and the LoveDA submission archive.
"""

from bicor.data.augment import DEFAULT_SCALES, CropAugment
from bicor.data.builder import CLOSED_SET_DATASETS, build_closed_set_dataset
from bicor.data.check import check_closed_set_dataset, is_usable
from bicor.data.errors import ClosedSetDataError, UnknownColourError
from bicor.data.outputs import write_colour_prediction, write_loveda_submission
from bicor.data.palettes import (
    CLASS_NAMES,
    IGNORE_INDEX,
    ISPRS_PALETTE,
    LOVEDA_PALETTE,
    Palette,
    colour_to_ids,
    get_palette,
    ids_to_colour,
)
from bicor.data.splits import split_tiles
from bicor.data.tile_cache import TileCache
from bicor.data.tile_dataset import TileRecord, TileSegmentationDataset

__all__ = [
    "CLASS_NAMES",
    "CLOSED_SET_DATASETS",
    "DEFAULT_SCALES",
    "IGNORE_INDEX",
    "ISPRS_PALETTE",
    "LOVEDA_PALETTE",
    "ClosedSetDataError",
    "CropAugment",
    "Palette",
    "TileCache",
    "TileRecord",
    "TileSegmentationDataset",
    "UnknownColourError",
    "build_closed_set_dataset",
    "check_closed_set_dataset",
    "colour_to_ids",
    "get_palette",
    "ids_to_colour",
    "is_usable",
    "split_tiles",
    "write_colour_prediction",
    "write_loveda_submission",
]
