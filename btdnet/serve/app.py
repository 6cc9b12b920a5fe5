"""The FastAPI application: ``GET /health``, ``GET /`` (the page) and ``POST /predict``.

Every bad request is answered 4xx with ``{"error": "<one line>"}``; a body over the upload
limit gets 413 before it is read in full. The server reads only the bytes sent to it: no field
is ever taken as a path.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from importlib import resources
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from btdnet.colormap import overlay_scheme
from btdnet.errors import one_line
from btdnet.predict.mode import SCENE, ModeChoice, choose_mode
from btdnet.raster.bands import BandsError, parse_bands, parse_stretch
from btdnet.raster.source import NotGeoreferencedWarning
from btdnet.serve.answers import image_answer, prediction_answer, preview_base64
from btdnet.serve.limits import BodySizeLimit
from btdnet.serve.scene_jobs import SceneJob, SceneLimits, SceneTimeoutError, TileError, parse_tile
from btdnet.serve.service import InferenceService, Job, QueueFullError
from btdnet.serve.upload import (
    UploadError,
    check_upload,
    decode_upload,
    display_name,
    upload_size,
)
from btdnet.text import clean_expression
from btdnet.tiling import SceneTooLargeError

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 500
MAX_TEXTS = 16
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": 'bad image or text: `{"error": "..."}`'},
    413: {
        "description": "request body over the upload limit, or a scene over the pixel or tile limit"
    },
    415: {"description": "the file is not a PNG, JPEG or TIFF"},
    422: {"description": "a required field is missing or malformed"},
    503: {"description": "too many requests queued, or a scene past the time limit; retry later"},
}


def _page(name: str) -> str:
    return resources.files("btdnet.serve").joinpath("page", name).read_text(encoding="utf-8")


def check_texts(texts: list[str], max_chars: int = MAX_TEXT_CHARS) -> tuple[str, ...]:
    """Strip the texts; refuse none, an empty one, an over-long one or too many (HTTP 400)."""
    if not texts:
        raise HTTPException(400, "no text: send one or more 'text' fields")
    if len(texts) > MAX_TEXTS:
        raise HTTPException(400, f"{len(texts)} texts; at most {MAX_TEXTS} per request")
    cleaned = []
    for number, text in enumerate(texts, start=1):
        stripped = clean_expression(text)  # zero-width and control characters count as empty
        if not stripped:
            raise HTTPException(
                400, f"text {number} is empty (or invisible): give an expression to segment"
            )
        if len(stripped) > max_chars:
            raise HTTPException(
                400, f"text {number} has {len(stripped)} characters; the limit is {max_chars}"
            )
        cleaned.append(stripped)
    return tuple(cleaned)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error as ``{"error": "..."}`` JSON."""

    @app.exception_handler(StarletteHTTPException)  # also 404, 405, unparsable multipart
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_message(exc)}, status_code=422)


async def _predict(service: InferenceService, job: Job | SceneJob) -> Any:
    try:
        future = service.submit(job)
    except QueueFullError as exc:
        raise HTTPException(503, str(exc)) from exc
    try:
        return await asyncio.wrap_future(future)
    except SceneTooLargeError as exc:  # before any tile ran
        raise HTTPException(413, one_line(exc, first=True)) from exc
    except SceneTimeoutError as exc:
        raise HTTPException(503, one_line(exc, first=True)) from exc
    except (ValueError, TypeError) as exc:  # the predictor refused the input
        raise HTTPException(400, one_line(exc, first=True)) from exc
    except MemoryError as exc:
        raise HTTPException(413, "the image is too large for this server's memory") from exc


def parse_reading(bands: str | None, stretch: str | None) -> tuple[Any, Any]:
    """The ``bands`` and ``stretch`` fields as (band numbers or None, Stretch); 400 if bad."""
    try:
        return parse_bands(bands), parse_stretch(stretch or "auto")
    except BandsError as exc:
        raise HTTPException(400, str(exc)) from exc


