"""Error types whose message is the one line a user sees (the CLI prints ``error: <message>`` and exits).

Every error edgecls raises on purpose derives from :class:`EdgeclsError`; anything else reaching the CLI is a
bug. Kept in the runtime package because every stage (train, export, runtime) may raise them.
"""

from __future__ import annotations

from pathlib import Path


class EdgeclsError(Exception):
    """Base class: the message names the file or source and says what is wrong."""


class ContractError(EdgeclsError):
    """A model contract is missing, malformed, newer than this edgecls, or inconsistent with the model."""


class ImageDecodeError(EdgeclsError):
    """An image file could not be read or decoded (zero bytes, not an image, truncated, unreadable)."""


class ImageTooCostlyError(ImageDecodeError):
    """An image whose structure would take unreasonable time or memory to parse or decode (refused before
    any decoder sees it: too many chunks, segments, scans or stray bytes, oversized TIFF tiles)."""


class TooManyPixelsError(ImageDecodeError):
    """An image whose header declares more pixels than the limit (``--max-pixels``), refused before decoding."""


class ModelLoadError(EdgeclsError):
    """An ONNX model could not be loaded or is not an image classifier."""


class ProviderError(EdgeclsError):
    """An execution provider was requested that does not exist or is not available here."""


class SourceError(EdgeclsError):
    """A video file, camera or stream could not be opened or read."""


class NoSuchCamera(SourceError):
    """The camera is not there (no device, no camera of that number, no library to read it): retrying cannot help."""


class DataError(EdgeclsError):
    """A dataset is unusable: no images, a single class, an empty class folder, a bad split."""


class MissingExtraError(EdgeclsError):
    """A command needs an optional dependency group: ``MissingExtraError("edgecls serve needs ...", "serve")``
    reads "edgecls serve needs ...: " + :func:`install_hint` ``("serve")``."""

    def __init__(self, message: str, extra: str | None = None) -> None:
        super().__init__(f"{message}: {install_hint(extra)}" if extra else message)
        self.extra = extra


#: The repository root when edgecls runs from a source checkout (runtime/ is mapped to edgecls.runtime and
#: sits beside pyproject.toml and constraints.txt); in an installed wheel this folder is site-packages/edgecls.
_CHECKOUT = Path(__file__).resolve().parents[1]


def source_checkout() -> Path | None:
    """The clone edgecls runs from (an editable install), or None for an installed wheel."""
    if (_CHECKOUT / "constraints.txt").is_file() and (_CHECKOUT / "pyproject.toml").is_file():
        return _CHECKOUT
    return None


def install_hint(extra: str) -> str:
    """How to install an extra, both ways: PyPI's ``pip install 'edgecls[X]'`` and, in a clone, the form that
    installs the versions the project tested (constraints.txt). The form that fits this install comes first."""
    pypi = f"pip install 'edgecls[{extra}]'"
    clone = f"pip install -c constraints.txt -e '.[{extra}]'"
    root = source_checkout()
    if root is not None:
        return f"{clone} (in {root}, the tested versions; from PyPI: {pypi})"
    return f"{pypi} (in a clone of the repository, with the tested versions: {clone})"
