"""Whole-image or scene mode: the rule that picks one for an image, and the line that says so.

The rule (:data:`SCENE_FACTOR`): an image whose longer side is more than twice the model's
input side is predicted in scene mode (square tiles of the input side at native resolution,
blended; :mod:`btdnet.predict.scene`); a smaller one is resized whole to the model's input.
Whole-image mode on a scene of 2048 x 2048 pixels for a 384-pixel model would shrink every
object more than five times (a 12-pixel tank to 2 pixels); the user may still force either
mode (``--whole-image`` or ``--tile`` in ``btdnet-predict``, ``tile`` in ``btdnet-serve``), and
forcing whole-image mode on a large image warns with the resize factor.
"""

from __future__ import annotations

from dataclasses import dataclass

SCENE_FACTOR = 2.0
WHOLE = "whole"
SCENE = "scene"


def is_large(height: int, width: int, input_side: int) -> bool:
    """True when the longer side is more than :data:`SCENE_FACTOR` times the input side."""
    return max(height, width) > SCENE_FACTOR * input_side


@dataclass(frozen=True)
class ModeChoice:
    """The mode chosen for one image.

    Attributes:
        mode: :data:`WHOLE` or :data:`SCENE`.
        height, width: the image's size in pixels.
        input_side: the model's square input side.
        forced: the user named the mode (``--whole-image``/``--tile``), the rule did not pick it.
    """

    mode: str
    height: int
    width: int
    input_side: int
    forced: bool

    @property
    def resize_factor(self) -> float:
        """How many times whole-image mode shrinks the longer side (below 1: enlarges)."""
        return max(self.height, self.width) / self.input_side

    def facts(self) -> dict[str, object]:
        """What an answer says about the mode: ``mode``, ``mode_forced`` and, in whole-image
        mode, ``resized_to`` (the model's square input side) and ``resize_factor``."""
        facts: dict[str, object] = {"mode": self.mode, "mode_forced": self.forced}
        if self.mode == WHOLE:
            facts["resized_to"] = self.input_side
            facts["resize_factor"] = round(self.resize_factor, 3)
        return facts

    def announcement(self, name: str, how_to_force: str) -> str | None:
        """The one line that says the rule chose scene mode, or None (no line to print)."""
        if self.mode != SCENE or self.forced:
            return None
        return (
            f"{name}: {self.width}x{self.height} pixels, more than {SCENE_FACTOR:g}x the "
            f"model's {self.input_side}-pixel input: scene mode (tiles of {self.input_side} "
            f"pixels at native resolution); {how_to_force} to resize it whole instead"
        )

    def warning(self, name: str) -> str | None:
        """The warning for whole-image mode forced on a large image, or None."""
        if self.mode != WHOLE or not self.forced:
            return None
        if not is_large(self.height, self.width, self.input_side):
            return None
        return (
            f"{name}: whole-image mode resizes {self.width}x{self.height} pixels to the model's "
            f"{self.input_side}x{self.input_side} input, {self.resize_factor:.1f}x smaller: "
            "small objects may vanish; scene mode (tiles at native resolution) keeps them"
        )


def choose_mode(
    height: int, width: int, input_side: int, *, scene: bool | None = None
) -> ModeChoice:
    """The mode for an image: ``scene`` True/False forces one, None applies the rule."""
    if scene is None:
        mode = SCENE if is_large(height, width, input_side) else WHOLE
        return ModeChoice(mode, height, width, input_side, forced=False)
    return ModeChoice(SCENE if scene else WHOLE, height, width, input_side, forced=True)


__all__ = ["SCENE", "SCENE_FACTOR", "WHOLE", "ModeChoice", "choose_mode", "is_large"]
