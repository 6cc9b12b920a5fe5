"""Structured referring expressions over synthetic scenes: their meaning, choice and wording.

An :class:`Expression` names a category and may add a colour, a size class, and either an
absolute position or a relation to another object (whose own description is an expression
without position or relation). Its meaning is fixed here, in three-valued logic (True, False,
or None for "a reader could take it either way"):

- colour / size: equal to the object's colour word / size class.
- position (the object's centre in a 3x3 grid of the image): ``"left"`` / ``"right"`` mean the
  left / right column (any row), ``"top"`` / ``"bottom"`` the top / bottom row (any column),
  the four corners a corner cell, ``"center"`` the central cell. A centre within
  ``POSITION_MARGIN`` x image size of a grid line is neither clearly in nor clearly out.
- relation ``"left of"`` / ``"right of"`` / ``"above"`` / ``"below"`` the reference object: the
  displacement between centres points mainly that way (a 90-degree cone), clear by
  ``RELATION_MARGIN`` x image size; the reference must itself be named unambiguously.

:func:`matches` returns every object a reader could take an expression to mean (truth not
False). An expression is emitted for a target only when that list is exactly ``[target]``
and it is clearly True of the target (:func:`is_unambiguous`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .scene import CATEGORIES, Scene, SceneObject

POSITION_MARGIN = 0.04
RELATION_MARGIN = 0.04

POSITIONS: dict[str, tuple[int | None, int | None]] = {
    "top left": (0, 0),
    "top right": (0, 2),
    "bottom left": (2, 0),
    "bottom right": (2, 2),
    "top": (0, None),
    "bottom": (2, None),
    "left": (None, 0),
    "right": (None, 2),
    "center": (1, 1),
}
"""Position word -> (row, column) of the 3x3 grid; None leaves that axis free."""

RELATIONS: dict[str, tuple[float, float]] = {
    "left of": (-1.0, 0.0),
    "right of": (1.0, 0.0),
    "above": (0.0, -1.0),
    "below": (0.0, 1.0),
}
"""Relation word -> unit direction from the reference object to the target (y downwards)."""

Truth = bool | None


@dataclass(frozen=True)
class Expression:
    """A structured referring expression (see the module docstring for its meaning)."""

    category: str
    colour: str | None = None
    size: str | None = None
    position: str | None = None
    relation: str | None = None
    reference: Expression | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}; known: {sorted(CATEGORIES)}")
        if self.position is not None and self.position not in POSITIONS:
            raise ValueError(f"unknown position {self.position!r}; known: {list(POSITIONS)}")
        if (self.relation is None) != (self.reference is None):
            raise ValueError("relation and reference must be given together")
        if self.relation is not None:
            if self.relation not in RELATIONS:
                raise ValueError(f"unknown relation {self.relation!r}; known: {list(RELATIONS)}")
            if self.position is not None:
                raise ValueError("an expression has a position or a relation, not both")
            ref = self.reference
            if ref is not None and (ref.relation is not None or ref.position is not None):
                raise ValueError("a reference names category, colour and size only")

    @property
    def cost(self) -> int:
        """How much the expression says: 1 per attribute, 2 + the reference's for a relation."""
        cost = sum(v is not None for v in (self.colour, self.size, self.position))
        if self.reference is not None:
            cost += 2 + self.reference.cost
        return cost


def _all(values: list[Truth]) -> Truth:
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def _in_band(value: float, band: int, image_size: int) -> Truth:
    """Is ``value`` in third ``band`` (0, 1, 2) of [0, image_size], clearly so or clearly not?"""
    margin = POSITION_MARGIN * image_size
    low = -np.inf if band == 0 else band * image_size / 3.0
    high = np.inf if band == 2 else (band + 1) * image_size / 3.0
    if low + margin <= value <= high - margin:
        return True
    if value < low - margin or value > high + margin:
        return False
    return None


def position_truth(position: str, obj: SceneObject, image_size: int) -> Truth:
    """Truth of a position word for an object (three-valued)."""
    row, col = POSITIONS[position]
    parts = []
    if row is not None:
        parts.append(_in_band(obj.cy, row, image_size))
    if col is not None:
        parts.append(_in_band(obj.cx, col, image_size))
    return _all(parts)


