"""k-bit quantizers: DoReFa-Net activations and weights, and LSQ (learned step size).

These go beyond one bit, for the W2/W3 comparisons of the hypergradient experiments and for mixed
precision; with ``bits = 1`` DoReFa reduces to its binary forms. The rounding always has the
straight-through (identity) gradient; what differs is what surrounds it.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Function, Tensor
from ..backend import get_array_module
from ..errors import ConfigError
from ..functional import activation as A
from ..nn.module import Parameter
from .activation import _PerChannel
from .base import Quantizer, channel_shape, reduce_to_channels, register
from .sign import sign


def _check_bits(name: str, bits, low: int = 1) -> int:
    if int(bits) != bits or bits < low or bits > 16:
        raise ConfigError(f"{name} bits must be an integer in [{low}, 16], got {bits!r}")
    return int(bits)


# =============================================================================================
# DoReFa-Net
# =============================================================================================


class QuantizeK(Function):
    """DoReFa's quantize_k on [0, 1] (Zhou et al. 2016).

    forward:  y = round(x·n)/n,  n = 2^k − 1
    backward: dx = dy   (straight through the rounding)
    """

    @staticmethod
    def forward(ctx, x, bits=1):
        n = 2 ** bits - 1
        return get_array_module(x).round(x * n) / n

    @staticmethod
    def backward(ctx, grad):
        return grad


class DorefaActFn(Function):
    """DoReFa-Net k-bit activations (Zhou et al. 2016).

    forward:  y = round(clip(x, 0, 1)·n)/n,  n = 2^k − 1
    backward: dx = dy · 1[0 <= x <= 1]   (identity through the rounding, the clip's own gradient)
    """

    @staticmethod
    def forward(ctx, x, bits=2):
        xp = get_array_module(x)
        ctx.save_for_backward((x >= 0) & (x <= 1))
        n = 2 ** bits - 1
        return xp.round(xp.clip(x, 0, 1) * n) / n

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside


def dorefa_act(x: Tensor, bits: int = 2) -> Tensor:
    """round(clip(x, 0, 1)·(2^k − 1))/(2^k − 1), dy·1[0 <= x <= 1] backward."""
    return DorefaActFn.apply(x, bits=_check_bits("dorefa_act", bits))


@register("dorefa_act", kind="activation")
class DorefaAct(Quantizer):
    """DoReFa-Net k-bit activations on [0, 1].

    forward:  y = round(clip(x, 0, 1)·n)/n,  n = 2^bits − 1 (bits = 1: {0, 1}, as Heaviside at ½)
    backward: dx = dy · 1[0 <= x <= 1]
    parameters: bits = 2.
    Source: Zhou et al. 2016, "DoReFa-Net", Sec. 2 (quantize_k; low bitwidth activations).
    """

    summary = "round(clip(x, 0, 1)·(2^k − 1))/(2^k − 1); dx = dy·1[0 <= x <= 1]"
    levels = "01"

    def __init__(self, bits: int = 2):
        super().__init__()
        self.bits = _check_bits("dorefa_act", bits)

    def forward(self, x):
        return DorefaActFn.apply(x, bits=self.bits)

    def extra_repr(self):
        return f"bits={self.bits}"


class DorefaSign(Function):
    """DoReFa-Net's 1-bit weights (Zhou et al. 2016).

    forward:  y = E·sign(w),  E = mean|w| over the whole tensor (no gradient)
    backward: dw = dy   (straight through)
    """

    @staticmethod
    def forward(ctx, w):
        return get_array_module(w).abs(w).mean() * sign(w)

    @staticmethod
    def backward(ctx, grad):
        return grad


def dorefa_weight(w: Tensor, bits: int = 2) -> Tensor:
    """DoReFa-Net k-bit weights (see :class:`DorefaWeight`)."""
    bits = _check_bits("dorefa_weight", bits)
    if bits == 1:
        return DorefaSign.apply(w)
    t = A.tanh(w)
    x = t / (2 * t.abs().max()) + 0.5
    return 2 * QuantizeK.apply(x, bits=bits) - 1


@register("dorefa_weight", kind="weight")
class DorefaWeight(Quantizer):
    """DoReFa-Net k-bit weights.

    forward:  bits = 1: y = E·sign(W), E = mean|W| (whole tensor, detached)
              bits >= 2: x = tanh(W)/(2·max|tanh W|) + ½;  y = 2·quantize_k(x) − 1 ∈ [−1, 1]
    backward: bits = 1: dW = dy.  bits >= 2: straight through quantize_k, and the true
              derivative of the tanh normalization, the max included (as the reference code
              lets autodiff do): with t = tanh W, m = max|t| at index j,
              dW_i = (1 − t_i²)·(dy_i/m − [i = j]·sign(t_j)·Σ_l dy_l·t_l/m²).
    parameters: bits = 2.
    Source: Zhou et al. 2016, "DoReFa-Net", Sec. 2 (low bitwidth weights: 1 bit and k bits).
    """

    summary = "2·quantize_k(tanh W/(2 max|tanh W|) + ½) − 1 (k >= 2), E|W|·sign(W) (k = 1); STE"

    def __init__(self, bits: int = 2):
        super().__init__()
        self.bits = _check_bits("dorefa_weight", bits)

    def forward(self, w):
        return dorefa_weight(w, self.bits)

    def extra_repr(self):
        return f"bits={self.bits}"


# =============================================================================================
# LSQ: learned step size quantization
# =============================================================================================


def lsq_levels(bits: int, signed: bool = True) -> tuple[int, int]:
    """(Q_n, Q_p): the number of negative and positive levels of a ``bits``-bit LSQ quantizer.

    signed: Q_n = 2^(b−1), Q_p = 2^(b−1) − 1;  unsigned: Q_n = 0, Q_p = 2^b − 1.
    """
    if signed:
        if bits < 2:
            raise ConfigError("signed LSQ needs bits >= 2 (at 1 bit Q_p = 2^0 − 1 = 0); for "
                              "binary weights use 'xnor', 'ste_sign' or 'dorefa_weight'")
        return 2 ** (bits - 1), 2 ** (bits - 1) - 1
    return 0, 2 ** bits - 1


class LSQFn(Function):
    """Learned Step size Quantization (Esser et al. 2020, Sec. 2).

    Shapes: v any; s (1,) one step, or (C,) one per channel along ``axis``.
    forward:  v̂ = round(clip(v/s, −Q_n, Q_p))·s
    backward (u = v/s):
        dv = dy · 1[−Q_n < u < Q_p]
        ds = g · Σ dy · (round(u) − u  if −Q_n < u < Q_p;  −Q_n if u <= −Q_n;  Q_p if u >= Q_p)
        g  = 1/√(N·Q_p), N = number of values sharing one step (LSQ's step size gradient scale)
    """

    @staticmethod
    def forward(ctx, v, s, qn=2, qp=1, axis=None):
        xp = get_array_module(v)
        step = s.reshape(channel_shape(v.ndim, axis, s.size)) if axis is not None else s.reshape(())
        u = v / step
        rounded = xp.round(xp.clip(u, -qn, qp))
        ctx.save_for_backward(u, rounded)
        ctx.qn, ctx.qp, ctx.axis, ctx.s_shape = qn, qp, axis, s.shape
        ctx.n_per_step = v.size // s.size
        return rounded * step

    @staticmethod
    def backward(ctx, grad):
        u, rounded = ctx.saved_tensors
        xp = get_array_module(grad)
        inside = (u > -ctx.qn) & (u < ctx.qp)
        gv = grad * inside if ctx.needs_input_grad[0] else None
        gs = None
        if ctx.needs_input_grad[1]:
            # outside the range rounded = clip(u) = −Q_n or Q_p; inside it is round(u)
            d = xp.where(inside, rounded - u, rounded)
            g = 1.0 / math.sqrt(ctx.n_per_step * ctx.qp)
            gs = (reduce_to_channels(grad * d, ctx.axis) * g).reshape(ctx.s_shape)
        return gv, gs


def lsq(v: Tensor, s, bits: int = 2, signed: bool = True, axis: int | None = None) -> Tensor:
    """round(clip(v/s, −Q_n, Q_p))·s with the LSQ gradients for v and s (see :class:`LSQFn`);
    ``s`` holds one step, or one per channel along ``axis``."""
    qn, qp = lsq_levels(_check_bits("lsq", bits), signed)
    return LSQFn.apply(v, s, qn=qn, qp=qp, axis=axis)


@register("lsq", kind="both")
class LSQ(_PerChannel, Quantizer):
    """LSQ: k-bit uniform quantizer with a learned step size s.

    forward:  v̂ = round(clip(v/s, −Q_n, Q_p))·s;  signed: Q_n = 2^(b−1), Q_p = 2^(b−1) − 1,
              unsigned: Q_n = 0, Q_p = 2^b − 1
    backward: dv = dy·1[−Q_n < v/s < Q_p];
              ds = Σ dy·(round(v/s) − v/s inside, −Q_n below, Q_p above) / √(N·Q_p)
    parameters: bits = 2, signed = True, per_channel = False (True: one step per channel along
              axis 0 — per output channel of a weight — created when the layer calls ``build``).
    init:     s = 2·mean|v|/√Q_p from the first training batch (Esser et al.).
    N is the number of values that share one step in the tensor quantized: the layer's weights
    (per channel: one channel's), or for activations the whole batch (as common LSQ code does;
    the paper's N_F counts one example's features).
    Source: Esser et al. 2020, "Learned Step Size Quantization", Sec. 2 (quantizer, step size
    gradient, step size gradient scale); also Denekamp, "Learning to learn in quantized-aware
    training" (M.Sc. thesis), Eq. 2.1–2.2.
    """

    summary = "round(clip(v/s, −Q_n, Q_p))·s, learned s; ds = Σ dy·(round(u) − u | ±Q)/√(N·Q_p)"

    def __init__(self, bits: int = 2, signed: bool = True, per_channel: bool = False,
                 channels: int | None = None):
        super().__init__()
        self.bits = _check_bits("lsq", bits)
        self.signed, self.per_channel = bool(signed), bool(per_channel)
        self.qn, self.qp = lsq_levels(self.bits, self.signed)
        self.levels = "pm1" if self.signed else "01"
        self.register_buffer("initialized", np.zeros((), dtype=np.int8))
        if not self.per_channel:
            self.step = Parameter(np.ones(1, dtype=np.float32))
        elif channels is not None:
            self.build(channels, 0)

    def build(self, channels: int, axis: int = 1) -> None:
        if self.per_channel:
            super().build(channels, axis)

    def _make(self, channels):
        self.step = Parameter(np.ones(channels, dtype=np.float32))

    def forward(self, v):
        axis = None
        if self.per_channel:
            self._require_built(v)
            axis = self.axis
        if self.training and not int(self.initialized):
            xp = get_array_module(v.data)
            if axis is None:
                mean_abs = xp.abs(v.data).mean().reshape(1)
            else:
                others = tuple(i for i in range(v.ndim) if i != axis % v.ndim)
                mean_abs = xp.abs(v.data).mean(axis=others)
            self.step.data[...] = xp.maximum(2 * mean_abs / math.sqrt(self.qp), 1e-8)
            self.set_buffer("initialized", np.ones((), dtype=np.int8))
        return LSQFn.apply(v, self.step, qn=self.qn, qp=self.qp, axis=axis)

    def extra_repr(self):
        return f"bits={self.bits}, signed={self.signed}, per_channel={self.per_channel}"
