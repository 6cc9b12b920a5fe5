"""Write the HBIS heatmaps of one image: one picture per class per layer.

    python scripts/show_heatmaps.py --checkpoint runs/synthetic_seg/checkpoints/best \\
        --image datasets/synthetic_seg/val/images/val_00000.png --out runs/heatmaps
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from bicor.data.synthetic_seg import normalize_image
from bicor.heatmaps import MODES, compute_heatmaps, save_heatmaps
from bicor.models import load_bicor
from bicor.predict.cli import pick_device
from btdnet.cli_options import add_device_option
from btdnet.raster.image_io import ImageReadError, read_image


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Draw the heatmaps; bad input is one ``PROG: error:`` line and exit 1."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="a saved BiCoR model folder")
    parser.add_argument("--image", required=True, type=Path, help="an RGB image file")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--size", type=int, default=None, help="resize the image to SIZE first")
    parser.add_argument("--mode", choices=MODES, default="sigmoid")
    add_device_option(parser)
    args = parser.parse_args(argv)
    try:
        device = pick_device(args.device)
        model = load_bicor(args.checkpoint, map_location=device)
        picture = Image.fromarray(read_image(args.image).pixels)
        if args.size is not None:
            picture = picture.resize((args.size, args.size), Image.BILINEAR)
        image = np.asarray(picture)
        pixel_values = normalize_image(image).unsqueeze(0).to(device)  # (1, 3, H, W)
        heatmaps = compute_heatmaps(model, pixel_values)
        paths = save_heatmaps(
            heatmaps, args.out, class_names=model.class_names, image=image, mode=args.mode
        )
    except (ImageReadError, ValueError, OSError, RuntimeError, MemoryError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"{parser.prog}: error: {reason}", file=sys.stderr)
        return 1
    print(
        f"wrote {len(paths)} heatmaps ({len(heatmaps)} layers x {model.num_classes} classes) "
        f"to {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
