"""gRefCOCO-format index reader (generalized referring: multi-target and no-target expressions).

The format of GRES / gRefCOCO (Liu, Ding & Jiang, CVPR 2023), as ReLA's ``grefer.py`` and its
dataset loader read it, and of the remote-sensing sets built on it. Layout under ``root``::

    grefs(unc).json        JSON list of refs
    instances.json         COCO: images (id, file_name, height, width), annotations
                           (id, image_id, category_id, segmentation: polygons or RLE, iscrowd),
                           categories (id, name)
    images/<file_name>     the images, by the instances' (else the ref's) file_name

A ref holds ``ref_id``, ``image_id``, ``ann_id`` (a list of annotation ids; ``[-1]`` when the
expression has no target; a bare int is read as a one-element list), ``category_id`` (a list),
``split``, ``sent_ids``, ``sentences`` (``sent``/``raw``/``tokens``/``sent_id``),
``no_target`` and optionally ``file_name``. Each sentence is one sample with sample id
``<ref_id>-<sent_id>`` (RRSIS-D's naming, so prediction files are named alike). A multi-target
mask is the union of the referred annotations; a no-target mask is empty. As in ReLA, crowd
annotations are left out of the union.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from pycocotools import mask as mask_utils

from btdnet.data.coco_refs import index_by_id, is_id, ref_expressions
from btdnet.data.errors import ProblemLog
from btdnet.data.records import (
    EmptyMask,
    LoadStats,
    ReferringRecord,
    RleMask,
    attach_image_sizes,
    check_mask_pixels,
    note_empty_masks,
    sort_splits,
)
from btdnet.data.transforms import read_image_size

REFS_FILE = Path("grefs(unc).json")
INSTANCES_FILE = Path("instances.json")
IMAGES_DIR = Path("images")
NO_TARGET_ID = -1


def _read_json(path: Path, what: str, log: ProblemLog) -> Any:
    if not path.is_file():
        detail = f"{what} not found (gRefCOCO layout: <root>/{path.name})"
        if (path.parent / "grefcoco" / path.name).is_file():
            detail += f"; it is in {path.parent / 'grefcoco'}: pass that folder as the root"
        log.fatal("missing_file", path, detail)
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        log.fatal("unreadable_file", path, f"not valid JSON ({exc})")
        return None


Polygons = list[list[float]]


def _plausible_size(height: Any, width: Any) -> bool:
    """Whether an instances.json image size can be used: positive integers, no more pixels than
    an image that can be read (else the image's own header is read instead)."""
    if not (isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0):
        return False
    try:
        check_mask_pixels(height, width, "image size")
    except ValueError:
        return False
    return True


def _segmentation_rles(
    annotation: dict[str, Any], image: dict[str, Any] | None
) -> tuple[list[Any], Polygons]:
    """The annotation's segmentation as (RLE dicts, polygons): RLE-coded annotations give
    ``(rles, [])``; polygon annotations give their rasterised RLEs and the polygons (kept so
    that the input-size mask is drawn from them, as ReLA does)."""
    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, dict):
        return [segmentation], []
    if not isinstance(segmentation, list) or not segmentation:
        raise ValueError("segmentation is neither polygons nor an RLE")
    if all(isinstance(part, dict) for part in segmentation):
        return segmentation, []
    polygons = [
        p
        for p in segmentation
        if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)
    ]  # fmt: skip
    if not polygons:
        raise ValueError("no polygon with at least 3 points")
    height = image.get("height") if image else None
    width = image.get("width") if image else None
    if not (isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0):
        raise ValueError("polygons need the image's height and width in instances.json")
    check_mask_pixels(height, width, "image size")
    polygons = [[float(v) for v in p] for p in polygons]
    # NaN, inf or far-away vertices make the rasteriser walk (and allocate) without end
    reach = 2 * max(height, width)
    if not all(math.isfinite(v) and abs(v) <= reach for p in polygons for v in p):
        raise ValueError(f"a polygon coordinate is not a finite number within +-{reach} pixels")
    return mask_utils.frPyObjects(polygons, height, width), polygons


