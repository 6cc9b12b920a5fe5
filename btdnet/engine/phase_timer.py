"""Where a training step's time goes: wall time per phase, per step, read by the trainer.

The trainer calls :meth:`PhaseTimer.mark` after each phase of a step (``data``: waiting for the
batch; ``forward``: the loss; ``backward``: the loss's finiteness check and the backward pass;
``optimizer``: clipping, the gradients' check, the update; ``bookkeeping``: schedule, logs,
progress bar) and :meth:`PhaseTimer.end_step` after the last; with gradient accumulation a
row holds every micro-batch of one update. Each mark synchronises the device first (CUDA
kernels run asynchronously), so timing costs a little speed on a GPU: the trainer only times
with ``Trainer(time_phases=True)`` (``scripts/profile_training.py``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from btdnet.profiling import synchronize

PHASES: tuple[str, ...] = ("data", "forward", "backward", "optimizer", "bookkeeping")


class PhaseTimer:
    """Per-step wall seconds of each phase.

    Args:
        device: synchronised before each clock read (CUDA; a no-op elsewhere).
        clock: seconds as a float (``time.perf_counter``; tests pass a fake one).
    """

    def __init__(
        self, device: torch.device, *, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.device = device
        self.clock = clock
        self.steps: list[dict[str, float]] = []
        self._current: dict[str, float] = {}
        self._last = clock()

    def restart(self) -> None:
        """Start the clock again (a new epoch's loader: what came before is not a step's)."""
        synchronize(self.device)
        self._last = self.clock()

    def mark(self, phase: str) -> None:
        """Charge the time since the last mark to ``phase`` of the current step."""
        synchronize(self.device)
        now = self.clock()
        self._current[phase] = self._current.get(phase, 0.0) + now - self._last
        self._last = now

    def end_step(self) -> None:
        """Close the current step (its phases become one row of ``steps``)."""
        if self._current:
            self.steps.append(self._current)
        self._current = {}

    def medians(self, skip: int = 0) -> dict[str, float]:
        """Median seconds of each phase and of the whole step (``"step"``) over the steps
        after the first ``skip`` (warm-up); empty when none are left."""
        rows = self.steps[skip:]
        if not rows:
            return {}
        names = [p for p in PHASES if any(p in r for r in rows)]
        names += sorted({p for r in rows for p in r} - set(names))
        result = {p: statistics.median(r.get(p, 0.0) for r in rows) for p in names}
        result["step"] = statistics.median(sum(r.values()) for r in rows)
        return result
