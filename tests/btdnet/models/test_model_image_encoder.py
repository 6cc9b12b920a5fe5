"""ImageEncoder: shapes, stage-by-stage equivalence, generic backbones, weight files."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from btdnet.models.image_encoder import ImageEncoder
from btdnet.models.serialization import CheckpointError, read_state_dict

TINY_SWIN = dict(embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2), window_size=3)
SWIN = "swin_tiny_patch4_window7_224"


@pytest.mark.parametrize("size", [96, 160])
def test_swin_stage_shapes(size: int) -> None:
    encoder = ImageEncoder(SWIN, size, **TINY_SWIN).eval()
    assert encoder.channels == [16, 32, 64, 128]
    assert encoder.strides == [4, 8, 16, 32]
    x = torch.randn(2, 3, size, size)
    feats = encoder(x)
    assert [tuple(f.shape) for f in feats] == [
        (2, c, size // s, size // s) for c, s in zip(encoder.channels, encoder.strides)
    ]
    assert all(torch.isfinite(f).all() for f in feats)
    # each image's features are its own: the second image alone gives the same maps
    for alone, both in zip(encoder(x[1:]), feats):
        torch.testing.assert_close(alone[0], both[1], atol=1e-5, rtol=1e-4)


def test_swin_stages_match_timm_forward_intermediates() -> None:
    """stem + stage(i) one by one, and forward(), give timm's own four intermediates."""
    encoder = ImageEncoder(SWIN, 96, **TINY_SWIN).eval()
    x = torch.randn(1, 3, 96, 96)
    reference = encoder.backbone.forward_intermediates(x, norm=True, intermediates_only=True)
    assert len(reference) == 4
    y = encoder.stem(x)
    for index, expected in enumerate(reference):
        y = encoder.stage(index, y)
        torch.testing.assert_close(y, expected)
    for ours, expected in zip(encoder(x), reference):
        torch.testing.assert_close(ours, expected)


def test_swin_stage_maps_are_channels_last_views() -> None:
    """Swin computes (B, H, W, C): each stage hands it on as an NCHW view in channels_last
    memory (no copy; convolutions take that layout as is), so going back is free as well."""
    encoder = ImageEncoder(SWIN, 96, **TINY_SWIN).eval()
    y = encoder.stem(torch.randn(2, 3, 96, 96))
    for index in range(4):
        y = encoder.stage(index, y)
        assert y.is_contiguous(memory_format=torch.channels_last)
        native = encoder._to_native(y)
        assert native.is_contiguous() and native.data_ptr() == y.data_ptr()


def test_size_must_be_multiple_of_32() -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        ImageEncoder(SWIN, 100, **TINY_SWIN)


def test_generic_backbone_runs_by_stages() -> None:
    """ResNet stages one by one equal timm's full classifier's intermediates, same weights."""
    import timm

    encoder = ImageEncoder("resnet18", 64).eval()
    assert encoder.supports_stages and encoder.channels == [64, 128, 256, 512]
    assert encoder.strides == [4, 8, 16, 32]
    full = timm.create_model("resnet18", pretrained=False).eval()
    missing, unexpected = full.load_state_dict(encoder.backbone.state_dict(), strict=False)
    assert sorted(missing) == ["fc.bias", "fc.weight"] and unexpected == []
    x = torch.randn(1, 3, 64, 64)
    reference = full.forward_intermediates(x, indices=4, intermediates_only=True)
    y = encoder.stem(x)
    for index, expected in enumerate(reference):
        y = encoder.stage(index, y)
        torch.testing.assert_close(y, expected)
    feats = encoder(x)
    for ours, expected in zip(feats, reference):
        torch.testing.assert_close(ours, expected)
    assert tuple(feats[-1].shape) == (1, 512, 2, 2)


def test_backbone_without_stages_has_forward_only() -> None:
    """EfficientNet's extractor runs whole: its four maps are the last four intermediates of
    timm's full classifier with the same weights (strides 4 ... 32, the stride-2 one left out)."""
    import timm

    encoder = ImageEncoder("efficientnet_b0", 64).eval()
    assert not encoder.supports_stages
    assert encoder.channels == [24, 40, 112, 320] and encoder.strides == [4, 8, 16, 32]
    full = timm.create_model("efficientnet_b0", pretrained=False).eval()
    missing, unexpected = full.load_state_dict(encoder.backbone.state_dict(), strict=False)
    assert unexpected == [] and all(
        k.startswith(("bn2.", "conv_head.", "classifier.")) for k in missing
    )
    x = torch.randn(1, 3, 64, 64)
    reference = full.forward_intermediates(x, indices=4, intermediates_only=True)
    feats = encoder(x)
    assert len(feats) == len(reference) == 4
    for ours, expected in zip(feats, reference):
        torch.testing.assert_close(ours, expected)
    with pytest.raises(RuntimeError, match="stage by stage"):
        encoder.stage(0, torch.randn(1, 3, 64, 64))