async def _choose_mode(
    service: InferenceService, data: bytes, filename: str | None, tile: str | None
) -> tuple[ModeChoice, int | str | None]:
    """The mode for an upload (the rule of :mod:`btdnet.predict.mode` unless ``tile`` forces
    one) and the tile size for scene mode."""
    try:
        tile_value = None if tile is None else parse_tile(tile)
        height, width = await run_in_threadpool(upload_size, data, filename)
    except TileError as exc:
        raise HTTPException(400, str(exc)) from exc
    except UploadError as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    forced = None if tile is None else tile_value is not None
    choice = choose_mode(height, width, service.predictor.input_side, scene=forced)
    return choice, "auto" if tile_value is None else tile_value


def mode_facts(choice: ModeChoice, name: str) -> dict[str, Any]:
    """What the answer's ``image`` says about the mode, with ``mode_note``: the line that
    announces scene mode chosen by the rule, or warns of a large image resized whole."""
    note = choice.announcement(name, "send tile=none") or choice.warning(name)
    return {**choice.facts(), **({"mode_note": note} if note else {})}


async def _scene_answer(
    service: InferenceService,
    data: bytes,
    filename: str | None,
    texts: tuple[str, ...],
    tile: int | str,
    threshold: float | None,
    limits: SceneLimits,
    reading: tuple[Any, Any],
) -> dict[str, Any]:
    """The answer in scene mode (``reading``: the bands and stretch)."""
    suffix = check_upload(data, filename)
    name = display_name(filename)
    job = SceneJob(data, suffix, name, texts, tile, threshold, limits, *reading)
    answers, image_info = await _predict(service, job)
    return {"predictions": answers, "image": image_info, "model": service.info}


async def _whole_answer(
    service: InferenceService,
    data: bytes,
    filename: str | None,
    texts: tuple[str, ...],
    threshold: float | None,
    preview: bool,
    reading: tuple[Any, Any],
) -> dict[str, Any]:
    """The answer in whole-image mode (``reading``: the bands and stretch)."""
    try:
        loaded = await run_in_threadpool(decode_upload, data, filename, *reading)
    except UploadError as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    job = Job(image=loaded, texts=texts, presence_threshold=threshold)
    predictions = await _predict(service, job)
    answers = await run_in_threadpool(lambda: [prediction_answer(p, loaded) for p in predictions])
    body: dict[str, Any] = {
        "predictions": answers,
        "image": image_answer(loaded),
        "model": service.info,
    }
    if preview:
        body["image_png"] = await run_in_threadpool(preview_base64, loaded)
    return body


def _add_status_and_page(app: FastAPI, service: InferenceService) -> None:
    """``GET /health`` (the model, its device, the queue) and the browser page."""

    @app.get("/health")
    def health() -> dict[str, Any]:
        """The model served, its device, and the queue."""
        return {
            "status": "ok",
            "model": service.info,
            "device": str(service.predictor.device),
            "queued": service.in_flight,
            "max_queue": service.max_queue,
            "completed": service.completed,
        }

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(_page("index.html"))

    @app.get("/overlay.json", include_in_schema=False)
    def overlay() -> dict[str, Any]:
        """The overlay colours and legend words the page draws with (btdnet.colormap)."""
        return overlay_scheme()

    @app.get("/app.js", include_in_schema=False)
    def script() -> Response:
        return Response(_page("app.js"), media_type="text/javascript")


def _base_app(service: InferenceService, max_upload_mb: float) -> FastAPI:
    """The application with its error handlers, upload limit, status and page."""
    # A scene upload without a georeference is answered in pixel coordinates ("georeferenced":
    # false); the warnings would print two lines on the server's console per request.
    warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
    warnings.filterwarnings("ignore", message="Dataset has no geotransform")
    app = FastAPI(
        title="btdnet-serve",
        summary="Referring segmentation of remote-sensing images: an image and a sentence in, "
        "the mask of the object it describes out.",
        version="1",
    )
    app.state.service = service
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=int(max_upload_mb * 1024 * 1024))
    _add_status_and_page(app, service)
    return app


