import json
import subprocess
import sys
from pathlib import Path

from tests.closed_set_fixtures import write_loveda_fixture, write_vaihingen_fixture

ROOT = Path(__file__).resolve().parents[2]


def _check(name: str, root: Path) -> subprocess.CompletedProcess:
    script = ROOT / "scripts" / "check_dataset.py"
    cmd = [sys.executable, str(script), "--dataset", name, "--root", str(root), "--json"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_check_dataset_script_dispatches_closed_set_sets(tmp_path):
    write_vaihingen_fixture(tmp_path / "vaihingen")
    write_loveda_fixture(tmp_path / "loveda")
    for name in ("vaihingen", "loveda"):
        result = _check(name, tmp_path / name)
        report = json.loads(result.stdout)
        assert report["dataset"] == name
        assert set(report) >= {"dataset", "root", "splits", "problems"}
        for split in report["splits"].values():
            assert {"samples", "images", "class_pixels"} <= set(split)
        usable = result.returncode == 0
        fatal = [p for p in report["problems"] if p["kind"] in {"unknown_colour", "missing_label"}]
        assert usable == (not fatal), (name, report["problems"])
