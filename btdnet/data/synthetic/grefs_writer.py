"""Write the generalized synthetic benchmark in the gRefCOCO format (``--dataset grefs``).

Output under ``out_dir`` (read by :func:`btdnet.data.grefs.load_grefs_records`)::

    grefs(unc).json      refs: single-target (one annotation), multi-target (several),
                         no-target (ann_id [-1], no_target true)
    instances.json       COCO: images, every object as an annotation (RLE), categories
    images/NNNNN.jpg     the scenes, JPEG quality 95
    synthetic.json       the generation arguments and statistics (ignored by loaders)

The scenes and single-target expressions are exactly those of the RRSIS-D-format generator
for the same seed and split sizes; multi-target and no-target expressions are added per image
(:mod:`.generalized`) from a separate random stream, so that ``multi_target_share`` and
``no_target_share`` of all expressions (in expectation) are of those kinds.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from btdnet.safe_write import write_text_atomic

from .generalized import choose_generalized
from .scene import CATEGORIES, RRSISD_CATEGORIES
from .writer import (
    SPLIT_CODES,
    check_synthetic_arguments,
    claim_output_folder,
    each_image,
    make_synthetic_image,
    save_jpeg,
    sentence_entry,
    write_record,
)

REFS_NAME = "grefs(unc).json"
INSTANCES_NAME = "instances.json"
IMAGES_NAME = "images"
GENERALIZED_STREAM = 7  # the extra seed element of the generalized expressions' random stream


def _random_round(value: float, rng: np.random.Generator) -> int:
    whole = int(np.floor(value))
    return whole + int(rng.random() < value - whole)


def _check_shares(multi_target_share: float, no_target_share: float) -> None:
    for name, share in (("multi_target_share", multi_target_share),
                        ("no_target_share", no_target_share)):  # fmt: skip
        if not 0.0 <= share < 1.0:
            raise ValueError(f"{name} must lie in [0, 1), got {share}")
    if multi_target_share + no_target_share >= 1.0:
        raise ValueError("multi_target_share + no_target_share must stay below 1")


class _Refs:
    """Collects refs with running ids."""

    def __init__(self) -> None:
        self.refs: list[dict[str, Any]] = []
        self.sent_id = 0

    def add(self, image: dict, split: str, ann_ids: list[int], category_ids: list[int],
            texts: list[str]) -> None:  # fmt: skip
        sentences = []
        for text in texts:
            sentences.append(sentence_entry(self.sent_id, text))
            self.sent_id += 1
        self.refs.append({
            "ref_id": len(self.refs), "image_id": image["id"], "ann_id": ann_ids or [-1],
            "category_id": category_ids, "split": split,
            "sent_ids": [s["sent_id"] for s in sentences], "sentences": sentences,
            "no_target": not ann_ids, "file_name": image["file_name"],
        })  # fmt: skip


def _write_image(
    out: Path, split: str, index: int, image_id: int, first_ann: int, options: dict[str, Any]
) -> tuple[dict, list[dict], list[tuple], list[tuple]]:
    """Render one scene; return its image entry, annotations and the expressions to add."""
    sample = make_synthetic_image(options["seed"], split, index, image_size=options["size"])
    file_name = f"{image_id:05d}.jpg"
    save_jpeg(out / IMAGES_NAME / file_name, sample.image)
    size = options["size"]
    image = {"id": image_id, "file_name": file_name, "width": size, "height": size}
    annotations = []
    for offset, (obj, mask) in enumerate(zip(sample.scene.objects, sample.masks)):
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        annotations.append({
            "id": first_ann + offset, "image_id": image_id, "iscrowd": 0,
            "category_id": CATEGORIES[obj.category].category_id, "area": int(mask.sum()),
            "bbox": [int(v) for v in mask_utils.toBbox(rle)],
            "segmentation": {"size": [size, size], "counts": rle["counts"].decode("ascii")},
        })  # fmt: skip
    singles = [(obj, [t for _, t in exprs]) for obj, exprs in sample.expressions.items()]
    rng = np.random.default_rng([options["seed"], SPLIT_CODES[split], index, GENERALIZED_STREAM])
    n_single = sum(len(texts) for _, texts in singles)
    scale = n_single / (1.0 - options["multi_target_share"] - options["no_target_share"])
    multi, negatives = choose_generalized(
        sample.scene,
        rng,
        multi_count=_random_round(scale * options["multi_target_share"], rng),
        no_target_count=_random_round(scale * options["no_target_share"], rng),
    )
    return image, annotations, singles + [(t, [text]) for t, _, text in multi], negatives


def generate_synthetic_grefs(
    out_dir: str | Path,
    *,
    train: int = 600,
    val: int = 100,
    test: int = 150,
    size: int = 256,
    seed: int = 0,
    multi_target_share: float = 0.2,
    no_target_share: float = 0.25,
    show_progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Generate the generalized synthetic benchmark under ``out_dir``; return its statistics.

    ``train``/``val``/``test`` count images of ``size`` x ``size`` pixels; the shares are the
    expected fractions of multi-target and no-target expressions among all expressions (a
    scene may allow fewer). Files of an earlier run in the folder are overwritten; a non-empty
    folder the generator did not write is refused unless ``overwrite`` (see
    :func:`~btdnet.data.synthetic.writer.claim_output_folder`).
    """
    counts = {"train": train, "val": val, "test": test}
    check_synthetic_arguments(counts, size, seed)
    _check_shares(multi_target_share, no_target_share)
    options = {"seed": seed, "size": size, "multi_target_share": multi_target_share,
               "no_target_share": no_target_share}  # fmt: skip
    start = time.perf_counter()
    out = Path(out_dir)
    claim_output_folder(out, sum(counts.values()), overwrite=overwrite)
    (out / IMAGES_NAME).mkdir(parents=True, exist_ok=True)
    images, annotations, refs = [], [], _Refs()
    absent = Counter()
    for split, index in each_image(counts, "synthetic gRefCOCO", show_progress):
        first_ann = len(annotations) + 1
        image, anns, targeted, negatives = _write_image(
            out, split, index, len(images) + 1, first_ann, options
        )
        images.append(image)
        annotations.extend(anns)
        for objects, texts in targeted:
            objects = (objects,) if isinstance(objects, int) else objects
            ids = [first_ann + o for o in objects]
            refs.add(image, split, ids, [anns[o]["category_id"] for o in objects], texts)
        for kind, expression, text in negatives:
            absent[kind] += 1
            category = CATEGORIES[expression.category].category_id
            refs.add(image, split, [], [category], [text])
    categories = [{"id": i, "name": name} for i, name in enumerate(RRSISD_CATEGORIES)]
    instances = {"images": images, "annotations": annotations, "categories": categories}
    write_text_atomic(out / REFS_NAME, json.dumps(refs.refs))
    write_text_atomic(out / INSTANCES_NAME, json.dumps(instances))
    stats = summarise_grefs(refs.refs, len(images))
    stats["no_target_kinds"] = dict(sorted(absent.items()))
    arguments = {**counts, **options, "counts_are": "images per split"}
    return write_record(out, "btdnet.data.synthetic (generalized)", arguments, stats, start)


