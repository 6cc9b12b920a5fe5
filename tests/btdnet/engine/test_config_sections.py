"""Typed config sections: every key is known, typos are refused with the closest key."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bicor.models import build_bicor, load_bicor
from bicor.task import SegTask
from btdnet.engine import Trainer, apply_overrides, load_config
from btdnet.engine.cli import main
from btdnet.engine.config import ConfigError
from btdnet.engine.trainer import TrainSettings
from btdnet.task import ReferringTask

ROOT = Path(__file__).resolve().parents[3]
SEG_CONFIGS = {"synthetic_seg", "loveda", "vaihingen", "potsdam"}
REFERRING = {"model": {"variant": "tiny"}, "train": {"epochs": 1}}
SEG = {"model": {"variant": "tiny"}, "data": {"dataset": "synthetic_seg"}}


def _task_class(path: Path):
    return SegTask if path.stem in SEG_CONFIGS else ReferringTask


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_reads_into_its_sections(path, tmp_path):
    config = load_config(path)
    task = _task_class(path).from_config(config)
    trainer = Trainer(task, config, tmp_path)  # checks the top level and the train section
    assert trainer.settings.epochs >= 1 and task.config.model.variant


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.imag_size=96", r"^data\.imag_size: unknown key; did you mean data\.image_size\?$"),
        ("model.varaint=tiny", r"^model\.varaint: unknown key; did you mean model\.variant\?$"),
        ("trian.epochs=1", r"^trian: unknown key; did you mean train\?$"),
        ("train.lrr=0.1", r"^train\.lrr: unknown key; did you mean train\.lr\?$"),
        ("model.overrides.fusion_dimm=8", r"model\.overrides\.fusion_dimm: .*fusion_dim\?"),
        (
            "data.generate_synthetic.trian=3",
            r"generate_synthetic\.trian: .*generate_synthetic\.train",
        ),
        ("eval.protocl=lavt", r"^eval\.protocl: unknown key; did you mean eval\.protocol\?$"),
        ("zzz=1", r"^zzz: unknown key; known: data, eval, model, output_dir, seed, train$"),
        ("model.variant=tiyn", r"^model\.variant: unknown value 'tiyn'; did you mean 'tiny'\?"),
        ("train.epochs=many", r"^train\.epochs: expected an integer, got 'many'$"),
        ("model.pretrained=3", r"^model\.pretrained: expected true or false, got 3$"),
        ("train.mixed_precision=bf61", r"train\.mixed_precision: unknown value 'bf61'; did you"),
        ("data=5", r"^data: expected a section \(key: value lines\), got 5$"),
    ],
)
def test_referring_typos_are_refused_with_the_closest_key(override, message, tmp_path):
    config = apply_overrides(REFERRING, [override])
    with pytest.raises(ConfigError, match=message):
        Trainer(ReferringTask.from_config(config), config, tmp_path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.crop_szie=64", r"^data\.crop_szie: unknown key; did you mean data\.crop_size\?$"),
        ("eval.windwo=64", r"^eval\.windwo: unknown key; did you mean eval\.window\?$"),
        ("model.overrides.num_layer=1", r"model\.overrides\.num_layer: .*num_layers\?$"),
        ("model.encoder_lr_facter=1", r"model\.encoder_lr_facter: .*model\.encoder_lr_factor\?$"),
        (
            "data.dataset=Potsdam",
            r"^data\.dataset: unknown value 'Potsdam'; did you mean 'potsdam'",
        ),
        ("data.scales=[1.0,big]", r"^data\.scales\[1\]: expected a number, got 'big'$"),
    ],
)
def test_closed_set_typos_are_refused_with_the_closest_key(override, message):
    with pytest.raises(ConfigError, match=message):
        SegTask.from_config(apply_overrides(SEG, [override]))


def test_one_mixed_precision_vocabulary():
    for value in ("no", "none", False, None):
        assert (
            TrainSettings.from_config({"train": {"mixed_precision": value}}).mixed_precision == "no"
        )
    assert (
        TrainSettings.from_config({"train": {"mixed_precision": "bf16"}}).mixed_precision == "bf16"
    )


def test_one_default_learning_rate_for_both_tasks():
    # the optimizer's lr comes from the train section alone (TrainSettings), for either task
    settings = TrainSettings.from_config({})
    groups = SegTask.from_config(SEG).param_groups(
        build_bicor("tiny", num_classes=6), lr=settings.lr, weight_decay=0.0
    )
    assert {g["lr"] for g in groups} == {settings.lr}


def test_the_command_line_names_the_file_and_the_key(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  variant: tiny\ndata:\n  imag_size: 96\n")
    code = main(
        ReferringTask.from_config,
        prog="train_rrsis.py",
        description="",
        argv=["--config", str(path)],
    )
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert err == (
        f"train_rrsis.py: error: {path}: data.imag_size: unknown key; did you mean data.image_size?"
    )
    code = main(
        ReferringTask.from_config,
        prog="train_rrsis.py",
        description="",
        argv=["--config", str(path), "--set", "data.imag_size=1"],
    )
    assert code == 1 and "data.imag_size: unknown key" in capsys.readouterr().err


def test_old_closed_set_checkpoints_with_the_old_encoder_names_still_load(tmp_path):
    import json

    torch.manual_seed(0)
    model = build_bicor("tiny", num_classes=3, image_size=64).eval()
    model.save_pretrained(tmp_path / "ckpt")
    meta_path = tmp_path / "ckpt" / "config.json"
    meta = json.loads(meta_path.read_text())
    old_names = {
        "image_encoder": "encoder_name",
        "image_size": "img_size",
        "image_encoder_kwargs": "encoder_kwargs",
        "image_pretrained": "encoder_weights",
    }
    meta["config"] = {old_names.get(k, k): v for k, v in meta["config"].items()}
    assert "img_size" in meta["config"] and "image_size" not in meta["config"]
    meta_path.write_text(json.dumps(meta))
    loaded = load_bicor(tmp_path / "ckpt").eval()
    assert loaded.config == model.config
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x).logits, model(x).logits)
    # the old names are accepted as build overrides too
    assert build_bicor("tiny", num_classes=3, img_size=96).config.image_size == 96


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {
                "model": {"variant": "tiny", "overrides": {"image_size": 64}},
                "data": {"image_size": 96},
            },
            r"^x\.yaml: model\.overrides\.image_size \(64\) and data\.image_size \(96\) disagree",
        ),
        (
            {**SEG, "model": {"variant": "tiny", "overrides": {"image_size": 64}}},
            r"^x\.yaml: model\.overrides\.image_size \(64\) and data\.image_size \(128\) disagree",
        ),
        (
            {
                "model": {"variant": "tiny", "overrides": {"img_size": 256}},
                "data": {"dataset": "vaihingen", "crop_size": 512},
            },
            r"^x\.yaml: model\.overrides\.img_size \(256\) and data\.crop_size \(512\) disagree",
        ),
    ],
    ids=["referring", "seg-synthetic", "seg-crop"],
)
def test_model_and_data_image_sizes_that_disagree_are_refused(config, message, tmp_path):
    from btdnet.engine.cli import build_trainer

    seg = "dataset" in config.get("data", {})
    factory = SegTask.from_config if seg else ReferringTask.from_config
    with pytest.raises(ConfigError, match=message):
        build_trainer(factory, config, "x.yaml", tmp_path)


def test_one_image_size_rule_for_both_tasks():
    only_model = {"model": {"variant": "tiny", "overrides": {"image_size": 64}}}
    assert ReferringTask.from_config(only_model).config.model_overrides()["image_size"] == 64
    both = {**only_model, "data": {"image_size": 64}}
    assert ReferringTask.from_config(both).config.model_overrides()["image_size"] == 64
    only_data = {"model": {"variant": "tiny"}, "data": {"image_size": 96}}
    assert ReferringTask.from_config(only_data).config.model_overrides()["image_size"] == 96
    assert "image_size" not in ReferringTask.from_config(REFERRING).config.model_overrides()
    seg = SegTask.from_config({**SEG, "data": {"dataset": "synthetic_seg", "image_size": 64}})
    assert seg.build_model().config.image_size == 64
    same = {**SEG, "model": {"variant": "tiny", "overrides": {"image_size": 128}}}
    assert SegTask.from_config(same).config.image_size() == 128
