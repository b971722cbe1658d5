"""CNN architectures, all exportable and int8-friendly (Conv/BN/ReLU(6)/pool/Linear only; BN folds away).

Importing the package imports every model file, and each registers its own specs (edgecls.models.registry).
"""

from edgecls.models import efficientnet_lite, mobilenetv2, resnet, simple_cnn  # noqa: F401  (they register)
from edgecls.models.registry import ARCHITECTURES, DEFAULT_ARCH, build_model, describe_architectures

__all__ = ["ARCHITECTURES", "DEFAULT_ARCH", "build_model", "describe_architectures"]
