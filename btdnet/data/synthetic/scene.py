"""Aerial-like synthetic scenes: sampling object layouts and rendering them with numpy and PIL.

A :class:`Scene` is a pure description (objects with category, colour, size class, centre,
orientation); :func:`render_scene` turns it into an RGB image and one boolean mask per object,
deterministically (the background texture comes from ``Scene.texture_seed``). Image
coordinates: x to the right, y downwards, in pixels; angles in radians.

Categories use RRSIS-D's names and ids, and each has its own silhouette so that a small image
encoder can tell them apart. Objects never overlap: placement rejects any object whose
bounding circle touches another one's, and every bounding circle stays inside the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

RRSISD_CATEGORIES: tuple[str, ...] = (
    "airplane",
    "airport",
    "baseballfield",
    "basketballcourt",
    "bridge",
    "chimney",
    "dam",
    "Expressway-Service-area",
    "Expressway-toll-station",
    "golffield",
    "groundtrackfield",
    "harbor",
    "overpass",
    "ship",
    "stadium",
    "storagetank",
    "tenniscourt",
    "trainstation",
    "vehicle",
    "windmill",
)
"""RRSIS-D's 20 category names; the position in this tuple is the category id."""

PALETTE: dict[str, tuple[int, int, int]] = {
    "white": (236, 236, 230),
    "grey": (140, 142, 146),
    "black": (36, 36, 40),
    "red": (192, 46, 40),
    "blue": (44, 82, 186),
    "green": (58, 142, 70),
    "yellow": (226, 196, 48),
}
"""Named object colours (the colour words of the expressions)."""

SIZE_CLASSES: tuple[str, ...] = ("small", "large")
LARGE_FACTOR = 1.65
"""A large object is this many times longer than a small one of its category (before jitter)."""
SIZE_JITTER = 0.08


@dataclass(frozen=True)
class CategorySpec:
    """How one drawable category looks and is named.

    ``length`` is the small object's length as a fraction of the image size; ``shadow`` is
    the shadow offset as a fraction of the length; ``radius`` is the bounding-circle radius as a
    fraction of the length; ``noun`` is the category's words in an expression.
    """

    name: str
    noun: str
    colours: tuple[str, ...]
    length: float
    shadow: float
    radius: float

    @property
    def category_id(self) -> int:
        """RRSIS-D category id."""
        return RRSISD_CATEGORIES.index(self.name)


CATEGORIES: dict[str, CategorySpec] = {
    spec.name: spec
    for spec in (
        CategorySpec("vehicle", "vehicle", ("white", "grey", "black", "red", "blue", "yellow"),
                     0.075, 0.15, 0.56),
        CategorySpec("airplane", "airplane", ("white", "grey", "blue", "red"), 0.13, 0.12, 0.53),
        CategorySpec("ship", "ship", ("white", "grey", "black", "red", "blue"), 0.13, 0.12, 0.52),
        CategorySpec("storagetank", "storage tank", ("white", "grey", "green"), 0.085, 0.25, 0.5),
        CategorySpec("tenniscourt", "tennis court", ("green", "blue", "red"), 0.13, 0.0, 0.57),
        CategorySpec("chimney", "chimney", ("red", "grey", "white"), 0.05, 2.5, 0.71),
        CategorySpec("windmill", "windmill", ("white", "grey"), 0.15, 0.8, 0.5),
        CategorySpec("baseballfield", "baseball field", ("green",), 0.15, 0.0, 0.74),
    )
}  # fmt: skip
"""The drawn categories (a subset of RRSIS-D's 20)."""


@dataclass(frozen=True)
class SceneObject:
    """One object: category name, colour word, size class, centre (px), angle (rad), length (px)."""

    category: str
    colour: str
    size: str
    cx: float
    cy: float
    angle: float
    length: float

    @property
    def radius(self) -> float:
        """Radius (px) of a circle around the centre that holds the whole object."""
        return CATEGORIES[self.category].radius * self.length


@dataclass(frozen=True)
class Scene:
    """A square scene of ``image_size`` pixels: its objects, sun direction and texture seed.

    ``contrast`` and ``edge_blur`` are how it is drawn (stress regimes,
    ``btdnet.data.synthetic.regimes``): 1 and 0 draw objects and shadows at full strength with
    sharp edges.
    """

    image_size: int
    objects: tuple[SceneObject, ...]
    sun_angle: float
    texture_seed: int
    contrast: float = 1.0
    edge_blur: float = 0.0


