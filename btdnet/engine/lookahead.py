"""Lookahead with the phase of catalyst's implementation (the BiCoR-Seg authors' optimizer).

Lookahead (Zhang et al., 2019) keeps slow weights beside the fast ones; every ``k`` steps the slow
weights move ``alpha`` of the way to the fast ones and the fast weights are reset to them. Two
public implementations differ in *when* that happens:

- timm's ``Lookahead`` syncs after steps k, 2k, 3k, ... (5, 10, 15 for k = 5), its slow weights
  starting from the fast weights after step k;
- catalyst's ``Lookahead`` (``catalyst.contrib.nn.Lookahead``, which the authors' configs wrap
  around AdamW) syncs after steps 1, k + 1, 2k + 1, ... (1, 6, 11): its counter starts at 0 and
  syncs when it is 0, so the first sync, after step 1, only copies the fast weights into the
  slow ones (a no-op move). It also syncs every parameter, with or without a gradient.

The two trajectories are equal up to step 5 and differ from step 6 on. :class:`CatalystLookahead`
is timm's class (same state keys, so checkpoints keep loading) stepped with catalyst's phase.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from timm.optim import Lookahead


class CatalystLookahead(Lookahead):
    """timm's Lookahead, synced after steps 1, k + 1, 2k + 1, ... as catalyst's is.

    Args:
        base_optimizer: the fast optimizer (AdamW in the recipe).
        alpha: slow-weight step (catalyst's default 0.5).
        k: steps between syncs (catalyst's default 5).
    """

    def __init__(self, base_optimizer: torch.optim.Optimizer, alpha: float = 0.5, k: int = 5):
        super().__init__(base_optimizer, alpha=alpha, k=k)

    @torch.no_grad()
    def update_slow(self, group: dict[str, Any]) -> None:
        """Move every parameter's slow copy ``alpha`` towards it and reset it to the copy; the
        copy starts as the parameter itself (catalyst syncs parameters without a gradient too)."""
        for fast in group["params"]:
            state = self._base_optimizer.state[fast]
            if "lookahead_slow_buff" not in state:
                state["lookahead_slow_buff"] = fast.detach().clone()
            slow = state["lookahead_slow_buff"]
            slow.add_(fast - slow, alpha=group["lookahead_alpha"])
            fast.copy_(slow)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One fast step; then sync the groups whose step count (before this step) is a
        multiple of k: after steps 1, k + 1, 2k + 1, ..."""
        loss = self._base_optimizer.step(closure)
        for group in self._base_optimizer.param_groups:
            if group["lookahead_step"] % group["lookahead_k"] == 0:
                self.update_slow(group)
            group["lookahead_step"] += 1
        return loss
