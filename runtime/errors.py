"""Error types whose message is the one line a user sees (the CLI prints ``error: <message>`` and exits).

Every error edgecls raises on purpose derives from :class:`EdgeclsError`; anything else reaching the CLI is a
bug. Kept in the runtime package because every stage (train, export, runtime) may raise them.
"""

from __future__ import annotations


class EdgeclsError(Exception):
    """Base class: the message names the file or source and says what is wrong."""


class ContractError(EdgeclsError):
    """A model contract is missing, malformed, newer than this edgecls, or inconsistent with the model."""


class ImageDecodeError(EdgeclsError):
    """An image file could not be read or decoded (zero bytes, not an image, truncated, unreadable)."""


class ModelLoadError(EdgeclsError):
    """An ONNX model could not be loaded or is not an image classifier."""


class ProviderError(EdgeclsError):
    """An execution provider was requested that does not exist or is not available here."""


class SourceError(EdgeclsError):
    """A video file, camera or stream could not be opened or read."""


class DataError(EdgeclsError):
    """A dataset is unusable: no images, a single class, an empty class folder, a bad split."""


class MissingExtraError(EdgeclsError):
    """A command needs an optional dependency group (e.g. ``pip install 'edgecls[train]'``)."""