def sample_scene(
    rng: np.random.Generator,
    *,
    image_size: int,
    min_objects: int = 3,
    max_objects: int = 7,
    distractor_prob: float = 0.7,
    distractor_instances: tuple[int, int] = (2, 3),
    size_scale: float = 1.0,
    contrast: float = 1.0,
    edge_blur: float = 0.0,
) -> Scene:
    """Draw a scene: ``min_objects``..``max_objects`` non-overlapping objects.

    With probability ``distractor_prob`` one category is given ``distractor_instances``
    (fewest, most; 2-3 by default) instances up front, so that most scenes hold same-category
    distractors. Object lengths are multiplied by ``size_scale``; ``contrast`` and
    ``edge_blur`` are stored for :func:`render_scene`. An object that cannot be placed after
    200 tries is left out (rare), so a scene may hold fewer objects than drawn.
    """
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32, got {image_size}")
    low, high = distractor_instances
    if not 1 <= low <= high or min_objects > max_objects or size_scale <= 0:
        raise ValueError(
            f"bad scene options: distractor_instances {distractor_instances}, objects "
            f"{min_objects}..{max_objects}, size_scale {size_scale}"
        )
    if not 0.0 < contrast <= 1.0 or edge_blur < 0:
        raise ValueError(f"contrast must lie in (0, 1] and edge_blur be >= 0 (got {contrast}, "
                         f"{edge_blur})")  # fmt: skip
    names = list(CATEGORIES)
    count = int(rng.integers(min_objects, max_objects + 1))
    categories: list[str] = []
    if rng.random() < distractor_prob:
        categories += [names[int(rng.integers(len(names)))]] * int(rng.integers(low, high + 1))
    while len(categories) < count:
        categories.append(names[int(rng.integers(len(names)))])
    categories = categories[:count]

    drafts = []
    for name in categories:
        spec = CATEGORIES[name]
        size = SIZE_CLASSES[int(rng.integers(2))]
        jitter = 1.0 + SIZE_JITTER * (2.0 * rng.random() - 1.0)
        length = spec.length * image_size * jitter * (LARGE_FACTOR if size == "large" else 1.0)
        length *= size_scale
        colour = spec.colours[int(rng.integers(len(spec.colours)))]
        angle = 0.0 if name == "storagetank" else float(rng.uniform(0.0, 2.0 * np.pi))
        drafts.append((name, colour, size, angle, length))
    drafts.sort(key=lambda d: -d[4] * CATEGORIES[d[0]].radius)  # big objects first: they pack

    placed: list[SceneObject] = []
    gap = max(2.0, 0.01 * image_size)
    for name, colour, size, angle, length in drafts:
        radius = CATEGORIES[name].radius * length
        low, high = radius + 1.0, image_size - radius - 1.0
        if high <= low:
            continue
        for _ in range(200):
            cx, cy = rng.uniform(low, high, size=2)
            if all(np.hypot(cx - o.cx, cy - o.cy) >= radius + o.radius + gap for o in placed):
                placed.append(SceneObject(name, colour, size, float(cx), float(cy), angle, length))
                break
    order = rng.permutation(len(placed))
    return Scene(
        image_size=image_size,
        objects=tuple(placed[i] for i in order),
        sun_angle=float(rng.uniform(0.0, 2.0 * np.pi)),
        texture_seed=int(rng.integers(2**31)),
        contrast=float(contrast),
        edge_blur=float(edge_blur),
    )


# ---------------------------------------------------------------- shapes (local coordinates)
# A shape is (body polygons, details). x runs along the object's length, y across it, in units
# of the length; the origin is the object's centre. Details are (kind, points, tone, width):
# kind "poly" fills a polygon, "line" strokes a polyline; they lie inside the body.


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 28) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def _rounded_rect(w: float, h: float, r: float, n: int = 5) -> np.ndarray:
    corners = ((w / 2 - r, h / 2 - r, 0.0), (-w / 2 + r, h / 2 - r, 0.5 * np.pi),
               (-w / 2 + r, -h / 2 + r, np.pi), (w / 2 - r, -h / 2 + r, 1.5 * np.pi))  # fmt: skip
    pts = []
    for cx, cy, start in corners:
        t = start + np.linspace(0.0, 0.5 * np.pi, n)
        pts.append(np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1))
    return np.concatenate(pts)


def _sector(radius: float, half_angle: float, shift: float, n: int = 24) -> np.ndarray:
    t = np.linspace(-half_angle, half_angle, n)
    arc = np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)
    return np.concatenate([[[0.0, 0.0]], arc]) - [shift, 0.0]


