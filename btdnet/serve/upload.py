"""An uploaded image's bytes -> :class:`~btdnet.raster.image_io.LoadedImage`.

The server never opens a path named in a request. The upload's bytes are written to a fresh
private temporary folder under a fixed name whose suffix comes from the bytes' own signature
(TIFF or not), then read with :func:`btdnet.raster.image_io.read_image`, so that an upload is
read exactly like a file given to ``btdnet-predict`` (bands, bit depth, EXIF orientation,
GeoTIFF georeference, and every check that reader makes). The client's file name is used only
in messages, reduced to its last component.
"""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from btdnet.errors import one_line
from btdnet.raster.bands import Stretch
from btdnet.raster.geo import GeoDependencyError
from btdnet.raster.image_io import ImageReadError, LoadedImage, image_size, read_image

# File signatures of the formats the predictor reads.
_SIGNATURES: dict[bytes, str] = {
    b"\x89PNG\r\n\x1a\n": ".png",
    b"\xff\xd8\xff": ".jpg",
    b"II*\x00": ".tif",
    b"MM\x00*": ".tif",
    b"II+\x00": ".tif",  # BigTIFF
    b"MM\x00+": ".tif",
}
NAME_MAX_LENGTH = 80


class UploadError(ValueError):
    """An upload that is not a readable image; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def display_name(filename: str | None) -> str:
    """The client's file name for messages: last path component, printable, at most 80 chars."""
    if not filename:
        return "upload"
    last = PureWindowsPath(PurePosixPath(filename).name).name
    printable = "".join(ch if ch.isprintable() else "?" for ch in last).strip()
    return printable[:NAME_MAX_LENGTH] or "upload"


def sniff_suffix(data: bytes) -> str | None:
    """``.png``, ``.jpg`` or ``.tif`` from the first bytes; ``None`` for anything else."""
    for signature, suffix in _SIGNATURES.items():
        if data.startswith(signature):
            return suffix
    return None


def check_upload(data: bytes, filename: str | None) -> str:
    """The suffix (``.png``, ``.jpg``, ``.tif``) of uploaded bytes from their signature.

    Raises:
        UploadError: empty upload (400) or not a PNG/JPEG/TIFF (415).
    """
    name = display_name(filename)
    if not data:
        raise UploadError(f"{name}: the uploaded file is empty")
    suffix = sniff_suffix(data)
    if suffix is None:
        raise UploadError(
            f"{name}: not an image this server reads (PNG, JPEG, TIFF or GeoTIFF)", status=415
        )
    return suffix


def upload_size(data: bytes, filename: str | None) -> tuple[int, int]:
    """(height, width) of uploaded image bytes from their header only (no pixel decoded).

    Raises:
        UploadError: as :func:`check_upload`, or a header that cannot be read (400).
    """
    suffix = check_upload(data, filename)
    name = display_name(filename)
    with tempfile.TemporaryDirectory(prefix="btdnet-serve-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            return image_size(path)
        except ImageReadError as exc:
            message = str(exc).replace(str(path), name).splitlines()[0]
            raise UploadError(message if name in message else f"{name}: {message}") from exc


def decode_upload(
    data: bytes,
    filename: str | None,
    bands: tuple[int, ...] | None = None,
    stretch: Stretch | None = None,
) -> LoadedImage:
    """Read uploaded bytes as an image.

    Raises:
        UploadError: empty upload (400), not a PNG/JPEG/TIFF (415), or a file of that kind
            that cannot be decoded or is refused by the image reader (400); one line naming
            the client's file name.
    """
    name = display_name(filename)
    suffix = check_upload(data, filename)
    with tempfile.TemporaryDirectory(prefix="btdnet-serve-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            image = read_image(path, bands=bands, stretch=stretch)
        except (ImageReadError, GeoDependencyError, ValueError, MemoryError) as exc:
            message = one_line(str(exc).replace(str(path), name), first=True)
            raise UploadError(message if name in message else f"{name}: {message}") from exc
    image.path = Path(name)
    return image
