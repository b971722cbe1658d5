"""The int8 recipe for the device the file is made for (``--target``), not for the machine that quantizes.

The instruction-set facts are in :mod:`edgecls.runtime.cpu_isa`. Per target:
- ``x86-vnni``: full-range u8s8 (exact in VPDPBUSD), and 7-bit GEMM-conv weights, which measured better on
  some models; the search keeps what measures better.
- ``x86-avx2``: u8s8 with 7-bit weights (``reduce_range``: no saturation in VPMADDUBSW), and full-range u8s8
  with the sensitive nodes kept float; both are measured, the search keeps what fits.
- ``arm64``: s8s8, the dot-product path.
When the quantizing CPU is not the target, accuracy is measured with onnxruntime's exact kernels
(``session.x64quantprecision``) where that stands in for the target (a VNNI or ARM device computes the products
exactly); on a VNNI host, a file for AVX2 avoids full-range u8s8 because its saturation cannot be measured here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from edgecls.runtime.cpu_isa import TARGETS, IsaProfile
from edgecls.runtime.errors import EdgeclsError


@dataclass(frozen=True)
class QuantRecipe:
    """One way of running ``quantize_static``; the budget search may try several."""

    name: str
    activation_type: str = "QUInt8"  # onnxruntime.quantization.QuantType member names
    weight_type: str = "QInt8"
    reduce_range: bool = False
    per_channel: bool = True
    # onnxruntime.quantization.CalibrationMethod member names, or "PerTensor" (range_choice.py)
    calibrate_method: str = "MinMax"
    reason: str = ""
    nodes_to_exclude: tuple[str, ...] = field(default=())
    bias_correction: bool = False  # empirical per-channel bias correction (bias_correction.py)
    # With reduce_range: depthwise conv weights keep 8 bits. onnxruntime's depthwise kernels widen u8/s8 to
    # 16 bits before multiplying (no VPMADDUBSW pair sums), so only the GEMM-based convs need 7-bit weights.
    depthwise_full_range: bool = False
    equalize: bool = False  # cross-layer equalisation of the float graph first (equalize.py)
    reconstruct: bool = False  # weights' rounding and biases learned layer by layer (reconstruct.py)
    # Activations with zero point 0 (onnxruntime's ActivationSymmetric): the symmetric kernels of onnxruntime
    # PR #9323 skip the zero-point terms; tried by the speed step (speed_step.py), kept only when faster.
    activation_symmetric: bool = False

    def key(self) -> tuple[Any, ...]:
        """What makes two recipes the same model (the name and reason do not): no trial is run twice."""
        return (
            self.activation_type,
            self.weight_type,
            self.reduce_range,
            self.per_channel,
            self.calibrate_method,
            tuple(sorted(self.nodes_to_exclude)),
            self.bias_correction,
            self.reduce_range and self.depthwise_full_range,
            self.equalize,
            self.reconstruct,
            self.activation_symmetric,
        )

    def describe(self, kept_float: int | None = None) -> str:
        """``kept_float``: the number of compute nodes the written graph runs in float (read back from the file,
        ``fused_graph.float_compute_nodes``); None: the count of names asked to stay float (which also names
        activations and other non-compute nodes kept with them), for a recipe not yet written."""
        act = "u8" if self.activation_type == "QUInt8" else "s8"
        wt = "s8" if self.weight_type == "QInt8" else "u8"
        parts = [
            f"static QDQ {act}{wt}",
            "per-channel" if self.per_channel else "per-tensor",
            self.calibrate_method,
        ]
        if self.reduce_range:
            parts.append("reduce_range (depthwise 8-bit)" if self.depthwise_full_range else "reduce_range")
        if self.activation_symmetric:
            parts.append("symmetric activations")
        if self.equalize:
            parts.append("equalized")
        if self.bias_correction:
            parts.append("bias-corrected")
        if self.reconstruct:
            parts.append("layer-wise reconstructed")
        count = len(self.nodes_to_exclude) if kept_float is None else kept_float
        if count:
            parts.append(f"{count} nodes kept float")
        return ", ".join(parts)

    def to_dict(self, kept_float: int | None = None) -> dict[str, Any]:
        d = asdict(self)
        d["nodes_to_exclude"] = list(self.nodes_to_exclude)
        d["description"] = self.describe(kept_float)
        return d


@dataclass(frozen=True)
class TargetPlan:
    """The device a file is made for and how its accuracy is measured on this host."""

    target: str  # one of TARGETS
    host: IsaProfile
    precise_kernels: bool  # measure with session.x64quantprecision=1 (exact products stand in for the target)
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "host": self.host.isa,
            "precise_kernels": self.precise_kernels,
            "note": self.note,
        }


def plan_target(target: str, host: IsaProfile) -> TargetPlan:
    """``auto`` is this CPU; any other target is measured here as faithfully as the host allows."""
    if target == "auto":
        target = host.target
    if target not in TARGETS:
        raise EdgeclsError(f"--target must be auto or one of {', '.join(TARGETS)}, got {target!r}")
    same = target == host.target
    x86_host = host.target in ("x86-vnni", "x86-avx2")
    precise = not same and target != "x86-avx2" and host.target == "x86-avx2"
    if same:
        note = f"made for this CPU ({host.isa}); accuracy and speed measured here"
    elif precise:
        note = (
            f"made for {target} on an {host.isa} host: accuracy measured with onnxruntime's exact kernels "
            "(session.x64quantprecision=1) standing in for the target's exact int8 products; speed measured "
            "here is not the target's"
        )
    elif target == "x86-avx2" and x86_host:
        note = (
            f"made for x86-avx2 on an {host.isa} host: the saturation of full-range u8s8 cannot be measured "
            "here, so only 7-bit-weight (reduce_range) recipes are tried; speed measured here is not the target's"
        )
    else:
        note = f"made for {target} on an {host.isa} host; speed measured here is not the target's"
    return TargetPlan(target, host, precise, note)


def candidate_recipes(plan: TargetPlan) -> list[QuantRecipe]:
    """Recipes to measure for the target, best guess first (the search adds Percentile and float nodes)."""
    if plan.target == "x86-vnni":
        # VNNI needs no 7-bit weights, but they measured better on some models (EfficientNet-Lite0: 94% vs 90%
        # agreement on the search images; their coarser grid regularises outlier weights): measure both.
        return [
            QuantRecipe("u8s8", reason="x86 VNNI: u8s8 products do not saturate; full range"),
            QuantRecipe(
                "u8s8-reduce-range-dw8",
                reduce_range=True,
                depthwise_full_range=True,
                reason="x86 VNNI: 7-bit GEMM-conv weights (8-bit depthwise), kept only if they measure better",
            ),
        ]
    if plan.target == "x86-avx2":
        why = "AVX2 without VNNI saturates full-range u8s8 products (VPMADDUBSW)"
        recipes = [
            QuantRecipe(
                "u8s8-reduce-range-dw8",
                reduce_range=True,
                depthwise_full_range=True,
                reason=f"{why}: 7-bit weights avoid it in GEMM convs; depthwise kernels do not saturate",
            ),
            QuantRecipe("u8s8-reduce-range", reduce_range=True, reason=f"{why}: 7-bit weights avoid it"),
        ]
        if plan.host.target == "x86-avx2":  # the saturation is measurable only on such a CPU
            recipes.append(QuantRecipe("u8s8", reason=f"{why}: full range, sensitive nodes kept float if needed"))
        return recipes
    return [QuantRecipe("s8s8", activation_type="QInt8", reason="ARM64: s8s8 is the dot-product (asimddp) path")]