def _target_ids(ref: dict[str, Any], refs_path: Path, log: ProblemLog) -> list[Any] | None:
    """The ref's annotation ids ([] for no target); None when unusable (reported)."""
    ann_ids = ref.get("ann_id")
    ann_ids = ann_ids if isinstance(ann_ids, list) else [ann_ids]
    if not ann_ids or not all(is_id(a) for a in ann_ids):
        log.add("unreadable_file", refs_path, f"ref {ref.get('ref_id')} has no usable ann_id")
        return None
    targets = [a for a in ann_ids if a != NO_TARGET_ID]
    if NO_TARGET_ID in ann_ids and targets:
        log.add(
            "inconsistent_target",
            refs_path,
            f"ref {ref['ref_id']}: ann_id {ann_ids} mixes -1 (no target) with annotations; "
            "the annotations are used",
        )
    flag = ref.get("no_target")
    if isinstance(flag, bool) and flag != (not targets):
        log.add(
            "inconsistent_target",
            refs_path,
            f"ref {ref['ref_id']}: no_target is {flag} but ann_id is {ann_ids}; ann_id is used",
        )
    return targets


class _Index:
    """instances.json tables and the masks built from them (each built once)."""

    def __init__(self, instances: dict[str, Any], path: Path, log: ProblemLog) -> None:
        self.path, self.log = path, log
        self.annotations = index_by_id(instances.get("annotations", []), "annotation", path, log)
        self.images = index_by_id(instances.get("images", []), "image", path, log)
        self.categories = {
            c.get("id"): str(c.get("name", ""))
            for c in instances.get("categories", [])
            if isinstance(c, dict)
        }
        self._rles: dict[Any, tuple[list[Any], Polygons] | None] = {}

    def rles(self, ann_id: Any, ref_id: Any) -> tuple[list[Any], Polygons] | None:
        """(RLE dicts, polygons) of one annotation; None when unknown or unusable (reported
        once)."""
        if ann_id in self._rles:
            return self._rles[ann_id]
        annotation = self.annotations.get(ann_id)
        rles = None
        if annotation is None:
            self.log.add(
                "unknown_annotation",
                self.path,
                f"ref {ref_id} points to annotation {ann_id}, which is not in this file",
            )
        else:
            try:
                rles = _segmentation_rles(annotation, self.images.get(annotation.get("image_id")))
            except ValueError as exc:
                self.log.add("bad_annotation", self.path, f"annotation {ann_id}: {exc}")
        self._rles[ann_id] = rles
        return rles

    def mask(self, ref: dict[str, Any], targets: list[Any]) -> RleMask | EmptyMask | None:
        """The union mask of ``targets`` (crowd left out), or the empty mask of the image."""
        usable = [a for a in targets if not self.annotations.get(a, {}).get("iscrowd")]
        if not usable and not targets:
            image = self.images.get(ref["image_id"], {})
            height, width = image.get("height"), image.get("width")
            if not _plausible_size(height, width):
                return None  # size read from the image header by the caller
            label = f"ref {ref['ref_id']} (no target)"
            return EmptyMask(height, width, str(self.path), label)
        parts = [self.rles(a, ref["ref_id"]) for a in usable]
        if not usable or any(p is None for p in parts):
            if targets and not usable:
                self.log.add("bad_annotation", self.path, f"ref {ref['ref_id']}: only crowd")
            return None
        label = "annotation " + "+".join(str(a) for a in usable)
        rle_parts = [r for rles, polygons in parts if not polygons for r in rles]
        polygon_rles = [r for rles, polygons in parts if polygons for r in rles]
        polygons = tuple(tuple(p) for _, polygons in parts for p in polygons)
        try:
            return RleMask.from_segmentation(
                rle_parts + polygon_rles,
                self.path,
                label,
                polygons=polygons,
                polygon_parts=len(polygon_rles),
            )
        except ValueError as exc:
            self.log.add("bad_annotation", self.path, f"{label}: {exc}")
            return None

    def category(self, ref: dict[str, Any]) -> tuple[str, int]:
        """(name, id) when the ref names one category, else ("", -1)."""
        ids = ref.get("category_id")
        ids = ids if isinstance(ids, list) else [ids]
        distinct = {i for i in ids if isinstance(i, int) and not isinstance(i, bool)}
        if len(distinct) != 1:
            return "", -1
        (only,) = distinct
        return self.categories.get(only, ""), only


def _image_path(
    ref: dict[str, Any], image: dict[str, Any] | None, folder: Path, log: ProblemLog
) -> Path | None:
    """The image file (base names only, so an index cannot point outside the folder)."""
    given = ((image or {}).get("file_name"), ref.get("file_name"))
    names = [n.replace("\\", "/").rsplit("/", 1)[-1] for n in given if isinstance(n, str)]
    names = [n for n in dict.fromkeys(names) if n not in ("", ".", "..")]
    found = next((n for n in names if os.path.isfile(os.path.join(folder, n))), None)
    if found is None:
        log.add(
            "missing_image",
            folder / (names[0] if names else f"<image {ref['image_id']}>"),
            f"image of ref {ref['ref_id']} (image_id {ref['image_id']}) not found",
        )
        return None
    return folder / found


