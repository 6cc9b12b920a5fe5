"""The scene mode of ``btdnet-predict`` (``--tile``): its options and its run loop."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from typing import Any

from btdnet.errors import one_line
from btdnet.tiling import DEFAULT_SCENE_MAX_PIXELS, DEFAULT_SCENE_MAX_TILES

SCENE_HELP = """\
Scene mode (chosen by default for an image more than 2x the model's input side; --tile
SIZE|auto forces it, and so does any option of this group): the scene is read window by
window and predicted in square tiles at native resolution (auto = the model's input side;
another SIZE is resized to it), overlapping by --overlap pixels and blended smoothly, in
bounded memory. The words of an expression then refer to ONE TILE: "the ship on the left"
means on the left of a tile, not of the scene; say what to find ("the storage tanks").
Per prompt OUT receives <name>.tif (mask, Cloud-Optimized GeoTIFF with overviews, the
scene's CRS and transform), <name>.geojson (WGS 84) and <name>.gpkg (the scene's CRS): one
polygon per object with its score and its area in map units, <name>_preview.png (the
scene downsampled with the objects outlined), optionally <name>_probability.tif, and
<name>.json (the JSON line: objects, area, tiles, tiles skipped). Nodata pixels are never
target. An interrupted run leaves OUT/<name>.parts/; --resume finishes it without redoing
finished rows of tiles, and skips scenes already finished. Under `accelerate launch
--num_processes N` several scenes (a folder, a prompts file) are shared whole among the
processes, one scene's rows of tiles otherwise; the result equals one process's;
OUT/summary.json ends the run."""


def add_scene_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--tile``, ``--overlap``, ``--gsd``, ``--save-probability`` and ``--resume``."""
    group = parser.add_argument_group("scene mode (large scenes, tile by tile)", SCENE_HELP)
    group.add_argument(
        "--tile",
        metavar="SIZE|auto",
        help="predict tile by tile: tile side in pixels, or auto (the model's input side)",
    )
    group.add_argument(
        "--overlap",
        type=int,
        metavar="PX",
        help="pixels shared by neighbouring tiles, at most half a tile (default: tile/8)",
    )
    group.add_argument(
        "--gsd",
        type=float,
        metavar="M",
        help="resample the scene to M metres (CRS units) per pixel first (GeoTIFF only)",
    )
    group.add_argument(
        "--save-probability",
        action="store_true",
        help="also write <name>_probability.tif (uint8, probability x 255)",
    )
    group.add_argument(
        "--resume",
        action="store_true",
        help="finish an interrupted scene run in OUT, keeping its finished rows of tiles "
        "(only for the same model, options and scene content)",
    )
    group.add_argument(
        "--scene-max-pixels",
        type=int,
        default=DEFAULT_SCENE_MAX_PIXELS,
        metavar="N",
        help="refuse a scene (after --gsd) with more pixels; 0: no limit "
        f"(default {DEFAULT_SCENE_MAX_PIXELS:,})",
    )
    group.add_argument(
        "--scene-max-tiles",
        type=int,
        default=DEFAULT_SCENE_MAX_TILES,
        metavar="N",
        help="refuse a scene needing more tiles; 0: no limit "
        f"(default {DEFAULT_SCENE_MAX_TILES:,})",
    )


def check_scene_arguments(args: argparse.Namespace) -> str | None:
    """A usage problem of the scene options, or None.

    A scene option (``--overlap``, ``--gsd``, ``--save-probability``, ``--resume``) without
    ``--tile`` asks for scene mode: ``args.tile`` becomes ``auto``; with ``--whole-image`` it is
    a contradiction.
    """
    if args.tile is None:
        used = [
            name
            for name, value in (
                ("--overlap", args.overlap),
                ("--gsd", args.gsd),
                ("--save-probability", args.save_probability or None),
                ("--resume", args.resume or None),
            )
            if value is not None
        ]
        if not used:
            return None
        if getattr(args, "whole_image", False):
            return f"{', '.join(used)} apply to scene mode, not to --whole-image (see --help)"
        args.tile = "auto"
    tile = str(args.tile).strip().lower()
    digits = tile.isascii() and tile.isdigit()  # "¹²⁸" passes isdigit() alone
    if tile != "auto" and (not digits or int(tile) < 32):
        return f"--tile must be auto or a number of pixels >= 32, got {args.tile!r}"
    if args.overlap is not None and args.overlap < 0:
        return f"--overlap must be >= 0, got {args.overlap}"
    if args.gsd is not None and not (math.isfinite(args.gsd) and args.gsd > 0):
        return f"--gsd must be a positive number, got {args.gsd}"
    for option, value in (
        ("--scene-max-pixels", args.scene_max_pixels),
        ("--scene-max-tiles", args.scene_max_tiles),
    ):
        if value < 0:
            return f"{option} must be >= 0 (0: no limit), got {value}"
    return None


def scene_device(device: str) -> Any:
    """``auto`` under several processes -> this process's own device (accelerate)."""
    if device == "auto" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch
        from accelerate import PartialState

        return PartialState(cpu=not torch.cuda.is_available()).device
    return device


