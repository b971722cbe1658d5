"""The device-side classifier: an ONNX model plus its contract, numpy + OpenCV + onnxruntime only.

``Classifier(path)`` creates the session through :func:`edgecls.runtime.providers.session.create_session`, reads the
contract from ``session.get_modelmeta().custom_metadata_map`` (no ``onnx`` package needed), checks that the
graph really is an image classifier that matches the contract, and then classifies ``uint8[H, W, 3]`` BGR
images with the single preprocessing implementation (:mod:`edgecls.runtime.inference.preprocess`).

Shapes: images ``uint8[H_i, W_i, 3]`` BGR -> inputs ``float32[N, 3, h, w]`` -> outputs ``float32[N, C]``
(logits, turned into probabilities with a softmax, or probabilities as they are) -> top-k per image.

A model exported by something else (no contract entry) runs when the caller supplies the contract fields
(labels at least; the input size is taken from the graph when it is static).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.runtime.contract.model_contract import ModelContract, contract_from_metadata
from edgecls.runtime.errors import ContractError, EdgeclsError, ModelLoadError
from edgecls.runtime.images.decode import to_bgr_uint8
from edgecls.runtime.inference.batched_inference import infer_in_batches
from edgecls.runtime.inference.preprocess import decode_for_contract, preprocess_batch
from edgecls.runtime.inference.scores import to_probabilities
from edgecls.runtime.providers.precision import Precision
from edgecls.runtime.providers.session import SessionInfo, create_session
from edgecls.runtime.terminal.int8_notices import ModelNotice, int8_notices

_FLOAT_TYPES: dict[str, type[np.floating[Any]]] = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class InferenceError(EdgeclsError):
    """onnxruntime failed while running a batch (the message names the model)."""


@dataclass(frozen=True)
class Prediction:
    """One of the top-k classes for one image; ``score`` is a probability in [0, 1]."""

    label: str
    index: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "index": self.index, "score": round(self.score, 6)}


def top_k_predictions(probs: np.ndarray, labels: Sequence[str], k: int) -> list[list[Prediction]]:
    """``float32[N, C]`` scores -> for each row the ``k`` best classes, best first."""
    if k < 1:
        raise EdgeclsError(f"top_k must be >= 1, got {k}")
    k = min(k, probs.shape[1])
    if k < probs.shape[1]:
        part = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(probs.shape[1]), probs.shape)
    rows = np.arange(probs.shape[0])[:, None]
    order = np.argsort(-probs[rows, part], axis=1, kind="stable")
    best = part[rows, order]
    return [
        [Prediction(labels[j], int(j), float(probs[i, j])) for j in best[i]] for i in range(probs.shape[0])
    ]


def _static(dim: Any) -> int | None:
    """A dimension from ``NodeArg.shape``: an int when fixed, None when symbolic (``'batch'``) or unknown."""
    return int(dim) if isinstance(dim, int) and dim > 0 else None


class Classifier:
    """An ONNX image classifier with its preprocessing contract.

    Args:
        model: path to the ``.onnx`` file (or its bytes).
        provider: ``auto``, a short name (``cpu``, ``cuda``, ``openvino``...) or an onnxruntime provider name.
            ``openvino`` runs through onnxruntime's OpenVINO EP where it can run, otherwise through OpenVINO's own
            runtime (``pip install 'edgecls[openvino]'``); ``info.engine`` / ``providers`` say which.
        threads: intra-op threads (None: onnxruntime's default, one per physical core); for OpenVINO's runtime
            ``INFERENCE_NUM_THREADS``.
        strict: a silent CPU fallback of a requested accelerator is an error instead of a warning.
        contract: a full :class:`ModelContract` that replaces the embedded one, or a mapping of
            contract fields that override it; for a model without a contract the mapping must hold
            ``labels`` (and ``input_size`` unless the graph has a static input size).
        provider_options: onnxruntime options for the first provider (e.g. ``{"device_id": 1}``).
        spin: let onnxruntime's worker threads spin between runs (fast, but burns CPU a capture thread needs).
        precision: what OpenVINO computes in (:class:`Precision`): ``f32`` (the default), ``bf16`` or ``f16`` where
            the device has it; ``info.precision`` reads back what the compiled model uses. onnxruntime accepts only
            ``f32``.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes,
        provider: str = "auto",
        threads: int | None = None,
        strict: bool = False,
        contract: ModelContract | Mapping[str, Any] | None = None,
        provider_options: Mapping[str, Any] | None = None,
        spin: bool = True,
        precision: Precision | str | None = None,
    ) -> None:
        self.name = "<bytes>" if isinstance(model, bytes) else str(model)
        if not isinstance(model, bytes) and Path(model).is_file() and Path(model).stat().st_size == 0:
            raise ModelLoadError(f"{self.name}: empty model file (0 bytes)")
        self.session, self.session_info = create_session(
            model, provider=provider, threads=threads, provider_options=dict(provider_options or {}), strict=strict,
            spin=spin, precision=precision,
        )
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelLoadError(
                f"{self.name}: not an image classifier: expected 1 input and 1 output, "
                f"got {len(inputs)} input(s) and {len(outputs)} output(s)"
            )
        inp, out = inputs[0], outputs[0]
        if inp.type not in _FLOAT_TYPES or len(inp.shape) != 4:
            raise ModelLoadError(
                f"{self.name}: not an image classifier: input {inp.name!r} is {inp.type}{list(inp.shape)}, "
                "expected a 4-D float tensor [N, 3, H, W]"
            )
        if len(out.shape) != 2:
            raise ModelLoadError(
                f"{self.name}: not an image classifier: output {out.name!r} has shape {list(out.shape)}, "
                "expected 2-D [N, classes]"
            )
        if _static(inp.shape[1]) not in (None, 3):
            raise ModelLoadError(
                f"{self.name}: not an image classifier: input has {inp.shape[1]} channels, expected 3 (NCHW)"
            )
        self.input_name: str = inp.name
        self.output_name: str = out.name
        self.input_dtype = _FLOAT_TYPES[inp.type]
        #: Batch size the graph was exported with, or None when the batch dimension is dynamic.
        self.fixed_batch: int | None = _static(inp.shape[0])
        self._graph_hw = (_static(inp.shape[2]), _static(inp.shape[3]))
        self._graph_classes = _static(out.shape[1])
        self.contract: ModelContract = self._resolve_contract(contract)
        self._check_contract()
        # Verdict and target notices (an unverified file, an arm64 file tried on x86): warnings the commands print
        # once per file and user (runtime.terminal.notice_memory), `edgecls info` every time.
        for notice in int8_notices(self.contract.provenance):
            warnings.warn(ModelNotice(self.name, notice), stacklevel=2)
        self._batching_ok = True  # cleared if a "dynamic" batch turns out to fail above 1

    # --- construction helpers ------------------------------------------------------------------------
    def _resolve_contract(self, given: ModelContract | Mapping[str, Any] | None) -> ModelContract:
        if isinstance(given, ModelContract):
            return given
        overrides = {k: v for k, v in dict(given or {}).items() if v is not None}
        metadata = self.session.get_modelmeta().custom_metadata_map
        try:
            embedded = contract_from_metadata(metadata)
        except ContractError as e:
            raise ContractError(f"{self.name}: {e}") from e
        if embedded is not None:
            try:
                return embedded.replace(**overrides) if overrides else embedded
            except (TypeError, ContractError) as e:
                raise ContractError(f"{self.name}: bad contract override: {e}") from e
        # A foreign model: the caller's fields, the graph's static size, ModelContract's defaults.
        if "labels" not in overrides:
            raise ContractError(
                f"{self.name}: model has no edgecls contract; give its labels (and size, mean, std, resize "
                "if they differ from the ImageNet defaults), e.g. --labels labels.txt"
            )
        if "input_size" not in overrides:
            if None in self._graph_hw:
                raise ContractError(
                    f"{self.name}: model has no edgecls contract and a dynamic input size; give --input-size"
                )
            overrides["input_size"] = self._graph_hw
        try:
            return ModelContract(**overrides)
        except TypeError as e:
            raise ContractError(f"{self.name}: bad contract fields: {e}") from e
        except ContractError as e:
            raise ContractError(f"{self.name}: {e}") from e

    def _check_contract(self) -> None:
        h, w = self.contract.input_size
        gh, gw = self._graph_hw
        if (gh is not None and gh != h) or (gw is not None and gw != w):
            raise ContractError(
                f"{self.name}: model input is {gh}x{gw} but its contract says {h}x{w} (input does not match "
                "the contract)"
            )
        if self._graph_classes is not None and self._graph_classes != self.contract.num_classes:
            raise ContractError(
                f"{self.name}: model outputs {self._graph_classes} classes but the contract has "
                f"{self.contract.num_classes} labels"
            )

    # --- properties ----------------------------------------------------------------------------------
    @property
    def labels(self) -> tuple[str, ...]:
        return self.contract.labels

    @property
    def providers(self) -> list[str]:
        return self.session_info.used

    @property
    def info(self) -> SessionInfo:
        return self.session_info

    # --- inference -----------------------------------------------------------------------------------
    def preprocess(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """``uint8[H_i, W_i, 3]`` BGR images -> ``float32[N, 3, h, w]`` per the contract."""
        return preprocess_batch(images, self.contract)

    def _run(self, x: np.ndarray) -> np.ndarray:
        try:
            (y,) = self.session.run([self.output_name], {self.input_name: x})
        except Exception as e:  # onnxruntime's exception types are private
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InferenceError(f"{self.name}: inference failed ({first})") from e
        if y.ndim != 2 or y.shape[0] != x.shape[0] or y.shape[1] != self.contract.num_classes:
            raise ContractError(
                f"{self.name}: model produced output shape {list(y.shape)} for a batch of {x.shape[0]}; "
                f"the contract expects [{x.shape[0]}, {self.contract.num_classes}]"
            )
        return y

    def logits_batch(self, x: np.ndarray) -> np.ndarray:
        """Raw model outputs for preprocessed inputs: ``float32[N, 3, h, w]`` -> ``float32[N, C]``.

        Fixed-batch models get the batch in slices of their size (the last one padded); a dynamic-batch
        model that fails on batches above one is run image by image from then on.
        """
        x = np.ascontiguousarray(x, dtype=self.input_dtype)
        n = x.shape[0]
        if n == 0:
            return np.empty((0, self.contract.num_classes), dtype=np.float32)
        if self.fixed_batch is not None:
            return infer_in_batches(self._run, x, self.fixed_batch, pad=True)
        try:
            return infer_in_batches(self._run, x, n if self._batching_ok else 1)
        except InferenceError:
            if n == 1 or not self._batching_ok:
                raise
            self._batching_ok = False  # e.g. a Reshape with the batch baked in: fall back to singles
            return infer_in_batches(self._run, x, 1)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Preprocessed ``float32[N, 3, h, w]`` -> class probabilities ``float32[N, C]``."""
        return to_probabilities(self.logits_batch(x), self.contract.output_kind)

    def classify(self, x: np.ndarray, top_k: int = 5) -> list[list[Prediction]]:
        """Preprocessed ``float32[N, 3, h, w]`` -> top-k predictions per image."""
        return top_k_predictions(self.probabilities(x), self.contract.labels, top_k)

    def predict_batch(self, images: Sequence[np.ndarray], top_k: int = 5) -> list[list[Prediction]]:
        """Classify ``uint8[H_i, W_i, 3]`` BGR images (other dtypes/channel counts are coerced)."""
        images = [to_bgr_uint8(im, f"image {i}") for i, im in enumerate(images)]
        return self.classify(self.preprocess(images), top_k)

    def predict(self, image: np.ndarray | str | os.PathLike[str], top_k: int = 5) -> list[Prediction]:
        """Top-k for one image: a ``uint8[H, W, 3]`` BGR array, any array to_bgr_uint8 takes, or a path."""
        if not isinstance(image, np.ndarray):
            image = decode_for_contract(image, self.contract)
        return self.predict_batch([image], top_k)[0]

    def __repr__(self) -> str:
        h, w = self.contract.input_size
        return (
            f"Classifier({self.name!r}, {len(self.labels)} classes, {h}x{w}, "
            f"providers={self.providers}, batch={self.fixed_batch or 'dynamic'})"
        )
