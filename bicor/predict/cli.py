"""``bicor-predict``: segment an image or a scene into land-cover classes with BiCoR-Seg.

    bicor-predict --checkpoint runs/vaihingen/checkpoints/best --image tile.tif --out out/

Writes ``<stem>_classes.tif`` (GeoTIFF input; PNG otherwise) with the palette,
``<stem>_overlay.png`` with a legend and ``<stem>_areas.json`` (see
:mod:`bicor.predict.outputs`), and prints one JSON line. Any image size: the image is
predicted tile by tile (btdnet's tiling, :mod:`bicor.predict.scene`). Every problem is one
``bicor-predict: error:`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bicor.data.palettes import PALETTES
from bicor.tta import TTA_WORDS, parse_tta_spec
from btdnet.cli_options import add_device_option, add_progress_option
from btdnet.safe_write import check_output_folder
from btdnet.tiling import DEFAULT_SCENE_MAX_PIXELS, DEFAULT_SCENE_MAX_TILES

PROG = "bicor-predict"
TILE_TTA_WORDS = tuple(word for word in TTA_WORDS if not word.startswith("authors"))
EXIT_OK, EXIT_FATAL = 0, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Land-cover class map of an image or a large scene with a BiCoR-Seg "
        "checkpoint, tile by tile: class map (GeoTIFF or PNG, with the palette), overlay with "
        "a legend, per-class areas (JSON).",
    )
    parser.add_argument("--checkpoint", required=True, help="BiCoR-Seg folder or Hub repo id")
    parser.add_argument(
        "--revision",
        default=None,
        help="with a Hub repo id: the branch, tag or commit to load (default: main)",
    )
    parser.add_argument("--image", required=True, type=Path, help="GeoTIFF, TIFF, PNG or JPEG")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    parser.add_argument(
        "--tile",
        default="auto",
        metavar="SIZE|auto",
        help="tile side in pixels (default auto: the model's input size)",
    )
    parser.add_argument(
        "--overlap", type=int, metavar="PX", help="pixels shared by neighbouring tiles, at most "
        "half a tile (default: tile/8); overlapping logits are blended with cos^2 weights"
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass")
    parser.add_argument(
        "--scene-max-pixels",
        type=int,
        default=DEFAULT_SCENE_MAX_PIXELS,
        metavar="N",
        help="refuse an image with more pixels; 0: no limit "
        f"(default {DEFAULT_SCENE_MAX_PIXELS:,})",
    )
    parser.add_argument(
        "--scene-max-tiles",
        type=int,
        default=DEFAULT_SCENE_MAX_TILES,
        metavar="N",
        help="refuse an image needing more tiles; 0: no limit "
        f"(default {DEFAULT_SCENE_MAX_TILES:,})",
    )
    add_device_option(parser)
    parser.add_argument(
        "--tta",
        metavar="WORDS",
        help=f"test-time views averaged on each tile, comma-separated among "
        f"{', '.join(TILE_TTA_WORDS)} (default: none)",
    )
    add_progress_option(parser)
    parser.add_argument(
        "--palette",
        choices=sorted(PALETTES),
        help="draw in this dataset's colours (default: the dataset whose class names the model "
        "has, else generated colours)",
    )
    return parser


def pick_device(name: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``mps``, else ``cpu``; another name as given
    (checked)."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    device = torch.device(name)  # RuntimeError for a name torch does not know
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"--device {name}: CUDA is not available on this machine")
    return name


def prepare_out(out: Path) -> None:
    """Refuse, before the slow model load, an ``--out`` that is a link (nothing is written
    elsewhere), a file, or a folder that cannot be written into (tested by writing, as
    ``access()`` does not tell for every user); an absent one is only checked, not created."""
    check_output_folder(out)
    if not out.exists():
        parent = next(p for p in out.absolute().parents if p.exists() or p.is_symlink())
        if not parent.is_dir():
            raise NotADirectoryError(f"{out}: {parent} is not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise PermissionError(f"{out}: cannot create the output folder in {parent}")
        return
    try:
        probe, name = tempfile.mkstemp(prefix=".bicor-write-test-", dir=out)
    except OSError as exc:
        raise PermissionError(f"{out}: output folder is not writable ({exc.strerror})") from exc
    os.close(probe)
    os.unlink(name)


def _run(args: argparse.Namespace) -> dict:
    from bicor.models import load_bicor
    from bicor.predict.outputs import write_outputs
    from bicor.predict.palette import palette_for
    from bicor.predict.scene import SegmentOptions
    from btdnet.raster.source import SceneSource

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.scene_max_pixels < 0 or args.scene_max_tiles < 0:
        raise ValueError("--scene-max-pixels and --scene-max-tiles must be >= 0 (0: no limit)")
    if any(word.strip().startswith("authors") for word in (args.tta or "").split(",")):
        raise ValueError(f"--tta: the authors' settings belong to a data set; use {TILE_TTA_WORDS}")
    tta = parse_tta_spec(args.tta)
    if not args.image.is_file():
        state = "not found" if not args.image.exists() else "is not a file"
        raise ValueError(f"{args.image}: image file {state}")
    prepare_out(args.out)  # a bad folder is refused before the slow model load
    device = pick_device(args.device)
    model = load_bicor(args.checkpoint, map_location=device, revision=args.revision)
    palette = palette_for(model.class_names, args.palette)
    options = SegmentOptions(
        args.tile,
        args.overlap,
        args.batch_size,
        tta,
        device,
        max_pixels=args.scene_max_pixels or None,
        max_tiles=args.scene_max_tiles or None,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    with SceneSource(args.image) as source:
        return write_outputs(model, source, args.out, palette, options, progress=args.progress)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bicor-predict``; returns the exit status."""
    args = build_parser().parse_args(argv)
    from btdnet.raster.image_io import ImageReadError

    try:
        record = _run(args)
    except (ValueError, OSError, ImportError, RuntimeError, MemoryError, ImageReadError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        if "BTDNet referring checkpoint" in text:
            text += "; btdnet-predict runs referring checkpoints"
        print(f"{PROG}: error: {text}", file=sys.stderr)
        return EXIT_FATAL
    print(json.dumps(record))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
