"""The float model rewritten into the form the fake-int8 student is trained in, with ``torch.fx``.

onnxruntime folds BatchNorm into the preceding conv/linear and quantizes a conv's output after its ReLU/ReLU6,
so the student must be that graph too: every BatchNorm that follows a conv/linear called once is folded into it,
and every ReLU/ReLU6 (module or function) that follows one is attached to it (``FOLDED_ACTIVATIONS``).
``prepare_student`` checks that the rewritten copy still computes the original's function.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from edgecls.training.qat import FOLDED_ACTIVATIONS, WEIGHTED

#: Activation functions fx may see as calls rather than modules, and the module that stands for each.
_ACTIVATION_FUNCTIONS: dict[Any, type[nn.Module]] = {
    F.relu: nn.ReLU,
    torch.relu: nn.ReLU,
    F.relu6: nn.ReLU6,
}
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


class StudentPreparationError(RuntimeError):
    """The model cannot be rewritten for fake quantization (``torch.fx`` could not trace it)."""


class _WeightedLeafTracer(fx.Tracer):
    """Keeps every conv/linear (subclasses too, e.g. 'same'-padding convs) and BatchNorm as one module call."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, WEIGHTED + _BATCHNORMS) or super().is_leaf_module(m, module_qualified_name)


def _single_call(graph: fx.Graph, target: str) -> bool:
    return sum(1 for n in graph.nodes if n.op == "call_module" and n.target == target) == 1


def _fold(gm: fx.GraphModule) -> int:
    """BatchNorm after a conv/linear (whose only user it is) folded into it; -> how many."""
    modules = dict(gm.named_modules())
    folded = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(node.target), _BATCHNORMS):
            continue
        src = node.args[0]
        if not (isinstance(src, fx.Node) and src.op == "call_module" and len(src.users) == 1):
            continue
        layer, bn = modules[src.target], modules[node.target]
        if not _single_call(gm.graph, src.target):  # a shared layer cannot absorb one caller's BatchNorm
            continue
        if isinstance(layer, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            fused: nn.Module = fuse_conv_bn_eval(layer, bn)
        elif isinstance(layer, nn.Linear) and isinstance(bn, nn.BatchNorm1d):
            fused = fuse_linear_bn_eval(layer, bn)
        else:
            continue
        gm.delete_submodule(src.target)
        gm.add_submodule(src.target, fused)
        modules[src.target] = fused
        node.replace_all_uses_with(src)
        gm.graph.erase_node(node)
        folded += 1
    return folded


def _activation_of(node: fx.Node, modules: dict[str, nn.Module]) -> nn.Module | None:
    """The ReLU/ReLU6 module ``node`` applies, or None (clamp(0, 6) spelled as hardtanh counts as ReLU6)."""
    if node.op == "call_module" and isinstance(modules.get(node.target), FOLDED_ACTIVATIONS):
        return copy.deepcopy(modules[node.target])
    if node.op == "call_function" and node.target in _ACTIVATION_FUNCTIONS and len(node.args) == 1:
        return _ACTIVATION_FUNCTIONS[node.target]()
    if node.op == "call_function" and node.target is F.hardtanh:
        lo, hi = (list(node.args[1:]) + [node.kwargs.get("min_val", -1.0), node.kwargs.get("max_val", 1.0)])[:2]
        return nn.ReLU6() if (lo, hi) == (0.0, 6.0) else None
    return None


def _fuse_activations(gm: fx.GraphModule) -> int:
    """conv/linear -> ReLU/ReLU6 becomes one ``nn.Sequential(layer, act)`` call; -> how many."""
    modules = dict(gm.named_modules())
    fused = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(node.target), WEIGHTED):
            continue
        if len(node.users) != 1 or not _single_call(gm.graph, node.target):
            continue
        user = next(iter(node.users))
        act = _activation_of(user, modules)
        if act is None or user.args[0] is not node:
            continue
        name = f"{node.target.replace('.', '_')}_act"
        gm.add_submodule(name, nn.Sequential(modules[node.target], act))
        with gm.graph.inserting_after(user):
            new = gm.graph.call_module(name, node.args, node.kwargs)
        user.replace_all_uses_with(new)
        gm.graph.erase_node(user)
        gm.graph.erase_node(node)
        fused += 1
    return fused


def prepare_student(teacher: nn.Module, example: torch.Tensor) -> tuple[nn.Module, int, int]:
    """A copy of ``teacher`` in the form ``FakeQuantizedModel`` simulates onnxruntime on; -> (student, folded
    BatchNorms, fused activations). Checked to compute the teacher's function on ``example`` [B, 3, h, w]."""
    model = copy.deepcopy(teacher).eval()
    try:
        graph = _WeightedLeafTracer().trace(model)
    except Exception as e:  # fx raises many types for dynamic control flow
        raise StudentPreparationError(f"torch.fx cannot trace the model ({type(e).__name__}: {e})") from e
    gm = fx.GraphModule(model, graph)
    folded = _fold(gm)
    fused = _fuse_activations(gm)
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    gm.recompile()
    gm.eval()
    with torch.no_grad():
        want, got = teacher.eval()(example), gm(example)
    err = float((want - got).abs().max() / want.abs().max().clamp_min(1e-6))
    if err > 1e-3:
        raise StudentPreparationError(f"the rewritten model differs from the original (relative error {err:.2g})")
    return gm, folded, fused