def relation_truth(relation: str, target: SceneObject, ref: SceneObject, image_size: int) -> Truth:
    """Truth of "target <relation> ref" (three-valued)."""
    ux, uy = RELATIONS[relation]
    dx, dy = target.cx - ref.cx, target.cy - ref.cy
    along = dx * ux + dy * uy
    across = abs(dx * uy - dy * ux)
    excess, margin = along - across, RELATION_MARGIN * image_size
    if excess >= margin:
        return True
    return False if excess <= -margin else None


class SceneEvaluator:
    """Evaluates expressions on one scene, caching the references it resolves."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self._reference_cache: dict[Expression, tuple[list[int], bool]] = {}

    def truth(self, expression: Expression, index: int) -> Truth:
        """Truth of ``expression`` for object ``index``: True, False or None (either reading)."""
        obj = self.scene.objects[index]
        if obj.category != expression.category:
            return False
        if expression.colour is not None and obj.colour != expression.colour:
            return False
        if expression.size is not None and obj.size != expression.size:
            return False
        size = self.scene.image_size
        if expression.position is not None:
            return position_truth(expression.position, obj, size)
        if expression.reference is None or expression.relation is None:
            return True
        candidates, definite = self._resolve(expression.reference)
        candidates = [j for j in candidates if j != index]
        if not candidates:
            return False
        truths = [
            relation_truth(expression.relation, obj, self.scene.objects[j], size)
            for j in candidates
        ]
        if all(t is False for t in truths):
            return False
        return True if definite and len(candidates) == 1 and truths[0] is True else None

    def _resolve(self, reference: Expression) -> tuple[list[int], bool]:
        if reference not in self._reference_cache:
            found = self.matches(reference)
            definite = len(found) == 1 and self.truth(reference, found[0]) is True
            self._reference_cache[reference] = (found, definite)
        return self._reference_cache[reference]

    def matches(self, expression: Expression) -> list[int]:
        """Indices of every object a reader could take ``expression`` to mean."""
        return [i for i in range(len(self.scene.objects)) if self.truth(expression, i) is not False]

    def is_unambiguous(self, expression: Expression, target: int) -> bool:
        """True when ``expression`` can only mean ``target`` and is clearly true of it."""
        return self.matches(expression) == [target] and self.truth(expression, target) is True


def matches(expression: Expression, scene: Scene) -> list[int]:
    """Indices of the objects of ``scene`` that ``expression`` could refer to."""
    return SceneEvaluator(scene).matches(expression)


def is_unambiguous(expression: Expression, scene: Scene, target: int) -> bool:
    """True when ``expression`` refers to object ``target`` of ``scene`` and to no other."""
    return SceneEvaluator(scene).is_unambiguous(expression, target)


def _attribute_options(obj: SceneObject) -> list[tuple[str | None, str | None]]:
    colours = [None, obj.colour] if len(CATEGORIES[obj.category].colours) > 1 else [None]
    return list(itertools.product(colours, [None, obj.size]))


def reference_names(evaluator: SceneEvaluator) -> dict[int, Expression]:
    """The shortest position-free, relation-free unambiguous name of each object that has one."""
    names = {}
    for index, obj in enumerate(evaluator.scene.objects):
        options = [Expression(obj.category, colour=c, size=s) for c, s in _attribute_options(obj)]
        valid = [e for e in options if evaluator.is_unambiguous(e, index)]
        if valid:
            names[index] = min(valid, key=lambda e: e.cost)
        # A tie keeps the first option (category, then size, then colour, then both).
    return names


def candidate_expressions(
    evaluator: SceneEvaluator, target: int, references: dict[int, Expression]
) -> list[Expression]:
    """Every expression true of ``target`` built from its attributes, clear positions and
    clear relations to uniquely named objects of other categories (not checked for
    uniqueness)."""
    scene = evaluator.scene
    obj = scene.objects[target]
    slots: list[dict] = [{}]
    for position in POSITIONS:
        if position_truth(position, obj, scene.image_size) is True:
            slots.append({"position": position})
    for j, ref in references.items():
        other = scene.objects[j]
        if j == target or other.category == obj.category:
            continue
        for relation in RELATIONS:
            if relation_truth(relation, obj, other, scene.image_size) is True:
                slots.append({"relation": relation, "reference": ref})
    return [
        Expression(obj.category, colour=c, size=s, **slot)
        for slot in slots
        for c, s in _attribute_options(obj)
    ]


def _kind(expression: Expression) -> str:
    if expression.relation is not None:
        return "relation"
    return "position" if expression.position is not None else "attributes"


def choose_expressions(
    scene: Scene,
    rng: np.random.Generator,
    *,
    shortest_prob: float = 0.6,
    second_prob: float = 0.5,
) -> dict[int, list[Expression]]:
    """Pick 1-2 unambiguous expressions for every object that can be named uniquely.

    The first is, with probability ``shortest_prob``, one of the shortest (lowest
    :attr:`Expression.cost`), else one costing one or two more. With probability
    ``second_prob`` a second, different one follows, preferring longer ones of a randomly
    chosen kind (attributes only, position, relation). Objects that cannot be named uniquely
    get no entry.
    """
    evaluator = SceneEvaluator(scene)
    references = reference_names(evaluator)
    chosen: dict[int, list[Expression]] = {}
    for target in range(len(scene.objects)):
        valid = [
            e
            for e in candidate_expressions(evaluator, target, references)
            if evaluator.is_unambiguous(e, target)
        ]
        if not valid:
            continue
        shortest = min(e.cost for e in valid)
        best = [e for e in valid if e.cost == shortest]
        if rng.random() >= shortest_prob:
            best = [e for e in valid if shortest < e.cost <= shortest + 2] or best
        picks = [best[int(rng.integers(len(best)))]]
        rest = [e for e in valid if e != picks[0]]
        if rest and rng.random() < second_prob:
            longer = [e for e in rest if e.cost > shortest] or rest
            kinds = sorted({_kind(e) for e in longer})
            kind = kinds[int(rng.integers(len(kinds)))]
            pool = [e for e in longer if _kind(e) == kind]
            picks.append(pool[int(rng.integers(len(pool)))])
        chosen[target] = picks
    return chosen


# ---------------------------------------------------------------- wording
_POSITION_PHRASES: dict[str, tuple[str, ...]] = {
    "top left": ("at the top left", "in the top left corner", "on the top left"),
    "top right": ("at the top right", "in the top right corner", "on the top right"),
    "bottom left": ("at the bottom left", "in the bottom left corner", "on the bottom left"),
    "bottom right": ("at the bottom right", "in the bottom right corner", "on the bottom right"),
    "top": ("at the top", "on the top side"),
    "bottom": ("at the bottom", "on the bottom side"),
    "left": ("on the left", "on the left side"),
    "right": ("on the right", "on the right side"),
    "center": ("in the center", "in the middle"),
}
_RELATION_PHRASES: dict[str, tuple[str, ...]] = {
    "left of": ("to the left of", "on the left side of", "located to the left of"),
    "right of": ("to the right of", "on the right side of", "located to the right of"),
    "above": ("above", "located above"),
    "below": ("below", "located below"),
}


def pick_option(options: tuple[str, ...], rng: np.random.Generator) -> str:
    """One of ``options``, drawn with ``rng``."""
    return options[int(rng.integers(len(options)))]


def _noun_phrase(expression: Expression, determiner: str) -> str:
    words = [expression.size, expression.colour, CATEGORIES[expression.category].noun]
    phrase = " ".join(w for w in words if w is not None)
    if determiner == "a" and phrase[0] in "aeiou":
        determiner = "an"
    return f"{determiner} {phrase}"


def describe(expression: Expression, rng: np.random.Generator) -> str:
    """Word an expression (lower case, no punctuation), varying the template with ``rng``.

    Examples: "the white storage tank at the bottom right", "a large ship located on the left",
    "the small vehicle to the left of the tennis court", "the red chimney".
    """
    determiner = "a" if rng.random() < 0.2 else "the"
    head = _noun_phrase(expression, determiner)
    if expression.position is not None:
        located = "located " if rng.random() < 0.3 else ""
        return f"{head} {located}{pick_option(_POSITION_PHRASES[expression.position], rng)}"
    if expression.relation is not None and expression.reference is not None:
        relation = pick_option(_RELATION_PHRASES[expression.relation], rng)
        return f"{head} {relation} {_noun_phrase(expression.reference, 'the')}"
    return head
