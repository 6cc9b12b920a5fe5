"""``btdnet-predict``: segment what a text refers to in your own images.

Exit status: 0 when every prompt succeeded; 1 when some lines of a ``--prompts`` file failed
(each reported on stderr, the others completed); 2 for usage and fatal errors (missing or
wrong checkpoint, unwritable output folder, unreadable image or empty text in single mode).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from btdnet.cli_options import (
    add_amp_option,
    add_checkpoint_options,
    add_device_option,
    add_progress_option,
)
from btdnet.errors import one_line
from btdnet.predict.mode import SCENE, ModeChoice, choose_mode
from btdnet.predict.reporting import (
    EXIT_FATAL,
    EXIT_OK,
    EXIT_PARTIAL,
    PREDICTIONS_FILE,
    PROG,
    FatalError,
    Reporter,
    UsageError,
    open_predictions_file,
    prepare_output_folder,
)
from btdnet.predict.scene.cli import add_scene_arguments, check_scene_arguments, run_scene_mode
from btdnet.predict.vectors import VectorOptions, add_vector_arguments, vector_options
from btdnet.raster.image_io import DEFAULT_MAX_PIXELS
from btdnet.text import clean_expression

DESCRIPTION = """\
Segment what a referring expression describes in an image with a BTDNet checkpoint.

Single image:  btdnet-predict --checkpoint DIR --image scene.tif --text "the white ship" --out OUT
Batch:         btdnet-predict --checkpoint DIR --prompts prompts.jsonl --out OUT
               (one {"image": ..., "text": ...} object per line; relative image paths are
               read from the prompts file's folder; a bad line is reported and skipped)
Folder:        btdnet-predict --checkpoint DIR --image scenes/ --text "the tanks" --tile auto
               (every .tif/.tiff/.png/.jpg/.jpeg of the folder; under `accelerate launch
               --num_processes N` the processes share the scenes; OUT/summary.json at the end)

Mode (one line on stderr says which): an image whose longer side is more than 2x the model's
input side is predicted in SCENE MODE (tiles of the input side at native resolution, below);
a smaller one is resized AS A WHOLE to the model's input size (an expression may speak of the
whole scene) and its probability map brought back to the original size (bilinear).
--whole-image (or --tile none) forces whole-image mode, with a warning giving the resize
factor when the image is large; --tile forces scene mode. In whole-image mode, images above
--max-pixels (default 100 million) are refused. Multi-band files use their first three bands
unless --bands says which (1-based, as GDAL); data other than 8-bit is stretched per band
between its 2nd and 98th percentiles unless --stretch says otherwise (docs/predict.md).

Per prompt, OUT receives <image stem>__<index>_<text slug>.png (mask, 0/255, original size)
and ..._overlay.png; GeoTIFF inputs also give a .tif mask (same CRS and transform) and a
.geojson of the mask's polygons in WGS 84 longitude/latitude (RFC 7946; --geojson-crs native
keeps the image's CRS; needs `pip install btdnet[geo]`). One JSON line
per prompt goes to stdout and to OUT/predictions.jsonl, which is replaced (by a rename,
never through a symbolic link) only once the model has loaded: a failed start leaves the last
run's file as it was. A prompt that fails (unreadable image, out of memory, ...) is reported on
stderr with its line and the others complete; it leaves no files behind.

Exit status: 0 all prompts done; 1 some prompts-file lines failed (reported on stderr, the
others done); 2 usage or fatal error (checkpoint, output folder, image or text in single mode)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see --help)")


