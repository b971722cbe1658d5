"""Reading each batch input's bytes where it is classified, with every failure kept as a value, never raised.

A local file goes through :func:`edgecls.runtime.images.file_guard.read_regular_file` (regular files only, size cap,
never blocking on a pipe); an object behind a URI through the job's one pyarrow filesystem, with the same cap.
A file that cannot be read (gone since it was listed, a dangling link, a pipe, too large, no permission)
becomes its row's ``error``, the message the in-process path gives for it, so one bad file costs one error row
and never the job (Ray Data's own ``read_binary_files`` fails the whole job on it).

pyarrow is imported inside the functions (the runtime without the ``ray`` extra never needs it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgecls.runtime.errors import EdgeclsError, ImageDecodeError
from edgecls.runtime.images.file_guard import read_regular_file, too_large

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs


def read_object(filesystem: pafs.FileSystem, path: str, name: str, max_bytes: int) -> bytes:
    """An object's bytes through ``filesystem`` (``path`` as pyarrow spells it, ``name`` as rows show it)."""
    try:
        with filesystem.open_input_file(path) as f:
            size = f.size()
            if size > max_bytes:
                raise too_large(name, max_bytes)
            return f.read(size)
    except (OSError, ValueError) as e:  # missing object, no permission, a prefix rather than an object
        raise ImageDecodeError(f"{name}: cannot read ({(str(e).splitlines() or [type(e).__name__])[0]})") from e


def read_inputs(
    batch: pa.Table, max_bytes: int, filesystem: pafs.FileSystem | None = None, prefix: str = ""
) -> pa.Table:
    """Ray Data ``map_batches`` function: ``{path}`` -> ``{path, bytes, error}``, one row per input, in order.

    ``filesystem`` is None for local files; for URIs it is the job's filesystem and ``prefix`` the part of each
    name pyarrow's paths leave out (``s3://``).
    """
    import pyarrow as pa

    names = [str(p) for p in batch.column("path").to_pylist()]
    data: list[bytes] = []
    errors: list[str | None] = []
    for name in names:
        try:
            if filesystem is None:
                data.append(read_regular_file(name, max_bytes))
            else:
                data.append(read_object(filesystem, name[len(prefix) :], name, max_bytes))
            errors.append(None)
        except EdgeclsError as e:
            data.append(b"")
            errors.append(str(e))
    return pa.table(
        {"path": pa.array(names, pa.string()), "bytes": pa.array(data, pa.binary()),
         "error": pa.array(errors, pa.string())}
    )