def _mirror(points: np.ndarray) -> np.ndarray:
    return points * [1.0, -1.0]


def _shape(category: str) -> tuple[list[np.ndarray], list[tuple[str, np.ndarray, str, float]]]:
    if category == "vehicle":
        body = [_rounded_rect(1.0, 0.48, 0.14)]
        details = [("poly", _rect(0.12, -0.19, 0.25, 0.19), "glass", 0.0),
                   ("poly", _rect(-0.42, -0.18, -0.33, 0.18), "glass", 0.0)]  # fmt: skip
    elif category == "airplane":
        wing = np.array([[0.12, 0.05], [-0.1, 0.48], [-0.21, 0.48], [-0.07, 0.05]])
        tail = np.array([[-0.35, 0.04], [-0.45, 0.2], [-0.5, 0.2], [-0.47, 0.04]])
        body = [_ellipse(0.0, 0.0, 0.5, 0.07), wing, _mirror(wing), tail, _mirror(tail)]
        details = [("poly", _ellipse(-0.02, 0.24, 0.07, 0.03, 12), "shade", 0.0),
                   ("poly", _ellipse(-0.02, -0.24, 0.07, 0.03, 12), "shade", 0.0)]  # fmt: skip
    elif category == "ship":
        body = [np.array([[-0.5, -0.13], [0.2, -0.13], [0.5, 0.0], [0.2, 0.13], [-0.5, 0.13]])]
        details = [("poly", _rect(-0.42, -0.08, -0.18, 0.08), "contrast", 0.0),
                   ("line", np.array([[-0.1, 0.0], [0.3, 0.0]]), "shade", 0.02)]  # fmt: skip
    elif category == "storagetank":
        body = [_ellipse(0.0, 0.0, 0.5, 0.5, 40)]
        details = [("poly", _ellipse(0.0, 0.0, 0.41, 0.41, 40), "light", 0.0),
                   ("poly", _ellipse(0.0, 0.0, 0.07, 0.07, 16), "shade", 0.0)]  # fmt: skip
    elif category == "tenniscourt":
        body = [_rect(-0.5, -0.26, 0.5, 0.26)]
        outer = np.concatenate([_rect(-0.43, -0.2, 0.43, 0.2), [[-0.43, -0.2]]])
        details = [("line", outer, "white", 0.03),
                   ("line", np.array([[0.0, -0.23], [0.0, 0.23]]), "white", 0.03),
                   ("line", np.array([[-0.25, -0.2], [-0.25, 0.2]]), "white", 0.02),
                   ("line", np.array([[0.25, -0.2], [0.25, 0.2]]), "white", 0.02),
                   ("line", np.array([[-0.25, 0.0], [0.25, 0.0]]), "white", 0.02)]  # fmt: skip
    elif category == "chimney":
        body = [_rect(-0.5, -0.5, 0.5, 0.5)]
        details = [("poly", _ellipse(0.0, 0.0, 0.24, 0.24, 16), "hole", 0.0)]
    elif category == "windmill":
        blade = np.array([[0.05, -0.05], [0.5, -0.025], [0.5, 0.025], [0.05, 0.05]])
        body = [_ellipse(0.0, 0.0, 0.08, 0.08, 16)]
        for k in range(3):
            c, s = np.cos(2.0 * np.pi * k / 3), np.sin(2.0 * np.pi * k / 3)
            body.append(blade @ np.array([[c, s], [-s, c]]))
        details = [("poly", _ellipse(0.0, 0.0, 0.04, 0.04, 12), "shade", 0.0)]
    elif category == "baseballfield":
        half, shift = 0.25 * np.pi, np.array([0.5, 0.0])
        home, centre = np.array([0.04, 0.0]), np.array([0.27, 0.0])
        diamond = np.array([home, [0.27, -0.23], [0.5, 0.0], [0.27, 0.23]])
        infield = centre + 0.55 * (diamond - centre)
        body = [_sector(1.0, half, 0.5)]
        details = [("poly", _sector(1.0, half, 0.5), "dirt", 0.0),
                   ("poly", _sector(0.93, half, 0.5), "base", 0.0),
                   ("poly", diamond - shift, "dirt", 0.0),
                   ("poly", infield - shift, "base", 0.0),
                   ("poly", _ellipse(-0.23, 0.0, 0.035, 0.035, 10), "dirt", 0.0)]  # fmt: skip
    else:
        raise KeyError(f"no shape for category {category!r}; known: {sorted(CATEGORIES)}")
    return body, details


