"""Write the synthetic referring benchmark in RRSIS-D's on-disk format, and summarise it.

Output under ``out_dir`` (read unchanged by the RRSIS-D loader, ``name="rrsisd"``)::

    rrsisd/refs(unc).p          pickle (protocol 2) of plain ref dicts, one per referred object
    rrsisd/instances.json       COCO style; every object is an annotation (referred or not)
    images/rrsisd/JPEGImages/NNNNN.jpg   5-digit image ids from 00001, JPEG quality 95
    synthetic.json              the generation arguments and statistics (ignored by loaders)
    .btdnet-synthetic.json      the generator's mark, written first: this folder is its own

A folder that is not empty and carries no mark of the generator (a real RRSIS-D root uses the
same file names) is refused unless ``overwrite=True``; even then only the generator's file
names are written, and the only files ever deleted are NNNNN.jpg images that an earlier run of
the generator recorded in its mark. Every file is written to a temporary name and renamed.

Split sizes count IMAGES. Image ``index`` of ``split`` is drawn from
``numpy.random.default_rng([seed, split_code, index])``, so sets of different sizes share their
first images per split (image ids are numbered train, then val, then test). Same arguments,
same bytes.
"""

from __future__ import annotations

import json
import pickle
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from tqdm import tqdm

from btdnet.safe_write import atomic_output, write_text_atomic

from .expressions import Expression, choose_expressions, describe
from .regimes import get_regime
from .scene import CATEGORIES, RRSISD_CATEGORIES, Scene, render_scene, sample_scene

SPLIT_CODES: dict[str, int] = {"train": 0, "val": 1, "test": 2}
REFS_PATH = Path("rrsisd") / "refs(unc).p"
INSTANCES_PATH = Path("rrsisd") / "instances.json"
IMAGES_PATH = Path("images") / "rrsisd" / "JPEGImages"
JPEG_QUALITY = 95
MAX_SCENE_TRIES = 20
MARK_PATH = Path(".btdnet-synthetic.json")
GENERATOR = "btdnet.data.synthetic"


class OutputFolderError(ValueError):
    """The output folder holds files the generator did not write."""


@dataclass
class SyntheticImage:
    """One generated image: its scene, pixels, object masks and expressions (with text)."""

    scene: Scene
    image: np.ndarray
    masks: list[np.ndarray]
    expressions: dict[int, list[tuple[Expression, str]]]


def make_synthetic_image(
    seed: int, split: str, index: int, *, image_size: int, regime: str = "default"
) -> SyntheticImage:
    """Generate image ``index`` of ``split``; the scene is redrawn until an object is named.

    ``regime`` names a stress regime (``btdnet.data.synthetic.regimes``; ``default``: the
    standard benchmark).
    """
    rng = np.random.default_rng([seed, SPLIT_CODES[split], index])
    options = get_regime(regime).sample_kwargs()
    for _ in range(MAX_SCENE_TRIES):
        scene = sample_scene(rng, image_size=image_size, **options)
        chosen = choose_expressions(scene, rng)
        if chosen:
            break
    else:
        raise RuntimeError(
            f"no nameable object in {MAX_SCENE_TRIES} scenes (seed {seed}, {split} {index})"
        )
    texts = {i: [(e, describe(e, rng)) for e in exprs] for i, exprs in chosen.items()}
    image, masks = render_scene(scene)
    return SyntheticImage(scene=scene, image=image, masks=masks, expressions=texts)