@dataclass
class PromptJob:
    """One prompt to answer: ``index`` numbers its output files, ``source`` locates it."""

    index: int
    image: Path
    text: str
    source: str


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``btdnet-predict``."""
    parser = _Parser(
        prog=PROG, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_checkpoint_options(
        parser,
        hub_note="downloaded once into the Hugging Face cache; "
        "read from it without network under HF_HUB_OFFLINE=1",
    )
    parser.add_argument(
        "--image",
        type=Path,
        metavar="PATH",
        help="image to segment (PNG, JPEG, TIFF, GeoTIFF), or a folder: every image in it "
        "with every --text",
    )
    parser.add_argument(
        "--text",
        action="append",
        default=[],
        metavar="TEXT",
        help="referring expression; repeat for several prompts on the image",
    )
    parser.add_argument(
        "--prompts",
        type=Path,
        metavar="FILE.jsonl",
        help='batch mode: one {"image": ..., "text": ...} object per line',
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="OUTDIR",
        help="output folder (created if needed)",
    )
    add_device_option(parser)
    add_amp_option(parser)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=8,
        metavar="N",
        help="prompts per forward pass on one image; tiles per pass with --tile (default: 8)",
    )
    parser.add_argument(
        "--presence-threshold",
        type=float,
        default=None,
        metavar="P",
        help="models with a presence head (generalized referring): a presence probability "
        'below P answers "not found" with an empty mask (default: the checkpoint\'s, 0.5)',
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help="whole-image mode: refuse images with more pixels than N (default: %(default)s; "
        "larger scenes: --tile or resize)",
    )
    add_progress_option(parser)
    add_image_arguments(parser)
    add_scene_arguments(parser)
    add_vector_arguments(parser)
    return parser


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    """How an image is read and which mode predicts it."""
    parser.add_argument(
        "--bands",
        metavar="R,G,B",
        help="band numbers (1-based, as in GDAL) the model sees as red, green, blue, e.g. "
        "3,2,1 for a B,G,R,NIR file; one number: grey (default: the first three bands)",
    )
    parser.add_argument(
        "--stretch",
        default="auto",
        metavar="RULE",
        help="how values become 0..255, the same for whole images and tiles: auto (default: "
        "8-bit as is, else percentile), percentile[:LOW,HIGH] (per scene, default 2,98), "
        "minmax:MIN,MAX (fixed values) or none (clipped to 0..255)",
    )
    parser.add_argument(
        "--whole-image",
        action="store_true",
        help="resize every image whole to the model's input, even one more than 2x larger "
        "(default: such images go to scene mode); same as --tile none",
    )


def _check_image_arguments(args: argparse.Namespace) -> None:
    """Parse ``--bands`` and ``--stretch`` into ``args.band_numbers`` / ``args.stretch_rule``."""
    from btdnet.raster.bands import BandsError, parse_bands, parse_stretch

    try:
        args.band_numbers = parse_bands(args.bands)
        args.stretch_rule = parse_stretch(args.stretch)
    except BandsError as exc:
        raise UsageError(str(exc)) from exc


def _check_arguments(args: argparse.Namespace) -> None:
    _check_image_arguments(args)
    if args.prompts is not None and (args.image is not None or args.text):
        raise UsageError("--prompts cannot be combined with --image/--text (see --help)")
    if args.prompts is None and args.image is None:
        raise UsageError("give --image with --text, or --prompts FILE.jsonl (see --help)")
    if args.image is not None and not args.text:
        raise UsageError("--image needs at least one --text (see --help)")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.max_pixels < 1:
        raise UsageError(f"--max-pixels must be >= 1, got {args.max_pixels}")
    if args.tile is not None and str(args.tile).strip().lower() == "none":
        args.tile, args.whole_image = None, True
    if args.whole_image and args.tile is not None:
        raise UsageError("--whole-image and --tile contradict each other: choose one")
    scene_problem = check_scene_arguments(args)
    if scene_problem is not None:
        raise UsageError(scene_problem)
    try:
        vector_options(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def single_jobs(image: Path, texts: Sequence[str]) -> list[PromptJob]:
    """Jobs of ``--image`` and its ``--text`` options (numbered from 1); empty text is fatal."""
    jobs = []
    for number, text in enumerate(texts, start=1):
        cleaned = clean_expression(text)
        if not cleaned:
            raise FatalError(
                f"--text number {number} is empty or invisible: give an expression to segment"
            )
        jobs.append(PromptJob(number, image, cleaned, f"--text {number}"))
    return jobs


def folder_jobs(folder: Path, texts: Sequence[str]) -> list[PromptJob]:
    """Jobs of every scene file of ``folder`` (sorted) with every ``--text``."""
    from btdnet.predict.scene.batch import scene_files

    try:
        scenes = scene_files(folder)
    except (ValueError, OSError) as exc:
        raise FatalError(str(exc)) from exc
    return [
        PromptJob(job.index, scene, job.text, f"{scene.name} {job.source}")
        for scene in scenes
        for job in single_jobs(scene, texts)
    ]


def _parse_line(line: str, where: str, base: Path, number: int) -> PromptJob:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc.msg})") from exc
    except RecursionError as exc:  # "[[[[..." nested beyond the parser's stack
        raise ValueError(f"{where}: JSON nested too deeply") from exc
    if not isinstance(item, dict):
        raise ValueError(f'{where}: expected an object {{"image": ..., "text": ...}}')
    for key in ("image", "text"):
        if not isinstance(item.get(key), str):
            raise ValueError(f'{where}: "{key}" is missing or not a string')
    text = clean_expression(item["text"])
    if not text:
        raise ValueError(f"{where}: empty text (nothing visible in it)")
    if not item["image"].strip():
        raise ValueError(f"{where}: empty image path")
    image = Path(item["image"])
    return PromptJob(number, image if image.is_absolute() else base / image, text, where)


def read_prompts_file(path: Path) -> tuple[list[PromptJob], list[str]]:
    """Jobs of a JSONL prompts file (numbered by line) and one message per bad line.

    Blank lines are skipped; relative image paths are taken from the file's folder. Lines are
    decoded one by one, so a line that is not UTF-8 is reported and skipped alone.

    Raises:
        FatalError: the file itself cannot be read.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FatalError(f"{path}: cannot read the prompts file ({exc.strerror or exc})") from exc
    data = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark
    jobs, problems = [], []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        where = f"{path}:{number}"
        try:
            line = raw.decode("utf-8")
            if not line.strip():
                continue
            jobs.append(_parse_line(line, where, path.parent, number))
        except UnicodeDecodeError as exc:
            problems.append(
                f"{where}: not UTF-8 text (byte {raw[exc.start]:#04x} at column {exc.start + 1})"
            )
        except ValueError as exc:
            problems.append(str(exc))
    return jobs, problems


