"""Check a referring data set on disk and report every problem at once.

:func:`check_referring_dataset` returns a JSON-ready report::

    {"dataset": str, "root": str,
     "splits": {"<split>": {"samples": int, "images": int,
                            "targeted": int, "multi_target": int, "no_target": int}},
     "problems": [{"kind": str, "file": str, "detail": str}]}

The report helpers (:func:`is_usable`, :func:`summary_line`, :func:`format_report`) only rely
on that shape, so checks of other data sets (the closed-set ones) can share them.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

from btdnet.data.dataset import REFERRING_LOADERS
from btdnet.data.errors import PROBLEM_KINDS, WARNING_KINDS, DatasetError, Problem
from btdnet.data.records import EmptyMask, FileMask, ReferringRecord, RleMask
from btdnet.data.transforms import read_rgb_image


def check_referring_dataset(
    name: str, root: str | Path, *, progress: bool | None = None
) -> dict[str, Any]:
    """Index every split of ``name`` under ``root`` and decode every image (and mask file).

    Reports missing and unreadable files, masks whose size differs from their image, empty
    masks, annotations whose RLE parts overlap, duplicate ids and empty expressions.
    ``progress`` shows a progress bar over the images (default: when stderr is a terminal).
    """
    if name not in REFERRING_LOADERS:
        raise ValueError(f"unknown referring data set {name!r}; known: {sorted(REFERRING_LOADERS)}")
    records, stats = REFERRING_LOADERS[name](root, None, read_image_sizes=False, strict=False)
    problems = list(stats.problems)
    by_image: dict[Path, list[ReferringRecord]] = {}
    for record in records:
        by_image.setdefault(record.image_path, []).append(record)
    show = sys.stderr.isatty() if progress is None else progress
    for image_path in tqdm(by_image, desc=f"checking {name}", unit="image", disable=not show):
        problems.extend(_check_image(image_path, by_image[image_path]))
    splits = {
        split: _split_counts([r for r in records if r.split == split]) for split in stats.splits
    }
    return {
        "dataset": name,
        "root": str(root),
        "splits": splits,
        "problems": [problem.as_dict() for problem in problems],
    }


def _split_counts(records: list[ReferringRecord]) -> dict[str, int]:
    """Samples, images, and (generalized referring) targeted / multi-target / no-target."""
    return {
        "samples": len(records),
        "images": len({r.image_path for r in records}),
        "targeted": sum(1 for r in records if not r.no_target),
        "multi_target": sum(1 for r in records if r.target_count > 1),
        "no_target": sum(1 for r in records if r.no_target),
    }


def _check_image(image_path: Path, records: list[ReferringRecord]) -> list[Problem]:
    """Decode one image and compare it with the distinct masks of its samples."""
    try:
        image = read_rgb_image(image_path)
    except DatasetError as exc:
        detail = str(exc).removeprefix(f"{image_path}: ")
        return [Problem("unreadable_image", str(image_path), detail)]
    size = (image.height, image.width)
    problems = []
    for mask in dict.fromkeys(r.mask for r in records):
        if isinstance(mask, EmptyMask):
            mask_size = mask.size
        elif isinstance(mask, RleMask):
            if not mask.is_valid():
                problems.append(
                    Problem(
                        "bad_annotation",
                        mask.file,
                        f"{mask.label}: RLE counts do not describe a "
                        f"{mask.height}x{mask.width} mask",
                    )
                )
                continue
            mask_size = mask.size
            problems.extend(_overlap_problems(mask))
        elif isinstance(mask, FileMask):
            try:
                pixels = mask.decode()
            except DatasetError as exc:
                detail = str(exc).removeprefix(f"{mask.path}: ")
                problems.append(Problem("unreadable_mask", str(mask.path), detail))
                continue
            if not pixels.any():
                problems.append(
                    Problem("empty_mask", str(mask.path), "no pixel above the threshold")
                )
            mask_size = pixels.shape
        else:
            raise TypeError(f"unknown mask source {type(mask).__name__}")
        if tuple(mask_size) != size:
            problems.append(
                Problem(
                    "size_mismatch",
                    str(image_path),
                    f"image is {size[0]}x{size[1]} (HxW) but its mask ({mask.label}) is "
                    f"{mask_size[0]}x{mask_size[1]}; mask resized from its own size (nearest)",
                )
            )
    return problems


def _overlap_problems(mask: RleMask) -> list[Problem]:
    """An ``overlapping_parts`` warning when the RLE parts of one annotation overlap."""
    if not mask.lavt_parts or len(mask.parts) < 2:
        return []
    overlap = mask.overlapping_pixels()
    if not overlap:
        return []
    detail = (
        f"{mask.label}: its {len(mask.parts)} RLE parts overlap on {overlap} pixels; "
        "--protocol lavt reads them as the LAVT family does (overlap = background), "
        "--protocol original takes the union"
    )
    return [Problem("overlapping_parts", mask.file, detail)]


def problem_counts(report: dict[str, Any]) -> dict[str, int]:
    """Number of problems of each kind, most frequent first."""
    return dict(Counter(p["kind"] for p in report["problems"]).most_common())


def is_usable(report: dict[str, Any]) -> bool:
    """Whether training and evaluation can run: no fatal problem and at least one sample.

    Warnings (``empty_mask``, ``size_mismatch``, ``duplicate_id``) occur in the official
    releases and are handled by the loaders; every other kind makes a loader refuse the set.
    """
    fatal = any(p["kind"] not in WARNING_KINDS for p in report["problems"])
    samples = sum(split["samples"] for split in report["splits"].values())
    return not fatal and samples > 0


def summary_line(report: dict[str, Any]) -> str:
    """One line to paste into an issue, e.g.
    ``rrsisd @ /data: train 12181 samples/12181 images, ...; 3 problems (2 empty_mask,
    1 size_mismatch): usable``."""
    splits = ", ".join(
        f"{name} {split['samples']} samples/{split['images']} images"
        for name, split in report["splits"].items()
    )
    counts = problem_counts(report)
    total = sum(counts.values())
    if total:
        kinds = ", ".join(f"{count} {kind}" for kind, count in counts.items())
        problems = f"{total} problem{'s' if total != 1 else ''} ({kinds})"
    else:
        problems = "no problems"
    usable = report.get("usable")  # a check that judges its own kinds says so
    verdict = "usable" if (is_usable(report) if usable is None else usable) else "NOT usable"
    return f"{report['dataset']} @ {report['root']}: {splits or 'no splits'}; {problems}: {verdict}"


def _layout_lines(layout: dict[str, Any]) -> list[str]:
    """'files:' lines of a report that says which folders its files came from (ISPRS)."""
    shadowed = layout.get("shadowed", {})
    lines = []
    for kind, folders in layout.items():
        if kind == "shadowed":
            continue
        where = ", ".join(
            f"{'the root' if folder == '.' else folder + '/'} ({count})"
            for folder, count in folders.items()
        )
        extra = (
            f"; {shadowed[kind]} also in a less preferred folder (not used)"
            if kind in shadowed
            else ""
        )
        lines.append(f"  {kind.replace('_', ' ')}s from {where}{extra}")
    return ["files:", *lines] if lines else []


def _detail(problem: dict[str, Any]) -> str:
    """A problem's detail without the file name it may repeat (it is printed before it)."""
    return problem["detail"].removeprefix(f"{problem['file']}: ")


