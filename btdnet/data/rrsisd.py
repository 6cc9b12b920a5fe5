"""RRSIS-D index reader (the REFER layout of the RMSIN release).

Layout under ``root`` (the peers' ``refer/data/``)::

    rrsisd/refs(unc).p                 pickle: list of ref dicts (untrusted: restricted loader)
    rrsisd/instances.json              COCO-style: images, annotations, categories
    images/rrsisd/JPEGImages/NNNNN.jpg

A ref holds ``ref_id, ann_id, image_id, sent_ids, split, file_name, category_id`` and
``sentences = [{tokens, raw, sent_id, sent}]``; each sentence is one sample with sample id
``<ref_id>-<sent_id>``. Annotations carry ``categories_id`` (plural) and a ``segmentation``
list holding one compressed RLE ``{size: [h, w], counts: str}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from btdnet.data.coco_refs import index_by_id, is_id, ref_expressions
from btdnet.data.errors import DatasetError, ProblemLog, UnsafePickleError
from btdnet.data.records import (
    LoadStats,
    ReferringRecord,
    RleMask,
    attach_image_sizes,
    note_empty_masks,
    sort_splits,
)
from btdnet.data.safe_pickle import safe_load_pickle

REFS_FILE = Path("rrsisd") / "refs(unc).p"
INSTANCES_FILE = Path("rrsisd") / "instances.json"
IMAGES_DIR = Path("images") / "rrsisd" / "JPEGImages"


def _detail(exc: Exception, path: Path) -> str:
    """An exception's message without the leading ``<path>: ``."""
    return str(exc).removeprefix(f"{path}: ")


def _read_refs(path: Path, log: ProblemLog) -> list[dict[str, Any]] | None:
    if not path.is_file():
        detail = f"refs file not found (RRSIS-D layout: <root>/{REFS_FILE})"
        if (path.parent.parent / REFS_FILE.name).is_file():
            detail += "; the root given looks like <root>/rrsisd: pass its parent folder"
        log.fatal("missing_file", path, detail)
        return None
    try:
        refs = safe_load_pickle(path)
    except UnsafePickleError as exc:
        log.fatal("unsafe_file", path, _detail(exc, path))
        return None
    except DatasetError as exc:
        log.fatal("unreadable_file", path, _detail(exc, path))
        return None
    if not isinstance(refs, list) or not all(isinstance(ref, dict) for ref in refs):
        log.fatal("unreadable_file", path, "expected a list of ref dicts")
        return None
    return refs


def _read_instances(path: Path, log: ProblemLog) -> dict[str, Any] | None:
    if not path.is_file():
        log.fatal(
            "missing_file",
            path,
            "instances file not found (RRSIS-D layout: <root>/" + str(INSTANCES_FILE) + ")",
        )
        return None
    try:
        instances = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        log.fatal("unreadable_file", path, f"not valid JSON ({exc})")
        return None
    if not isinstance(instances, dict) or not isinstance(instances.get("annotations"), list):
        log.fatal(
            "unreadable_file", path, "expected a COCO-style object with an 'annotations' list"
        )
        return None
    for key in ("images", "categories"):
        if not isinstance(instances.get(key, []), list):
            log.fatal("unreadable_file", path, f"'{key}' is not a list")
            return None
    return instances


def _image_names(ref: dict[str, Any], image: dict[str, Any] | None) -> list[str]:
    """Where the image may be: the instances.json entry, the ref's file_name, then NNNNN.jpg.

    Only the base name is kept, so an index cannot point outside the image folder.
    """
    names = []
    if image is not None and isinstance(image.get("file_name"), str):
        names.append(image["file_name"])
    if isinstance(ref.get("file_name"), str):
        names.append(ref["file_name"])
    if isinstance(ref["image_id"], int):
        names.append(f"{ref['image_id']:05d}.jpg")
    base_names = (name.replace("\\", "/").rsplit("/", 1)[-1] for name in names)
    return [name for name in dict.fromkeys(base_names) if name not in ("", ".", "..")]


