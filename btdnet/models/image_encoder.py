"""Four-stage image encoder over timm, runnable stage by stage (shared by BTDNet and BiCoR-Seg).

Two paths:

- **Swin** (any timm ``swin_transformer`` entry point, the default): the full timm
  ``SwinTransformer`` is built with ``num_classes=0`` so that its parameter names are timm's and
  official Microsoft / timm checkpoints load after ``convert_swin_state_dict``. timm's Swin works
  in NHWC; this wrapper's API is NCHW. Stage ``i`` is ``layers[i]`` (which, in timm, starts with
  the patch merging of the previous resolution); the final ``norm`` is applied to stage 4's output
  so every parameter is used.
- **other backbones**: ``timm.create_model(name, features_only=True)``. When timm returns a
  module-sequence extractor (``FeatureListNet``: ResNet, ConvNeXt, RegNet, ...) the modules are
  grouped into a stem and four stages, so stage-by-stage use works too; other extractor types
  (e.g. EfficientNet's) support ``forward`` only (``supports_stages`` is False).

Shifted windows: every Swin block is a ``PaddedShiftSwinBlock`` (``btdnet.models.swin_windows``),
timm's block with the attention step of the dense-prediction Swin that LAVT, RMSIN and their
successors fine-tune: a stage whose resolution is not a window multiple is padded (bottom/right,
zeros) *before* the half-window cyclic shift, and the region mask is built on that padded grid, so
no window joins tokens from opposite edges of the image. timm's classification block shifts first
and pads after, which differs wherever the padding reaches a shifted window (480 with window 12:
stage 4, 15x15, padded to 24). Parameter names and the window rule are timm's: a stage that fits
one window (384 with window 12: stage 4 is 12x12) uses that window with no shift, so at 224/384
the encoder equals timm's (and Microsoft's) classification Swin.

Input sizes: the Swin path is built for one ``img_size`` (timm's ``strict_img_size``); any multiple
of 32 works: the window need not divide the stage resolutions (it is only cheaper when it does:
480 with window 12 pads stages 3-4, 96 or 384 with window 3/12 pads none).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import timm
import torch
from timm.models import SwinTransformer
from torch import nn

from btdnet.models.convnext_checkpoint import (
    convert_torchvision_convnext,
    is_torchvision_convnext,
)
from btdnet.models.serialization import (
    CheckpointError,
    LoadReport,
    load_state_dict_report,
    read_state_dict,
)
from btdnet.models.swin_checkpoint import convert_swin_state_dict
from btdnet.models.swin_windows import use_padded_shift

logger = logging.getLogger(__name__)

NUM_STAGES = 4


def _is_swin(name: str) -> bool:
    base = timm.models.split_model_name_tag(name)[0]
    if not timm.models.is_model(base):
        raise ValueError(f"unknown timm model {name!r}; see timm.list_models()")
    return timm.models.model_entrypoint(base).__module__.endswith(".swin_transformer")


def _create(name: str, img_size: int, **kwargs: Any) -> nn.Module:
    """``timm.create_model`` with ``img_size`` when the architecture takes one."""
    try:
        return timm.create_model(name, pretrained=False, img_size=img_size, **kwargs)
    except TypeError as error:
        if "img_size" not in str(error):
            raise
        return timm.create_model(name, pretrained=False, **kwargs)


class ImageEncoder(nn.Module):
    """A timm backbone exposing four feature stages in NCHW.

    Args:
        name: timm model name (``swin_base_patch4_window12_384``, ``convnext_tiny``, ...).
        img_size: square input size in pixels (a multiple of 32).
        pretrained_path: optional local weight file loaded after construction (see
            ``load_pretrained``); never the network.
        **timm_kwargs: passed to ``timm.create_model`` (``embed_dim``, ``depths``, ``num_heads``,
            ``window_size``, ``drop_path_rate``, ...).

    Attributes:
        channels: the four stages' output channels.
        strides: the four stages' output strides (4, 8, 16, 32 for Swin).
        supports_stages: whether ``stem``/``stage`` can be used.
    """

    def __init__(
        self,
        name: str,
        img_size: int,
        pretrained_path: str | Path | None = None,
        **timm_kwargs: Any,
    ) -> None:
        super().__init__()
        if img_size % 32 != 0:
            raise ValueError(f"img_size must be a multiple of 32, got {img_size}")
        self.name = name
        self.img_size = img_size
        self.is_swin = _is_swin(name)
        self._stage_groups: list[list[str]] = []
        self._stem_names: list[str] = []
        if self.is_swin:
            backbone = _create(name, img_size, num_classes=0, **timm_kwargs)
            if not isinstance(backbone, SwinTransformer) or len(backbone.layers) != NUM_STAGES:
                raise ValueError(
                    f"{name}: expected a timm SwinTransformer with {NUM_STAGES} stages"
                )
            use_padded_shift(backbone)  # pad, then shift (see the module docstring)
            infos = backbone.feature_info
            self.channels = [int(info["num_chs"]) for info in infos]
            self.strides = [int(info["reduction"]) for info in infos]
            self.nhwc = True
            self.supports_stages = True
        else:
            out_indices = tuple(range(-NUM_STAGES, 0))
            backbone = _create(
                name, img_size, features_only=True, out_indices=out_indices, **timm_kwargs
            )
            self.channels = [int(c) for c in backbone.feature_info.channels()]
            self.strides = [int(r) for r in backbone.feature_info.reduction()]
            fmt = getattr(backbone, "output_fmt", "NCHW")
            self.nhwc = str(getattr(fmt, "value", fmt)) == "NHWC"
            return_layers = getattr(backbone, "return_layers", None)
            self.supports_stages = isinstance(backbone, nn.ModuleDict) and bool(return_layers)
            if self.supports_stages:
                self._group_stages(list(backbone.keys()), set(return_layers))
        if len(self.channels) != NUM_STAGES:
            raise ValueError(
                f"{name}: gives {len(self.channels)} feature stages, {NUM_STAGES} needed"
            )
        self.backbone = backbone
        self.last_load_report: LoadReport | None = None
        if pretrained_path is not None:
            self.load_pretrained(pretrained_path)

    def _group_stages(self, names: list[str], returned: set[str]) -> None:
        groups: list[list[str]] = [[]]
        for name in names:
            groups[-1].append(name)
            if name in returned:
                groups.append([])
        groups = [g for g in groups if g]
        if len(groups) != NUM_STAGES:
            raise ValueError(
                f"{self.name}: cannot split its feature modules into {NUM_STAGES} stages"
            )
        # Everything before the first returned module except that module itself is the stem.
        self._stem_names = groups[0][:-1]
        groups[0] = groups[0][-1:]
        self._stage_groups = groups

    # ------------------------------------------------------------------ layout helpers

    def _to_nchw(self, x: torch.Tensor) -> torch.Tensor:
        # A view, no copy: (B, C, H, W) in channels_last memory, which convolutions take as is
        # (and oneDNN prefers on CPUs); permuting back in _to_native is then free as well.
        return x.permute(0, 3, 1, 2) if self.nhwc else x  # (B, C, H, W)

    def _to_native(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).contiguous() if self.nhwc else x  # (B, H, W, C) for NHWC nets

    def _require_stages(self) -> None:
        if not self.supports_stages:
            raise RuntimeError(
                f"{self.name}: timm gives it a {type(self.backbone).__name__} feature extractor, "
                "which cannot be run stage by stage; use forward(), or a Swin / ConvNeXt / ResNet"
            )

    # ------------------------------------------------------------------ forward API

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """Image (B, 3, H, W) -> stem features (B, C_stem, H/s, W/s) fed to ``stage(0, .)``."""
        self._require_stages()
        if self.is_swin:
            return self._to_nchw(self.backbone.patch_embed(x))
        for name in self._stem_names:
            x = self.backbone[name](x)
        return self._to_nchw(x) if self._stem_names else x

    def stage(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Run stage ``index`` (0-3): NCHW input -> (B, channels[index], H/strides[index], ...)."""
        self._require_stages()
        if not 0 <= index < NUM_STAGES:
            raise IndexError(f"stage index {index} out of range 0..{NUM_STAGES - 1}")
        if self.is_swin:
            y = self.backbone.layers[index](self._to_native(x))  # (B, h, w, C)
            if index == NUM_STAGES - 1:
                y = self.backbone.norm(y)
            return self._to_nchw(y)
        # Stage 0 without a stem receives the raw NCHW image; everything else is converted back.
        y = self._to_native(x) if (index > 0 or self._stem_names) else x
        for name in self._stage_groups[index]:
            y = self.backbone[name](y)
        return self._to_nchw(y)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Image (B, 3, H, W) -> four NCHW maps (B, channels[i], H/strides[i], W/strides[i])."""
        if self.supports_stages:
            feats = []
            y = self.stem(x)
            for index in range(NUM_STAGES):
                y = self.stage(index, y)
                feats.append(y)
            return feats
        return [self._to_nchw(f) for f in self.backbone(x)[-NUM_STAGES:]]

    # ------------------------------------------------------------------ weights

    def load_pretrained(self, path: str | Path) -> LoadReport:
        """Load a local weight file leniently; log and return the one-line match report.

        Swin accepts official Microsoft files (``{"model": ...}``, end-of-stage downsample) and timm
        files; other backbones accept timm-layout files (``stages.0.x`` is matched to the feature
        extractor's flattened ``stages_0.x``) and, for ConvNeXt, torchvision files (renamed by
        ``convert_torchvision_convnext``).
        """
        state = read_state_dict(path)
        if self.is_swin:
            try:
                state = convert_swin_state_dict(state, self.backbone)
            except (AttributeError, RuntimeError) as error:
                raise CheckpointError(
                    f"{path}: does not fit the Swin '{self.name}' built here ({error})"
                ) from error
        else:
            if is_torchvision_convnext(state):
                try:
                    state = convert_torchvision_convnext(state)
                except ValueError as error:
                    raise CheckpointError(f"{path}: {error}") from error
            own = self.backbone.state_dict()
            renamed = {}
            for key, value in state.items():
                head, _, rest = key.partition(".")
                flat = f"{head}_{rest}" if "." in rest else key
                renamed[key if key in own or flat not in own else flat] = value
            state = renamed
        report = load_state_dict_report(self.backbone, state, source=f"{self.name} <- {path}")
        if report.loaded == 0:
            raise CheckpointError(f"{report}: no tensor of {path} fits '{self.name}'")
        logger.info("image encoder weights: %s", report)
        self.last_load_report = report
        return report
