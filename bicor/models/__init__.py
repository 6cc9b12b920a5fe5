"""BiCoR-Seg model parts."""

from bicor.models.bicor_seg import (
    BiCoRConfig,
    BiCoROutput,
    BiCoRSeg,
    bicor_config,
    build_bicor,
    build_bicor_from_config,
    load_bicor,
    load_bicor_weights,
)
from bicor.models.class_embeddings import ClassEmbeddings
from bicor.models.fusion import MultiScaleFusion
from bicor.models.hbis import HBISLayer, HBISStack
from bicor.models.heads import LayerNorm2d, SegmentationHead
from bicor.models.variants import DEFAULT_VARIANT, VARIANTS

__all__ = [
    "DEFAULT_VARIANT",
    "VARIANTS",
    "BiCoRConfig",
    "BiCoROutput",
    "BiCoRSeg",
    "ClassEmbeddings",
    "HBISLayer",
    "HBISStack",
    "LayerNorm2d",
    "MultiScaleFusion",
    "SegmentationHead",
    "bicor_config",
    "build_bicor",
    "build_bicor_from_config",
    "load_bicor",
    "load_bicor_weights",
]
