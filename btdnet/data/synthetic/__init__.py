"""Synthetic referring benchmark in RRSIS-D's exact on-disk format.

Aerial-like scenes (textured ground, fields, roads) hold 3-7 non-overlapping objects of eight
RRSIS-D categories (airplane, baseballfield, chimney, ship, storagetank, tenniscourt, vehicle,
windmill), each with its own silhouette, a colour, a size class and an orientation. Each object
that can be named uniquely gets 1-2 expressions ("the white storage tank at the bottom right",
"the small vehicle to the left of the tennis court"), checked by an evaluator to refer to
exactly that object. The output is read with ``build_referring_dataset("rrsisd", ...)``.

The generalized mode (:func:`generate_synthetic_grefs`) writes the same scenes in the gRefCOCO
format, adding multi-target and no-target expressions (``build_referring_dataset("grefs",
...)``).
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
from .generalized import (
    NO_TARGET_KINDS,
    choose_generalized,
    describe_multi,
    multi_target_expressions,
    no_target_expressions,
)
from .grefs_writer import format_grefs_stats, generate_synthetic_grefs, summarise_grefs
from .regimes import REGIMES, Regime, get_regime
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
    "NO_TARGET_KINDS",
    "PALETTE",
    "POSITIONS",
    "REGIMES",
    "RELATIONS",
    "RRSISD_CATEGORIES",
    "CategorySpec",
    "Expression",
    "Regime",
    "Scene",
    "SceneEvaluator",
    "SceneObject",
    "SyntheticImage",
    "choose_expressions",
    "choose_generalized",
    "describe",
    "describe_multi",
    "format_grefs_stats",
    "format_stats",
    "generate_synthetic_grefs",
    "generate_synthetic_rrsisd",
    "get_regime",
    "is_unambiguous",
    "make_synthetic_image",
    "matches",
    "multi_target_expressions",
    "no_target_expressions",
    "render_scene",
    "sample_scene",
    "summarise",
    "summarise_grefs",
]
