"""BTDNetConfig.validate and from_dict: every check at its boundary, each alone."""

from __future__ import annotations

import pytest

from btdnet.models.config import BTDNetConfig


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"image_size": 0}, "image_size must be a positive multiple of 32, got 0"),
        ({"image_size": 48}, "image_size must be a positive multiple of 32, got 48"),
        ({"image_size": -32}, "image_size must be a positive multiple of 32"),
        ({"max_tokens": 0}, "max_tokens must be positive, got 0"),
        ({"fusion_dim": 0}, "fusion_dim must be positive"),
        ({"decoder_dim": -1}, "decoder_dim must be positive"),
        ({"bsc_reading": "both"}, "bsc_reading must be one of"),
        ({"alignment_kind": "dice"}, "alignment_kind must be one of"),
        ({"dmols_reconstruct": "pixels"}, "dmols_reconstruct must be one of"),
        ({"ce_class_weights": (1.0, 1.0, 1.0)}, "ce_class_weights needs 2 values"),
        ({"dice_weight": -0.01}, "dice_weight must be >= 0, got -0.01"),
        ({"presence_weight": -1.0}, "presence_weight must be >= 0"),
        ({"presence_threshold": 1.01}, "presence_threshold must lie in [0, 1], got 1.01"),
        ({"presence_threshold": -0.01}, "presence_threshold must lie in [0, 1]"),
        ({"dmols_word_mask_ratio": 1.5}, "dmols_word_mask_ratio must lie in [0, 1]"),
        ({"dmols_region_mask_ratio": -0.1}, "dmols_region_mask_ratio must lie in [0, 1]"),
        ({"dmols_context_mask_ratio": 2.0}, "dmols_context_mask_ratio must lie in [0, 1]"),
    ],
)
def test_each_bad_field_is_refused_by_name(changes, message) -> None:
    with pytest.raises(ValueError) as error:
        BTDNetConfig(**changes)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "changes",
    [
        {"image_size": 32},
        {"max_tokens": 1, "fusion_dim": 1, "decoder_dim": 1},
        {"dice_weight": 0.0, "presence_weight": 0.0, "agreement_weight": 0.0},
        {"presence_threshold": 0.0},
        {"presence_threshold": 1.0},
        {"dmols_word_mask_ratio": 1.0, "dmols_region_mask_ratio": 0.0},
        {"bsc_reading": "language_first", "alignment_kind": "bce", "dmols_reconstruct": "features"},
    ],
)
def test_boundary_values_are_accepted(changes) -> None:
    config = BTDNetConfig(**changes)
    assert {k: getattr(config, k) for k in changes} == changes


def test_from_dict_refuses_unknown_fields_and_fills_legacy_values() -> None:
    with pytest.raises(ValueError, match=r"unknown BTDNetConfig fields \['imag_size'\]"):
        BTDNetConfig.from_dict({"imag_size": 96})
    old = BTDNetConfig.from_dict({"image_size": 96})
    assert old.alignment_kind == "bce" and old.image_size == 96
    assert BTDNetConfig().alignment_kind == "spatial"
    config = BTDNetConfig(image_size=64, ce_class_weights=[1, 2], image_encoder_kwargs={"d": (1,)})
    data = config.to_dict()
    assert data["ce_class_weights"] == [1.0, 2.0] and data["image_encoder_kwargs"] == {"d": [1]}
    assert BTDNetConfig.from_dict(data) == config
