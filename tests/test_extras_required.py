"""The conftest hook: under `make test` or CI a dev-extra import skip is a failure."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests import conftest


def _skip_report(message: str):
    return SimpleNamespace(skipped=True, outcome="skipped", longrepr=("x.py", 3, message))


def test_dev_extra_modules_come_from_pyproject():
    assert {"rasterio", "tensorboard", "pytest"} <= conftest._dev_extra_modules()


@pytest.mark.parametrize(("required", "outcome"), [("1", "failed"), ("0", "skipped")])
def test_missing_rasterio_fails_only_when_extras_are_required(monkeypatch, required, outcome):
    monkeypatch.setenv("BTDNET_REQUIRE_EXTRAS", required)
    monkeypatch.delenv("CI", raising=False)
    report = _skip_report("Skipped: could not import 'rasterio': No module named 'rasterio'")
    conftest._fail_skip(report, "tests/test_predict_io.py")
    assert report.outcome == outcome
    if outcome == "failed":
        assert "'rasterio' is part of the dev extra" in report.longrepr
        assert report.longrepr.startswith("tests/test_predict_io.py: ")


def test_ci_requires_extras_and_other_skips_stay(monkeypatch):
    monkeypatch.delenv("BTDNET_REQUIRE_EXTRAS", raising=False)
    monkeypatch.setenv("CI", "true")
    report = _skip_report("Skipped: could not import 'tensorboard.summary': no")
    conftest._fail_skip(report, "t")
    assert report.outcome == "failed"
    # a module outside the dev extra, or a skip with another reason, stays a skip
    for message in ("Skipped: could not import 'cupy': no", "Skipped: needs 2 GPUs"):
        report = _skip_report(message)
        conftest._fail_skip(report, "t")
        assert report.outcome == "skipped"