def _official_layout(timm_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rewrite timm Swin keys into Microsoft's release layout (the inverse of timm's filter)."""
    official = {}
    for key, value in timm_state.items():
        parts = key.split(".")
        if parts[0] == "layers" and parts[2] == "downsample":
            parts[1] = str(int(parts[1]) - 1)  # official: downsample ends the previous stage
        official[".".join(parts)] = value.clone()
    official["head.weight"] = torch.randn(5, 128)
    official["head.bias"] = torch.randn(5)
    official["layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(9, 9, dtype=torch.long)
    official["layers.0.blocks.1.attn_mask"] = torch.zeros(4, 9, 9)
    return official


def test_official_swin_checkpoint_is_converted(tmp_path) -> None:
    torch.manual_seed(0)
    source = ImageEncoder(SWIN, 96, **TINY_SWIN)
    official = _official_layout(source.backbone.state_dict())
    assert "layers.0.downsample.reduction.weight" in official
    assert "layers.3.downsample.reduction.weight" not in official  # the last stage has none
    path = tmp_path / "swin_official.pth"
    torch.save({"model": official, "epoch": 7}, path)

    torch.manual_seed(1)
    target = ImageEncoder(SWIN, 96, **TINY_SWIN)
    report = target.load_pretrained(path)
    assert report.missing == []
    assert sorted(report.unexpected) == ["head.fc.bias", "head.fc.weight"]
    assert report.loaded == report.total == len(target.backbone.state_dict())
    line = str(report)
    assert "\n" not in line and "unexpected (2)" in line and str(path) in line
    for key, value in source.backbone.state_dict().items():
        torch.testing.assert_close(target.backbone.state_dict()[key], value)


def test_timm_layout_safetensors_and_shape_mismatch(tmp_path) -> None:
    source = ImageEncoder(SWIN, 96, **TINY_SWIN)
    state = {k: v.clone() for k, v in source.backbone.state_dict().items()}
    state["norm.weight"] = torch.ones(7)  # wrong shape: reported, not loaded
    path = tmp_path / "swin.safetensors"
    save_file(state, str(path))
    target = ImageEncoder(SWIN, 96, pretrained_path=path, **TINY_SWIN)
    report = target.last_load_report
    assert report is not None
    assert report.missing == ["norm.weight"]
    assert any(m.startswith("norm.weight") for m in report.mismatched)
    torch.testing.assert_close(
        target.backbone.patch_embed.proj.weight, source.backbone.patch_embed.proj.weight
    )


def test_generic_timm_file_with_flattened_names(tmp_path) -> None:
    import timm

    full = timm.create_model("convnext_atto", pretrained=False)
    path = tmp_path / "convnext.pth"
    torch.save(full.state_dict(), path)
    encoder = ImageEncoder("convnext_atto", 64)
    report = encoder.load_pretrained(path)
    assert report.missing == [] and report.loaded == report.total
    torch.testing.assert_close(encoder.backbone["stem_0"].weight, full.stem[0].weight)


def test_unusable_weight_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "absent.pth")
    bad = tmp_path / "weights.npz"
    bad.write_bytes(b"0")
    with pytest.raises(CheckpointError, match="unknown weight file type"):
        read_state_dict(bad)
    other = tmp_path / "other.pth"
    torch.save({"x": torch.zeros(3)}, other)
    encoder = ImageEncoder(SWIN, 96, **TINY_SWIN)
    with pytest.raises(CheckpointError, match="no tensor"):
        encoder.load_pretrained(other)


@pytest.mark.parametrize("depths", [(1, 1, 1), (1, 1, 1, 1, 1)])
def test_a_swin_without_exactly_four_stages_is_refused_as_such(depths) -> None:
    """Three stages or five: the same one line naming Swin, before any feature is read."""
    config = dict(embed_dim=8, depths=depths, num_heads=(1,) * len(depths), window_size=2)
    with pytest.raises(ValueError, match="expected a timm SwinTransformer with 4 stages"):
        ImageEncoder(SWIN, 128, **config)