def _ref_records(
    ref: dict[str, Any],
    mask: RleMask | EmptyMask,
    image_path: Path,
    target_count: int,
    index: _Index,
    refs_path: Path,
    log: ProblemLog,
) -> list[ReferringRecord]:
    category, category_id = index.category(ref)
    records = []
    for sent_id, text in ref_expressions(ref):
        sample_id = f"{ref['ref_id']}-{sent_id}"
        if not text:
            log.add("bad_expression", refs_path, f"sample {sample_id}: expression is empty")
            continue
        records.append(
            ReferringRecord(
                sample_id=sample_id,
                image_path=image_path,
                expression=text,
                category=category,
                category_id=category_id,
                image_id=str(ref["image_id"]),
                split=str(ref.get("split")),
                mask=mask,
                target_count=target_count,
            )
        )
    return records


def load_grefs_records(
    root: str | Path,
    split: str | None,
    *,
    read_image_sizes: bool = True,
    strict: bool = True,
) -> tuple[list[ReferringRecord], LoadStats]:
    """Index the gRefCOCO-format samples of ``split`` (``None``: every split) under ``root``.

    Same contract as :func:`~btdnet.data.rrsisd.load_rrsisd_records`; records carry
    ``target_count`` (0: no target) and ``stats`` the multi-target and no-target counts.
    """
    root = Path(root)
    log = ProblemLog(strict=strict)
    stats = LoadStats(dataset="grefs", root=str(root), split=split, problems=log.problems)
    if not root.is_dir():
        log.fatal("missing_file", root, "data root folder not found")
        return [], stats
    refs_path, instances_path, folder = root / REFS_FILE, root / INSTANCES_FILE, root / IMAGES_DIR
    refs = _read_json(refs_path, "refs file", log)
    instances = _read_json(instances_path, "instances file", log)
    if refs is None or instances is None:
        return [], stats
    if not isinstance(refs, list) or not all(isinstance(ref, dict) for ref in refs):
        log.fatal("unreadable_file", refs_path, "expected a JSON list of ref objects")
        return [], stats
    if not isinstance(instances, dict) or not isinstance(instances.get("annotations"), list):
        log.fatal("unreadable_file", instances_path, "expected COCO with an 'annotations' list")
        return [], stats
    if not folder.is_dir():
        log.fatal("missing_file", folder, "image folder not found (layout: <root>/images/)")
        return [], stats
    stats.splits = sort_splits({str(ref.get("split")) for ref in refs})
    if split is not None and split not in stats.splits:
        present = ", ".join(stats.splits) or "none"
        log.fatal("unknown_split", refs_path, f"split {split!r} not found; present: {present}")
        return [], stats

    index = _Index(instances, instances_path, log)
    records: list[ReferringRecord] = []
    seen: set[str] = set()
    for position, ref in enumerate(refs):
        if split is not None and str(ref.get("split")) != split:
            continue
        if not all(is_id(ref.get(key)) for key in ("ref_id", "image_id")):
            log.add("unreadable_file", refs_path, f"ref #{position} lacks a ref_id or image_id")
            continue
        targets = _target_ids(ref, refs_path, log)
        image_path = _image_path(ref, index.images.get(ref["image_id"]), folder, log)
        if targets is None or image_path is None:
            continue
        mask = index.mask(ref, targets)
        if mask is None and not targets:  # no size in instances.json: the image header
            size = read_image_size(image_path) or (1, 1)
            mask = EmptyMask(*size, str(instances_path), f"ref {ref['ref_id']} (no target)")
        if mask is None:
            continue
        new = _ref_records(ref, mask, image_path, len(targets), index, refs_path, log)
        for record in new:
            if record.sample_id in seen:
                log.add("duplicate_id", refs_path, f"sample id {record.sample_id} repeats")
            seen.add(record.sample_id)
        records.extend(new)
    _fill_stats(records, stats, log, read_image_sizes)
    log.raise_if_fatal()
    return records, stats


def _fill_stats(
    records: list[ReferringRecord], stats: LoadStats, log: ProblemLog, read_image_sizes: bool
) -> None:
    """Counts (samples, images, multi-target, no-target, empty targeted masks) and sizes."""
    stats.count(records)
    stats.multi_target = sum(1 for r in records if r.target_count > 1)
    stats.no_target = sum(1 for r in records if r.no_target)
    stats.empty_masks = note_empty_masks(records, log)
    if read_image_sizes:
        attach_image_sizes(records)
