"""Write the HBIS heatmaps of one image: one picture per class per layer.

    python scripts/show_heatmaps.py --checkpoint runs/synthetic_seg/checkpoints/best \
        --image datasets/synthetic_seg/val/images/val_00000.png --out runs/heatmaps
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from bicor.data.synthetic_seg import normalize_image
from bicor.heatmaps import MODES, compute_heatmaps, save_heatmaps
from bicor.models import load_bicor


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="a saved BiCoR model folder")
    parser.add_argument("--image", required=True, type=Path, help="an RGB image file")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--size", type=int, default=None, help="resize the image to SIZE first")
    parser.add_argument("--mode", choices=MODES, default="sigmoid")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    model = load_bicor(args.checkpoint, map_location=args.device)
    picture = Image.open(args.image).convert("RGB")
    if args.size is not None:
        picture = picture.resize((args.size, args.size), Image.BILINEAR)
    image = np.asarray(picture)
    pixel_values = normalize_image(image).unsqueeze(0).to(args.device)  # (1, 3, H, W)
    heatmaps = compute_heatmaps(model, pixel_values)
    paths = save_heatmaps(
        heatmaps, args.out, class_names=model.class_names, image=image, mode=args.mode
    )
    print(
        f"wrote {len(paths)} heatmaps ({len(heatmaps)} layers x {model.num_classes} classes) "
        f"to {args.out}"
    )


if __name__ == "__main__":
    main()
