"""torchvision ConvNeXt weights loaded into the timm backbone give torchvision's features."""

import pytest
import torch
from torchvision.models.convnext import CNBlockConfig, ConvNeXt

from btdnet.models.convnext_checkpoint import (
    convert_torchvision_convnext,
    is_torchvision_convnext,
)
from btdnet.models.image_encoder import ImageEncoder
from btdnet.models.serialization import CheckpointError

DIMS = (8, 16, 24, 32)
DEPTHS = (2, 1, 3, 1)


def _torchvision_convnext() -> ConvNeXt:
    torch.manual_seed(0)
    settings = [CNBlockConfig(DIMS[i], DIMS[i + 1] if i < 3 else None, DEPTHS[i]) for i in range(4)]
    model = ConvNeXt(settings, stochastic_depth_prob=0.5, layer_scale=0.5)
    with torch.no_grad():  # random values everywhere, so a swapped tensor cannot pass
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    return model.eval()


def _stage_outputs(model: ConvNeXt, x: torch.Tensor) -> list[torch.Tensor]:
    outputs = []
    for index, layer in enumerate(model.features):
        x = layer(x)
        if index in (1, 3, 5, 7):
            outputs.append(x)
    return outputs


def test_mapped_weights_reproduce_torchvision_features(tmp_path):
    reference = _torchvision_convnext()
    path = tmp_path / "convnext_tv.pth"
    torch.save(reference.state_dict(), path)
    encoder = ImageEncoder(
        "convnext_base", 64, pretrained_path=path, depths=DEPTHS, dims=DIMS, drop_path_rate=0.5
    ).eval()
    report = encoder.last_load_report
    assert report is not None and report.loaded == report.total
    assert not report.missing and not report.mismatched
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected = _stage_outputs(reference, x)
        got = encoder(x)
    assert [tuple(g.shape) for g in got] == [tuple(e.shape) for e in expected]
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


def test_conversion_renames_and_reshapes():
    state = _torchvision_convnext().state_dict()
    assert is_torchvision_convnext(state)
    converted = convert_torchvision_convnext(state)
    assert not any(k.startswith("classifier") for k in converted)
    assert converted["stages.2.blocks.1.gamma"].shape == (DIMS[2],)
    # torchvision keeps layer scale as (C, 1, 1): the same numbers, flattened
    torch.testing.assert_close(
        converted["stages.2.blocks.1.gamma"], state["features.5.1.layer_scale"].flatten()
    )
    torch.testing.assert_close(
        converted["stages.3.downsample.1.weight"], state["features.6.1.weight"]
    )
    torch.testing.assert_close(
        converted["stages.0.blocks.1.mlp.fc2.bias"], state["features.1.1.block.5.bias"]
    )
    assert len(converted) == len(state) - sum(k.startswith("classifier") for k in state)


def test_drop_path_rate_matches_torchvision_stochastic_depth():
    encoder = ImageEncoder("convnext_base", 64, depths=DEPTHS, dims=DIMS, drop_path_rate=0.5)
    rates = [
        float(getattr(block.drop_path, "drop_prob", 0.0))
        for name, stage in encoder.backbone.items()
        if name.startswith("stages")
        for block in stage.blocks
    ]
    reference = _torchvision_convnext()
    expected = [
        block.stochastic_depth.p for index in (1, 3, 5, 7) for block in reference.features[index]
    ]
    assert rates == pytest.approx(expected)


def test_foreign_torchvision_key_is_refused(tmp_path):
    state = _torchvision_convnext().state_dict()
    state["features.1.0.block.9.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"bad\.pth"):
        ImageEncoder("convnext_base", 64, pretrained_path=path, depths=DEPTHS, dims=DIMS)