@dataclass
class _Index:
    """The parsed RRSIS-D index files of one root, and the lookups the records need."""

    refs_path: Path
    instances_path: Path
    image_folder: Path
    refs: list[dict[str, Any]]
    annotations: dict[Any, dict[str, Any]]
    images: dict[Any, dict[str, Any]]
    category_names: dict[Any, str]
    log: ProblemLog
    masks: dict[Any, RleMask | None] = field(default_factory=dict)
    image_paths: dict[Any, Path | None] = field(default_factory=dict)
    seen_ids: set[str] = field(default_factory=set)

    def mask(self, ann_id: Any, annotation: dict[str, Any]) -> RleMask | None:
        """The annotation's RLE mask (decoded once), None when it is unusable (logged)."""
        if ann_id not in self.masks:
            try:
                self.masks[ann_id] = RleMask.from_segmentation(
                    annotation.get("segmentation"),
                    self.instances_path,
                    f"annotation {ann_id}",
                    lavt_parts=True,
                )
            except ValueError as exc:
                self.masks[ann_id] = None
                self.log.add("bad_annotation", self.instances_path, f"annotation {ann_id}: {exc}")
        return self.masks[ann_id]

    def image_path(self, ref: dict[str, Any]) -> Path | None:
        """The image file of ``ref`` (looked up once per image), None when missing (logged)."""
        image_id = ref["image_id"]
        if image_id not in self.image_paths:
            names = _image_names(ref, self.images.get(image_id))
            found = next((n for n in names if (self.image_folder / n).is_file()), None)
            if found is None:
                self.log.add(
                    "missing_image",
                    self.image_folder / (names[0] if names else f"<image {image_id}>"),
                    f"image of ref {ref['ref_id']} (image_id {image_id}) not found",
                )
            self.image_paths[image_id] = None if found is None else self.image_folder / found
        return self.image_paths[image_id]

    def ref_records(self, position: int, ref: dict[str, Any]) -> list[ReferringRecord]:
        """The records of one ref: one per usable expression; problems are logged."""
        missing = [key for key in ("ref_id", "ann_id", "image_id") if not is_id(ref.get(key))]
        if missing:
            where = f"ref #{position} lacks a usable {', '.join(missing)}"
            self.log.add("unreadable_file", self.refs_path, where)
            return []
        ref_id, ann_id = ref["ref_id"], ref["ann_id"]
        annotation = self.annotations.get(ann_id)
        if annotation is None:
            self.log.add(
                "unknown_annotation",
                self.instances_path,
                f"ref {ref_id} points to annotation {ann_id}, which is not in this file",
            )
            return []
        mask, image_path = self.mask(ann_id, annotation), self.image_path(ref)
        sentences = ref_expressions(ref)
        if not sentences:
            self.log.add("bad_expression", self.refs_path, f"ref {ref_id} has no sentence")
        category_id = annotation.get(
            "categories_id", annotation.get("category_id", ref.get("category_id", -1))
        )
        category_id = int(category_id) if isinstance(category_id, int) else -1
        records = []
        for sent_id, text in sentences:
            sample_id = f"{ref_id}-{sent_id}"
            if not self._usable_sample(sample_id, text) or mask is None or image_path is None:
                continue
            records.append(
                ReferringRecord(
                    sample_id=sample_id,
                    image_path=image_path,
                    expression=text,
                    category=self.category_names.get(category_id, ""),
                    category_id=category_id,
                    image_id=str(ref["image_id"]),
                    split=str(ref.get("split")),
                    mask=mask,
                )
            )
        return records

    def _usable_sample(self, sample_id: str, text: str) -> bool:
        """False for an empty expression; a repeated id is logged (and kept)."""
        if not text:
            self.log.add(
                "bad_expression",
                self.refs_path,
                f"sample {sample_id}: expression is empty after stripping",
            )
            return False
        if sample_id in self.seen_ids:
            self.log.add(
                "duplicate_id", self.refs_path, f"sample id {sample_id} occurs more than once"
            )
        self.seen_ids.add(sample_id)
        return True


