"""The colours of a checkpoint's classes.

A model whose class names are those of a closed-set dataset (ISPRS Vaihingen/Potsdam, LoveDA)
is drawn in that dataset's label colours; any other model gets Tableau's ten distinct colours,
then matplotlib's ``tab20``, in class order.
"""

from __future__ import annotations

import numpy as np

from bicor.data.palettes import PALETTES, Palette, get_palette


def _fallback_colours(count: int) -> tuple[tuple[int, int, int], ...]:
    from matplotlib import colormaps

    tab10, tab20 = colormaps["tab10"], colormaps["tab20"]
    colours = [tab10(i) for i in range(10)] + [tab20(i) for i in range(1, 20, 2)]
    while len(colours) < count:  # more than 20 classes: cycle through tab20 again
        colours += [tab20(i) for i in range(20)]
    rgb = np.round(np.asarray(colours)[:count, :3] * 255).astype(int)
    return tuple((int(r), int(g), int(b)) for r, g, b in rgb)


def palette_for(class_names: list[str], dataset: str | None = None) -> Palette:
    """The palette to draw ``class_names`` with: ``dataset``'s when given (its classes must be
    these), else the dataset whose class names these are, else generated colours."""
    names = tuple(class_names)
    if dataset is not None:
        palette = get_palette(dataset)
        if palette.class_names != names:
            raise ValueError(
                f"--palette {dataset}: its classes {list(palette.class_names)} are not the "
                f"model's {list(names)}"
            )
        return palette
    for palette in PALETTES.values():
        if palette.class_names == names:
            return palette
    return Palette(name="model", class_names=names, colours=_fallback_colours(len(names)))
