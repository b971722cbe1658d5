"""Reading one file from a folder someone else fills: regular files only, never more than a size cap.

Every image file edgecls reads (``run``, ``batch``, training, calibration, evaluation, the Python API) comes
through :func:`read_regular_file`. A folder another program writes may hold a named pipe (``open`` would
wait for a writer forever, and a thread stuck in ``open`` keeps the process alive past SIGTERM), a link to
``/dev/zero`` (reading never ends: memory runs out) or a multi-gigabyte file. The guard:

1. ``stat`` the path (following links) and refuse anything but a regular file *before* opening it: opening a
   device can itself act (a tape rewinds, a watchdog arms, a terminal becomes the controlling one).
2. ``open`` with ``O_NONBLOCK`` (so opening a pipe returns at once even if one was swapped in after step 1)
   and ``O_NOCTTY``, then ``fstat`` the opened descriptor and require a regular file again: the check that
   counts is on what was opened, not on the path, so no swap between check and use gets through.
3. Read at most ``max_bytes + 1`` bytes: one byte more than the cap proves the file is over it, whatever its
   size claimed (a file may grow while it is read).

Failures raise :class:`~edgecls.runtime.errors.ImageDecodeError` with one line naming the file, which every
caller already turns into an error row or a skipped image. Torch-free: part of the edge runtime.
"""

from __future__ import annotations

import io
import os
import stat

from edgecls.runtime.errors import ImageDecodeError

#: Default size cap per file, in MB (10**6 bytes). The largest ordinary photos are tens of MB (a 100 MP
#: camera JPEG is ~60 MB; uncompressed 16-bit TIFF scans can exceed it: raise the cap for those).
DEFAULT_MAX_FILE_MB = 100
MB = 1_000_000

_CHUNK = 1 << 20  # read size once past the size fstat reported (the file grew)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


def max_file_bytes(megabytes: float) -> int:
    """The ``--max-file-mb`` value as bytes."""
    return int(megabytes * MB)


def _not_regular(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory"
    kinds = (
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    kind = next((word for test, word in kinds if test(mode)), "a special file")
    return f"{kind}, not a regular file (only regular files are read)"


def _os_error(name: str, path: str | os.PathLike[str], e: OSError) -> ImageDecodeError:
    if isinstance(e, FileNotFoundError):
        if os.path.islink(path):
            return ImageDecodeError(f"{name}: dangling symbolic link (its target does not exist)")
        return ImageDecodeError(f"{name}: no such file")
    if isinstance(e, IsADirectoryError):
        return ImageDecodeError(f"{name}: is a directory")
    if isinstance(e, PermissionError):
        return ImageDecodeError(f"{name}: permission denied")
    return ImageDecodeError(f"{name}: cannot read ({e.strerror or e})")


def too_large(name: str, max_bytes: int) -> ImageDecodeError:
    """The error for a file over the cap (also raised for objects read from a URI)."""
    return ImageDecodeError(f"{name}: larger than the file size limit ({max_bytes / MB:g} MB)")


def read_regular_file(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_FILE_MB * MB) -> bytes:
    """The bytes of ``path`` if it is a regular file (after following links) of at most ``max_bytes``.

    Never blocks on a pipe, never reads a device, never holds more than ``max_bytes + 1`` bytes.
    """
    name = str(path)
    try:
        before = os.stat(path)  # follows links; refuses devices and pipes before any open (see the module)
        problem = _not_regular(before.st_mode)
        if problem:
            raise ImageDecodeError(f"{name}: {problem}")
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as e:
        raise _os_error(name, path, e) from e
    try:
        with os.fdopen(fd, "rb", buffering=0) as f:  # owns fd from here: closed on every path
            opened = os.fstat(f.fileno())
            problem = _not_regular(opened.st_mode)  # what was opened, whatever the path points to now
            if problem:
                raise ImageDecodeError(f"{name}: {problem}")
            if opened.st_size > max_bytes:
                raise too_large(name, max_bytes)
            data = _read_at_most(f, max_bytes + 1, opened.st_size)
    except OSError as e:
        raise _os_error(name, path, e) from e
    if len(data) > max_bytes:
        raise too_large(name, max_bytes)
    return data


def _read_at_most(f: io.FileIO, limit: int, expected: int) -> bytes:
    """Up to ``limit`` bytes from the unbuffered file ``f``: the reported size in one read, then chunks."""
    chunks: list[bytes] = []
    got = 0
    want = min(expected + 1, limit)  # +1: a file that grew since fstat is noticed without a second pass
    while got < limit:
        chunk = f.read(want)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
        want = min(_CHUNK, limit - got)
    return b"".join(chunks)  # one chunk (the usual case) is returned as is, without a copy
