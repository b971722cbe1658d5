"""The edge runtime: numpy, OpenCV and onnxruntime only. Never imports torch or onnx (a test proves it).

Public API is imported lazily so ``import edgecls.runtime`` stays cheap on a device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgecls.runtime.classifier import Classifier, Prediction
    from edgecls.runtime.contract import ModelContract

__all__ = ["Classifier", "Prediction", "ModelContract"]


def __getattr__(name: str) -> Any:
    if name in ("Classifier", "Prediction"):
        from edgecls.runtime import classifier

        return getattr(classifier, name)
    if name == "ModelContract":
        from edgecls.runtime.contract import ModelContract

        return ModelContract
    raise AttributeError(name)