def _tone(kind: str, colour: str) -> tuple[int, int, int]:
    base = np.array(PALETTE[colour], dtype=np.float64)
    bright = base.mean() > 170
    if kind == "base":
        out = base
    elif kind == "shade":
        out = base * 0.6
    elif kind == "light":
        out = base * 0.82 if bright else base + (255.0 - base) * 0.3
    elif kind == "contrast":
        out = base * 0.62 if bright else base + (255.0 - base) * 0.6
    elif kind == "glass":
        out = np.array([70.0, 84.0, 96.0]) if base.mean() < 60 else base * 0.3
    elif kind == "hole":
        out = np.array([28.0, 26.0, 24.0])
    elif kind == "white":
        out = np.array([240.0, 240.0, 236.0])
    elif kind == "dirt":
        out = np.array([178.0, 138.0, 96.0])
    else:
        raise KeyError(f"unknown tone {kind!r}")
    return tuple(int(v) for v in np.clip(out, 0, 255))


def _to_world(points: np.ndarray, obj: SceneObject) -> list[tuple[float, float]]:
    c, s = np.cos(obj.angle), np.sin(obj.angle)
    world = points * obj.length @ np.array([[c, s], [-s, c]]) + [obj.cx, obj.cy]
    return [(float(x), float(y)) for x, y in world]


def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (monotone chain) of a small point set."""
    pts = sorted({(float(x), float(y)) for x, y in points})
    if len(pts) < 3:
        return np.array(pts)

    def half(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for p in seq:
            while len(out) >= 2:
                (ax, ay), (bx, by) = out[-2], out[-1]
                if (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) > 0:
                    break
                out.pop()
            out.append(p)
        return out

    return np.array(half(pts)[:-1] + half(pts[::-1])[:-1])


# ---------------------------------------------------------------- rendering
_GROUND = np.array([[170, 150, 114], [126, 128, 90], [142, 116, 86], [152, 146, 128]], float)
_FIELDS = np.array([[96, 122, 70], [164, 144, 104], [118, 98, 74], [132, 140, 96]], float)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Ground with fields (striped patches), low-frequency noise and 0-2 roads; (S, S, 3) uint8."""
    base = _GROUND[int(rng.integers(len(_GROUND)))]
    labels = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(labels)
    n_fields = int(rng.integers(2, 6))
    for k in range(1, n_fields + 1):
        w, h = rng.uniform(0.2, 0.6, size=2) * size
        cx, cy = rng.uniform(0.0, size, size=2)
        a = rng.uniform(-0.3, 0.3) + (0.5 * np.pi if rng.random() < 0.5 else 0.0)
        c, s = np.cos(a), np.sin(a)
        corners = _rect(-w / 2, -h / 2, w / 2, h / 2) @ np.array([[c, s], [-s, c]]) + [cx, cy]
        draw.polygon([(float(x), float(y)) for x, y in corners], fill=k)
    tones = np.concatenate([[base], 0.5 * base + 0.5 * _FIELDS[rng.integers(4, size=n_fields)]])
    tones *= rng.uniform(0.9, 1.1, size=(n_fields + 1, 1))
    angles = rng.uniform(0.0, np.pi, size=n_fields + 1)
    freqs = rng.uniform(0.5, 1.4, size=n_fields + 1)
    amps = np.where(rng.random(n_fields + 1) < 0.7, rng.uniform(0.03, 0.08, n_fields + 1), 0.0)
    amps[0] = 0.0
    lab = np.asarray(labels)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    phase = freqs[lab] * (xx * np.cos(angles)[lab] + yy * np.sin(angles)[lab])
    stripes = 1.0 + amps[lab] * np.sin(phase)
    coarse = Image.fromarray(rng.uniform(0.88, 1.12, size=(6, 6)).astype(np.float32), mode="F")
    low = np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC))
    image = tones[lab] * (stripes * low)[..., None]
    canvas = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))

    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.choice(3, p=[0.25, 0.5, 0.25]))):
        a = (0.5 * np.pi * int(rng.integers(2)) + rng.uniform(-0.15, 0.15)
             if rng.random() < 0.6 else rng.uniform(0.0, np.pi))  # fmt: skip
        d = np.array([np.cos(a), np.sin(a)])
        p = rng.uniform(0.2, 0.8, size=2) * size
        width = round(float(rng.uniform(0.05, 0.08)) * size)
        grey = int(rng.integers(78, 100))
        ends = [tuple(p - 2 * size * d), tuple(p + 2 * size * d)]
        draw.line(ends, fill=(grey, grey, grey + 4), width=max(width, 3))
        period, dash = 0.08 * size, 0.04 * size
        for t in np.arange(-1.5 * size, 1.5 * size, period):
            seg = [tuple(p + t * d), tuple(p + (t + dash) * d)]
            draw.line(seg, fill=(222, 222, 212), width=max(1, round(0.008 * size)))
    return np.asarray(canvas)


