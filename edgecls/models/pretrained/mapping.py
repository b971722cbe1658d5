"""Moving a published state dict into edgecls's module through an explicit key/shape table.

A table lists, for every tensor of the published file, the key it has there, the key it gets in edgecls's
module and its shape. Applying it checks, and names the first tensor that breaks, that:
every table entry is found in the file with its shape; every tensor of the file is used exactly once (no key
left over, none used twice); every tensor of edgecls's module receives one (except the classifier head when
it is replaced for the user's classes). ``strict=False`` loading, which silently leaves layers at their random
initialisation, is exactly what this replaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from edgecls.runtime.errors import EdgeclsError


class WeightMappingError(EdgeclsError):
    """A published state dict does not have the layout its key/shape table describes."""


@dataclass(frozen=True)
class TensorMap:
    source: str  # key in the published file
    target: str  # key in edgecls's module
    shape: tuple[int, ...]
    # BatchNorm's num_batches_tracked is absent from files saved before PyTorch 0.4.1; BatchNorm itself accepts
    # such files, so the table does too.
    optional: bool = False
    head: bool = False  # part of the ImageNet classifier, dropped when the head is replaced


def conv_entries(source: str, target: str, shape: tuple[int, ...], bias: bool = False) -> list[TensorMap]:
    """A convolution or linear layer: ``.weight`` of ``shape`` (and ``.bias``)."""
    rows = [TensorMap(f"{source}.weight", f"{target}.weight", shape)]
    if bias:
        rows.append(TensorMap(f"{source}.bias", f"{target}.bias", (shape[0],)))
    return rows


def bn_entries(source: str, target: str, channels: int) -> list[TensorMap]:
    """A BatchNorm2d: affine weight/bias, running mean/var ([channels] each) and the step counter ([])."""
    rows = [TensorMap(f"{source}.{n}", f"{target}.{n}", (channels,)) for n in ("weight", "bias")]
    rows += [TensorMap(f"{source}.{n}", f"{target}.{n}", (channels,)) for n in ("running_mean", "running_var")]
    rows.append(TensorMap(f"{source}.num_batches_tracked", f"{target}.num_batches_tracked", (), optional=True))
    return rows


def head_entries(source: str, target: str, features: int, classes: int) -> list[TensorMap]:
    """The published classifier: Linear(features -> classes)."""
    return [
        TensorMap(f"{source}.weight", f"{target}.weight", (classes, features), head=True),
        TensorMap(f"{source}.bias", f"{target}.bias", (classes,), head=True),
    ]


def _check_table(table: Sequence[TensorMap], what: str) -> None:
    for attr in ("source", "target"):
        seen: set[str] = set()
        for row in table:
            key = getattr(row, attr)
            if key in seen:
                raise WeightMappingError(f"{what}: the key/shape table uses {attr} key {key!r} twice")
            seen.add(key)


def map_state_dict(
    source: Mapping[str, torch.Tensor], table: Sequence[TensorMap], what: str, keep_head: bool = False
) -> dict[str, torch.Tensor]:
    """The published ``source`` renamed per ``table``: every file tensor used exactly once, shapes checked.

    ``keep_head=False`` drops the published classifier (the data's classes get a new one).
    Raises WeightMappingError naming the first missing, mis-shaped or unused tensor.
    """
    _check_table(table, what)
    mapped: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for row in table:
        tensor = source.get(row.source)
        if tensor is None:
            if row.optional:
                continue
            raise WeightMappingError(f"{what}: tensor {row.source!r} {list(row.shape)} is missing from the file")
        if tuple(tensor.shape) != row.shape:
            raise WeightMappingError(
                f"{what}: tensor {row.source!r} has shape {list(tensor.shape)}, expected {list(row.shape)} "
                f"(for {row.target!r})"
            )
        used.add(row.source)
        if keep_head or not row.head:
            mapped[row.target] = tensor
    unused = [k for k in source if k not in used]
    if unused:
        raise WeightMappingError(
            f"{what}: tensor {unused[0]!r} of the file is not in the key/shape table "
            f"({len(unused)} unused in all): not the layout these weights should have"
        )
    return mapped


def load_mapped(
    model: nn.Module, mapped: Mapping[str, torch.Tensor], what: str, head_keys: Iterable[str] = ()
) -> None:
    """Copy ``mapped`` into ``model``: every model tensor but ``head_keys`` must receive exactly one, same shape."""
    state = model.state_dict()
    head = set(head_keys)
    for key, tensor in mapped.items():
        if key not in state:
            raise WeightMappingError(f"{what}: edgecls's model has no tensor {key!r}")
        if state[key].shape != tensor.shape:
            raise WeightMappingError(
                f"{what}: {key!r} is {list(tensor.shape)} in the weights but {list(state[key].shape)} in "
                "edgecls's model"
            )
    missing = [k for k in state if k not in mapped and k not in head and not k.endswith("num_batches_tracked")]
    if missing:
        raise WeightMappingError(f"{what}: edgecls's tensor {missing[0]!r} gets no value from the weights")
    with torch.no_grad():
        for key, tensor in mapped.items():
            state[key].copy_(tensor)
