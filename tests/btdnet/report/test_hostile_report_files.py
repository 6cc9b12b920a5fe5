"""The demo's report files (training curve, HTML page) are never written through a link."""

from __future__ import annotations

import pytest

from btdnet.report.curves import plot_training_curves
from btdnet.report.page import write_report_html
from btdnet.safe_write import UnsafeOutputError

pytest.importorskip("matplotlib")


def _planted(tmp_path, name: str):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    link = tmp_path / name
    link.symlink_to(notes)
    return link, notes


def test_training_curve_refuses_a_link(tmp_path) -> None:
    link, notes = _planted(tmp_path, "training_curve.png")
    log = [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5}]
    with pytest.raises(UnsafeOutputError, match="symbolic link"):
        plot_training_curves(log, [], link)
    assert notes.read_text() == "mine" and link.is_symlink()


def test_report_page_refuses_a_link(tmp_path) -> None:
    link, notes = _planted(tmp_path, "report.html")
    with pytest.raises(UnsafeOutputError, match="symbolic link"):
        write_report_html(
            link, title="t", intro="i", tables=[], targets={}, curve=None, gallery=[], files={}
        )
    assert notes.read_text() == "mine" and link.is_symlink()
