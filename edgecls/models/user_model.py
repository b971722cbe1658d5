"""A user's own torch model, built by a factory they name: loading it, its weights, and its classifier head.

``FILE.py:FACTORY`` loads FILE.py as a module and calls ``FACTORY()``; ``package.module:FACTORY`` imports the
module. The factory returns an ``nn.Module`` mapping float32[N, 3, H, W] to float32[N, C] logits. Used by
``edgecls export --model`` (export as it is) and ``edgecls train --model ... --pretrained`` (fine-tune it on the
data's classes after replacing its classifier head).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import io
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgecls.runtime.errors import EdgeclsError


class ModelFactoryError(EdgeclsError):
    """The user's model factory could not be imported, called, or did not return a torch module."""


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:200]}" if text else type(e).__name__


def load_factory(spec: str) -> Callable[[], Any]:
    """Resolve ``FILE.py:FACTORY`` or ``module.path:FACTORY`` to the callable."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ModelFactoryError(f"--model {spec!r}: expected FILE.py:FACTORY or module:FACTORY")
    try:
        if target.endswith(".py"):
            path = Path(target)
            if not path.is_file():
                raise ModelFactoryError(f"--model {spec}: no such file {path}")
            name = f"edgecls_user_model_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]}"
            module_spec = importlib.util.spec_from_file_location(name, path)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module  # dataclasses and pickling look modules up here
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except ModelFactoryError:
        raise
    except BaseException as e:  # anything the user's file raises at import time, SyntaxError included
        if isinstance(e, KeyboardInterrupt):
            raise
        raise ModelFactoryError(f"--model {spec}: cannot import {target} ({first_line(e)})") from e
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise ModelFactoryError(f"--model {spec}: {target} has no callable {attr!r}")
    return factory


def build_user_model(spec: str, weights: str | os.PathLike[str] | None = None) -> nn.Module:
    """Call the factory, check it returned an nn.Module, load ``weights``; eval mode, CPU."""
    factory = load_factory(spec)
    try:
        model = factory()
    except Exception as e:
        raise ModelFactoryError(f"--model {spec}: calling the factory failed ({first_line(e)})") from e
    if not isinstance(model, nn.Module):
        raise ModelFactoryError(
            f"--model {spec}: the factory returned {type(model).__name__}, not a torch nn.Module"
        )
    if weights is not None:
        load_weights(model, weights)
    return model.eval().cpu()


def read_state_dict(path: str | os.PathLike[str], flag: str = "--weights") -> tuple[dict[str, torch.Tensor], str]:
    """-> (state dict, sha256 of the file). Accepts a bare state dict or a checkpoint holding one under
    ``state_dict`` / ``model_state`` / ``model``; every failure is one line naming ``flag`` and the file."""
    p = Path(path)
    if not p.is_file():
        raise EdgeclsError(f"{flag} {p}: no such file")
    data = p.read_bytes()
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:
        raise EdgeclsError(
            f"{flag} {p}: not a readable state dict (corrupt or not torch.save output: {type(e).__name__})"
        ) from e
    if isinstance(state, dict):
        for key in ("state_dict", "model_state", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise EdgeclsError(f"{flag} {p}: expected a state dict of tensors, got {type(state).__name__}")
    return state, hashlib.sha256(data).hexdigest()


def load_weights(model: nn.Module, weights: str | os.PathLike[str]) -> str:
    """Load a state dict strictly; -> the file's sha256."""
    state, sha256 = read_state_dict(weights)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise EdgeclsError(
            f"--weights {weights}: does not fit the model ({str(e).strip().splitlines()[0]})"
        ) from e
    return sha256


def state_sha256(model: nn.Module) -> str:
    """sha256 over every tensor of the state dict (names, shapes, bytes): names weights that have no file."""
    h = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        h.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def find_head(model: nn.Module, spec: str, head: str | None = None) -> str:
    """The name of the classifier head to replace: ``head`` when given (must be an nn.Linear), otherwise the
    last nn.Linear the model registers (torchvision's ``fc`` / ``classifier.1``, timm's ``classifier``)."""
    modules = dict(model.named_modules())
    if head is not None:
        if head not in modules:
            near = [n for n in modules if n and isinstance(modules[n], nn.Linear)]
            raise ModelFactoryError(
                f"--head {head}: --model {spec} has no module of that name"
                + (f" (its Linear layers: {', '.join(near[-5:])})" if near else "")
            )
        if not isinstance(modules[head], nn.Linear):
            raise ModelFactoryError(
                f"--head {head}: is a {type(modules[head]).__name__}, not an nn.Linear classifier"
            )
        return head
    linears = [n for n, m in modules.items() if n and isinstance(m, nn.Linear)]
    if not linears:
        raise ModelFactoryError(
            f"--model {spec}: cannot find a classifier head (no nn.Linear); name it with --head MODULE"
        )
    return linears[-1]


def replace_head(model: nn.Module, head: str, num_classes: int) -> nn.Module:
    """Swap the Linear named ``head`` for a new Linear(in_features -> num_classes); returns ``model``."""
    old = model.get_submodule(head)
    assert isinstance(old, nn.Linear)
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    nn.init.normal_(new.weight, 0, 0.01)  # small logits at the start: the backbone's features decide
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    parent_name, _, child = head.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
    return model


def user_classifier(
    spec: str, num_classes: int, head: str | None, input_size: int, weights: str | os.PathLike[str] | None = None
) -> tuple[nn.Module, str, dict[str, Any]]:
    """The user's model with its head replaced for ``num_classes``.

    -> (model in train mode, head name, provenance of the pretrained weights: {weights, source, sha256}).
    A forward pass on float32[2, 3, S, S] checks that the replaced layer really is the output.
    """
    model = build_user_model(spec, weights)
    provenance = _weights_provenance(model, weights, spec)
    name = find_head(model, spec, head)
    replace_head(model, name, num_classes)
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(2, 3, input_size, input_size))
    except Exception as e:
        raise ModelFactoryError(
            f"--model {spec}: forward pass on a [2, 3, {input_size}, {input_size}] batch failed after replacing "
            f"{name!r} ({first_line(e)}); name the classifier with --head MODULE"
        ) from e
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[1] != num_classes:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelFactoryError(
            f"--model {spec}: after replacing {name!r} the output is {shape}, not [N, {num_classes}]: "
            "that layer is not the classifier head; name it with --head MODULE"
        )
    return model.train(), name, provenance


def _weights_provenance(model: nn.Module, weights: str | os.PathLike[str] | None, spec: str) -> dict[str, Any]:
    """What the contract says about a user's pretrained weights: where they came from and their sha256."""
    if weights is not None:
        sha256 = hashlib.sha256(Path(weights).read_bytes()).hexdigest()
        return {"weights": f"--weights for --model {spec}", "source": str(weights), "sha256": sha256}
    return {"weights": f"returned by the factory --model {spec}", "source": spec, "sha256": state_sha256(model)}
