"""Scene-scale prediction: one prompt over a whole (Geo)TIFF, tile by tile, in bounded memory.

Usage::

    predictor = Predictor.from_pretrained("runs/rrsisd/checkpoints/best")
    result = predictor.predict_scene("scene.tif", "the storage tanks", "out/", tile="auto")
    print(result.record)  # the JSON line: objects, area, tiles, tiles skipped, files

How it works (each step in its own module):

1. :mod:`~btdnet.predict.scene.source` reads the scene window by window (rasterio), with one
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

from btdnet.predict.scene.preview import write_preview
from btdnet.predict.scene.rows import RowPart, RowRunner, part_path
from btdnet.predict.scene.source import NotGeoreferencedWarning, SceneReadError, SceneSource
from btdnet.predict.scene.writer import (
    iter_objects,
    pixel_area,
    to_cog,
    write_rasters,
    write_vectors,
)
from btdnet.predict.vectors import VectorOptions
from btdnet.tiling import TileGrid, default_overlap, resolve_tile

MANIFEST = "manifest.json"
GDAL_CACHE_MB = 64


class SceneStateError(ValueError):
    """A parts folder to resume does not belong to this scene and these options."""


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
        vectors: how polygons are written (:mod:`btdnet.predict.vectors`).
    """

    tile: int | str = "auto"
    overlap: int | None = None
    gsd: float | None = None
    save_probability: bool = False
    resume: bool = False
    batch_size: int | None = None
    vectors: VectorOptions = field(default_factory=VectorOptions)


@dataclass
class SceneResult:
    """The answer for one scene: ``record`` is the JSON line; ``files`` the written paths."""

    record: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)
    resumed_rows: int = 0


class Processes:
    """This process's place among ``accelerate launch`` processes (one process otherwise)."""

    def __init__(self) -> None:
        self._state = None
        self.index, self.count = 0, 1
        world = int(os.environ.get("WORLD_SIZE", "1"))
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


def _manifest(path: Path, text: str, grid: TileGrid, options: SceneOptions) -> dict[str, Any]:
    return {
        "image": str(path.resolve()),
        "image_bytes": path.stat().st_size,
        "text": text,
        "height": grid.height,
        "width": grid.width,
        "tile": grid.tile,
        "overlap": grid.overlap,
        "gsd": options.gsd,
    }


def _prepare_parts(folder: Path, manifest: dict[str, Any], resume: bool) -> None:
    """Create the parts folder, or check it (``resume``), or clear our files from it."""
    manifest_path = folder / MANIFEST
    if folder.exists() and resume and manifest_path.is_file():
        found = json.loads(manifest_path.read_text(encoding="utf-8"))
        if found != manifest:
            changed = sorted(k for k in manifest if found.get(k) != manifest[k])
            raise SceneStateError(
                f"{folder}: cannot resume: it was started with other {', '.join(changed)}; "
                "run without --resume to start over"
            )
        return
    if folder.exists():
        for item in folder.glob("row_*.npz"):
            item.unlink()
        for name in (MANIFEST, "mask.tif", "probability.tif"):
            (folder / name).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    os.replace(temporary, manifest_path)


def _tokens(predictor: Any, text: str) -> tuple[Any, Any, bool]:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the text is empty: give an expression such as 'the storage tanks'")
    input_ids, attention_mask, truncated = predictor._tokenize([text.strip()])
    return input_ids, attention_mask, truncated[0]


