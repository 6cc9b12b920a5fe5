"""BTDNet: referring remote-sensing image segmentation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "BTDNet",
    "BTDNetConfig",
    "BTDNetOutput",
    "CheckpointError",
    "__version__",
    "build_model",
    "load_model",
]

if TYPE_CHECKING:
    from btdnet.errors import CheckpointError
    from btdnet.models import BTDNet, BTDNetConfig, BTDNetOutput, build_model, load_model


def __getattr__(name: str) -> Any:
    # Lazy: `import btdnet.data` should not pay for importing torch models, timm and transformers.
    if name == "CheckpointError":
        from btdnet.errors import CheckpointError

        return CheckpointError
    if name in {"BTDNet", "BTDNetConfig", "BTDNetOutput", "build_model", "load_model"}:
        import btdnet.models

        return getattr(btdnet.models, name)
    raise AttributeError(f"module 'btdnet' has no attribute {name!r}")
