"""CNN architectures, all exportable and int8-friendly (Conv/BN/ReLU(6)/pool/Linear only; BN folds away).

Importing the package imports every model file, and each registers its own specs in edgecls.models.registry
(the table build_model reads): so ``from edgecls.models.registry import build_model`` always sees them all.
"""

from edgecls.models import efficientnet_lite, mobilenetv2, resnet, simple_cnn  # noqa: F401  (they register)
