"""The closed-set data sets: the one list of their names.

Everything that names the closed-set data sets derives from these tuples (the builder, the
check, the task's ``data.dataset`` choices, the benchmark, the command lines); a table of
per-data-set facts (palettes, the authors' test-time augmentation, ISPRS image modes) is keyed
by these names only (``tests/test_structure.py`` refuses a second list). Free of imports, so a
command line can build its parser without importing torch.
"""

from __future__ import annotations

SYNTHETIC_SEG = "synthetic_seg"  # the generated set of the CPU demo and the tests
ISPRS_DATASETS: tuple[str, ...] = ("vaihingen", "potsdam")
CLOSED_SET_DATASETS: tuple[str, ...] = ("loveda", *ISPRS_DATASETS)  # the real benchmarks
SEG_DATASETS: tuple[str, ...] = (SYNTHETIC_SEG, *CLOSED_SET_DATASETS)  # what the seg task reads

__all__ = ["CLOSED_SET_DATASETS", "ISPRS_DATASETS", "SEG_DATASETS", "SYNTHETIC_SEG"]