def _annotation(ann_id: int, image_id: int, category_id: int, mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    ys, xs = np.nonzero(mask)
    bbox = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1] if len(xs) else [
        0, 0, 0, 0
    ]  # fmt: skip
    return {
        "id": ann_id,
        "image_id": image_id,
        "bbox": bbox,  # RRSIS-D convention: [x1, y1, x2, y2], x2/y2 exclusive
        "area": int(mask.sum()),
        "categories_id": category_id,
        "segmentation": [{"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()}],
    }


def check_synthetic_arguments(
    counts: dict[str, int], size: int, seed: int, regime: str = "default"
) -> None:
    """Refuse bad generator arguments (counts, size, seed, regime) before anything is written."""
    get_regime(regime)  # an unknown name fails before anything is written
    for split, count in counts.items():
        if not isinstance(count, int) or count < 0:
            raise ValueError(f"{split} must be a non-negative number of images, got {count!r}")
    if sum(counts.values()) == 0:
        raise ValueError("nothing to generate: train, val and test are all 0")
    if sum(counts.values()) > 99_999:
        raise ValueError("at most 99,999 images fit RRSIS-D's 5-digit file names")
    if not isinstance(size, int) or size < 64:
        raise ValueError(f"size must be an integer of at least 64 pixels, got {size!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def generate_synthetic_rrsisd(
    out_dir: str | Path,
    *,
    train: int = 600,
    val: int = 100,
    test: int = 150,
    size: int = 256,
    seed: int = 0,
    regime: str = "default",
    show_progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Generate the synthetic benchmark under ``out_dir`` and return its statistics.

    ``train``, ``val`` and ``test`` are numbers of images of ``size`` x ``size`` pixels;
    ``regime`` a stress regime (``btdnet.data.synthetic.regimes``). Files of an earlier run of
    the generator in the same folder are overwritten and its surplus NNNNN.jpg removed. A
    non-empty folder without the generator's mark is refused (:class:`OutputFolderError`)
    unless ``overwrite``; then its files of other names are kept and none of its images is
    deleted. The returned dict is :func:`summarise`'s plus ``seconds`` (wall time).
    """
    counts = {"train": train, "val": val, "test": test}
    check_synthetic_arguments(counts, size, seed, regime)
    start = time.perf_counter()
    out = Path(out_dir)
    previous_images = claim_output_folder(out, sum(counts.values()), overwrite=overwrite)
    image_dir = out / IMAGES_PATH
    image_dir.mkdir(parents=True, exist_ok=True)
    (out / REFS_PATH).parent.mkdir(parents=True, exist_ok=True)

    images, annotations, refs = [], [], []
    image_id = ann_id = sent_id = 0
    for split, index in each_image(counts, "synthetic RRSIS-D", show_progress):
        sample = make_synthetic_image(seed, split, index, image_size=size, regime=regime)
        image_id += 1
        file_name = f"{image_id:05d}.jpg"
        save_jpeg(image_dir / file_name, sample.image)
        images.append({"id": image_id, "file_name": file_name, "width": size, "height": size})
        for obj_index, (obj, mask) in enumerate(zip(sample.scene.objects, sample.masks)):
            ann_id += 1
            category_id = CATEGORIES[obj.category].category_id
            annotations.append(_annotation(ann_id, image_id, category_id, mask))
            if obj_index not in sample.expressions:
                continue
            texts = [text for _, text in sample.expressions[obj_index]]
            sentences = [sentence_entry(sent_id + k, text) for k, text in enumerate(texts)]
            sent_id += len(sentences)
            refs.append(
                {
                    "ref_id": len(refs),
                    "ann_id": ann_id,
                    "image_id": image_id,
                    "sent_ids": [s["sent_id"] for s in sentences],
                    "split": split,
                    "file_name": file_name,
                    "category_id": category_id,
                    "sentences": sentences,
                }
            )
    _remove_surplus_images(image_dir, image_id, previous_images)

    instances = _write_index(out, refs, images, annotations)
    stats = summarise(refs, instances)
    arguments = dict(counts, size=size, seed=seed, regime=regime, counts_are="images per split")
    return write_record(out, "btdnet.data.synthetic", arguments, stats, start)


def each_image(counts: dict[str, int], desc: str, show_progress: bool) -> Iterator[tuple[str, int]]:
    """``(split, index)`` of every image to write, in image-id order (train, val, test), under
    one progress bar named ``desc``."""
    progress = tqdm(total=sum(counts.values()), desc=desc, unit="img", disable=not show_progress)
    for split, count in counts.items():
        for index in range(count):
            yield split, index
            progress.update(1)
    progress.close()


def save_jpeg(path: Path, image: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 scene as JPEG (quality ``JPEG_QUALITY``), atomically."""
    with atomic_output(path) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=JPEG_QUALITY)


def sentence_entry(sent_id: int, text: str) -> dict[str, Any]:
    """A sentence as RRSIS-D and gRefCOCO store it: tokens, raw (capitalised), id, sent."""
    tokens = text.split()
    return {"tokens": tokens, "raw": text[0].upper() + text[1:], "sent_id": sent_id,
            "sent": " ".join(tokens)}  # fmt: skip


def write_record(
    out: Path, generator: str, arguments: dict[str, Any], stats: dict[str, Any], start: float
) -> dict[str, Any]:
    """Write ``synthetic.json`` (generator, arguments, statistics); return the statistics plus
    ``seconds``, the wall time since ``start`` (``time.perf_counter()``)."""
    record = {"generator": generator, "arguments": arguments, "stats": stats}
    write_text_atomic(out / "synthetic.json", json.dumps(record, indent=2) + "\n")
    return {**stats, "seconds": round(time.perf_counter() - start, 3)}


def _write_index(out: Path, refs: list[dict], images: list, annotations: list) -> dict:
    """Write ``refs(unc).p`` and ``instances.json`` (temp file + rename); return the instances."""
    categories = [{"id": i, "name": name} for i, name in enumerate(RRSISD_CATEGORIES)]
    instances = {"images": images, "annotations": annotations, "categories": categories}
    with atomic_output(out / REFS_PATH) as tmp, open(tmp, "wb") as handle:
        pickle.dump(refs, handle, protocol=2)
    write_text_atomic(out / INSTANCES_PATH, json.dumps(instances))
    return instances


def _mark_of(out: Path) -> dict[str, Any] | None:
    """The generator's mark in ``out`` (or, for sets made before marks, its synthetic.json)."""
    for name in (MARK_PATH, Path("synthetic.json")):
        try:
            data = json.loads((out / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("generator") == GENERATOR:
            if "images" not in data:  # synthetic.json: the counts of its arguments
                args = data.get("arguments", {})
                data["images"] = sum(int(args.get(k, 0)) for k in SPLIT_CODES)
            return data
    return None


def claim_output_folder(out: Path, images: int, *, overwrite: bool) -> int:
    """Check ``out`` may be written and mark it as the generator's.

    Returns:
        how many NNNNN.jpg an earlier run of the generator recorded there (0 if none), the
        only images that may be deleted.

    Raises:
        OutputFolderError: ``out`` is not empty, has no mark of the generator and not
            ``overwrite``.
    """
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"{out}: exists and is not a folder")
    mark = _mark_of(out)
    if mark is None and out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputFolderError(
            f"{out}: not empty and not written by the synthetic generator (no "
            f"{MARK_PATH}); refusing to overwrite what may be a real data set. Choose an empty "
            "folder, or pass --overwrite to write the generator's file names there"
        )
    previous = int(mark.get("images", 0)) if mark is not None else 0
    out.mkdir(parents=True, exist_ok=True)
    record = {"generator": GENERATOR, "images": max(previous, images)}
    write_text_atomic(out / MARK_PATH, json.dumps(record) + "\n")
    return previous


def _remove_surplus_images(image_dir: Path, last_id: int, previous: int) -> None:
    """Delete NNNNN.jpg above ``last_id`` that an earlier run (``previous`` images) wrote."""
    for path in image_dir.glob("*.jpg"):
        if re.fullmatch(r"\d{5}\.jpg", path.name) and last_id < int(path.stem) <= previous:
            path.unlink()


def summarise(refs: list[dict], instances: dict) -> dict[str, Any]:
    """Statistics of a written set: images, refs and samples per split, per-category counts,
    mean samples and referred objects per image, distractor shares, expression lengths."""
    names = {c["id"]: c["name"] for c in instances["categories"]}
    per_image = Counter(a["image_id"] for a in instances["annotations"])
    same_category = Counter((a["image_id"], a["categories_id"]) for a in instances["annotations"])
    split_of_image = {r["image_id"]: r["split"] for r in refs}
    n_images = len(instances["images"])
    samples = [(r, s) for r in refs for s in r["sentences"]]
    lengths = [len(s["tokens"]) for _, s in samples]
    with_distractor = [same_category[(r["image_id"], r["category_id"])] > 1 for r, _ in samples]
    images_with_repeats = {img for (img, _), n in same_category.items() if n > 1}
    referred_per_image = Counter(r["image_id"] for r in refs)
    splits = {}
    for split in SPLIT_CODES:
        split_refs = [r for r in refs if r["split"] == split]
        splits[split] = {
            "images": sum(1 for s in split_of_image.values() if s == split),
            "refs": len(split_refs),
            "samples": sum(len(r["sentences"]) for r in split_refs),
        }
    per_category = {}
    for cid in sorted({a["categories_id"] for a in instances["annotations"]}):
        per_category[names[cid]] = {
            "objects": sum(1 for a in instances["annotations"] if a["categories_id"] == cid),
            "samples": sum(1 for r, _ in samples if r["category_id"] == cid),
        }
    vocabulary = sorted({t for _, s in samples for t in s["tokens"]})
    return {
        "images": n_images,
        "objects": len(instances["annotations"]),
        "refs": len(refs),
        "samples": len(samples),
        "splits": splits,
        "per_category": per_category,
        "mean_objects_per_image": _mean(list(per_image.values()), n_images),
        "mean_referred_objects_per_image": _mean(list(referred_per_image.values()), n_images),
        "mean_expressions_per_image": round(len(samples) / max(n_images, 1), 3),
        "share_images_with_2plus_referred": round(
            sum(1 for n in referred_per_image.values() if n >= 2) / max(n_images, 1), 3
        ),
        "share_images_with_distractors": round(len(images_with_repeats) / max(n_images, 1), 3),
        "distractor_share": round(sum(with_distractor) / max(len(samples), 1), 3),
        "mean_expression_length": round(sum(lengths) / max(len(lengths), 1), 3),
        "vocabulary_size": len(vocabulary),
        "vocabulary": vocabulary,
    }


def _mean(values: list[int], n: int) -> float:
    return round(sum(values) / max(n, 1), 3)


def format_stats(stats: dict[str, Any]) -> str:
    """Human-readable summary of :func:`generate_synthetic_rrsisd`'s statistics."""
    lines = [f"images {stats['images']}, objects {stats['objects']}, refs {stats['refs']}, "
             f"samples {stats['samples']}"]  # fmt: skip
    for split, row in stats["splits"].items():
        lines.append(f"  {split:<5} images {row['images']:>6}  refs {row['refs']:>6}  "
                     f"samples {row['samples']:>6}")  # fmt: skip
    lines.append("per category (objects / samples):")
    for name, row in stats["per_category"].items():
        lines.append(f"  {name:<16} {row['objects']:>6} / {row['samples']:>6}")
    lines += [
        f"mean objects per image            {stats['mean_objects_per_image']:.2f}",
        f"mean referred objects per image   {stats['mean_referred_objects_per_image']:.2f}",
        f"mean expressions per image        {stats['mean_expressions_per_image']:.2f}",
        f"images with >= 2 referred objects {100 * stats['share_images_with_2plus_referred']:.1f}%",
        f"images with same-category objects {100 * stats['share_images_with_distractors']:.1f}%",
        f"samples whose target has a same-category distractor "
        f"{100 * stats['distractor_share']:.1f}%",
        f"mean expression length (words)    {stats['mean_expression_length']:.2f}",
        f"vocabulary size                   {stats['vocabulary_size']}",
    ]
    if "seconds" in stats:
        lines.append(f"generated in {stats['seconds']:.1f} s")
    return "\n".join(lines)