TILE_HELP = (
    "the mode: left out, an image more than 2x the model's input side goes to scene mode "
    "(tile by tile at native resolution) and a smaller one is resized whole; 'auto' or a "
    "number of pixels forces scene mode with tiles of the model's input side or of that size "
    "(positional words then refer to a tile); 'none' forces whole-image mode"
)
BANDS_HELP = (
    "band numbers (1-based, as in GDAL) the model sees as R,G,B, e.g. '3,2,1' for a B,G,R,NIR "
    "file; one number: grey (default: 1,2,3)"
)
STRETCH_HELP = (
    "how values become 0..255, as in btdnet-predict: auto, percentile[:LOW,HIGH], "
    "minmax:MIN,MAX or none (default auto)"
)


def create_app(
    service: InferenceService,
    *,
    max_upload_mb: float = 50.0,
    scene_limits: SceneLimits | None = None,
) -> FastAPI:
    """The web application around one shared :class:`InferenceService` (``scene_limits``:
    the work one scene-mode request may cause, :class:`SceneLimits` by default)."""
    limits = scene_limits or SceneLimits()
    app = _base_app(service, max_upload_mb)

    @app.post("/predict", responses=ERROR_RESPONSES, response_model=None)
    async def predict(
        request: Request,
        image: Annotated[UploadFile, File(description="PNG, JPEG, TIFF or GeoTIFF image")],
        text: Annotated[list[str], Form(description="an expression; repeat the field for several")],
        presence_threshold: Annotated[
            float | None,
            Form(
                ge=0.0,
                le=1.0,
                description="'no target' below this presence (models with a presence head)",
            ),
        ] = None,
        tile: Annotated[str | None, Form(description=TILE_HELP)] = None,
        preview: Annotated[
            bool, Form(description="also return the image as the model read it (PNG)")
        ] = False,
        bands: Annotated[str | None, Form(description=BANDS_HELP)] = None,
        stretch: Annotated[str | None, Form(description=STRETCH_HELP)] = None,
    ) -> JSONResponse:
        """Segment what each text refers to in the image.

        Answer: `{"predictions": [{"text", "score", "present", "presence", "bbox", "area",
        "truncated", "mask_png", "correlation_png", "geojson"?, "mask_geotiff"?}], "image": {...},
        "model": {...}, "seconds": ...}`. `mask_png` is a base64 PNG (0/255) at the image's
        size; `bbox` is `[x1, y1, x2, y2]` (x2, y2 exclusive) or null; `present` is true, false
        or null (a model without a presence head cannot say absent; `present_note` says so);
        GeoTIFF uploads add GeoJSON polygons and the mask as a base64 GeoTIFF. `image.mode` is
        `whole` (with `resize_factor`) or `scene`; scene answers list `objects` (one box and
        area each), `object_count` and `preview_png` (the scene with the objects outlined).
        """
        start = time.perf_counter()
        texts = check_texts(text)
        if tile is None and "tile" in await request.form():  # an empty field is not "no tile"
            tile = ""
        data = await image.read()
        reading = parse_reading(bands, stretch)
        choice, tile_value = await _choose_mode(service, data, image.filename, tile)
        if choice.mode == SCENE:
            scene = (tile_value, presence_threshold, limits, reading)
            body = await _scene_answer(service, data, image.filename, texts, *scene)
        else:
            body = await _whole_answer(
                service, data, image.filename, texts, presence_threshold, preview, reading
            )
        body["image"].update(mode_facts(choice, display_name(image.filename)))
        body["seconds"] = round(time.perf_counter() - start, 4)
        return JSONResponse(body)

    return app
