"""``btdnet-serve``: an HTTP API and a web page around one BTDNet checkpoint."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from btdnet.cli_options import add_amp_option, add_checkpoint_options, add_device_option

if TYPE_CHECKING:
    from btdnet.serve.service import InferenceService

PROG = "btdnet-serve"

DESCRIPTION = """\
Serve a BTDNet checkpoint over HTTP: a web page at / (upload an image, type expressions, see
the masks, scores and BSC correlation maps, download mask PNG / GeoTIFF / GeoJSON), the API
POST /predict (multipart: image, text [repeatable], presence_threshold, tile, preview) and
GET /health. The API is documented at /docs (OpenAPI). An upload more than 2x the model's
input side is predicted in scene mode (tiles at native resolution) unless tile=none; the
answer's image.mode says which mode answered.

One model serves every request: requests wait in a queue (--max-queue) and run one at a time,
each with all its texts batched. The server binds to loopback (127.0.0.1) unless --host says
otherwise; it has no authentication, so put it behind a proxy before exposing it.

Example:  btdnet-serve --checkpoint runs/demo/train/checkpoints/best --port 8000
          then open http://127.0.0.1:8000/"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``btdnet-serve``."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_checkpoint_options(
        parser,
        hub_note="through the Hugging Face cache",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=50.0,
        help="largest request body in MB; larger ones are answered 413 (default 50)",
    )
    add_device_option(parser)
    add_amp_option(parser)
    parser.add_argument(
        "--batch-size", type=int, default=8, help="texts per forward pass (default 8)"
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=64,
        help="requests allowed to wait at once; more are answered 503 (default 64)",
    )
    add_scene_limit_arguments(parser)
    return parser


def add_scene_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """``--scene-max-pixels``, ``--scene-max-tiles``, ``--scene-seconds``, ``--max-scene-queue``."""
    from btdnet.serve.scene_jobs import SceneLimits

    default = SceneLimits()
    group = parser.add_argument_group(
        "scene mode (tile=...)",
        "Scene requests run on their own worker, so image requests are answered while a large "
        "scene runs. A scene over the pixel or tile limit is answered 413 before any tile runs; "
        "one still running after --scene-seconds is stopped and answered 503.",
    )
    group.add_argument(
        "--scene-max-pixels",
        type=int,
        default=default.max_pixels,
        metavar="N",
        help=f"most pixels of one scene; 0: no limit (default {default.max_pixels:,})",
    )
    group.add_argument(
        "--scene-max-tiles",
        type=int,
        default=default.max_tiles,
        metavar="N",
        help=f"most tiles of one scene; 0: no limit (default {default.max_tiles:,})",
    )
    group.add_argument(
        "--scene-seconds",
        type=float,
        default=default.seconds,
        metavar="S",
        help=f"longest a scene request may run (default {default.seconds:g})",
    )
    group.add_argument(
        "--max-scene-queue",
        type=int,
        default=2,
        metavar="N",
        help="scene requests allowed to wait or run at once; more are answered 503 (default 2)",
    )


def scene_limits(args: argparse.Namespace) -> Any:
    """The :class:`~btdnet.serve.scene_jobs.SceneLimits` the options ask for, or a usage
    problem (a string)."""
    from btdnet.serve.scene_jobs import SceneLimits

    if args.scene_max_pixels < 0 or args.scene_max_tiles < 0 or args.max_scene_queue < 1:
        return "--scene-max-pixels and --scene-max-tiles must be >= 0, --max-scene-queue >= 1"
    if not (math.isfinite(args.scene_seconds) and args.scene_seconds > 0):
        return f"--scene-seconds must be a positive number, got {args.scene_seconds}"
    return SceneLimits(
        max_pixels=args.scene_max_pixels or None,
        max_tiles=args.scene_max_tiles or None,
        seconds=args.scene_seconds,
    )


def public_checkpoint_name(checkpoint: str | Path) -> str:
    """What clients are told the model is: a Hub repo id as given, a local folder by name only
    (``<run>/<checkpoint>`` for a run's ``checkpoints/`` entry), never the server's path."""
    path = Path(checkpoint)
    if not path.exists():
        return str(checkpoint)  # a Hub repo id (a missing folder never gets this far)
    path = path.resolve()
    if path.parent.name == "checkpoints" and path.parent.parent.name:
        return f"{path.parent.parent.name}/{path.name}"
    return path.name


def build_service(
    checkpoint: str,
    *,
    device: str,
    amp: str,
    batch_size: int,
    max_queue: int,
    max_scene_queue: int = 2,
    revision: str | None = None,
) -> InferenceService:
    """Load the checkpoint (a folder or Hub repo id) into the one shared service.

    Raises:
        CheckpointError: the checkpoint cannot be loaded (one line).
        ValueError: unknown or unavailable device, unknown amp mode.
    """
    from btdnet.predict.predictor import Predictor
    from btdnet.serve.service import InferenceService

    predictor = Predictor.from_pretrained(
        checkpoint, device=device, amp=amp, batch_size=batch_size, revision=revision
    )
    info = {
        "checkpoint": public_checkpoint_name(checkpoint),  # shown on the page: no server path
        "model_type": "btdnet",
        "variant": getattr(predictor.model.config, "variant", None),
        "image_size": predictor.input_side,
        "max_tokens": predictor.max_tokens,
        "presence_head": predictor.has_presence_head,
        "amp": amp,
    }
    return InferenceService(
        predictor, max_queue=max_queue, max_scene_queue=max_scene_queue, info=info
    )


def mode_rule_line(input_side: int) -> str:
    """The line that states which uploads go to scene mode."""
    from btdnet.predict.mode import SCENE_FACTOR

    return (
        f"uploads more than {SCENE_FACTOR * input_side:.0f} pixels on a side ({SCENE_FACTOR:g}x "
        f"the model's {input_side}-pixel input) are predicted in scene mode, tiles of "
        f"{input_side} pixels at native resolution; send tile=none for whole-image mode"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Load the model, then serve until interrupted. Exit status 2 on a bad checkpoint."""
    args = build_parser().parse_args(argv)
    if args.max_upload_mb <= 0 or args.max_queue < 1 or args.port < 0:
        print(
            f"{PROG}: error: --max-upload-mb, --max-queue and --port must be positive",
            file=sys.stderr,
        )
        return 2
    limits = scene_limits(args)
    if isinstance(limits, str):
        print(f"{PROG}: error: {limits}", file=sys.stderr)
        return 2
    import uvicorn

    from btdnet.serve.app import create_app

    try:
        service = build_service(
            args.checkpoint,
            device=args.device,
            amp=args.amp,
            batch_size=args.batch_size,
            max_queue=args.max_queue,
            max_scene_queue=args.max_scene_queue,
            revision=args.revision,
        )
    except ValueError as exc:  # CheckpointError is a ValueError; so are bad device/amp names
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    app = create_app(service, max_upload_mb=args.max_upload_mb, scene_limits=limits)
    print(f"{PROG}: serving {args.checkpoint} on http://{args.host}:{args.port}/", file=sys.stderr)
    print(f"{PROG}: {mode_rule_line(service.predictor.input_side)}", file=sys.stderr)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
