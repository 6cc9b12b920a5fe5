"""BiCoR-Seg: class-aware closed-set segmentation of high-resolution remote-sensing images."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["BiCoRConfig", "BiCoROutput", "BiCoRSeg", "build_bicor", "load_bicor"]

if TYPE_CHECKING:
    from bicor.models import BiCoRConfig, BiCoROutput, BiCoRSeg, build_bicor, load_bicor


def __getattr__(name: str) -> Any:
    # Lazy: `import bicor.registry` (command-line parsers) should not pay for torch and timm.
    if name in __all__:
        import bicor.models

        return getattr(bicor.models, name)
    raise AttributeError(f"module 'bicor' has no attribute {name!r}")
