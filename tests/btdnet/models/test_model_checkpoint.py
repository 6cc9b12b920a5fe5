"""Our model folders: round trip, training heads, wrong checkpoints; optimizer groups."""

from __future__ import annotations

import json

import pytest
import torch

from btdnet import BTDNet, CheckpointError, build_model, load_model
from btdnet.models.config import BTDNetConfig
from btdnet.models.serialization import load_model_dir, save_model_dir
from btdnet.models.variants import load_weights, variant_config
from tests.btdnet.models.test_model_btdnet import make_batch


def _eval_outputs(model: BTDNet) -> torch.Tensor:
    batch = make_batch(96)
    with torch.no_grad():
        out = model.eval()(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
    return torch.cat([out.target_logits.flatten(), *[m.flatten() for m in out.correlation_maps]])


def test_round_trip_gives_identical_outputs(tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model("tiny", pretrained=False)
    model.save_pretrained(tmp_path / "ckpt")
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert meta["model_type"] == "btdnet" and meta["variant"] == "tiny"
    assert meta["config"]["text_config"]["hidden_size"] == 32
    loaded = load_model(tmp_path / "ckpt")
    assert loaded.config == model.config
    assert loaded.dmols is not None
    assert torch.equal(_eval_outputs(model), _eval_outputs(loaded))


def test_round_trip_of_a_pretrained_text_encoder(tmp_path) -> None:
    # The loaded MiniLM's architecture is written into the config, so loading needs no file
    # but the checkpoint; tuples in the image kwargs come back equal (JSON form).
    model = build_model(
        "tiny",
        pretrained=True,
        training=False,
        image_encoder_kwargs={
            **variant_config("tiny").image_encoder_kwargs,
            "depths": (1, 1, 1, 1),
        },
    )
    assert model.config.text_config["hidden_size"] == 384
    model.save_pretrained(tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt")
    assert loaded.config == model.config and loaded.text_encoder.hidden_size == 384
    assert torch.equal(_eval_outputs(model), _eval_outputs(loaded))


def test_training_heads_with_or_without(tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model("tiny", pretrained=False)
    reference = _eval_outputs(model)
    model.save_pretrained(tmp_path / "full")

    inference = load_model(tmp_path / "full", training=False)
    assert inference.dmols is None
    assert torch.equal(_eval_outputs(inference), reference)

    inference.save_pretrained(tmp_path / "stripped")
    assert load_model(tmp_path / "stripped").dmols is None
    resumed = load_model(tmp_path / "stripped", training=True)
    assert resumed.dmols is not None  # fresh heads to go on training
    assert torch.equal(_eval_outputs(resumed), reference)


def test_wrong_checkpoints_are_refused(tmp_path) -> None:
    save_model_dir(tmp_path / "bicor", {"w": torch.zeros(2)}, {"variant": "tiny"}, "bicor")
    with pytest.raises(CheckpointError, match=r"'bicor'.*'btdnet'"):
        load_model(tmp_path / "bicor")

    build_model("tiny", pretrained=False).save_pretrained(tmp_path / "tiny")
    with pytest.raises(CheckpointError, match=r"variant 'tiny'.*'paper'"):
        load_model(tmp_path / "tiny", variant="paper")

    with pytest.raises(CheckpointError, match="checkpoint folder not found"):
        load_model(tmp_path / "absent")
    (tmp_path / "tiny" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"no model\.safetensors"):
        load_model(tmp_path / "tiny")


def test_weights_of_another_architecture_are_refused(tmp_path) -> None:
    # A folder whose config says "tiny" but whose tensors come from a wider model.
    wide = build_model("tiny", pretrained=False, decoder_dim=24)
    narrow = build_model("tiny", pretrained=False)
    save_model_dir(tmp_path / "mixed", wide.state_dict(), narrow.config.to_dict(), "btdnet")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(tmp_path / "mixed")


def test_configs_saved_before_the_alignment_default_changed_keep_their_reading(tmp_path) -> None:
    """``alignment_kind`` became "spatial" by default; a config without it meant "bce"."""
    model = build_model("tiny", pretrained=False)
    assert model.config.alignment_kind == "spatial"
    old = {k: v for k, v in model.config.to_dict().items() if k != "alignment_kind"}
    assert BTDNetConfig.from_dict(old).alignment_kind == "bce"
    save_model_dir(tmp_path / "old", model.state_dict(), old, "btdnet")
    assert load_model(tmp_path / "old").config.alignment_kind == "bce"


def test_resuming_under_another_objective_reading_is_refused(tmp_path) -> None:
    """The readings shape no tensor: without the check a resumed run would load and silently
    train towards another objective."""
    torch.manual_seed(0)
    model = build_model("tiny", pretrained=False, alignment_kind="bce")
    model.save_pretrained(tmp_path / "ckpt")
    spatial = build_model("tiny", pretrained=False)
    with pytest.raises(
        CheckpointError, match=r"ckpt: trained with alignment_kind='bce'.*'spatial'"
    ):
        load_weights(spatial, tmp_path / "ckpt")
    same = load_weights(
        build_model("tiny", pretrained=False, alignment_kind="bce"), tmp_path / "ckpt"
    )
    assert torch.equal(_eval_outputs(same), _eval_outputs(model))
    # a checkpoint saved before the field existed was trained with "bce"
    old = {k: v for k, v in model.config.to_dict().items() if k != "alignment_kind"}
    save_model_dir(tmp_path / "old", model.state_dict(), old, "btdnet")
    with pytest.raises(CheckpointError, match="alignment_kind='bce'"):
        load_weights(spatial, tmp_path / "old")
    language_first = build_model(
        "tiny", pretrained=False, alignment_kind="bce", bsc_reading="language_first"
    )
    with pytest.raises(CheckpointError, match="bsc_reading='gated'"):
        load_weights(language_first, tmp_path / "ckpt")


def test_serialization_helpers(tmp_path) -> None:
    state = {"a": torch.arange(4.0), "b": torch.ones(2, 2)}
    save_model_dir(tmp_path / "m", state, {"variant": "x", "k": [1, 2]}, "toy")
    loaded, config = load_model_dir(tmp_path / "m", "toy", "x")
    assert config == {"variant": "x", "k": [1, 2]}
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model_dir(tmp_path / "m", "toy")


def test_param_groups() -> None:
    model = build_model("tiny", pretrained=False)
    groups = model.param_groups(weight_decay=0.01, text_lr_factor=0.1, lr=1e-4)
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"model_decay", "model_no_decay", "text_decay", "text_no_decay"}
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay = {names[id(p)] for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    assert any("relative_position_bias_table" in n for n in no_decay)
    assert "text_encoder.model.embeddings.position_embeddings.weight" in no_decay
    assert "text_encoder.model.embeddings.token_type_embeddings.weight" in no_decay
    assert "image_encoder.backbone.norm.weight" in no_decay
    assert "decoder.target_head.bias" in no_decay and "decoder.target_head.weight" not in no_decay
    text = {names[id(p)] for g in groups if g["name"].startswith("text") for p in g["params"]}
    assert text == {n for n, _ in model.named_parameters() if n.startswith("text_encoder.")}
    assert by_name["text_decay"]["lr"] == pytest.approx(1e-5)
    assert by_name["model_decay"]["lr"] == pytest.approx(1e-4)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    torch.optim.AdamW(groups)  # accepted as is


def test_a_training_run_folder_points_to_its_best_checkpoint(tmp_path):
    model = build_model("tiny", pretrained=False, training=False)
    run = tmp_path / "run"
    model.save_pretrained(run / "checkpoints" / "best")
    with pytest.raises(CheckpointError) as caught:
        load_model(run)
    message = str(caught.value)
    assert "\n" not in message and str(run) in message
    assert message.endswith(f"; did you mean {run / 'checkpoints' / 'best'}?")


def test_a_config_no_model_can_be_built_from_is_one_line_naming_its_file(tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model("tiny", pretrained=False)
    folder = model.save_pretrained(tmp_path / "ckpt")
    meta = json.loads((folder / "config.json").read_text())
    meta["config"]["presence_threshold"] = 1.5  # valid JSON, not a valid config
    (folder / "config.json").write_text(json.dumps(meta))
    expected = f"{folder / 'config.json'}: cannot load the checkpoint (ValueError: "
    for load in (lambda: load_model(folder), lambda: load_weights(model, folder)):
        with pytest.raises(CheckpointError) as caught:
            load()
        message = str(caught.value)
        assert message.startswith(expected) and "presence_threshold" in message, message
        assert "\n" not in message
