"""Ablations of BTDNet: named variants x seeds, each trained and scored, then one table.

``scripts/ablate.py`` is the command; the parts:

- :mod:`btdnet.ablation.variants`: the named variants (sets of ``--set`` overrides);
- :mod:`btdnet.ablation.plan`: the runs, their folders and states, the split over processes;
- :mod:`btdnet.ablation.runner`: training, scoring and resuming each run;
- :mod:`btdnet.ablation.table`: mean and spread over seeds, Markdown, JSON and the chart.
"""

from btdnet.ablation.plan import (
    AblationFolderError,
    LaunchInfo,
    RunSpec,
    detach_from_launcher,
    launch_info,
    plan_runs,
    run_state,
    share_of,
)
from btdnet.ablation.table import compare, format_markdown, mean_and_spread, summarise_runs
from btdnet.ablation.variants import (
    ABLATION_VARIANTS,
    DEMO_VARIANTS,
    KNOWN_VARIANTS,
    READING_VARIANTS,
    AblationVariant,
    select_variants,
)

__all__ = [
    "ABLATION_VARIANTS",
    "DEMO_VARIANTS",
    "KNOWN_VARIANTS",
    "READING_VARIANTS",
    "AblationFolderError",
    "AblationVariant",
    "LaunchInfo",
    "RunSpec",
    "compare",
    "detach_from_launcher",
    "format_markdown",
    "launch_info",
    "mean_and_spread",
    "plan_runs",
    "run_state",
    "select_variants",
    "share_of",
    "summarise_runs",
]
