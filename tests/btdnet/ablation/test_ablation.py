"""The ablation tool: variants, plan, table statistics (hand values), resume and the CLI."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from btdnet.ablation import (
    ABLATION_VARIANTS,
    DEMO_VARIANTS,
    READING_VARIANTS,
    LaunchInfo,
    compare,
    detach_from_launcher,
    format_markdown,
    launch_info,
    mean_and_spread,
    plan_runs,
    run_state,
    select_variants,
    share_of,
    summarise_runs,
)
from btdnet.ablation import cli as ablation_cli
from btdnet.ablation import runner as ablation_runner
from btdnet.engine.config import apply_overrides
from btdnet.provenance import code_version
from btdnet.task import ReferringConfig

# ---------------------------------------------------------------- statistics (hand values)


def test_mean_and_spread_against_hand_values() -> None:
    stats = mean_and_spread([50.0, 52.0, 57.0])
    # mean 53; deviations -3, -1, 4; sample variance (9 + 1 + 16) / 2 = 13
    assert stats["n"] == 3 and stats["mean"] == pytest.approx(53.0)
    assert stats["std"] == pytest.approx(math.sqrt(13.0))
    assert (stats["min"], stats["max"]) == (50.0, 57.0)
    assert mean_and_spread([4.0])["std"] is None and mean_and_spread([4.0])["mean"] == 4.0
    assert mean_and_spread([])["n"] == 0 and mean_and_spread([])["mean"] is None


def test_the_run_list_goes_seed_by_seed_base_rate_first_in_variant_order() -> None:
    from btdnet.ablation.table import format_run_list, split_rate

    assert split_rate("demo@lr0.5") == ("demo", 0.5)
    assert split_rate("demo") == ("demo", None)
    assert split_rate("odd@lrx") == ("odd@lrx", None)

    def run(variant: str, seed: int, val: float | None) -> dict:
        return {"variant": variant, "seed": seed, "best_val_oIoU": val, "oIoU": 50.125}

    results = [
        run("b@lr2", 0, 1.0),
        run("a@lr0.5", 0, 2.0),
        run("b@lr1", 0, 3.0),
        run("a@lr1", 1, 4.0),
        run("a@lr1", 0, None),  # an older record without the value: "-"
        run("zz", 0, 5.0),  # no sweep: the base rate, unknown names last
    ]
    lines = format_run_list(results, ["b", "a"]).splitlines()
    assert lines[0].startswith("| variant | lr factor | seed | best val oIoU | test oIoU |")
    rows = [line.split(" | ")[:4] for line in lines[2:]]
    assert rows == [
        ["| b", "1", "0", "3.00"],
        ["| a", "1", "0", "-"],
        ["| zz", "-", "0", "5.00"],
        ["| a", "0.5", "0", "2.00"],
        ["| b", "2", "0", "1.00"],
        ["| a", "1", "1", "4.00"],
    ]
    assert "| 50.12 |" in lines[2]  # two decimals (50.125 rounds half to even)


def test_a_training_time_counts_only_when_it_covers_the_whole_run() -> None:
    from btdnet.ablation.table import format_run_list, run_value

    whole = {"variant": "a", "seed": 0, "train_seconds": 500.0, "resumed": False}
    resumed = {
        "variant": "a",
        "seed": 1,
        "train_seconds": 700.0,
        "resumed": True,
        "train_seconds_last_part": 100.0,
    }
    older = {"variant": "a", "seed": 2, "train_seconds": 90.0, "resumed": True}  # last part
    assert [run_value(r, "train_seconds") for r in (whole, resumed, older)] == [500, 700, None]
    assert run_value(older, "oIoU") is None and run_value({"oIoU": 5.0}, "oIoU") == 5.0
    nested = {"per_expression_mIoU": {"position": 40.0}}
    assert run_value(nested, "per_expression_mIoU.position") == 40.0
    assert run_value(nested, "per_expression_mIoU.relation") is None
    assert run_value({"per_expression_mIoU": 3.0}, "per_expression_mIoU.position") is None
    assert run_value({"Pr@0.9": 7.0, "Pr@0": {"9": 1.0}}, "Pr@0.9") == 7.0  # a key with a dot
    summary = summarise_runs([whole, resumed, older], [("a", "")], reference="a")
    assert summary["variants"][0]["metrics"]["train_seconds"]["mean"] == pytest.approx(600.0)
    last = format_run_list([older], ["a"]).splitlines()[-1]
    assert last.endswith("| - | - |")  # CPU and wall seconds


def test_a_gap_is_called_only_beyond_the_summed_spreads() -> None:
    a = mean_and_spread([50.0, 52.0])  # mean 51, std sqrt(2) = 1.414
    near = mean_and_spread([52.0, 54.0])  # mean 53: gap 2 < 2.83
    far = mean_and_spread([55.0, 57.0])  # mean 56: gap 5 > 2.83
    assert compare(a, near)["called"] is False
    assert compare(a, near)["gap"] == pytest.approx(2.0)
    assert compare(a, near)["spread"] == pytest.approx(2 * math.sqrt(2.0))
    assert compare(a, far)["called"] is True
    assert compare(a, mean_and_spread([60.0]))["called"] is None  # one seed: not judged


def _result(variant: str, seed: int, oiou: float) -> dict:
    values = {"oIoU": oiou, "mIoU": oiou - 10, "Pr@0.5": 40.0, "Pr@0.7": 20.0, "Pr@0.9": 1.0}
    extra = {"swap_drop": 30.0 + seed, "train_seconds": 100.0, "train_cpu_seconds": 90.0}
    return {"variant": variant, "seed": seed, "resumed": False, **values, **extra}


def test_table_holds_mean_spread_and_verdicts() -> None:
    results = [_result("full", s, v) for s, v in zip((0, 1, 2), (50.0, 52.0, 57.0))]
    results += [_result("dmols_off", s, v) for s, v in zip((0, 1, 2), (40.0, 41.0, 42.0))]
    variants = [("full", "all on"), ("dmols_off", "no D-MOLS"), ("tiny_gap", "never run")]
    summary = summarise_runs(results, variants)
    full, off, none = summary["variants"]
    assert full["seeds"] == [0, 1, 2] and full["metrics"]["oIoU"]["mean"] == pytest.approx(53.0)
    assert off["metrics"]["oIoU"]["std"] == pytest.approx(1.0)
    assert off["metrics"]["swap_drop"]["mean"] == pytest.approx(31.0)
    # gap -12 against spreads sqrt(13) + 1 = 4.61: called
    assert off["vs_reference"]["gap"] == pytest.approx(-12.0)
    assert off["vs_reference"]["called"] is True
    assert none["metrics"]["oIoU"]["n"] == 0 and full["vs_reference"] is None
    text = format_markdown(summary, title="t")
    assert "| full | 0,1,2 | 53.00 ± 3.61 | 43.00 ± 3.61 |" in text
    assert "-12.00 (exceeds the spread 4.61)" in text
    assert "| tiny_gap | – |" in text
    # the second part judges each measure: mIoU called, Pr@0.9 level (no spread), BF unrecorded,
    # position mean IoU -6 within sd 1 + sd 13.23 (values 60, 61, 62 against 50, 70, 45)
    for run, position in zip(results, (60.0, 61.0, 62.0, 50.0, 70.0, 45.0), strict=True):
        run["per_expression_mIoU"] = {"position": position}
    summary = summarise_runs(results, variants)
    assert summary["variants"][1]["gaps"]["per_expression_mIoU.position"]["gap"] == -6.0
    text = format_markdown(summary, title="t")
    assert "| dmols_off | -12.00 **called** | -12.00 **called** | +0.00 within 0.00 | – | " in text
    assert "| full | 0,1,2 | 53.00 ± 3.61 | 43.00 ± 3.61 | 40.00 ± 0.00 |" in text  # Pr@0.5
    judged = [line for line in text.splitlines() if line.startswith("| dmols_off | -12.00 **")]
    assert len(judged) == 1 and judged[0].endswith("| -6.00 within 14.23 |")
    assert "| tiny_gap | – | – | – | – | – |" in text


# ---------------------------------------------------------------- variants and plan


def test_variants_are_valid_switches_of_the_model() -> None:
    base = {"model": {"variant": "tiny", "overrides": {"use_dmols": False}}}
    seen = {}
    for variant in ABLATION_VARIANTS.values():
        config = apply_overrides(base, variant.overrides)
        overrides = ReferringConfig.from_config(config).model.overrides  # unknown keys refused
        seen[variant.name] = overrides
    assert seen["full"] == {
        "use_bsc": True,
        "use_alignment_loss": True,
        "use_twin_stream": True,
        "use_dmols": True,
        "bsc_reading": "gated",
        "alignment_kind": "bce",
        "dmols_reconstruct": "inputs",
        "twin_reading": "joint",
    }
    # every variant sets every switch and reading, so none depends on the config's defaults
    assert all(set(o) >= set(seen["full"]) for o in seen.values())
    assert seen["bsc_one_way"]["use_bsc"] is False and seen["bsc_one_way"]["use_dmols"] is True
    assert seen["dmols_visual_only"]["dmols_language_weight"] == 0.0
    assert seen["dmols_language_only"]["dmols_visual_weight"] == 0.0
    family = seen["family_baseline"]
    assert not family["use_bsc"] and not family["use_twin_stream"] and not family["use_dmols"]
    assert len(ABLATION_VARIANTS) == 8


def test_demo_variants_are_the_demo_model_with_one_module_changed() -> None:
    base = {"model": {"variant": "tiny", "overrides": {}}}
    seen = {
        v.name: ReferringConfig.from_config(apply_overrides(base, v.overrides)).model.overrides
        for v in DEMO_VARIANTS.values()
    }
    demo = seen["demo"]
    # the demo's model as configs/synthetic.yaml trains it
    assert demo["use_bsc"] and demo["use_twin_stream"] and demo["use_alignment_loss"]
    assert demo["use_dmols"] is False and demo["alignment_kind"] == "spatial"
    changed = {
        "demo_bsc_one_way": {"use_bsc": False, "use_alignment_loss": False},
        "demo_no_alignment": {"use_alignment_loss": False},
        "demo_single_stream": {"use_twin_stream": False},
        "demo_dmols_on": {"use_dmols": True},
        "demo_bsc_from_baseline": {"bsc_reading": "from_baseline"},
        "demo_background_auxiliary": {"twin_reading": "auxiliary"},
    }
    assert set(seen) == {"demo", *changed}
    for name, change in changed.items():
        assert {k: v for k, v in seen[name].items() if demo[k] != v} == change, name


def test_alternative_readings_are_the_full_model_with_one_value_changed() -> None:
    base = {"model": {"variant": "tiny", "overrides": {"use_dmols": False}}}
    full = ReferringConfig.from_config(
        apply_overrides(base, ABLATION_VARIANTS["full"].overrides)
    ).model.overrides
    changed = {}
    for variant in READING_VARIANTS.values():
        config = apply_overrides(base, variant.overrides)
        overrides = ReferringConfig.from_config(config).model.overrides
        assert set(overrides) == set(full)
        changed[variant.name] = {k: v for k, v in overrides.items() if full[k] != v}
    assert changed == {
        "bsc_language_first": {"bsc_reading": "language_first"},
        "alignment_spatial": {"alignment_kind": "spatial"},
        "dmols_features": {"dmols_reconstruct": "features"},
    }
    # run only when named
    assert [v.name for v in select_variants(None)] == list(ABLATION_VARIANTS)
    assert select_variants(["dmols_features"]) == [READING_VARIANTS["dmols_features"]]


def test_select_variants_refuses_unknown_and_repeated_names() -> None:
    assert [v.name for v in select_variants(["dmols_off", "full"])] == ["dmols_off", "full"]
    with pytest.raises(ValueError, match=r"unknown ablation variant.*fulll"):
        select_variants(["fulll"])
    with pytest.raises(ValueError, match="named twice"):
        select_variants(["full", "full"])


def test_plan_orders_and_shares_runs(tmp_path: Path) -> None:
    variants = select_variants(["full", "dmols_off", "single_stream"])
    by_seed = plan_runs(tmp_path, variants, [0, 1], order="seed")
    assert [(r.variant.name, r.seed) for r in by_seed[:4]] == [
        ("full", 0),
        ("dmols_off", 0),
        ("single_stream", 0),
        ("full", 1),
    ]
    by_variant = plan_runs(tmp_path, variants, [0, 1], order="variant")
    assert [(r.variant.name, r.seed) for r in by_variant[:3]] == [
        ("full", 0),
        ("full", 1),
        ("dmols_off", 0),
    ]
    assert by_seed[0].directory == tmp_path / "runs" / "full" / "seed-0"
    assert by_seed[0].overrides[-1] == "seed=0"
    second = share_of(by_seed, LaunchInfo(rank=1, world_size=2, local_rank=1))
    assert {r.variant.name for r in second} == {"dmols_off"} and len(second) == 2
    first = share_of(by_seed, LaunchInfo(rank=0, world_size=2, local_rank=0))
    assert {r.variant.name for r in first} == {"full", "single_stream"}
    with pytest.raises(ValueError, match="distinct"):
        plan_runs(tmp_path, variants, [1, 1])


def test_each_worker_is_detached_from_the_launcher() -> None:
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_PORT": "29500", "X": "1"}
    info = launch_info(env)
    assert info == LaunchInfo(rank=3, world_size=4, local_rank=1)
    env["CUDA_VISIBLE_DEVICES"] = "4,5"
    detach_from_launcher(env, info, cuda=True)
    assert env == {"X": "1", "CUDA_VISIBLE_DEVICES": "5"}
    alone = {"PATH": "/bin"}
    detach_from_launcher(alone, launch_info(alone), cuda=True)
    assert alone == {"PATH": "/bin"} and launch_info({}) == LaunchInfo()


# ---------------------------------------------------------------- end to end (tiny runs)


def _tiny_config(tmp: Path) -> Path:
    text = {"model_type": "bert", "vocab_size": 30522, "hidden_size": 32}
    text |= {"num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
    config = {
        "seed": 0,
        "model": {"variant": "tiny", "pretrained": False, "overrides": {"text_config": text}},
        "data": {
            "dataset": "rrsisd",
            "eval_splits": ["val"],
            "image_size": 64,
            "generate_synthetic": {"train": 2, "val": 1, "test": 2, "size": 64, "seed": 1},
        },
        "train": {"epochs": 1, "batch_size": 4, "eval_batch_size": 8, "lr": 1e-3},
    }
    config["train"] |= {"trackers": "none", "warmup_steps": 0}
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_ablation_runs_tabulates_and_never_repeats_a_finished_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fits = []
    real = ablation_runner.Trainer

    class CountingTrainer(real):  # type: ignore[misc,valid-type]
        def fit(self):
            fits.append((str(self.output_dir), self.resume is not None))
            return super().fit()

    monkeypatch.setattr(ablation_runner, "Trainer", CountingTrainer)
    config, out = _tiny_config(tmp_path), tmp_path / "abl"
    args = ["--config", str(config), "--out", str(out), "--no-progress"]
    args += ["--variants", "full", "family_baseline", "--seeds", "0", "--keep-checkpoints"]
    assert ablation_cli.main(args) == 0
    assert len(fits) == 2 and not any(resumed for _, resumed in fits)
    table = json.loads((out / "ablation.json").read_text())
    assert table["runs_finished"] == 2
    full = json.loads((out / "runs" / "full" / "seed-0" / "result.json").read_text())
    row = table["variants"][0]
    assert row["metrics"]["oIoU"]["mean"] == pytest.approx(full["oIoU"])
    assert full["swap_drop"] == pytest.approx(full["oIoU_swap_subset"] - full["oIoU_swapped"])
    assert full["code"] == code_version()  # which code made it
    assert (out / "ablation.png").stat().st_size > 0 and "full" in (out / "ablation.md").read_text()
    assert (out / "runs.md").read_text().count("\n| full | - | 0 |") == 1

    # again: both finished, nothing is trained
    assert ablation_cli.main(args) == 0
    assert len(fits) == 2

    # an interrupted run (checkpoint, no result) resumes; the finished one is still skipped
    baseline = plan_runs(out, select_variants(["family_baseline"]), [0])[0]
    baseline.result_path.unlink()
    assert run_state(baseline) == "interrupted"
    assert ablation_cli.main(args) == 0
    assert fits[2:] == [(str(baseline.train_dir), True)]
    again = json.loads(baseline.result_path.read_text())
    assert again["resumed"] is True  # its time: the first part's, carried over, and this one's
    assert again["train_seconds"] > again["train_seconds_last_part"] > 0

    # a process that names one variant keeps the other finished rows in the table
    one = ["--config", str(config), "--out", str(out), "--no-progress", "--seeds", "0"]
    assert ablation_cli.main([*one, "--variants", "family_baseline"]) == 0
    rows = json.loads((out / "ablation.json").read_text())["variants"]
    assert [r["name"] for r in rows] == ["full", "family_baseline"] and len(fits) == 3

    # each run records its mean IoU per kind of expression; a run recorded without it is
    # scored again from its kept checkpoint by the diagnosis, to the same numbers
    from btdnet.ablation.diagnose_cli import main as diagnose_main

    recorded = full["per_expression_mIoU"]
    assert recorded and set(recorded) <= {"relation", "position", "colour", "category"}
    thirds = full["per_relative_size_mIoU"]
    assert set(thirds) == {"small third", "middle third", "large third"}
    path = out / "runs" / "full" / "seed-0" / "result.json"
    older = {k: v for k, v in full.items() if not k.startswith("per_") or k == "per_category"}
    path.write_text(json.dumps(older))
    compare = ["--ablation", str(out), "--variants", "full", "family_baseline"]
    assert diagnose_main([*compare, "--out", str(tmp_path / "diag")]) == 0
    gaps = json.loads((tmp_path / "diag" / "diagnosis.json").read_text())["comparison"]
    again = {kind: row["full"] for kind, row in gaps["per_expression"].items()}
    assert again == pytest.approx(recorded)
    sizes = {name: row["full"] for name, row in gaps["per_relative_size"].items()}
    assert sizes == pytest.approx(thirds) and list(sizes) == list(thirds)  # smallest first
    assert (tmp_path / "diag" / "comparison.png").stat().st_size > 0
    # the ablation tool adds the missing records to the run's result.json, to the same values
    table_only = ["--out", str(out), "--table-only", "--no-progress", "--fill-records"]
    assert ablation_cli.main(table_only) == 0
    filled = json.loads(path.read_text())
    assert filled["per_expression_mIoU"] == pytest.approx(recorded)
    assert filled["per_relative_size_mIoU"] == pytest.approx(thirds)
    assert filled["records_added"] == ["per_expression_mIoU", "per_relative_size_mIoU"]
    assert filled["oIoU"] == full["oIoU"]  # the rest as it was
    row = json.loads((out / "ablation.json").read_text())["variants"][0]
    position = row["metrics"]["per_expression_mIoU.position"]["mean"]
    expected = recorded.get("position")  # None when the tiny test split has no such expression
    assert position == (None if expected is None else pytest.approx(expected))
    # names not in the folder (the sweep's runs are demo@lr1 ...): one line, exit 1
    wrong = ["--ablation", str(out), "--variants", "full@lr1", "family_baseline"]
    assert diagnose_main([*wrong, "--out", str(tmp_path / "diag2")]) == 1


def test_a_folder_of_other_files_or_another_config_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = _tiny_config(tmp_path)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    args = ["--config", str(config), "--no-progress", "--variants", "full", "--seeds", "0"]
    assert ablation_cli.main([*args, "--out", str(foreign)]) == 1
    assert "not an ablation folder" in capsys.readouterr().err
    assert ablation_cli.main(["--out", str(foreign), "--table-only"]) == 1
    assert "not an ablation folder" in capsys.readouterr().err
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]  # nothing written
    assert (foreign / "notes.txt").read_text() == "mine"

    out = tmp_path / "abl"
    base = ablation_runner.base_config(yaml.safe_load(config.read_text()), out)
    ablation_runner.prepare_folder(out, base)
    other = [*args, "--out", str(out), "--set", "train.lr=0.5"]
    assert ablation_cli.main(other) == 1
    assert "another base config (train.lr" in capsys.readouterr().err


@pytest.mark.slow
def test_two_processes_take_one_variant_each(tmp_path: Path) -> None:
    """Under a launcher (torchrun, as accelerate launch does) each process trains whole
    variants alone: the trainer of each sees one process."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torchrun not found beside the interpreter"
    config, out = _tiny_config(tmp_path), tmp_path / "abl"
    root = Path(__file__).resolve().parents[3]
    command = [torchrun, "--standalone", "--nproc_per_node=2", str(root / "scripts/ablate.py")]
    command += ["--config", str(config), "--out", str(out), "--no-progress", "--seeds", "0"]
    command += ["--variants", "full", "family_baseline"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(root)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    workers = {
        name: json.loads((out / "runs" / name / "seed-0" / "result.json").read_text())["worker"]
        for name in ("full", "family_baseline")
    }
    assert workers == {"full": 0, "family_baseline": 1}
    config_saved = yaml.safe_load((out / "runs/full/seed-0/train/config.yaml").read_text())
    assert config_saved["model"]["overrides"]["use_dmols"] is True


def test_fill_records_names_a_result_file_that_is_not_one(tmp_path: Path) -> None:
    from btdnet.ablation.plan import AblationFolderError
    from btdnet.ablation.rescore import fill_missing_records

    broken = tmp_path / "runs" / "full" / "seed-0" / "result.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json")
    with pytest.raises(AblationFolderError, match=r"result\.json: unreadable run result"):
        fill_missing_records(tmp_path, report=lambda line: None)
    assert broken.read_text() == "{not json"  # left as it was
