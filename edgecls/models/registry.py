"""Architecture registry: ``--arch NAME`` -> its :class:`~edgecls.models.spec.ArchitectureSpec`.

The table is filled by the model files themselves (each ends with ``register(ArchitectureSpec(...))``);
``edgecls/models/__init__.py`` imports them, so any import from ``edgecls.models`` sees every architecture.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from edgecls.models.spec import ArchitectureSpec

#: name -> spec, in registration order (the package imports the model files in a fixed order).
ARCHITECTURES: dict[str, ArchitectureSpec] = {}
DEFAULT_ARCH = "mobilenetv2"
#: A user's own network (``edgecls train --model FILE.py:FACTORY``): arch_kwargs = {"model": spec, "head": name}.
USER_ARCH = "user"


def register(spec: ArchitectureSpec) -> ArchitectureSpec:
    """Add ``spec`` to the table (a model file's own call); a name registered twice is a programming error."""
    if spec.name in ARCHITECTURES or spec.name == USER_ARCH:
        raise ValueError(f"architecture {spec.name!r} is registered twice")
    ARCHITECTURES[spec.name] = spec
    return spec


def architecture(name: str) -> ArchitectureSpec:
    """The spec of ``--arch name`` (one plain error line naming the choices otherwise)."""
    from edgecls.runtime.errors import EdgeclsError

    if name not in ARCHITECTURES:
        raise EdgeclsError(f"unknown architecture {name!r}; choose one of: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def build_model(arch: str, num_classes: int, input_size: int | None = None, **overrides: Any) -> nn.Module:
    """``arch`` for ``num_classes`` at ``input_size`` px; ``overrides`` replace the spec's default keywords.

    ``img_size`` (the keyword's old name) is still read, from callers and from old checkpoints' arch_kwargs.
    """
    if "img_size" in overrides:
        legacy = overrides.pop("img_size")
        input_size = legacy if input_size is None else input_size
    if arch == USER_ARCH:
        from edgecls.models.user_model import build_user_model, replace_head

        return replace_head(build_user_model(overrides["model"]), overrides["head"], num_classes).train()
    spec = architecture(arch)
    kwargs = {**spec.defaults, **overrides}
    if "layers" in kwargs:
        kwargs["layers"] = tuple(kwargs["layers"])
    if spec.sized:
        kwargs["input_size"] = input_size if input_size is not None else 224
    return spec.build(num_classes, **kwargs)


def arch_kwargs(arch: str, **overrides: Any) -> dict[str, Any]:
    """The full keyword set a checkpoint stores so the model can be rebuilt exactly."""
    kwargs = {**(architecture(arch).defaults if arch != USER_ARCH else {}), **overrides}
    if "layers" in kwargs:
        kwargs["layers"] = list(kwargs["layers"])
    return kwargs


def describe_architectures() -> list[tuple[str, str]]:
    return [(name, spec.description) for name, spec in ARCHITECTURES.items()]
