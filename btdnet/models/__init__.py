"""BTDNet model parts: encoders, BSC, T-BTD, D-MOLS, losses, variants and checkpoints."""

from btdnet.models.btdnet import BTDNet, BTDNetOutput
from btdnet.models.config import BTDNetConfig
from btdnet.models.image_encoder import ImageEncoder
from btdnet.models.variants import VARIANTS, build_btdnet, build_model, variant_config

__all__ = [
    "VARIANTS",
    "BTDNet",
    "BTDNetConfig",
    "BTDNetOutput",
    "ImageEncoder",
    "build_btdnet",
    "build_model",
    "variant_config",
]
