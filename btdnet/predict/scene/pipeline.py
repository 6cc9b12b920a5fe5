"""Scene-scale prediction: one prompt over a whole (Geo)TIFF, tile by tile, in bounded memory.

Usage::

    predictor = Predictor.from_pretrained("runs/rrsisd/checkpoints/best")
    result = predictor.predict_scene("scene.tif", "the storage tanks", "out/", tile="auto")
    print(result.record)  # the JSON line: objects, area, tiles, tiles skipped, files

How it works (each step in its own module):

1. :mod:`~btdnet.raster.source` reads the scene window by window (rasterio), with one
   percentile stretch for the whole scene and its nodata mask;
2. :mod:`~btdnet.tiling` places square tiles (``auto`` = the model's input side, so
   tiles run at native resolution) with an overlap, and weighs them for a smooth blend;
3. :mod:`~btdnet.predict.scene.rows` runs each row of tiles (batched) and writes it as a part
   file in ``<out>/<name>.parts/`` -- the unit of resumption and of the split across
   processes (row ``r`` goes to process ``r mod N``, so the result does not depend on N);
4. :mod:`~btdnet.predict.scene.writer` streams the parts into a COG mask (and probability),
   polygons (GeoJSON, GeoPackage) and totals, :mod:`~btdnet.predict.scene.preview` draws a
   downsampled picture of the result, then the parts folder is removed.

A referring expression is answered per tile: "on the left" means the left of a tile.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from btdnet.predict.scene.preview import render_preview
from btdnet.predict.scene.rows import PartError, RowPart, RowRunner, part_path
from btdnet.predict.scene.state import (
    PartsLock,
    SceneStateError,
    build_manifest,
    finished_record,
    prepare_parts,
    record_files,
    run_key,
)
from btdnet.predict.scene.writer import (
    iter_objects,
    pixel_area,
    to_cog,
    write_rasters,
    write_vectors,
)
from btdnet.predict.vectors import VectorOptions
from btdnet.presence import check_presence_threshold
from btdnet.raster.bands import Stretch
from btdnet.raster.source import NotGeoreferencedWarning, SceneReadError, SceneSource
from btdnet.safe_write import UnsafeOutputError, atomic_outputs, check_output_path
from btdnet.tiling import (
    DEFAULT_SCENE_MAX_PIXELS,
    DEFAULT_SCENE_MAX_TILES,
    SceneTooLargeError,
    TileGrid,
    check_scene_size,
    default_overlap,
    resolve_tile,
)

GDAL_CACHE_MB = 64


@dataclass(frozen=True)
class SceneOptions:
    """How a scene is tiled and what is written.

    Attributes:
        tile: tile side in pixels, or ``"auto"`` (the model's input side: native resolution).
        overlap: pixels shared by neighbouring tiles (``None``: one eighth of the tile).
        gsd: resample the scene to this many metres (CRS units) per pixel first.
        save_probability: also write ``<name>_probability.tif`` (uint8, probability x 255).
        resume: keep the finished rows of an interrupted run (its parts folder).
        batch_size: tiles per forward pass (``None``: the predictor's batch size).
        max_pixels: refuse a scene (after ``gsd``) with more pixels (``None``: no limit).
        max_tiles: refuse a scene with more tiles (``None``: no limit).
        presence_threshold: a tile whose presence probability is below it answers "no
            target" (``None``: the predictor's threshold); models with a presence head only.
        vectors: how polygons are written (:mod:`btdnet.predict.vectors`).
        bands: 1-based band numbers read as R, G, B (or one, grey); None: the first three.
        stretch: how values become 0..255 (:class:`~btdnet.raster.bands.Stretch`, default
            ``auto``), as for a whole image.
    """

    tile: int | str = "auto"
    overlap: int | None = None
    gsd: float | None = None
    save_probability: bool = False
    resume: bool = False
    batch_size: int | None = None
    max_pixels: int | None = DEFAULT_SCENE_MAX_PIXELS
    max_tiles: int | None = DEFAULT_SCENE_MAX_TILES
    presence_threshold: float | None = None
    vectors: VectorOptions = field(default_factory=VectorOptions)
    bands: tuple[int, ...] | None = None
    stretch: Stretch = field(default_factory=Stretch)


@dataclass
class SceneResult:
    """The answer for one scene: ``record`` is the JSON line; ``files`` the written paths;
    ``reused``: ``resume`` found the scene finished with the same options (nothing was run)."""

    record: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)
    resumed_rows: int = 0
    reused: bool = False


class Processes:
    """This process's place among ``accelerate launch`` processes (one process otherwise).

    ``alone=True``: this process runs the scene by itself (whole scenes are shared among the
    processes, :mod:`btdnet.predict.scene.batch`), whatever the number of processes.
    """

    def __init__(self, alone: bool = False) -> None:
        self._state = None
        self.index, self.count = 0, 1
        world = 1 if alone else int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1:
            import torch
            from accelerate import PartialState

            # Without a GPU, accelerate joins the processes only when told to use the CPU.
            self._state = PartialState(cpu=not torch.cuda.is_available())
            self.index, self.count = self._state.process_index, self._state.num_processes
            if self.count != world:
                raise RuntimeError(
                    f"WORLD_SIZE is {world} but accelerate joined {self.count} process(es)"
                )

    @property
    def is_main(self) -> bool:
        """True on the process that assembles and reports."""
        return self.index == 0

    def barrier(self) -> None:
        """Wait for every process (no-op for one process)."""
        if self._state is not None:
            self._state.wait_for_everyone()


def _tokens(predictor: Any, text: str) -> tuple[Any, Any, bool]:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the text is empty: give an expression such as 'the storage tanks'")
    input_ids, attention_mask, truncated = predictor.tokenize([text.strip()])
    return input_ids, attention_mask, truncated[0]


def _threshold(predictor: Any, options: SceneOptions) -> float:
    """This scene's presence threshold: the options', else the predictor's default."""
    if options.presence_threshold is None:
        return float(predictor.presence_threshold)
    return check_presence_threshold(options.presence_threshold)


def _open(image: str | Path, options: SceneOptions) -> SceneSource:
    source = SceneSource(image, gsd=options.gsd, bands=options.bands, stretch=options.stretch)
    if source.geo is None:
        warnings.warn(
            f"{image}: has no georeference; the mask and polygons are in pixel coordinates "
            "(x = column, y = row)",
            NotGeoreferencedWarning,
            stacklevel=3,
        )
    return source


def predict_scene(
    predictor: Any,
    image: str | Path,
    text: str,
    out_dir: str | Path,
    *,
    name: str | None = None,
    options: SceneOptions | None = None,
    progress: bool = False,
    on_tiles: Callable[[int], None] | None = None,
    alone: bool = False,
) -> SceneResult:
    """Segment what ``text`` refers to in every tile of a scene; write the outputs.

    Args:
        predictor: a :class:`~btdnet.predict.predictor.Predictor`.
        image: the scene file (GeoTIFF/COG/TIFF read by windows; PNG/JPEG read whole).
        text: the prompt, answered tile by tile.
        out_dir: output folder (created).
        name: stem of the output files (default: the image's stem).
        options: :class:`SceneOptions`.
        progress: show a progress bar (tiles, tiles/s, ETA) on stderr.
        on_tiles: called with the number of tiles finished after every batch.
        alone: run the scene in this process only, even under several processes (they
            share whole scenes instead of the rows of one).

    Raises:
        SceneReadError: the scene cannot be read, or ``gsd`` does not fit it.
        SceneTooLargeError: the scene has more pixels or tiles than the options allow.
        SceneStateError: ``resume`` found a parts folder of another scene, model or options,
            or another run holds the parts folder.
        PartError: a row part to reuse is a link or does not fit the grid.
        UnsafeOutputError: an output (or the parts folder) is a link or not a regular file.
        ValueError: empty text, bad tile size or overlap.

    Warns:
        NotGeoreferencedWarning: the scene has no CRS/transform (pixel coordinates).
    """
    rasterio = _require_rasterio(image)
    options = options or SceneOptions()
    out_dir = Path(out_dir)
    name = name or Path(image).stem
    input_ids, attention_mask, truncated = _tokens(predictor, text)
    started = time.perf_counter()
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), _open(image, options) as source:
        grid = _grid(source, options, predictor.input_side)
        threshold = _threshold(predictor, options)
        manifest = build_manifest(
            Path(image), text.strip(), grid, options.gsd, predictor, threshold
        )
        manifest["bands"] = None if options.bands is None else list(options.bands)
        manifest["stretch"] = asdict(options.stretch)  # what the model saw: parts depend on it
        key = run_key({**manifest, "vectors": asdict(options.vectors)})  # outputs, not parts
        if options.resume:
            finished = finished_record(out_dir, name, key, options.save_probability)
            if finished is not None:
                return SceneResult(record=finished, files=record_files(finished), reused=True)
        runner = RowRunner(
            predictor,
            source,
            grid,
            input_ids,
            attention_mask,
            options.batch_size or predictor.batch_size,
            threshold,
            on_tiles,
        )
        processes = Processes(alone=alone)
        extra = {"truncated": truncated, "run_key": key}
        extra["presence_head"] = bool(getattr(predictor, "has_presence_head", False))
        result = _run_scene(runner, processes, out_dir, name, manifest, options, progress, extra)
        if processes.is_main:
            result.record["wall_seconds"] = round(time.perf_counter() - started, 3)
    if not processes.is_main:
        result.record = json.loads((out_dir / f"{name}.json").read_text(encoding="utf-8"))
    return result


def _run_scene(
    runner: RowRunner,
    processes: Processes,
    out_dir: Path,
    name: str,
    manifest: dict[str, Any],
    options: SceneOptions,
    progress: bool,
    extra: dict[str, Any],
) -> SceneResult:
    """Claim and lock the parts folder, run the rows, assemble the outputs (main process)."""
    parts = out_dir / f"{name}.parts"
    with contextlib.ExitStack() as stack:
        if processes.is_main:
            output_paths(out_dir, name, options.save_probability)  # refused before any work
            out_dir.mkdir(parents=True, exist_ok=True)
            stack.enter_context(PartsLock(parts))
            prepare_parts(parts, manifest, options.resume)
        processes.barrier()
        resumed = _run_rows(runner, parts, processes, progress)
        processes.barrier()
        result = SceneResult(record={}, resumed_rows=resumed)
        if processes.is_main:
            grid, source = runner.grid, runner.source
            result = _assemble(parts, out_dir, name, grid, source, manifest, options, extra)
            result.resumed_rows = resumed
    processes.barrier()
    return result


def _presence_facts(head: bool, area_pixels: int) -> dict[str, Any]:
    """``present`` of a scene answer: with a presence head, whether anything was found (tiles
    the head calls absent add nothing); without one, None and the note that says why."""
    from btdnet.presence import presence_note, present_answer

    present = present_answer(True if head else None, area_pixels)
    return {"present": present, **presence_note(present)}


def _grid(source: SceneSource, options: SceneOptions, input_side: int) -> TileGrid:
    """The scene's tiles; refuses a scene over ``max_pixels`` or ``max_tiles``."""
    tile = resolve_tile(options.tile, input_side)
    overlap = default_overlap(tile) if options.overlap is None else int(options.overlap)
    grid = TileGrid(source.height, source.width, tile, overlap)
    grid.rows.weights(0)  # validates the overlap
    check_scene_size(source.path, grid, options.max_pixels, options.max_tiles)
    return grid


def _require_rasterio(image: str | Path) -> Any:
    from btdnet.raster.geo import require_rasterio

    return require_rasterio(f"{image}: scene prediction (--tile)")


def _run_rows(runner: RowRunner, parts: Path, processes: Processes, progress: bool) -> int:
    """Compute this process's unfinished rows; returns how many finished rows were kept."""
    count = runner.grid.rows.count
    mine = [r for r in range(count) if r % processes.count == processes.index]
    done = [r for r in mine if part_path(parts, r).exists() or part_path(parts, r).is_symlink()]
    for row in done:  # every part reused is checked before any new work
        RowPart.load(parts, row, runner.grid)
    todo = [r for r in mine if r not in set(done)]
    bar = None
    if progress and processes.is_main:
        from tqdm import tqdm

        columns = runner.grid.columns.count
        bar = tqdm(
            total=len(mine) * columns,
            initial=(len(mine) - len(todo)) * columns,
            unit="tile",
            desc=f"{runner.source.path.name}",
            file=sys.stderr,
        )
    user_callback = runner.on_tiles

    def advance(tiles: int) -> None:
        if bar is not None:
            bar.update(tiles)
        if user_callback is not None:
            user_callback(tiles)

    runner.on_tiles = advance
    try:
        for row in todo:
            runner.run(row).save(parts)
    finally:
        if bar is not None:
            bar.close()
    return len(mine) - len(todo)


def output_paths(out_dir: Path, name: str, save_probability: bool) -> dict[str, Path]:
    """The files a scene run writes (``record``: the JSON line), each checked: no link."""
    paths = {"mask_geotiff": out_dir / f"{name}.tif"}
    if save_probability:
        paths["probability_geotiff"] = out_dir / f"{name}_probability.tif"
    paths.update(geojson=out_dir / f"{name}.geojson", gpkg=out_dir / f"{name}.gpkg")
    paths["preview"] = out_dir / f"{name}_preview.png"
    paths["record"] = out_dir / f"{name}.json"
    return {key: check_output_path(path) for key, path in paths.items()}


def _assemble(
    parts: Path,
    out_dir: Path,
    name: str,
    grid: TileGrid,
    source: SceneSource,
    manifest: dict[str, Any],
    options: SceneOptions,
    extra: dict[str, Any],
) -> SceneResult:
    """Parts -> COG mask (+ probability), GeoJSON, GeoPackage and the JSON record.

    Every output is written to a temporary first; the set replaces the previous one only
    when all of it is written (a failure keeps the previous outputs and the parts).
    """
    finals = output_paths(out_dir, name, options.save_probability)
    with atomic_outputs(list(finals.values())) as temporaries:
        temporary = dict(zip(finals, temporaries))
        mask_tmp, probability_tmp, totals = write_rasters(
            parts, grid, source.geo, source.valid_rows
        )
        to_cog(mask_tmp, temporary["mask_geotiff"], "NEAREST")
        if options.save_probability:
            to_cog(probability_tmp, temporary["probability_geotiff"], "AVERAGE")
        objects, small = write_vectors(
            iter_objects(mask_tmp, probability_tmp, source.geo),
            temporary["geojson"],
            temporary["gpkg"],
            source.geo,
            manifest["text"],
            options.vectors,
        )
        caption = (
            f"{manifest['text']}  [{objects} object{'s' if objects != 1 else ''}; scene mode, "
            f"{grid.height}x{grid.width} px in tiles of {grid.tile}]"
        )
        render_preview(source, mask_tmp, caption).save(temporary["preview"], format="PNG")
        files = {key: str(path) for key, path in finals.items() if key != "record"}
        record = {
            "image": str(source.path),
            "image_relative": os.path.relpath(manifest["image"], out_dir.resolve()),
            "image_blake2b": manifest["image_blake2b"],
            "text": manifest["text"],
            "objects": objects,
            "objects_below_min_area": small,
            "area": totals.area_pixels * pixel_area(source.geo),
            "area_pixels": totals.area_pixels,
            "area_units": "map" if source.geo is not None else "pixel",
            "tiles": totals.tiles,
            "tiles_skipped": totals.tiles_nodata + totals.tiles_absent,
            "tiles_nodata": totals.tiles_nodata,
            "tiles_absent": totals.tiles_absent,
            "height": grid.height,
            "width": grid.width,
            "tile": grid.tile,
            "overlap": grid.overlap,
            "gsd": options.gsd,
            "vectors": asdict(options.vectors),
            "mode": "scene",
            **_presence_facts(extra.get("presence_head", False), totals.area_pixels),
            **files,
            **extra,
        }
        temporary["record"].write_text(json.dumps(record), encoding="utf-8")
    shutil.rmtree(parts)
    return SceneResult(record=record, files=files)


__all__ = [
    "NotGeoreferencedWarning",
    "PartError",
    "RowPart",
    "SceneOptions",
    "SceneReadError",
    "SceneResult",
    "SceneStateError",
    "SceneTooLargeError",
    "UnsafeOutputError",
    "predict_scene",
]
