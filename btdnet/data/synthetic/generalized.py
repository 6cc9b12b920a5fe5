"""Generalized expressions over a synthetic scene: several targets, or none.

Generalized referring (GRES / gRefCOCO, ReLA) adds two kinds of expression to the classic
"exactly one object" kind, and this module picks them with the same three-valued meaning as
:mod:`.expressions` (:class:`SceneEvaluator`):

- **multi-target**: an expression whose readings are two or more objects, each of them clearly
  (``matches(e) == targets`` and the truth is True for every target, so no object is a
  borderline case): "all the red vehicles", "the two storage tanks on the left". Its mask is
  the union of the targets. Built from a category with optional colour / size and optional
  position; worded with "all the" or with the number of targets.
- **no-target**: an expression that no object could be taken to mean (``matches(e) == []``):
  a category absent from the scene ("the windmill"), or a category that is present with a
  colour, size, position or relation that none of its objects has ("the red ship" where every
  ship is white; "the vehicle to the left of the storage tank" where none is). The kind is
  drawn uniformly among the kinds the scene allows, so that most negatives cannot be told apart
  from a true expression by the category alone.
"""

from __future__ import annotations

import itertools

import numpy as np

from .expressions import (
    POSITIONS,
    RELATIONS,
    Expression,
    SceneEvaluator,
    describe,
    pick_option,
    reference_names,
)
from .scene import CATEGORIES, SIZE_CLASSES, Scene

NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
NO_TARGET_KINDS: tuple[str, ...] = ("category", "colour", "size", "position", "relation")


def multi_target_expressions(
    evaluator: SceneEvaluator,
) -> list[tuple[Expression, tuple[int, ...]]]:
    """Every (expression, targets) with two or more targets, each clearly meant."""
    scene = evaluator.scene
    found: dict[tuple[int, ...], list[Expression]] = {}
    present = sorted({obj.category for obj in scene.objects})
    for category in present:
        colours = [None, *sorted({o.colour for o in scene.objects if o.category == category})]
        sizes = [None, *sorted({o.size for o in scene.objects if o.category == category})]
        for colour, size, position in itertools.product(colours, sizes, [None, *POSITIONS]):
            expression = Expression(category, colour=colour, size=size, position=position)
            targets = tuple(evaluator.matches(expression))
            if len(targets) < 2:
                continue
            if all(evaluator.truth(expression, t) is True for t in targets):
                found.setdefault(targets, []).append(expression)
    return [(e, targets) for targets, options in found.items() for e in options]


def no_target_expressions(evaluator: SceneEvaluator) -> dict[str, list[Expression]]:
    """Expressions no object could be taken to mean, grouped by what is absent."""
    scene = evaluator.scene
    present = sorted({obj.category for obj in scene.objects})
    kinds: dict[str, list[Expression]] = {kind: [] for kind in NO_TARGET_KINDS}
    kinds["category"] = [Expression(c) for c in CATEGORIES if c not in present]
    references = reference_names(evaluator)
    for category in present:
        for colour in CATEGORIES[category].colours:
            kinds["colour"].append(Expression(category, colour=colour))
        for size in SIZE_CLASSES:
            kinds["size"].append(Expression(category, size=size))
        for position in POSITIONS:
            kinds["position"].append(Expression(category, position=position))
        for (j, reference), relation in itertools.product(references.items(), RELATIONS):
            if scene.objects[j].category != category:
                kinds["relation"].append(
                    Expression(category, relation=relation, reference=reference)
                )
    return {
        kind: [e for e in options if not evaluator.matches(e)] for kind, options in kinds.items()
    }


def _plural(expression: Expression) -> str:
    words = [expression.size, expression.colour, CATEGORIES[expression.category].noun + "s"]
    return " ".join(w for w in words if w is not None)


def describe_multi(expression: Expression, count: int, rng: np.random.Generator) -> str:
    """Word a multi-target expression: "all the red vehicles", "the two ships on the left"."""
    if count in NUMBER_WORDS and rng.random() < 0.5:
        head = f"the {NUMBER_WORDS[count]} {_plural(expression)}"
    else:
        head = f"all the {_plural(expression)}"
    if expression.position is None:
        return head
    phrase = pick_option(_MULTI_POSITIONS[expression.position], rng)
    return f"{head} {phrase}"


_MULTI_POSITIONS: dict[str, tuple[str, ...]] = {
    "top left": ("at the top left", "in the top left corner"),
    "top right": ("at the top right", "in the top right corner"),
    "bottom left": ("at the bottom left", "in the bottom left corner"),
    "bottom right": ("at the bottom right", "in the bottom right corner"),
    "top": ("at the top", "on the top side"),
    "bottom": ("at the bottom", "on the bottom side"),
    "left": ("on the left", "on the left side"),
    "right": ("on the right", "on the right side"),
    "center": ("in the center", "in the middle"),
}


def choose_generalized(
    scene: Scene,
    rng: np.random.Generator,
    *,
    multi_count: int,
    no_target_count: int,
) -> tuple[list[tuple[tuple[int, ...], Expression, str]], list[tuple[str, Expression, str]]]:
    """Pick up to ``multi_count`` multi-target and ``no_target_count`` no-target expressions.

    Returns ``[(targets, expression, text)]`` (distinct target sets) and
    ``[(kind, expression, text)]`` (kind of absence: category, colour, size, position,
    relation).
    """
    evaluator = SceneEvaluator(scene)
    multi: list[tuple[tuple[int, ...], Expression, str]] = []
    if multi_count > 0:
        options = multi_target_expressions(evaluator)
        order = rng.permutation(len(options)) if options else []
        used: set[tuple[int, ...]] = set()
        for position in order:
            expression, targets = options[int(position)]
            if targets in used:
                continue
            used.add(targets)
            multi.append((targets, expression, describe_multi(expression, len(targets), rng)))
            if len(multi) == multi_count:
                break
    negatives: list[tuple[str, Expression, str]] = []
    if no_target_count > 0:
        by_kind = no_target_expressions(evaluator)
        for _ in range(no_target_count):
            kinds = [kind for kind, options in by_kind.items() if options]
            if not kinds:
                break
            kind = kinds[int(rng.integers(len(kinds)))]
            expression = by_kind[kind].pop(int(rng.integers(len(by_kind[kind]))))
            negatives.append((kind, expression, describe(expression, rng)))
    return multi, negatives


__all__ = [
    "NO_TARGET_KINDS",
    "choose_generalized",
    "describe_multi",
    "multi_target_expressions",
    "no_target_expressions",
]
