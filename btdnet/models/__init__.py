"""BTDNet model parts: encoders, BSC, T-BTD, D-MOLS, losses, variants and checkpoints."""

from btdnet.models.btdnet import BTDNet, BTDNetOutput
from btdnet.models.config import BTDNetConfig
from btdnet.models.image_encoder import ImageEncoder
from btdnet.models.serialization import CheckpointError
from btdnet.models.variants import (
    VARIANTS,
    build_btdnet,
    build_model,
    load_model,
    load_weights,
    variant_config,
)

__all__ = [
    "VARIANTS",
    "BTDNet",
    "BTDNetConfig",
    "BTDNetOutput",
    "CheckpointError",
    "ImageEncoder",
    "build_btdnet",
    "build_model",
    "load_model",
    "load_weights",
    "variant_config",
]