def _runs_by_image(jobs: list[PromptJob]) -> Iterator[list[PromptJob]]:
    """Consecutive jobs on the same image, so that each run sets the image once."""
    run: list[PromptJob] = []
    for job in jobs:
        if run and job.image != run[-1].image:
            yield run
            run = []
        run.append(job)
    if run:
        yield run


def _predict_chunk(predictor: Any, jobs: list[PromptJob], reporter: Reporter) -> list[Any]:
    """Predict a chunk of prompts; truncation warnings become ``warning:`` lines."""
    from btdnet.predict.predictor import TextTruncatedWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TextTruncatedWarning)
        predictions = predictor.predict([job.text for job in jobs])
    for item in caught:
        if issubclass(item.category, TextTruncatedWarning):
            reporter.warning(str(item.message))
        else:
            warnings.showwarning(item.message, item.category, item.filename, item.lineno)
    return predictions


def _failure(exc: BaseException) -> str:
    """One line for any failure of a prompt (MemoryError and friends have no message)."""
    text = one_line(str(exc))
    return text if text else type(exc).__name__


def _choose(predictor: Any, path: Path, args: argparse.Namespace | None) -> ModeChoice | None:
    """The mode for one image (None when its header cannot be read: reading it reports why).

    ``args`` None: whole-image mode forced; else the rule of :mod:`btdnet.predict.mode`,
    unless ``args.whole_image``.
    """
    from btdnet.raster.image_io import ImageReadError, image_size

    try:
        height, width = image_size(path)
    except ImageReadError:
        return None
    forced = True if args is None or args.whole_image else None
    return choose_mode(height, width, predictor.input_side, scene=None if forced is None else False)


def run_jobs(
    predictor: Any,
    jobs: list[PromptJob],
    out_dir: Path,
    reporter: Reporter,
    *,
    single: bool,
    max_pixels: int | None = None,
    vectors: VectorOptions | None = None,
    args: argparse.Namespace | None = None,
) -> None:
    """Answer every job; any per-job failure is reported on its line (fatal in single mode).

    ``vectors``: how GeoJSON polygons are written (default: WGS 84, as traced). With ``args``
    (the command line), an image the rule of :mod:`btdnet.predict.mode` sends to scene mode is
    announced and predicted tile by tile (``--whole-image``: warned about).
    """
    from btdnet.predict.scene.cli import run_scene_job
    from btdnet.raster.image_io import read_image

    for run in _runs_by_image(jobs):
        choice = _choose(predictor, run[0].image, args)
        if choice is not None and choice.mode == SCENE and args is not None:
            reporter.note(choice.announcement(str(run[0].image), "--whole-image"))
            scene_args = argparse.Namespace(**{**vars(args), "tile": "auto"})
            for job in run:
                run_scene_job(predictor, job, scene_args, reporter, single=single)
                _advance(reporter, 1)
            continue
        if choice is not None and choice.warning(str(run[0].image)):
            reporter.warning(choice.warning(str(run[0].image)))
        try:
            image = read_image(
                run[0].image,
                max_pixels=max_pixels,
                bands=getattr(args, "band_numbers", None),
                stretch=getattr(args, "stretch_rule", None),
            )
            predictor.set_image(image)
        except Exception as exc:  # unreadable, too large, out of memory: this image only
            if single:
                raise FatalError(_failure(exc)) from exc
            reporter.error(f"{', '.join(job.source for job in run)}: {_failure(exc)}", len(run))
            _advance(reporter, len(run))
            continue
        facts = {} if choice is None else choice.facts()
        for start in range(0, len(run), predictor.batch_size):
            chunk = run[start : start + predictor.batch_size]
            _answer_chunk(
                predictor,
                chunk,
                image,
                out_dir,
                reporter,
                single=single,
                vectors=vectors,
                facts=facts,
            )
            _advance(reporter, len(chunk))


