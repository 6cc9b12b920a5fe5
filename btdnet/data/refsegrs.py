"""RefSegRS index reader (the zhu-xlab release).

Layout under ``root``::

    images/<id>.tif            RGB
    masks/<id>.tif             single channel; foreground = value > 50
    output_phrase_<split>.txt  one sample a line: "<id> <expression words ...>"

Lines carry trailing spaces and newlines (stripped); blank lines are skipped. A sample's id is
``<line>-<image_id>`` with the 1-based line number in its split file. Categories only appear in
the text, so every sample has category ``""`` and id ``-1``.
"""

from __future__ import annotations

from pathlib import Path

from btdnet.data.errors import ProblemLog
from btdnet.data.records import (
    FileMask,
    LoadStats,
    ReferringRecord,
    attach_image_sizes,
    sort_splits,
)
from btdnet.data.transforms import read_image_size

IMAGES_DIR = "images"
MASKS_DIR = "masks"
SPLIT_PREFIX = "output_phrase_"
SUFFIX = ".tif"


def refsegrs_split_file(root: str | Path, split: str) -> Path:
    """The expression file of ``split``: ``<root>/output_phrase_<split>.txt``."""
    return Path(root) / f"{SPLIT_PREFIX}{split}.txt"


def refsegrs_splits(root: str | Path) -> list[str]:
    """Names of the splits whose expression file exists under ``root``, sorted."""
    return sort_splits(
        [p.stem[len(SPLIT_PREFIX) :] for p in Path(root).glob(f"{SPLIT_PREFIX}*.txt")]
    )


def _parse_split_file(path: Path, log: ProblemLog) -> list[tuple[int, str, str]]:
    """(line number, image id, expression) of every non-blank, well-formed line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        log.fatal("unreadable_file", path, f"cannot read the expression file ({exc})")
        return []
    entries = []
    seen: dict[tuple[str, str], int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(maxsplit=1)
        image_id = parts[0]
        expression = parts[1].strip() if len(parts) > 1 else ""
        if Path(image_id).name != image_id or image_id in {".", ".."}:
            log.add("unreadable_file", path, f"line {number}: {image_id!r} is not a file name")
            continue
        if not expression:
            log.add(
                "bad_expression",
                path,
                f"line {number} (image {image_id}): expression is empty after stripping",
            )
            continue
        key = (image_id, expression)
        if key in seen:
            log.add(
                "duplicate_id",
                path,
                f"line {number} repeats line {seen[key]} (image {image_id}, same expression)",
            )
        seen.setdefault(key, number)
        entries.append((number, image_id, expression))
    return entries


def load_refsegrs_records(
    root: str | Path,
    split: str | None,
    *,
    read_image_sizes: bool = True,
    strict: bool = True,
) -> tuple[list[ReferringRecord], LoadStats]:
    """Index the RefSegRS samples of ``split`` (``None``: every split file present).

    Masks are not decoded, so ``stats.empty_masks`` stays ``None`` (the dataset check counts
    them). With ``read_image_sizes`` the image and mask headers are read (no pixels) to count
    masks whose size differs from their image's (an item's mask goes straight to the model size).

    With ``strict`` (the default) a :class:`DatasetError` naming the file is raised for a
    missing root, image or mask folder, an unknown split, unreadable expression files, missing
    images or masks and empty expressions; with ``strict=False`` they are only listed in
    ``stats.problems`` (for the dataset check).
    """
    root = Path(root)
    log = ProblemLog(strict=strict)
    stats = LoadStats(dataset="refsegrs", root=str(root), split=split, problems=log.problems)
    if not root.is_dir():
        log.fatal("missing_file", root, "data root folder not found")
        return [], stats
    present = refsegrs_splits(root)
    stats.splits = present
    if not present:
        log.fatal(
            "missing_file",
            refsegrs_split_file(root, "<split>"),
            "no expression file found (RefSegRS layout: <root>/output_phrase_{train,val,test}.txt)",
        )
        return [], stats
    if split is not None and split not in present:
        log.fatal(
            "unknown_split",
            refsegrs_split_file(root, split),
            f"split {split!r} not found; splits present: {', '.join(present)}",
        )
        return [], stats
    image_folder, mask_folder = root / IMAGES_DIR, root / MASKS_DIR
    for folder, what in ((image_folder, "image"), (mask_folder, "mask")):
        if not folder.is_dir():
            log.fatal("missing_file", folder, f"{what} folder not found (RefSegRS layout)")
            return [], stats

    records: list[ReferringRecord] = []
    available: dict[str, bool] = {}
    for name in [split] if split is not None else present:
        for number, image_id, expression in _parse_split_file(refsegrs_split_file(root, name), log):
            if image_id not in available:
                available[image_id] = _files_present(image_folder, mask_folder, image_id, log)
            if not available[image_id]:
                continue
            records.append(
                ReferringRecord(
                    sample_id=f"{number}-{image_id}",
                    image_path=image_folder / f"{image_id}{SUFFIX}",
                    expression=expression,
                    category="",
                    category_id=-1,
                    image_id=image_id,
                    split=name,
                    mask=FileMask(mask_folder / f"{image_id}{SUFFIX}"),
                )
            )
    stats.count(records)
    if read_image_sizes:
        stats.resized_masks = _read_sizes(records, log)
    log.raise_if_fatal()
    return records, stats


def _files_present(image_folder: Path, mask_folder: Path, image_id: str, log: ProblemLog) -> bool:
    """Whether both the image and the mask of ``image_id`` exist (missing ones are logged)."""
    ok = True
    image, mask = image_folder / f"{image_id}{SUFFIX}", mask_folder / f"{image_id}{SUFFIX}"
    if not image.is_file():
        log.add("missing_image", image, f"image of {image_id} not found")
        ok = False
    if not mask.is_file():
        log.add("missing_mask", mask, f"mask of {image_id} not found")
        ok = False
    return ok


def _read_sizes(records: list[ReferringRecord], log: ProblemLog) -> int:
    """Give each record its image's (H, W) (header only); count masks of another size."""
    attach_image_sizes(records)
    mask_sizes: dict[Path, tuple[int, int] | None] = {}
    resized: set[Path] = set()
    for record in records:
        mask_path = record.mask.path if isinstance(record.mask, FileMask) else None
        if mask_path is not None and mask_path not in mask_sizes:
            mask_sizes[mask_path] = read_image_size(mask_path)
        image_size = record.image_size
        mask_size = mask_sizes.get(mask_path) if mask_path is not None else None
        if image_size and mask_size and image_size != mask_size and mask_path not in resized:
            resized.add(mask_path)
            log.add(
                "size_mismatch",
                record.image_path,
                f"image is {image_size[0]}x{image_size[1]} (HxW) but its mask ({mask_path}) is "
                f"{mask_size[0]}x{mask_size[1]}; mask resized from its own size (nearest)",
            )
    return len(resized)
