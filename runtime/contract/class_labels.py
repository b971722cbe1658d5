"""Class names -> a model's label indices: the one map from a data set's classes to the outputs they score.

Evaluation (a data set's classes against the model's labels), training's given val/test folders (against the
train folder's classes) and int8 validation (class folders against the contract's labels) all match by name
here, so a folder the model does not know is named the same way everywhere. Torch-free: part of the runtime.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgecls.runtime.errors import DataError


class UnknownClassesError(DataError):
    """Some class names are not among the labels; ``unknown`` lists them once each, first seen first."""

    def __init__(self, message: str, unknown: tuple[str, ...]) -> None:
        super().__init__(message)
        self.unknown = unknown


def label_indices(
    names: Sequence[str], labels: Sequence[str], where: str, what: str = "class(es)"
) -> np.ndarray:
    """int64[len(names)]: the index of each name among ``labels``.

    Raises :class:`UnknownClassesError` ("``where``: ``what`` X, Y are not among the model's labels (...)") when
    a name is not a label. ``names`` may repeat (one per image) or be the distinct classes of a set."""
    index: dict[str, int] = {}
    for i, label in enumerate(labels):
        index.setdefault(label, i)  # the first, as labels.index() would
    unknown = tuple(dict.fromkeys(n for n in names if n not in index))
    if unknown:
        raise UnknownClassesError(
            f"{where}: {what} {', '.join(unknown)} are not among the model's labels ({', '.join(labels)})", unknown
        )
    return np.asarray([index[n] for n in names], dtype=np.int64)