def _open_index(root: Path, split: str | None, log: ProblemLog, stats: LoadStats) -> _Index | None:
    """Read and check the index files of ``root``; None after a fatal problem (logged)."""
    if not root.is_dir():
        log.fatal("missing_file", root, "data root folder not found")
        return None
    refs_path, instances_path, image_folder = (
        root / REFS_FILE,
        root / INSTANCES_FILE,
        root / IMAGES_DIR,
    )
    refs = _read_refs(refs_path, log)
    instances = _read_instances(instances_path, log)
    if refs is None or instances is None:
        return None
    if not image_folder.is_dir():
        log.fatal(
            "missing_file",
            image_folder,
            "image folder not found (RRSIS-D layout: <root>/" + str(IMAGES_DIR) + ")",
        )
        return None
    stats.splits = sort_splits({str(ref.get("split")) for ref in refs})
    if split is not None and split not in stats.splits:
        present = ", ".join(stats.splits) or "none"
        log.fatal(
            "unknown_split", refs_path, f"split {split!r} not found; splits present: {present}"
        )
        return None
    return _Index(
        refs_path=refs_path,
        instances_path=instances_path,
        image_folder=image_folder,
        refs=refs,
        annotations=index_by_id(instances["annotations"], "annotation", instances_path, log),
        images=index_by_id(instances.get("images", []), "image", instances_path, log),
        category_names={
            c.get("id"): str(c.get("name", ""))
            for c in instances.get("categories", [])
            if isinstance(c, dict)
        },
        log=log,
    )


def load_rrsisd_records(
    root: str | Path,
    split: str | None,
    *,
    read_image_sizes: bool = True,
    strict: bool = True,
) -> tuple[list[ReferringRecord], LoadStats]:
    """Index the RRSIS-D samples of ``split`` (``None``: every split) under ``root``.

    Masks are not decoded: empty masks are counted from the RLE runs, and with
    ``read_image_sizes`` each image header is read (no pixels) to find the images whose size
    differs from their RLE's (their masks are resized to the image when an item is loaded).

    With ``strict`` (the default) a :class:`DatasetError` naming the file is raised for missing
    or unreadable index files, an unsafe pickle, an unknown split, refs pointing to unknown
    annotations, missing images and empty expressions. With ``strict=False`` these are only
    listed in ``stats.problems`` and the usable records are returned (for the dataset check).
    """
    root = Path(root)
    log = ProblemLog(strict=strict)
    stats = LoadStats(dataset="rrsisd", root=str(root), split=split, problems=log.problems)
    index = _open_index(root, split, log, stats)
    if index is None:
        return [], stats
    records = [
        record
        for position, ref in enumerate(index.refs)
        if split is None or str(ref.get("split")) == split
        for record in index.ref_records(position, ref)
    ]
    _count_mask_facts(records, stats, log, read_image_sizes)
    log.raise_if_fatal()
    return records, stats


def _count_mask_facts(
    records: list[ReferringRecord], stats: LoadStats, log: ProblemLog, read_image_sizes: bool
) -> None:
    """Fill sample/image counts, empty masks (from the runs) and, optionally, resized masks.

    Masks are counted once per annotation. With ``read_image_sizes`` every record gets its
    image's (H, W), read from the header only.
    """
    stats.count(records)
    for record in records:
        if not isinstance(record.mask, RleMask):
            raise TypeError(f"RRSIS-D record {record.sample_id} has no RLE mask")
    stats.empty_masks = note_empty_masks(records, log)
    if not read_image_sizes:
        return
    attach_image_sizes(records)
    resized: set[str] = set()
    for record in records:
        mask, size = record.mask, record.image_size
        if size is not None and size != mask.size and mask.label not in resized:
            resized.add(mask.label)
            log.add(
                "size_mismatch",
                record.image_path,
                f"image is {size[0]}x{size[1]} (HxW) but its mask ({mask.label}) is "
                f"{mask.height}x{mask.width}; mask resized from its own size (nearest)",
            )
    stats.resized_masks = len(resized)
