"""Where a model's golden file lies and how it is read: torch-free, so ``edgecls selftest`` can read it on the
device (export/golden.py writes it: ``<stem>.golden.npz`` beside the fp32 model, arrays ``images`` uint8[N, 64,
64, 3] BGR, ``inputs`` float32[N, 3, h, w], ``logits`` float32[N, C] from PyTorch, ``labels`` str[C]).

A golden file travels with a bundle and is not trusted: a 7 MB file declaring 32,000 rows once made selftest
allocate 20.9 GB, an extra array was loaded as well, and a file without labels skipped the label check. So
:func:`read_golden`, the one reader (selftest, serve's check at load, pack), checks everything the file
*declares* before it reads any array, from the zip's central directory and each member's ``.npy`` header:
exactly the four members, each one's dtype and shape (N <= 64 images; ``inputs`` of the model's input size,
``logits`` and ``labels`` of its classes), the sizes the zip declares against the sizes the headers imply, and
all of it within 64 MiB. Then each array is read from the header it was checked by, so the bytes read are the
bytes checked. A hostile file is refused in milliseconds with one line naming the file and what is wrong.
"""

from __future__ import annotations

import math
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from numpy.lib import format as npy

from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.contract.schema import MAX_LABEL_CHARS
from edgecls.runtime.errors import EdgeclsError

GOLDEN_SUFFIX = ".golden.npz"
#: Most golden images (export writes 8) and the longest side of one (export writes 64x64).
MAX_GOLDEN_IMAGES = 64
MAX_IMAGE_SIDE = 512
#: All arrays together, uncompressed: 8 inputs of a 836x836 model fit; a 224 px model's 64 inputs take 38.5 MB.
MAX_GOLDEN_BYTES = 64 * 2**20
_MEMBERS = ("images", "inputs", "logits", "labels")
# The zip's end-of-central-directory record (APPNOTE 4.3.16): signature, disk numbers, entries on this disk,
# entries in all, central directory size and offset, comment length. numpy.savez writes no comment.
_END = struct.Struct("<4s4H2LH")
# Four entries take a few hundred bytes; up to 16 are parsed so that an extra member is refused by its name.
_MAX_ENTRIES, _MAX_DIRECTORY_BYTES = 16, 64 * 2**10


class GoldenFileError(EdgeclsError):
    """The golden file is malformed or does not fit its model (the message names the file)."""


@dataclass(frozen=True)
class GoldenFile:
    """A checked golden file (arrays read-only)."""

    images: np.ndarray  # uint8[N, S, S', 3] BGR
    inputs: np.ndarray  # float32[N, 3, h, w], the model's input size
    logits: np.ndarray  # float32[N, C]
    labels: tuple[str, ...]  # C


@dataclass(frozen=True)
class _Member:
    info: zipfile.ZipInfo
    header_bytes: int  # magic + header: the array's data follow
    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype


def golden_path_for(onnx_path: str | os.PathLike[str]) -> Path:
    """``model.onnx`` -> ``model.golden.npz`` (the file export writes for its fp32 model)."""
    p = Path(onnx_path)
    return p.with_name(f"{p.stem}{GOLDEN_SUFFIX}")


def find_golden(onnx_path: str | os.PathLike[str]) -> Path | None:
    """The golden file a model is checked against: its own, else its fp32 model's (``model.int8.onnx`` and
    ``model.fp16.onnx`` share ``model.golden.npz``: their outputs are compared to the fp32 references)."""
    p = Path(onnx_path)
    stem = p.name[: -len(".onnx")] if p.name.endswith(".onnx") else p.stem
    candidates = [golden_path_for(p)]
    while "." in stem:
        stem = stem.rsplit(".", 1)[0]
        candidates.append(p.with_name(f"{stem}{GOLDEN_SUFFIX}"))
    return next((c for c in candidates if c.is_file()), None)


