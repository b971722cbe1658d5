"""CNN architectures, all exportable and int8-friendly (Conv/BN/ReLU(6)/pool/Linear only; BN folds away)."""

from edgecls.models.registry import ARCHITECTURES, DEFAULT_ARCH, build_model, describe_architectures

__all__ = ["ARCHITECTURES", "DEFAULT_ARCH", "build_model", "describe_architectures"]
