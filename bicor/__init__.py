"""BiCoR-Seg: class-aware closed-set segmentation of high-resolution remote-sensing images."""

from bicor.models import BiCoRConfig, BiCoROutput, BiCoRSeg, build_bicor, load_bicor

__all__ = ["BiCoRConfig", "BiCoROutput", "BiCoRSeg", "build_bicor", "load_bicor"]
