import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tests are small: one intra-op thread avoids OpenMP oversubscription when the suite's own
# subprocesses (CLI runs, 2-process launches) share the machine's cores with it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import re
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

# --------------------------------------------------------------- optional extras must be there
# `pytest.importorskip("rasterio")` keeps the suite usable on a runtime-only install, but under
# `make test` (which installs the dev extra) and in CI a missing extra is a broken install: its
# tests must fail, not vanish. BTDNET_REQUIRE_EXTRAS=1 (set by the Makefile) or CI=true turns a
# skip for a missing dev-extra module into a failure naming the module and the fix; otherwise
# the skip stays and `-ra` lists it with its reason.

_IMPORT_SKIP = re.compile(r"could not import '([\w.]+)'")


def _dev_extra_modules() -> set[str]:
    """Import names of the dev extra's optional packages (from pyproject.toml)."""
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r"^dev = \[(.*?)\]", text, flags=re.M | re.S)
    names = re.findall(r'"([A-Za-z0-9_.-]+)', match.group(1)) if match else []
    modules = {name.lower().replace("-", "_") for name in names}
    return modules | {m.removeprefix("python_") for m in modules}  # python-multipart: multipart


def _extras_required() -> bool:
    return os.environ.get("BTDNET_REQUIRE_EXTRAS") == "1" or os.environ.get("CI") == "true"


def _missing_extra(longrepr) -> str | None:
    """The dev-extra module an importorskip skip is about, or None."""
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    match = _IMPORT_SKIP.search(text)
    if match and match.group(1).split(".")[0].lower() in _dev_extra_modules():
        return match.group(1)
    return None


def _fail_skip(report, where: str) -> None:
    module = _missing_extra(report.longrepr) if report.skipped and _extras_required() else None
    if module is not None:
        report.outcome = "failed"
        report.longrepr = (
            f"{where}: '{module}' is part of the dev extra that `make test` installs, but it "
            "cannot be imported; install it (pip install -e '.[dev]') rather than skipping"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_skip(outcome.get_result(), str(collector.nodeid))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skip(outcome.get_result(), item.nodeid)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A random-weight tiny BTDNet checkpoint folder (shared by predictor and CLI tests)."""
    from btdnet.models import build_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_checkpoint")
    build_model("tiny", pretrained=False).save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_demo_config(tmp_path):
    """``write(dataset, batch_size=4, **model_overrides)``: a demo config file in ``tmp_path``
    (random-weight ``tiny`` variant without D-MOLS, 3/2/3 synthetic 64-px images shown at 96
    px, one epoch, no trackers) for ``rrsisd`` or ``grefs``; returns its path."""
    import yaml

    def write(dataset: str, *, batch_size: int = 4, **model_overrides) -> Path:
        config = {
            "seed": 0,
            "model": {
                "variant": "tiny",
                "pretrained": False,
                "overrides": {"use_dmols": False, **model_overrides},
            },
            "data": {
                "dataset": dataset,
                "image_size": 96,
                "eval_splits": ["val"],
                "generate_synthetic": {"train": 3, "val": 2, "test": 3, "size": 64, "seed": 2},
            },
            "train": {
                "epochs": 1,
                "batch_size": batch_size,
                "eval_batch_size": batch_size,
                "trackers": "none",
            },
        }
        path = tmp_path / "demo.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    return write