def format_report(report: dict[str, Any], max_per_kind: int = 10) -> str:
    """A human-readable report: splits, then problems grouped by kind (fatal kinds first)."""
    lines = [f"data set: {report['dataset']}", f"root:     {report['root']}", "splits:"]
    if not report["splits"]:
        lines.append("  (none found)")
    for name, split in report["splits"].items():
        line = f"  {name:<8} {split['samples']:>7} samples {split['images']:>7} images"
        if split.get("multi_target") or split.get("no_target"):
            line += (
                f" ({split['targeted']} targeted, {split['multi_target']} multi-target, "
                f"{split['no_target']} no-target)"
            )
        lines.append(line)
    lines.extend(_layout_lines(report.get("layout") or {}))
    counts = problem_counts(report)
    levels = {kind: "warning" if kind in WARNING_KINDS else "error" for kind in counts}
    meanings = {kind: PROBLEM_KINDS.get(kind, "") for kind in counts}
    for kind, own in (report.get("problem_kinds") or {}).items():  # a closed-set check's kinds
        levels[kind], meanings[kind] = own["level"], own["meaning"]
    ordered = sorted(counts, key=lambda kind: (levels[kind] == "warning", -counts[kind]))
    for kind in ordered:
        meaning = f" ({meanings[kind]})" if meanings[kind] else ""
        lines.append(f"{levels[kind]}: {counts[kind]} x {kind}{meaning}")
        shown = [p for p in report["problems"] if p["kind"] == kind][:max_per_kind]
        lines.extend(f"    {p['file']}: {_detail(p)}" for p in shown)
        if counts[kind] > len(shown):
            lines.append(f"    ... and {counts[kind] - len(shown)} more (see --json)")
    lines.append(summary_line(report))
    return "\n".join(lines)