def read_golden(path: str | os.PathLike[str], contract: ModelContract) -> GoldenFile:
    """The golden file at ``path`` for a model with ``contract``, checked before any array is read (see the
    module docstring); :class:`GoldenFileError` names the file and the first problem."""
    try:
        with open(path, "rb") as f:
            _check_archive(f)
            with zipfile.ZipFile(f) as archive:
                members = {name: _member(archive, name) for name in _member_names(archive)}
                _check_shapes(members, contract)
                arrays = {name: _read(archive, m) for name, m in members.items()}
    except GoldenFileError as e:
        raise GoldenFileError(f"{path}: not a valid golden file: {e}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise GoldenFileError(f"{path}: not a readable golden file ({e})") from None
    return GoldenFile(arrays["images"], arrays["inputs"], arrays["logits"], tuple(str(x) for x in arrays["labels"]))


def _check_archive(f: IO[bytes]) -> None:
    """The file's size and its zip directory's, before zipfile parses the directory (a directory of a million
    entries would cost zipfile seconds and gigabytes)."""
    size = os.fstat(f.fileno()).st_size
    if size > MAX_GOLDEN_BYTES + 2**20:
        raise GoldenFileError(f"{size:,} bytes, more than a golden file holds ({MAX_GOLDEN_BYTES:,} bytes of arrays)")
    if size < _END.size:
        raise GoldenFileError("not a zip archive (numpy .npz)")
    f.seek(size - _END.size)
    signature, _, _, _, entries, directory_bytes, _, comment = _END.unpack(f.read(_END.size))
    if signature != b"PK\x05\x06" or comment:
        raise GoldenFileError("not a zip archive as numpy.savez writes it (no end record at the end of the file)")
    if entries > _MAX_ENTRIES or directory_bytes > _MAX_DIRECTORY_BYTES:
        raise GoldenFileError(f"{entries:,} members, a golden file holds {', '.join(_MEMBERS)}")
    f.seek(0)


def _member_names(archive: zipfile.ZipFile) -> list[str]:
    names = [info.filename for info in archive.infolist()]
    unknown = sorted({n for n in names if n.removesuffix(".npy") not in _MEMBERS or not n.endswith(".npy")})
    if unknown:
        raise GoldenFileError(f"unknown member {unknown[0]!r} (a golden file holds {', '.join(_MEMBERS)})")
    if len(set(names)) != len(names):
        raise GoldenFileError("a member is stored twice")
    missing = [m for m in _MEMBERS if f"{m}.npy" not in names]
    if missing:
        raise GoldenFileError(f"no {missing[0]} array (a golden file holds {', '.join(_MEMBERS)})")
    return [n.removesuffix(".npy") for n in names]


def _member(archive: zipfile.ZipFile, name: str) -> _Member:
    """One member's declared sizes and .npy header, read without reading its data."""
    info = archive.getinfo(f"{name}.npy")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise GoldenFileError(f"{name}: compression method {info.compress_type} (numpy writes stored or deflated)")
    if info.file_size > MAX_GOLDEN_BYTES:
        raise GoldenFileError(f"{name}: declares {info.file_size:,} bytes, more than {MAX_GOLDEN_BYTES:,}")
    with archive.open(info) as f:
        version = npy.read_magic(f)
        if version == (1, 0):
            shape, fortran_order, dtype = npy.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran_order, dtype = npy.read_array_header_2_0(f)
        else:  # 3.0 exists for structured dtypes with non-Latin-1 names: never a golden array
            raise GoldenFileError(f"{name}: .npy format version {version}")
        header_bytes = f.tell()
    return _Member(info, header_bytes, tuple(shape), bool(fortran_order), dtype)


def _check_shapes(members: dict[str, _Member], contract: ModelContract) -> None:
    """dtype and shape of every member against what export writes for this model, then the sizes."""
    h, w = contract.input_size
    classes = len(contract.labels)
    n = members["images"].shape[0] if members["images"].shape else 0
    if not 1 <= n <= MAX_GOLDEN_IMAGES:
        raise GoldenFileError(f"images: {n:,} images, expected 1 to {MAX_GOLDEN_IMAGES}")
    images = members["images"].shape
    if len(images) != 4 or images[3] != 3 or not all(1 <= s <= MAX_IMAGE_SIDE for s in images[1:3]):
        raise GoldenFileError(f"images: shape {list(images)}, expected [N, side, side, 3] with sides up to "
                              f"{MAX_IMAGE_SIDE}")
    expected = {"inputs": (n, 3, h, w), "logits": (n, classes), "labels": (classes,)}
    for name, shape in expected.items():
        if members[name].shape != shape:
            raise GoldenFileError(f"{name}: shape {list(members[name].shape)}, expected {list(shape)} for this model")
    dtypes = {"images": ("u", 1), "inputs": ("f", 4), "logits": ("f", 4)}
    for name, (kind, itemsize) in dtypes.items():
        dtype = members[name].dtype
        if dtype.kind != kind or dtype.itemsize != itemsize:
            raise GoldenFileError(f"{name}: dtype {dtype}, expected {'uint8' if kind == 'u' else 'float32'}")
    labels = members["labels"].dtype
    if labels.kind != "U" or labels.itemsize > 4 * MAX_LABEL_CHARS:
        raise GoldenFileError(f"labels: dtype {labels}, expected text of at most {MAX_LABEL_CHARS} characters")
    total = 0
    for name, m in members.items():
        data_bytes = math.prod(m.shape) * m.dtype.itemsize
        if m.info.file_size != m.header_bytes + data_bytes:  # the zip and the header must tell the same size
            raise GoldenFileError(f"{name}: the archive declares {m.info.file_size:,} bytes, its header "
                                  f"{m.header_bytes + data_bytes:,}")
        total += data_bytes
    if total > MAX_GOLDEN_BYTES:
        raise GoldenFileError(f"{total:,} bytes of arrays, more than {MAX_GOLDEN_BYTES:,}")


def _read(archive: zipfile.ZipFile, m: _Member) -> np.ndarray:
    """The member's data as its checked header describes them (numpy's reader would parse the header again)."""
    nbytes = math.prod(m.shape) * m.dtype.itemsize
    with archive.open(m.info) as f:
        f.read(m.header_bytes)
        data = f.read(nbytes)  # zipfile stops at the declared size and checks the CRC at the end
    if len(data) != nbytes:
        raise GoldenFileError(f"{m.info.filename}: {len(data):,} bytes of data, the header declares {nbytes:,}")
    return np.frombuffer(data, dtype=m.dtype).reshape(m.shape, order="F" if m.fortran_order else "C")