def render_scene(scene: Scene) -> tuple[np.ndarray, list[np.ndarray]]:
    """Render a scene. Returns the RGB image (S, S, 3) uint8 and one (S, S) bool mask per object.

    Masks hold the object's body (no shadow); they are exactly the pixels drawn for it.
    """
    size = scene.image_size
    rng = np.random.default_rng(scene.texture_seed)
    ground = _background(rng, size).astype(np.float32)

    shadow = Image.new("L", (size, size), 0)
    sdraw = ImageDraw.Draw(shadow)
    sun = np.array([np.cos(scene.sun_angle), np.sin(scene.sun_angle)])
    for obj in scene.objects:
        spec = CATEGORIES[obj.category]
        if spec.shadow <= 0.0:
            continue
        offset = sun * spec.shadow * obj.length
        body, _ = _shape(obj.category)
        if obj.category == "windmill":
            hub = np.array([obj.cx, obj.cy])
            sdraw.line(
                [tuple(hub), tuple(hub + offset)], fill=255, width=max(2, int(0.05 * obj.length))
            )
            for poly in body:
                sdraw.polygon(
                    [(x + offset[0], y + offset[1]) for x, y in _to_world(poly, obj)], fill=255
                )
            continue
        for poly in body:
            world = np.array(_to_world(poly, obj))
            swept = _hull(np.concatenate([world, world + offset]))
            sdraw.polygon([(float(x), float(y)) for x, y in swept], fill=255)
    darkness = 0.55 if scene.contrast >= 1.0 else 1.0 - 0.45 * scene.contrast
    ground *= np.where(np.asarray(shadow)[..., None] > 0, darkness, 1.0).astype(np.float32)

    canvas = Image.fromarray(ground.astype(np.uint8))
    labels = Image.new("L", (size, size), 0)
    draw, ldraw = ImageDraw.Draw(canvas), ImageDraw.Draw(labels)
    for index, obj in enumerate(scene.objects):
        body, details = _shape(obj.category)
        fill = _tone("base", obj.colour)
        for poly in body:
            world = _to_world(poly, obj)
            draw.polygon(world, fill=fill)
            ldraw.polygon(world, fill=index + 1)
        for kind, points, tone, width in details:
            colour = _tone(tone, obj.colour)
            if kind == "poly":
                draw.polygon(_to_world(points, obj), fill=colour)
            else:
                draw.line(
                    _to_world(points, obj), fill=colour, width=max(1, round(width * obj.length))
                )

    drawn = np.asarray(canvas, dtype=np.float32)
    lab = np.asarray(labels)
    if scene.contrast < 1.0 or scene.edge_blur > 0.0:
        drawn = _soften(ground, drawn, lab > 0, scene.contrast, scene.edge_blur)
    grain = rng.normal(0.0, 4.0, size=(size, size, 1)).astype(np.float32)
    image = np.clip(drawn + grain, 0, 255).astype(np.uint8)
    return image, [lab == index + 1 for index in range(len(scene.objects))]


def _soften(
    ground: np.ndarray, drawn: np.ndarray, inside: np.ndarray, contrast: float, blur: float
) -> np.ndarray:
    """Objects blended to ``contrast`` of the way from the ground and their edges blurred.

    ``ground`` and ``drawn`` are (S, S, 3) float images without and with the objects,
    ``inside`` the (S, S) union of the object masks. The object layer's opacity is the mask
    blurred by a Gaussian of radius ``blur`` times ``contrast``: (S, S, 3) float.
    """
    alpha = Image.fromarray((inside * 255).astype(np.uint8))
    if blur > 0.0:
        alpha = alpha.filter(ImageFilter.GaussianBlur(radius=blur))
    opacity = (np.asarray(alpha, dtype=np.float32) / 255.0 * contrast)[..., None]  # (S, S, 1)
    return ground * (1.0 - opacity) + drawn * opacity
