"""Per-node sensitivity of an int8 QDQ graph, by graph surgery instead of re-quantization.

For each quantized compute node, a copy of the QDQ graph is made in which only that node computes in float:
its activation inputs read the float tensors before QuantizeLinear, its weights and bias are the float
initializers of the pre-processed fp32 graph. The logit error of that copy on a subset of images says how much
of the model's error the node's quantization causes. One copy costs a session and one pass over the subset,
far less than a full ``quantize_static`` per node.

The subset is small (``QuantizeOptions.sensitivity_images``): the ranking only orders the nodes, and every model
the search then considers is measured on all the search images. Running the copies without onnxruntime's
graph optimisations (simulated quantization, cheaper sessions) was tried and was slower: unfused float convs
cost more per image than the fusions cost to build.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import onnx

from edgecls.export.quant.grading.evaluate import relative_error
from edgecls.runtime.inference.batched_inference import session_outputs

#: Images per call of a float copy (a model with a fixed batch dimension gets its own size).
BATCH = 32


def _float_copy(qdq: onnx.ModelProto, pre: onnx.ModelProto, name: str) -> bytes | None:
    """Serialized QDQ graph with node ``name`` fed float inputs; None when the node is not in both graphs."""
    m = onnx.ModelProto()
    m.CopyFrom(qdq)
    producer = {o: n for n in m.graph.node for o in n.output}
    inits = {i.name for i in m.graph.initializer}
    pre_node = next((n for n in pre.graph.node if n.name == name), None)
    node = next((n for n in m.graph.node if n.name == name), None)
    if node is None or pre_node is None or len(pre_node.input) != len(node.input):
        return None
    pre_inits = {i.name: i for i in pre.graph.initializer}
    for i, tensor in enumerate(node.input):
        dq = producer.get(tensor)
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        if dq.input[0] in inits:  # a weight or bias: the float initializer of the fp32 graph
            if pre_node.input[i] not in pre_inits:
                return None
            # A new name: the QDQ graph may use the original name for the DequantizeLinear output (biases).
            float_name = f"{pre_node.input[i]}__float"
            if float_name not in inits:
                init = onnx.TensorProto()
                init.CopyFrom(pre_inits[pre_node.input[i]])
                init.name = float_name
                m.graph.initializer.append(init)
                inits.add(float_name)
            node.input[i] = float_name
        else:  # an activation: the tensor before its QuantizeLinear
            q = producer.get(dq.input[0])
            if q is None or q.op_type != "QuantizeLinear":
                return None
            node.input[i] = q.input[0]
    return m.SerializeToString()


def rank_nodes(
    qdq_path: str | os.PathLike[str],
    pre_path: str | os.PathLike[str],
    nodes: list[str],
    inputs: np.ndarray,
    reference: np.ndarray,
    progress: Callable[[int, int], None] | None = None,
) -> list[tuple[str, float]]:
    """(node, logit error with only that node in float) for every node, most responsible (lowest) first.

    ``inputs``: float32[N, 3, h, w]; ``reference``: the fp32 model's float32[N, C] logits on them."""
    import onnxruntime as ort

    from edgecls.runtime.providers.session import session_options

    qdq = onnx.load(str(qdq_path))
    pre = onnx.load(str(pre_path))
    so = session_options()
    scored = []
    for k, name in enumerate(nodes):
        blob = _float_copy(qdq, pre, name)
        if blob is None:
            continue
        sess = ort.InferenceSession(blob, sess_options=so, providers=["CPUExecutionProvider"])
        logits = session_outputs(sess, inputs, BATCH)  # float32[N, C]
        scored.append((name, relative_error(logits, reference)))
        if progress:
            progress(k + 1, len(nodes))
    scored.sort(key=lambda item: item[1])
    return scored
