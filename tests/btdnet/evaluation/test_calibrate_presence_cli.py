"""scripts/calibrate_presence.py: sweep a saved generalized model on a gRefCOCO-format split."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.btdnet.data.test_data_grefs import write_grefs

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "calibrate_presence.py"


def _script():
    spec = importlib.util.spec_from_file_location("calibrate_presence", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from btdnet import build_model

    root = tmp_path_factory.mktemp("cal")
    write_grefs(root / "data")
    model = build_model("tiny", pretrained=False, use_presence=True)
    model.save_pretrained(root / "model")
    return root


def test_sweep_is_printed_written_and_stored(setup, capsys):
    from btdnet import load_model
    from btdnet.evaluation.presence_calibration import store_presence_threshold

    root = setup
    out = root / "sweep.json"
    store_presence_threshold(root / "model", 0.975)  # off the grid: --store must replace it
    args = ["--checkpoint", str(root / "model"), "--root", str(root / "data"), "--split", "val"]
    assert _script().main([*args, "--store", "--json", str(out)]) == 0
    sweep = json.loads(out.read_text())
    assert sweep["criterion"] == "balanced" and sweep["samples"] == 2
    assert [row["threshold"] for row in sweep["table"]] == [k / 100 for k in range(1, 100)]
    assert load_model(root / "model").config.presence_threshold == sweep["threshold"] != 0.975
    printed = capsys.readouterr().out
    assert f"| {sweep['threshold']:.2f} **chosen** |" in printed
    # the printed table: every 0.05 and the rows within 0.03 of the choice
    rows = [line for line in printed.splitlines() if line.startswith("| 0.")]
    shown = {float(line.split("|")[1].split()[0]) for line in rows}
    near = {k / 100 for k in range(1, 100) if abs(k / 100 - sweep["threshold"]) <= 0.03 + 1e-9}
    assert shown == {k / 20 for k in range(1, 20)} | near
    assert "written into" in printed


def test_missing_checkpoint_is_one_line(setup, capsys):
    root = setup
    code = _script().main(["--checkpoint", str(root / "nope"), "--root", str(root / "data")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("calibrate_presence.py: error:") and "nope" in err
    assert err.count("\n") == 1
