"""What OpenVINO computes in: one typed value from the command line (``--precision``) to the compiled model.

Pure data: nothing here imports an engine. onnxruntime has no such choice (it runs each tensor in the type the
file stores), so only ``f32`` may be asked of it; OpenVINO's ``INFERENCE_PRECISION_HINT`` takes all three
(runtime/providers/openvino.py checks the device has the kernels).
"""

from __future__ import annotations

from enum import Enum

from edgecls.runtime.errors import ProviderError


class Precision(str, Enum):
    """``f32`` (the default: what onnxruntime CPU runs an fp32 file in), ``bf16`` or ``f16`` where the CPU has
    them: faster on such CPUs, and top-1 may move (bench shows the agreement of each)."""

    f32 = "f32"
    bf16 = "bf16"
    f16 = "f16"

    def __str__(self) -> str:  # "bf16" in messages and f-strings, not "Precision.bf16"
        return self.value

    @classmethod
    def parse(cls, text: str | Precision) -> Precision:
        """``bf16``, ``bfloat16``, ``fp16``, ``float32``... -> the member; a :class:`ProviderError` otherwise
        (library callers may pass the spellings engines use; the command line takes the member names)."""
        if isinstance(text, Precision):
            return text
        key = str(text).strip().lower()
        key = _ALIASES.get(key, key)
        try:
            return cls(key)
        except ValueError:
            raise ProviderError(f"--precision {text!r}: choose {', '.join(p.value for p in cls)}") from None


_ALIASES = {"fp32": "f32", "float32": "f32", "bfloat16": "bf16", "fp16": "f16", "float16": "f16"}

#: What every session runs in unless asked.
DEFAULT_PRECISION = Precision.f32
