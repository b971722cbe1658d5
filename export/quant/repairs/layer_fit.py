"""One quantized layer seen from torch, for layer-wise reconstruction: its operation on the inputs the int8 graph
feeds it, the clipped squared error to the fp32 graph's outputs, the bias re-fit, and the error as a quadratic
form of its weights (:class:`Moments`), which the rounding solvers (``adaround``, ``ordered_rounding``) minimise.

The quadratic form: per group g of the layer (1 for a dense conv or a Gemm, the channels for a depthwise conv),
H = sum x~ x~^T and G = sum y x~^T over the output positions, x~ the input patch with a 1 appended for the
bias. Gathered in one pass over the images, it makes a solver's step a product with H, whatever the number of
images and positions, with exact (not mini-batch) gradients: the same inputs give the same integers. It does
not see the clip to the int8 output range; the clipped error decides whether learned integers are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecls.export.quant.repairs.qdq_sites import channel_shape, node_attrs

CHUNK = 8  # images per torch pass (moments, errors, bias)
#: Output positions per group that the moments, the bias re-fit and the error of a layer see at least (all of them
#: when there are fewer, and 64 per input at least): a dense layer's moments at 112 x 112 px over 224 images are
#: measured as well from every sixth row and column (78k positions) as from all 2.8 million.
POSITIONS = 65536
#: The same for a depthwise layer, whose groups have 10 (3 x 3) or 26 (5 x 5) inputs: its moments cost as much as
#: a dense layer's per position (a batch of tiny products), over up to 1152 groups.
DEPTHWISE_POSITIONS = 65536


@dataclass(frozen=True)
class LayerGeometry:
    """What the torch side needs of the ONNX node: a 2-D conv's pads (top, left, bottom, right), strides, kernel
    and groups, or a Gemm (x W^T + b)."""

    conv: bool
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    stride: tuple[int, int] = (1, 1)
    kernel: tuple[int, int] = (1, 1)
    groups: int = 1

    @classmethod
    def of(cls, node: Any, weight_shape: tuple[int, ...]) -> LayerGeometry:
        if node.op_type != "Conv":
            return cls(False)
        a = node_attrs(node)
        pads = tuple(int(p) for p in a.get("pads", [0, 0, 0, 0]))  # type: ignore[union-attr]
        stride = tuple(int(s) for s in a.get("strides", [1, 1]))  # type: ignore[union-attr]
        return cls(True, pads, stride, (weight_shape[2], weight_shape[3]), int(a.get("group", 1)))  # type: ignore


@dataclass
class Moments:
    """The layer's squared error as a quadratic form of its weights, per group g of the layer (1 for a dense
    conv or a Gemm, the channels for a depthwise conv), with d = inputs per output (C/g * kh * kw) + 1 (bias):
    sum over positions of ||W~ x~ - y||^2 = tr(W~ H W~^T) - 2 tr(W~ G^T) + yy. ``h``: float32[g, d, d], ``g``:
    float32[g, O/g, d], ``yy``: the sum of the squared targets."""

    h: Any
    g: Any
    yy: float

    def error(self, w: Any) -> tuple[Any, Any]:
        """(relative squared error of the weights and bias ``w``: float32[g, O/g, d]; its gradient)."""
        torch = __import__("torch")
        wh = torch.bmm(w, self.h)
        err = ((wh * w).sum() - 2 * (w * self.g).sum()) / self.yy + 1.0
        return err, 2 * (wh - self.g) / self.yy  # H is symmetric


class LayerFit:
    """The torch side of one layer: its operation on its inputs, the error to its targets and its moments.

    ``x``: float32[N, C, H, W] (unpadded) or [N, K]; ``y``: float32[N, O, H', W'] or [N, O], the fp32 layer's
    output (before any activation); both are used without a copy. ``clip``: the range the int8 graph quantizes
    the output to (values beyond are lost either way). ``float_weight``: float32[O, C/g, kh, kw] or [O, K];
    ``scale``: its per-channel or per-tensor scale."""

    def __init__(
        self,
        geometry: LayerGeometry,
        x: np.ndarray,
        y: np.ndarray,
        clip: tuple[float, float],
        float_weight: np.ndarray,
        scale: np.ndarray,
    ) -> None:
        import torch
        import torch.nn.functional as F

        self.torch, self.F, self.g = torch, F, geometry
        self.lo, self.hi = clip
        self.x = torch.from_numpy(x)
        self.y = torch.from_numpy(y)
        self.float_weight = torch.from_numpy(float_weight)
        self.scale = torch.from_numpy(scale.reshape(channel_shape(scale, float_weight.ndim)))

    def apply(self, x: Any, weight: Any, bias: Any, t: int = 1) -> Any:
        """The layer on already padded conv inputs (or Gemm inputs) at every t-th output row and column, clipped
        to the int8 output range."""
        if self.g.conv:
            stride = (self.g.stride[0] * t, self.g.stride[1] * t)
            out = self.F.conv2d(x, weight, bias, stride=stride, groups=self.g.groups)
        else:
            out = self.F.linear(x, weight, bias)
        return out.clamp(self.lo, self.hi)

    def _whole(self, i: Any) -> Any:
        """Images ``i``, zero-padded (conv) as the layer sees them."""
        if not self.g.conv:
            return self.x[i]
        top, left, bottom, right = self.g.pads
        return self.F.pad(self.x[i], (left, right, top, bottom)) if any(self.g.pads) else self.x[i]

    def _target(self, i: Any, t: int) -> Any:
        """The fp32 outputs of images ``i`` at every t-th row and column, clipped as the int8 graph clips them."""
        y = self.y[i][:, :, ::t, ::t] if self.g.conv else self.y[i]
        return y.clamp(self.lo, self.hi)

    def sample(self, idx: Any) -> tuple[Any, int]:
        """(images, t): the positions the moments, the bias and the error of images ``idx`` are measured on, every
        t-th output row and column of evenly spaced images of ``idx``, at least ``POSITIONS`` per group (or
        ``DEPTHWISE_POSITIONS``), all of them when there are fewer. A grid, not a draw: the same ``idx`` always give
        the same positions, on any machine."""
        if not self.g.conv:
            return idx, 1
        depthwise = self.g.groups > 1 and self.g.groups == self.y.shape[1]
        d = int(np.prod(self.float_weight.shape[1:])) + 1
        floor = max(DEPTHWISE_POSITIONS if depthwise else POSITIONS, 64 * d)
        h, w = self.y.shape[2:]
        t = max(1, int(np.sqrt(len(idx) * h * w / floor)))
        per_image = -(-h // t) * -(-w // t)
        images = min(len(idx), -(-floor // per_image))
        if images < len(idx):
            idx = idx[self.torch.from_numpy(np.linspace(0, len(idx) - 1, images).round().astype(np.int64))]
        return idx, t

    def error(self, weight: Any, bias: Any, idx: Any) -> float:
        """Mean squared error of the clipped output over images ``idx``, at the positions ``sample`` picks (no
        gradient)."""
        torch = self.torch
        idx, t = self.sample(idx)
        with torch.no_grad():
            total, count = 0.0, 0
            for i in idx.split(CHUNK):
                target = self._target(i, t)
                total += float(((self.apply(self._whole(i), weight, bias, t) - target) ** 2).sum())
                count += target.numel()
        return total / max(1, count)

    def refit_bias(self, weight: Any, bias: Any, idx: Any) -> Any:
        """Bias + the per-channel mean of (target - output) where the output is not clipped, over images ``idx``
        at the positions ``sample`` picks."""
        torch = self.torch
        idx, t = self.sample(idx)
        with torch.no_grad():
            num = torch.zeros_like(bias, dtype=torch.float64)
            den = torch.zeros_like(bias, dtype=torch.float64)
            for i in idx.split(CHUNK):
                out = self.apply(self._whole(i), weight, bias, t)
                inside = ((out > self.lo) & (out < self.hi)).double()
                dims = [0] + list(range(2, out.ndim))
                num += ((self._target(i, t) - out).double() * inside).sum(dims)
                den += inside.sum(dims)
            return bias + (num / den.clamp(min=1)).float()

    def _unfold(self, i: Any, t: int) -> Any:
        """float32[b, C * kh * kw, L]: the input patches of images ``i`` at every t-th output row and column, as
        ``F.unfold`` lays them out, copied from a strided view of the padded maps (twice as fast as unfold's
        im2col on Lite0's maps, the same values)."""
        x = self._whole(i)
        (kh, kw), sh, sw = self.g.kernel, self.g.stride[0] * t, self.g.stride[1] * t
        b, c, hp, wp = x.shape
        ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
        s = x.stride()
        view = x.as_strided((b, c, kh, kw, ho, wo), (s[0], s[1], s[2], s[3], s[2] * sh, s[3] * sw))
        return view.reshape(b, c * kh * kw, ho * wo)

    def _patches(self, i: Any, t: int) -> tuple[Any, Any]:
        """(inputs float32[g, d - 1, P], targets float32[g, O/g, P]) of images ``i`` at every t-th output row
        and column."""
        groups = self.g.groups
        if not self.g.conv:
            return self.x[i].T.unsqueeze(0), self.y[i].T.unsqueeze(0)
        cols = self._unfold(i, t)  # [b, C * kh * kw, L]
        b, _, positions = cols.shape
        cols = cols.view(b, groups, -1, positions).permute(1, 2, 0, 3).reshape(groups, -1, b * positions)
        y = self.y[i][:, :, ::t, ::t].reshape(b, groups, -1, positions)
        return cols, y.permute(1, 2, 0, 3).reshape(groups, -1, b * positions)

    def _dense_part(self, i: Any, t: int) -> tuple[Any, Any, Any]:
        """(H float32[g, d, d], G float32[g, O/g, d], sum of squared targets) of images ``i``: one product per
        group over the positions of every image (a few groups, long rows)."""
        torch = self.torch
        cols, y = self._patches(i, t)
        cols = torch.cat([cols, torch.ones_like(cols[:, :1])], dim=1)  # [g, d, P]: the bias input
        return torch.bmm(cols, cols.transpose(1, 2)), torch.bmm(y, cols.transpose(1, 2)), (y.double() ** 2).sum()

    def _grouped_part(self, i: Any, t: int) -> tuple[Any, Any, Any]:
        """``_dense_part`` of a grouped (depthwise) conv: one product per image and group, on the unfolded
        patches as they lie ([b * g, d - 1, L], no copy), summed over the images; the bias row and column are
        sums. Gathering the groups' patches first (``_patches``) cost four times the products on Lite0's
        depthwise layers: hundreds of groups of 10 or 26 inputs."""
        torch, groups = self.torch, self.g.groups
        cols = self._unfold(i, t)  # [b, C * kh * kw, L]
        b, _, positions = cols.shape
        cols = cols.view(b * groups, -1, positions)
        y = self.y[i][:, :, ::t, ::t].reshape(b * groups, -1, positions)  # [b * g, O/g, L]
        d = cols.shape[1] + 1
        h = torch.empty(groups, d, d)
        h[:, :-1, :-1] = torch.bmm(cols, cols.transpose(1, 2)).view(b, groups, d - 1, d - 1).sum(0)
        h[:, :-1, -1] = h[:, -1, :-1] = cols.sum(2).view(b, groups, d - 1).sum(0)
        h[:, -1, -1] = b * positions
        g = torch.empty(groups, y.shape[1], d)
        g[:, :, :-1] = torch.bmm(y, cols.transpose(1, 2)).view(b, groups, -1, d - 1).sum(0)
        g[:, :, -1] = y.sum(2).view(b, groups, -1).sum(0)
        return h, g, (y.double() ** 2).sum()

    def moments(self, idx: Any) -> Moments:
        """The quadratic form of the layer's error over images ``idx`` at the positions ``sample`` picks (one
        pass)."""
        torch = self.torch
        h = g = None
        yy = 0.0
        idx, t = self.sample(idx)
        part = self._grouped_part if self.g.conv and self.g.groups > 1 else self._dense_part
        with torch.no_grad():
            for i in idx.split(CHUNK):
                part_h, part_g, part_yy = part(i, t)
                h = part_h.double() if h is None else h + part_h.double()
                g = part_g.double() if g is None else g + part_g.double()
                yy += float(part_yy)
        return Moments(h.float(), g.float(), max(yy, 1e-30))  # type: ignore[union-attr]

    def grid(self, current: Any) -> tuple[Any, Any, Any]:
        """(w / scale, the floor and the ceiling each integer may take, within the magnitude the ``current``
        integers reach in its channel: 7-bit weights stay 7-bit), in float64 so that no floor is off by one."""
        torch = self.torch
        ratio = self.float_weight.double() / self.scale.double()
        dims = tuple(range(1, ratio.ndim))
        limit = (current.abs().amax(dim=dims, keepdim=True) if self.scale.ndim else current.abs().max()).double()
        low = torch.maximum(torch.minimum(torch.floor(ratio), limit), -limit)
        high = torch.maximum(torch.minimum(torch.ceil(ratio), limit), -limit)
        return ratio, low, high

    def grouped(self, weight: Any, bias: Any) -> Any:
        """float32[O, ...] weights and [O] bias -> float32[g, O/g, d] (the bias last)."""
        groups = self.g.groups if self.g.conv else 1
        flat = self.torch.cat([weight.reshape(weight.shape[0], -1), bias.reshape(-1, 1)], dim=1)
        return flat.reshape(groups, weight.shape[0] // groups, -1)