def _options(args: argparse.Namespace) -> Any:
    from btdnet.predict.scene.pipeline import SceneOptions
    from btdnet.predict.vectors import vector_options

    return SceneOptions(
        tile=args.tile,
        overlap=args.overlap,
        gsd=args.gsd,
        save_probability=args.save_probability,
        resume=args.resume,
        batch_size=args.batch_size,
        max_pixels=args.scene_max_pixels or None,
        max_tiles=args.scene_max_tiles or None,
        vectors=vector_options(args),
        bands=getattr(args, "band_numbers", None),
        **({"stretch": args.stretch_rule} if getattr(args, "stretch_rule", None) else {}),
    )


def run_scene_job(
    predictor: Any,
    job: Any,
    args: argparse.Namespace,
    reporter: Any,
    *,
    single: bool,
    alone: bool = False,
) -> Any:
    """Predict one prompt over one scene; report the record or the problem.

    Returns the :class:`~btdnet.predict.scene.pipeline.SceneResult`, or None after a reported
    problem. Raises :class:`FatalError` for a problem in ``single`` mode. ``alone``: this
    process runs the whole scene (the processes share whole scenes).
    """
    from btdnet.predict.outputs import output_name
    from btdnet.predict.reporting import FatalError
    from btdnet.predict.scene.pipeline import SceneStateError, predict_scene
    from btdnet.raster.geo import GeoDependencyError
    from btdnet.raster.image_io import ImageReadError

    name = output_name(job.image, job.index, job.text)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = predict_scene(
                predictor,
                job.image,
                job.text,
                args.out,
                name=name,
                options=_options(args),
                progress=args.progress,
                alone=alone,
            )
    except (ImageReadError, GeoDependencyError, SceneStateError, ValueError, OSError) as exc:
        if single:
            raise FatalError(str(exc)) from exc
        reporter.error(f"{job.source}: {exc}")
        return None
    except Exception as exc:  # out of device or host memory, tokenizer, ...: this prompt only
        reason = one_line(exc, first=True)
        if single:
            raise FatalError(f"{job.image}: prediction failed ({reason})") from exc
        reporter.error(f"{job.source}: prediction failed ({reason})")
        return None
    for item in caught:
        if issubclass(item.category, UserWarning):
            reporter.warning(str(item.message))
    if result.record:
        reporter.record(result.record)
    return result


def _run_jobs(
    predictor: Any, jobs: list[Any], args: argparse.Namespace, processes: Any, inner: Any
) -> list[Any]:
    """Run this process's share of ``jobs``; returns their outcomes (see ``batch``)."""
    from btdnet.predict.scene.batch import CollectingReporter, JobOutcome, my_jobs

    share = processes.count > 1 and len(jobs) > 1
    # Sharing scenes, a problem is reported on its job's line, never fatal: a process that
    # stopped early would leave the others waiting to gather its outcomes.
    single = args.prompts is None and args.image.is_file() and not share
    outcomes = []
    for index in my_jobs(len(jobs), processes.index, processes.count, share):
        outcome = JobOutcome(index, processes.index)
        reporter = CollectingReporter(outcome, None if share else inner)
        result = run_scene_job(predictor, jobs[index], args, reporter, single=single, alone=share)
        outcome.reused = bool(result is not None and result.reused)
        outcomes.append(outcome)
    if share:
        from accelerate.utils import gather_object

        outcomes = gather_object(outcomes)  # every process's outcomes, on every process
    return outcomes


def run_scene_mode(args: argparse.Namespace, jobs: list[Any], problems: list[str]) -> int:
    """``btdnet-predict --tile``: every job as a scene; returns the exit status.

    Several processes share whole scenes when there are several jobs, else the rows of the
    one scene (:mod:`btdnet.predict.scene.batch`); the main process reports everything.
    """
    from btdnet.predict.predictor import Predictor
    from btdnet.predict.reporting import (
        EXIT_OK,
        EXIT_PARTIAL,
        PROG,
        FatalError,
        Reporter,
        open_predictions_file,
    )
    from btdnet.predict.scene.batch import replay, summary, write_summary
    from btdnet.predict.scene.pipeline import Processes

    processes = Processes()
    started = time.perf_counter()
    try:
        predictor = Predictor.from_pretrained(
            args.checkpoint,
            device=scene_device(args.device),
            amp=args.amp,
            batch_size=args.batch_size,
            presence_threshold=getattr(args, "presence_threshold", None),
            revision=getattr(args, "revision", None),
        )
    except (ValueError, OSError) as exc:  # CheckpointError, text encoder, device, amp mode
        raise FatalError(str(exc)) from exc
    if not processes.is_main:
        outcomes = _run_jobs(predictor, jobs, args, processes, None)
        return EXIT_PARTIAL if problems or any(o.failed for o in outcomes) else EXIT_OK
    with open_predictions_file(args.out) as predictions:
        reporter = Reporter(None, predictions)
        for message in problems:
            reporter.error(message)
        outcomes = _run_jobs(predictor, jobs, args, processes, reporter)
        if processes.count > 1 and len(jobs) > 1:
            replay(outcomes, reporter)
    if args.prompts is not None or args.image.is_dir():
        totals = summary(outcomes, len(problems), processes.count, time.perf_counter() - started)
        print(f"{PROG}: {write_summary(args.out, totals)}", file=sys.stderr)
    return EXIT_PARTIAL if reporter.failures else EXIT_OK


__all__ = ["SCENE_HELP", "add_scene_arguments", "check_scene_arguments", "run_scene_mode"]
