"""One layer's rounding chosen column by column with the error fed forward (GPTQ: Frantar et al. 2023, "GPTQ:
Accurate Post-Training Quantization for Generative Pre-trained Transformers", ICLR; after Optimal Brain
Quantization), minimising the layer's error from its moments (``layer_fit.Moments``) in one pass, no steps.

The error is a quadratic (W~ - W*) H (W~ - W*)^T around its least-squares optimum W* = G H^-1 (the weights and
bias that best map the int8 graph's inputs to the fp32 outputs). The input columns are rounded in order; each
column's rounding error is spread over the columns not yet rounded (and the bias) through the Cholesky factor of
H^-1, so later columns compensate it. The least-squares correction is damped towards the float weights (an
input the calibration images never use keeps its float weight). Each weight may only take the floor or the
ceiling of w / scale (the grid AdaRound searches, within the magnitude the channel already reaches), so the
file keeps its grid. Cost: a Cholesky factor of H and a rank-1 update per column, O(d^2 O) per layer.
"""

from __future__ import annotations

from typing import Any

from edgecls.export.quant.repairs.layer_fit import LayerFit, Moments

DAMPING = 0.01  # share of H's mean diagonal added to its diagonal (GPTQ's default): H of dead inputs is singular


def ordered_rounding(fit: LayerFit, moments: Moments, bias: Any, current: Any) -> Any:
    """Integer weights as a float tensor shaped like the layer's weights, each the floor or ceiling of w / scale
    and within the magnitude the ``current`` integers reach in its channel; ``bias``: the layer's bias now."""
    import torch

    ratio, low, high = fit.grid(current)
    h, g = moments.h.double(), moments.g.double()  # [g, d, d], [g, O/g, d]
    groups, rows, d = g.shape
    low, high = low.reshape(groups, rows, d - 1), high.reshape(groups, rows, d - 1)
    diag = torch.diagonal(h, dim1=1, dim2=2)
    damp = DAMPING * diag.mean(dim=1, keepdim=True) + (diag == 0).double()  # a dead input gets a unit diagonal
    h = h + torch.diag_embed(damp.expand_as(diag))
    # W* = W + (G - W H) (H + damp)^-1: the damping pulls the correction, not the weights, towards zero
    w_float = fit.grouped(fit.float_weight.double(), bias.double())
    w = w_float + torch.linalg.solve(h, (g - torch.bmm(w_float, moments.h.double())).transpose(1, 2)).transpose(1, 2)
    # weight columns in integer units (w / scale, one scale per output channel), the bias column in float units
    scale = fit.scale.double().reshape(-1).expand(ratio.shape[0]).reshape(groups, rows, 1)
    w[:, :, :-1] /= scale
    u = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)  # [g, d, d]
    out = torch.empty(groups, rows, d - 1, dtype=torch.float64)
    for j in range(d - 1):
        q = torch.minimum(torch.maximum(torch.round(w[:, :, j]), low[:, :, j]), high[:, :, j])  # [g, O/g]
        out[:, :, j] = q
        err = (w[:, :, j] - q) / u[:, j, j].unsqueeze(1)
        update = err.unsqueeze(2) * u[:, j, j + 1 :].unsqueeze(1)  # [g, O/g, d - j - 1]
        update[:, :, -1] *= scale[:, :, 0]  # the bias column is in float units
        w[:, :, j + 1 :] -= update
    return out.reshape(ratio.shape).float()