def _answer_chunk(
    predictor: Any,
    chunk: list[PromptJob],
    image: Any,
    out_dir: Path,
    reporter: Reporter,
    *,
    single: bool,
    vectors: VectorOptions | None = None,
    facts: dict[str, Any] | None = None,
) -> None:
    """Predict one chunk of prompts on the set image and write each one's files and record
    (``facts``: what the record says about the mode)."""
    from btdnet.predict.outputs import output_name, prediction_record, write_prediction_files

    try:
        predictions = _predict_chunk(predictor, chunk, reporter)
    except Exception as exc:  # tokenizer, out of device/host memory, ...
        if single:
            raise FatalError(f"{chunk[0].image}: prediction failed ({_failure(exc)})") from exc
        sources = ", ".join(job.source for job in chunk)
        reporter.error(f"{sources}: prediction failed ({_failure(exc)})", count=len(chunk))
        return
    for job, prediction in zip(chunk, predictions):
        name = output_name(job.image, job.index, job.text)
        try:
            files = write_prediction_files(out_dir, name, image, prediction, vectors)
        except Exception as exc:  # removed what it wrote: no file without its record
            if single:
                raise FatalError(f"{out_dir / name}: cannot write ({_failure(exc)})") from exc
            reporter.error(f"{job.source}: cannot write {out_dir / name} ({_failure(exc)})")
            continue
        reporter.record({**prediction_record(job.image, prediction, files), **(facts or {})})


def _advance(reporter: Reporter, count: int) -> None:
    if reporter.progress is not None:
        reporter.progress.update(count)


def _load_predictor(args: argparse.Namespace) -> Any:
    from btdnet.predict.predictor import Predictor

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            warnings.simplefilter("always", FutureWarning)
            predictor = Predictor.from_pretrained(
                args.checkpoint,
                device=args.device,
                amp=args.amp,
                batch_size=args.batch_size,
                presence_threshold=args.presence_threshold,
                revision=args.revision,
            )
    except (ValueError, OSError) as exc:  # CheckpointError, text encoder, device, amp mode
        raise FatalError(_failure(exc)) from exc
    for item in caught:  # e.g. a checkpoint holding NaN weights: one line each
        if issubclass(item.category, (UserWarning, FutureWarning)):  # Future: the @revision id
            print(f"{PROG}: warning: {one_line(str(item.message))}", file=sys.stderr)
        else:
            warnings.showwarning(item.message, item.category, item.filename, item.lineno)
    return predictor


def _run(args: argparse.Namespace) -> int:
    single = args.prompts is None and not args.image.is_dir()
    problems: list[str] = []
    if args.prompts is None and args.image.is_dir():
        jobs = folder_jobs(args.image, args.text)
    elif single:
        jobs = single_jobs(args.image, args.text)
        if not args.image.is_file():
            state = "not found" if not args.image.exists() else "is not a file"
            raise FatalError(f"{args.image}: image file {state}")
    else:
        jobs, problems = read_prompts_file(args.prompts)
    prepare_output_folder(args.out)  # refuse a bad folder before the slow model load
    if args.tile is not None or _scene_under_launch(args):
        return run_scene_mode(args, jobs, problems)
    predictor = _load_predictor(args)
    # Only now is the old predictions.jsonl replaced (by a rename when this run ends).
    with open_predictions_file(args.out) as predictions:
        progress = None
        if not single and args.progress:
            from tqdm import tqdm

            progress = tqdm(total=len(jobs), unit="prompt", desc=PROG, file=sys.stderr)
        reporter = Reporter(progress, predictions)
        for message in problems:
            reporter.error(message)
        try:
            run_jobs(
                predictor,
                jobs,
                args.out,
                reporter,
                single=single,
                max_pixels=args.max_pixels,
                vectors=vector_options(args),
                args=args,
            )
        finally:
            if progress is not None:
                progress.close()
    if single:
        return EXIT_OK
    return EXIT_PARTIAL if reporter.failures else EXIT_OK


def _scene_under_launch(args: argparse.Namespace) -> bool:
    """Under ``accelerate launch`` (several processes) scene mode shares each scene's rows among
    the processes, whole-image mode would repeat every prompt in each: scene mode for all
    images, unless ``--whole-image``."""
    if args.whole_image or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    args.tile = "auto"
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``btdnet-predict`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _check_arguments(args)
    except UsageError as exc:
        print(f"{PROG}: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_FATAL
    try:
        return _run(args)
    except FatalError as exc:
        print(f"{PROG}: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_FATAL
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the prompts answered so far are in {PREDICTIONS_FILE}")
        return 130


if __name__ == "__main__":
    sys.exit(main())
