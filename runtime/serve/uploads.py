"""From an HTTP request to a model input: body limits, content types, multipart, pixel limits, decode.

Every refusal is an :class:`ApiError` (HTTP status, a short ``kind`` for metrics and clients, one line naming
the problem), never a 500, and never a decoder's internals. Order of checks, cheapest first: ``Content-Length``
against the body limit, the bytes actually received against it (a missing or lying header), the content type,
the multipart structure, the image format from its signature (only :data:`SERVED_FORMATS`, whose structure the
pre-scan walks: 415 for the others), and then the runtime's decoder
(:func:`edgecls.runtime.images.decode.decode_bytes`), whose pre-scan reads the *declared* width x height and
bounds the chunks, segments, scans and TIFF tiles before any decoder runs (413 ``too_many_pixels``, 413
``too_costly``; run, batch and training refuse the same files), refuses truncated JPEGs and decodes large JPEGs
at reduced scale, and the contract's preprocessing.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import numpy as np
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import EdgeclsError, ImageDecodeError, ImageTooCostlyError, TooManyPixelsError
from edgecls.runtime.images.decode import decode_bytes
from edgecls.runtime.images.format import SERVED_FORMATS, sniff_format
from edgecls.runtime.images.prescan.limits import MAX_JPEG_SCANS
from edgecls.runtime.inference.preprocess import decode_floor, preprocess

RAW_IMAGE_TYPES = ("application/octet-stream",)  # plus every image/* type
_IDENTIFY_BYTES = 65_536  # what Pillow may read to name a format that is not served


class ApiError(EdgeclsError):
    """A request the server refuses: ``status`` (4xx/5xx), ``kind`` (a metrics label), message."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def parse_top_k(text: str | None, default: int) -> int:
    if text is None:
        return default
    try:
        k = int(text)
    except ValueError:
        k = 0
    if not 1 <= k <= 1000:
        raise ApiError(422, "bad_parameter", f"top_k must be an integer from 1 to 1000, got {text!r}")
    return k


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "body_too_large", f"request body is {int(declared)} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise ApiError(413, "body_too_large", f"request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect as e:
        raise ApiError(400, "client_disconnected", "the client closed the connection before the body ended") from e
    return b"".join(chunks)


async def _replay(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _multipart_file(request: Request, body: bytes) -> tuple[str, bytes]:
    """The first file part of a multipart/form-data body: (its filename, its bytes)."""
    parser = MultiPartParser(request.headers, _replay(body), max_files=4, max_fields=16)
    try:
        form = await parser.parse()
    except MultiPartException as e:
        raise ApiError(400, "bad_multipart", f"malformed multipart/form-data body ({e.message})") from e
    try:
        for _, value in form.multi_items():
            if isinstance(value, UploadFile):
                return value.filename or "upload", await value.read()
    finally:
        await form.close()
    raise ApiError(400, "missing_file", "multipart body has no file part (send it as e.g. -F file=@photo.jpg)")


async def read_upload(request: Request, limit: int) -> tuple[str, bytes]:
    """(name, encoded image bytes) from a raw image body or a multipart upload."""
    content_type = request.headers.get("content-type", "")
    main = content_type.split(";")[0].strip().lower()
    if main == "multipart/form-data":
        name, data = await _multipart_file(request, await read_body(request, limit))
    elif main.startswith("image/") or main in RAW_IMAGE_TYPES:
        name, data = request.query_params.get("name") or "upload", await read_body(request, limit)
    else:
        raise ApiError(
            415, "unsupported_type",
            f"Content-Type {main or '(none)'!r} is not an image: send the bytes as image/* or "
            "application/octet-stream, or as multipart/form-data with a file part",
        )
    if not data:
        raise ApiError(400, "bad_image", f"{name}: empty file (0 bytes)")
    return name, data


def _pillow_format(data: bytes) -> str | None:
    """The format Pillow identifies from the header (no pixel decoded), or None.

    Only the first 64 KiB are shown to Pillow: some of its plugins walk a whole directory at open (an ICO of
    65,535 entries, 1 MB, costs 0.2 s), and naming a format that is refused anyway must not cost more than that.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data[:_IDENTIFY_BYTES])) as im:
            return im.format
    except Exception:  # Pillow's plugins raise many types on odd headers; identifying is all we ask
        return None


def check_format(data: bytes, name: str) -> str:
    """The served format of ``data``; 415 for image formats that are not served, 400 for what is no image."""
    kind = sniff_format(data)
    if kind in SERVED_FORMATS:
        return kind
    kind = kind or _pillow_format(data)  # e.g. ICO, TGA, AVIF: Pillow knows them, we do not serve them
    served = ", ".join(SERVED_FORMATS).replace("PPM", "PNM")
    if kind is not None:
        raise ApiError(415, "unsupported_format",
                       f"{name}: {kind} images are not served (their size cannot be checked before decoding, or "
                       f"they do not decode to 8-bit pictures); send one of {served}")
    raise ApiError(400, "bad_image", f"{name}: not an image in a served format ({served})")


def prepare_upload(
    data: bytes, name: str, contract: ModelContract, max_pixels: int, max_jpeg_scans: int = MAX_JPEG_SCANS
) -> np.ndarray:
    """Encoded bytes -> ``float32[3, h, w]`` per the contract (runs in a decode thread)."""
    check_format(data, name)
    try:
        image = decode_bytes(data, name, decode_floor(contract), max_jpeg_scans, max_pixels)
        return preprocess(image, contract)
    except ImageTooCostlyError as e:
        raise ApiError(413, "too_costly", str(e)) from e
    except TooManyPixelsError as e:
        raise ApiError(413, "too_many_pixels", str(e)) from e
    except ImageDecodeError as e:
        raise ApiError(400, "bad_image", str(e)) from e