def _open(image: str | Path, gsd: float | None) -> SceneSource:
    source = SceneSource(image, gsd=gsd)
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

    Raises:
        SceneReadError: the scene cannot be read, or ``gsd`` does not fit it.
        SceneStateError: ``resume`` found a parts folder of another scene or other options.
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
    if options.resume:
        finished = _finished_record(out_dir, name, image, text.strip(), options)
        if finished is not None:
            return SceneResult(record=finished, files=_record_files(finished))
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), _open(image, options.gsd) as source:
        tile = resolve_tile(options.tile, predictor.input_side)
        overlap = default_overlap(tile) if options.overlap is None else int(options.overlap)
        grid = TileGrid(source.height, source.width, tile, overlap)
        grid.rows.weights(0)  # validates the overlap
        manifest = _manifest(Path(image), text.strip(), grid, options)
        processes = Processes()
        parts = out_dir / f"{name}.parts"
        if processes.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
            _prepare_parts(parts, manifest, options.resume)
        processes.barrier()
        runner = RowRunner(
            predictor,
            source,
            grid,
            input_ids,
            attention_mask,
            options.batch_size or predictor.batch_size,
            on_tiles,
        )
        resumed = _run_rows(runner, parts, processes, progress)
        processes.barrier()
        result = SceneResult(record={}, resumed_rows=resumed)
        if processes.is_main:
            result = _assemble(parts, out_dir, name, grid, source, manifest, options)
            result.resumed_rows = resumed
            result.record["truncated"] = truncated
            result.record["wall_seconds"] = round(time.perf_counter() - started, 3)
            (out_dir / f"{name}.json").write_text(json.dumps(result.record), encoding="utf-8")
        processes.barrier()
    if not processes.is_main:
        result.record = json.loads((out_dir / f"{name}.json").read_text(encoding="utf-8"))
    return result


def _finished_record(
    out_dir: Path, name: str, image: str | Path, text: str, options: SceneOptions
) -> dict[str, Any] | None:
    """The record of a scene this folder already finished with the same options, else None."""
    record_path = out_dir / f"{name}.json"
    if (out_dir / f"{name}.parts").exists() or not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    same = (
        record.get("image_resolved") == str(Path(image).resolve())
        and record.get("text") == text
        and record.get("gsd") == options.gsd
        and (options.overlap is None or record.get("overlap") == options.overlap)
        and (str(options.tile) == "auto" or record.get("tile") == int(options.tile))
        and (not options.save_probability or "probability_geotiff" in record)
        and record.get("vectors") == asdict(options.vectors)
    )
    files_there = all(Path(path).is_file() for path in _record_files(record).values())
    return record if same and files_there else None


def _record_files(record: dict[str, Any]) -> dict[str, str]:
    keys = ("mask_geotiff", "probability_geotiff", "geojson", "gpkg", "preview")
    return {key: record[key] for key in keys if key in record}


def _require_rasterio(image: str | Path) -> Any:
    from btdnet.predict.geo import require_rasterio

    return require_rasterio(f"{image}: scene prediction (--tile)")


def _run_rows(runner: RowRunner, parts: Path, processes: Processes, progress: bool) -> int:
    """Compute this process's unfinished rows; returns how many finished rows were kept."""
    count = runner.grid.rows.count
    mine = [r for r in range(count) if r % processes.count == processes.index]
    todo = [r for r in mine if not part_path(parts, r).is_file()]
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


def _assemble(
    parts: Path,
    out_dir: Path,
    name: str,
    grid: TileGrid,
    source: SceneSource,
    manifest: dict[str, Any],
    options: SceneOptions,
) -> SceneResult:
    """Parts -> COG mask (+ probability), GeoJSON, GeoPackage and the JSON record."""
    mask_tmp, probability_tmp, totals = write_rasters(parts, grid, source.geo)
    files = {"mask_geotiff": str(to_cog(mask_tmp, out_dir / f"{name}.tif", "NEAREST"))}
    if options.save_probability:
        target = out_dir / f"{name}_probability.tif"
        files["probability_geotiff"] = str(to_cog(probability_tmp, target, "AVERAGE"))
    geojson, gpkg = out_dir / f"{name}.geojson", out_dir / f"{name}.gpkg"
    objects, small = write_vectors(
        iter_objects(mask_tmp, probability_tmp, source.geo),
        geojson,
        gpkg,
        source.geo,
        manifest["text"],
        options.vectors,
    )
    files.update(geojson=str(geojson), gpkg=str(gpkg))
    caption = (
        f"{manifest['text']}  [{objects} object{'s' if objects != 1 else ''}; scene mode, "
        f"{grid.height}x{grid.width} px in tiles of {grid.tile}]"
    )
    preview = write_preview(source, mask_tmp, out_dir / f"{name}_preview.png", caption)
    files["preview"] = str(preview)
    record = {
        "image": str(source.path),
        "image_resolved": manifest["image"],
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
        **files,
    }
    shutil.rmtree(parts)
    return SceneResult(record=record, files=files)


__all__ = [
    "NotGeoreferencedWarning",
    "RowPart",
    "SceneOptions",
    "SceneReadError",
    "SceneResult",
    "SceneStateError",
    "predict_scene",
]