def summarise_grefs(refs: list[dict[str, Any]], images: int) -> dict[str, Any]:
    """Images, refs and samples per split, by kind (single, multi-target, no-target)."""
    splits = {}
    for split in SPLIT_CODES:
        rows = [r for r in refs if r["split"] == split]
        kinds = Counter(
            "no_target" if r["no_target"] else ("multi" if len(r["ann_id"]) > 1 else "single")
            for r in rows
            for _ in r["sentences"]
        )
        splits[split] = {
            "images": len({r["image_id"] for r in rows}),
            "samples": sum(kinds.values()),
            "single": kinds["single"],
            "multi_target": kinds["multi"],
            "no_target": kinds["no_target"],
        }
    samples = sum(s["samples"] for s in splits.values())
    multi = sum(s["multi_target"] for s in splits.values())
    no_target = sum(s["no_target"] for s in splits.values())
    return {
        "images": images,
        "refs": len(refs),
        "samples": samples,
        "splits": splits,
        "multi_target_share": round(multi / max(samples, 1), 3),
        "no_target_share": round(no_target / max(samples, 1), 3),
    }


def format_grefs_stats(stats: dict[str, Any]) -> str:
    """Human-readable summary of :func:`generate_synthetic_grefs`'s statistics."""
    lines = [f"images {stats['images']}, refs {stats['refs']}, samples {stats['samples']}"]
    for split, row in stats["splits"].items():
        lines.append(f"  {split:<5} images {row['images']:>6}  samples {row['samples']:>6}  "
                     f"(single {row['single']}, multi-target {row['multi_target']}, "
                     f"no-target {row['no_target']})")  # fmt: skip
    lines.append(f"multi-target share {100 * stats['multi_target_share']:.1f}%, "
                 f"no-target share {100 * stats['no_target_share']:.1f}%")  # fmt: skip
    if stats.get("no_target_kinds"):
        kinds = ", ".join(f"{k} {v}" for k, v in stats["no_target_kinds"].items())
        lines.append(f"no-target expressions by what is absent: {kinds}")
    if "seconds" in stats:
        lines.append(f"generated in {stats['seconds']:.1f} s")
    return "\n".join(lines)
