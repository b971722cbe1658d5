"""Expanding ``edgecls batch`` INPUT arguments into one sorted list of image files, once, on the driver.

Local folders, files and globs are expanded by :func:`edgecls.runtime.sources.source_specs.expand_sources`,
the same rules as ``edgecls run`` (recursive, hidden entries skipped, image suffixes only inside folders). URIs
(``s3://bucket/prefix``, ``gs://...``, ``file:///...``) are listed through pyarrow's filesystems with the
same filter (no globs there); ``file://`` results are named by their local path. Both execution paths
classify exactly this list, so their tables have the same rows.

Names are absolute paths (or the URI as given), so a row names its file the same way on every node.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from edgecls.runtime.images.decode import is_image_path
from edgecls.runtime.sources.source_specs import STREAM_SCHEMES, SourceProblem, expand_sources

_URI = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


@dataclass(frozen=True)
class BatchInputs:
    files: list[str]  # absolute local paths and URIs, in argument order, each folder's files sorted
    problems: list[SourceProblem]  # arguments that gave no file: they become error rows

    @property
    def has_uris(self) -> bool:
        return any(_URI.match(f) for f in self.files)


def _visible(relative: str) -> bool:
    return not any(part.startswith(".") for part in relative.split("/") if part)


def _list_uri(uri: str) -> tuple[list[str], list[SourceProblem]]:
    """Image files under a filesystem URI (a file or a prefix), sorted, through ``pyarrow.fs``."""
    import pyarrow.fs as pafs

    try:
        fs, root = pafs.FileSystem.from_uri(uri)
        info = fs.get_file_info(root)
        if info.type == pafs.FileType.File:
            return [uri], []
        if info.type == pafs.FileType.NotFound:
            return [], [SourceProblem(uri, f"{uri}: no such file or prefix")]
        entries = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    except (OSError, ValueError) as e:  # unknown scheme, no credentials, unreachable bucket
        return [], [SourceProblem(uri, f"{uri}: cannot list ({str(e).splitlines()[0]})")]
    prefix = uri.rstrip("/")
    found = sorted(
        f"{prefix}/{e.path[len(root.rstrip('/')) :].lstrip('/')}"
        for e in entries
        if e.type == pafs.FileType.File
        and is_image_path(e.path)
        and _visible(e.path[len(root.rstrip("/")) :])
    )
    if not found:
        return [], [SourceProblem(uri, f"{uri}: contains no images")]
    return found, []


def list_inputs(args: Sequence[str]) -> BatchInputs:
    """INPUT arguments -> the image files to classify (no duplicates) and the arguments that found none."""
    files: list[str] = []
    problems: list[SourceProblem] = []
    for arg in args:
        uri = _URI.match(arg)
        if uri:
            scheme = uri.group(1).lower()
            if scheme in STREAM_SCHEMES:
                problems.append(SourceProblem(arg, f"{arg}: a stream; edgecls batch reads files (use edgecls run)"))
                continue
            found, trouble = _list_uri(arg)
            if scheme == "file":  # local files: named by their path, as a folder argument names them
                found = [f[len("file://") :] for f in found]
        else:
            specs, trouble = expand_sources([arg])
            found = []
            for s in specs:
                if s.kind == "image":
                    found.append(os.path.abspath(s.target))
                else:  # a video file or a camera device named explicitly
                    trouble.append(
                        SourceProblem(s.name, f"{s.name}: a {s.kind}; edgecls batch classifies image files "
                                      "(use edgecls run)")
                    )
        files.extend(found)
        problems.extend(trouble)
    seen: set[str] = set()
    unique = [f for f in files if not (f in seen or seen.add(f))]
    return BatchInputs(unique, problems)
