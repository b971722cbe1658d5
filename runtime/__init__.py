"""The edge runtime: numpy, OpenCV and onnxruntime only. Never imports torch or onnx (a test proves it).

``from edgecls.runtime import Classifier`` (with Prediction and ModelContract) is edgecls's one documented
Python API (docs/contract.md#python-api); the only package ``__init__`` that re-exports. The names load lazily:
``import edgecls.runtime`` imports neither OpenCV nor onnxruntime until Classifier is touched
(tests/test_public_api.py checks both that and the documented example).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgecls.runtime.contract.model_contract import ModelContract
    from edgecls.runtime.inference.classifier import Classifier, Prediction

__all__ = ["Classifier", "Prediction", "ModelContract"]


def __getattr__(name: str) -> Any:
    if name in ("Classifier", "Prediction"):
        from edgecls.runtime.inference import classifier

        return getattr(classifier, name)
    if name == "ModelContract":
        from edgecls.runtime.contract.model_contract import ModelContract

        return ModelContract
    raise AttributeError(name)
