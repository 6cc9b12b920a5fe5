"""The referring data sets: the one list of their names.

Everything that names the referring data sets derives from :data:`REFERRING_DATASETS` (the
loaders of ``btdnet.data.dataset``, the task's ``data.dataset`` choices, the command lines'
``--dataset`` choices); a table of per-data-set facts is keyed by these names only
(``tests/test_structure.py`` refuses a second list). Free of imports, so a command line can
build its parser without importing torch.
"""

from __future__ import annotations

REFERRING_DATASETS: tuple[str, ...] = ("rrsisd", "refsegrs", "grefs")

__all__ = ["REFERRING_DATASETS"]
