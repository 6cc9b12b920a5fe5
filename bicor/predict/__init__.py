"""``bicor-predict``: a land-cover class map of any image or scene with a BiCoR-Seg checkpoint."""

from bicor.predict.scene import SegmentOptions, SegmentResult, segment_image

__all__ = ["SegmentOptions", "SegmentResult", "segment_image"]
