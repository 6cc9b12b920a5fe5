"""Synthetic referring benchmark in RRSIS-D's exact on-disk format.

Aerial-like scenes (textured ground, fields, roads) hold 3-7 non-overlapping objects of eight
RRSIS-D categories (airplane, baseballfield, chimney, ship, storagetank, tenniscourt, vehicle,
windmill), each with its own silhouette, a colour, a size class and an orientation. Each object
that can be named uniquely gets 1-2 expressions ("the white storage tank at the bottom right",
"the small vehicle to the left of the tennis court"), checked by an evaluator to refer to
exactly that object. The output is read with ``build_referring_dataset("rrsisd", ...)``.
"""

from .expressions import (
    POSITIONS,
    RELATIONS,
    Expression,
    SceneEvaluator,
    choose_expressions,
    describe,
    is_unambiguous,
    matches,
)
from .scene import (
    CATEGORIES,
    PALETTE,
    RRSISD_CATEGORIES,
    CategorySpec,
    Scene,
    SceneObject,
    render_scene,
    sample_scene,
)
from .writer import (
    SyntheticImage,
    format_stats,
    generate_synthetic_rrsisd,
    make_synthetic_image,
    summarise,
)

__all__ = [
    "CATEGORIES",
    "PALETTE",
    "POSITIONS",
    "RELATIONS",
    "RRSISD_CATEGORIES",
    "CategorySpec",
    "Expression",
    "Scene",
    "SceneEvaluator",
    "SceneObject",
    "SyntheticImage",
    "choose_expressions",
    "describe",
    "format_stats",
    "generate_synthetic_rrsisd",
    "is_unambiguous",
    "make_synthetic_image",
    "matches",
    "render_scene",
    "sample_scene",
    "summarise",
]
