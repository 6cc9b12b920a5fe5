"""--config NAME: a bare name that is no file here reads the shipped config; paths stay paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from btdnet.engine.config import (
    ConfigError,
    load_config,
    resolve_config_path,
    shipped_config_names,
    shipped_configs,
)

ROOT = Path(__file__).resolve().parents[3]


def test_the_source_checkout_ships_its_configs_folder():
    assert shipped_configs() == ROOT / "configs"
    assert shipped_config_names() == sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))


@pytest.mark.parametrize("name", ["synthetic.yaml", "synthetic"])
def test_a_bare_name_reads_the_shipped_config(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    assert resolve_config_path(name) == ROOT / "configs" / "synthetic.yaml"
    expected = yaml.safe_load((ROOT / "configs" / "synthetic.yaml").read_text())
    assert load_config(name, ["train.epochs=1"])["model"] == expected["model"]


def test_a_file_in_the_current_folder_wins_over_the_shipped_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "synthetic.yaml").write_text("seed: 7\n")
    assert load_config("synthetic.yaml") == {"seed": 7}


def test_a_path_is_never_redirected(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config_path("configs/synthetic.yaml") == Path("configs/synthetic.yaml")
    with pytest.raises(ConfigError, match=r"^configs/synthetic\.yaml: config file not found"):
        load_config("configs/synthetic.yaml")


def test_an_unknown_name_lists_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config("nope.yaml")
    message = str(info.value)
    assert message.startswith("nope.yaml: config file not found (shipped configs")
    assert "rrsisd.yaml" in message and "synthetic_seg.yaml" in message and "\n" not in message
