"""Activation binarizers: sign-like forwards with the surrogate backwards of the BNN literature.

Each estimator comes three ways:

- a :class:`~tinybnn.autograd.Function` whose ``backward`` is the surrogate gradient (the thing
  the paper is about), e.g. :class:`ApproxSign`;
- a plain function on Tensors, e.g. :func:`approx_sign`;
- a registered :class:`~tinybnn.quant.base.Quantizer` Module that layers take by name, e.g.
  ``BinaryConv2d(..., input_quantizer="approx_sign")``.

Convention: sign(0) = +1, so every sign-like output is in {−1, +1} (and the {0, 1} Heaviside maps
0 to 1). In the formulas below x is the input, dy = ∂L/∂y the incoming gradient, dx = ∂L/∂x.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Function, Tensor
from ..backend import get_array_module
from ..errors import ConfigError, ShapeError
from ..nn.module import Parameter
from .base import Quantizer, channel_shape, reduce_to_channels, register
from .sign import SignSTE, sign


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not value > 0:
        raise ConfigError(f"{name} must be positive, got {value}")
    return value


# =============================================================================================
# Identity STE (Bengio et al. 2013)
# =============================================================================================


def identity_ste(x: Tensor) -> Tensor:
    """sign(x) forward, dx = dy backward: the clipped STE with clip = ∞ (:class:`SignSTE`)."""
    return SignSTE.apply(x, clip=math.inf)


@register("identity_ste", kind="both")
class IdentitySte(Quantizer):
    """Identity straight-through estimator.

    forward:  y = sign(x)
    backward: dx = dy                      (the gradient passes unchanged, everywhere)
    parameters: none.
    Source: Bengio, Léonard & Courville 2013, "Estimating or propagating gradients through
    stochastic neurons" (the straight-through estimator); used for weights by DoReFa-Net and GSB
    (Eq. 6, G_sign^weight = 1).
    """

    summary = "sign(x); dx = dy"

    def forward(self, x):
        return identity_ste(x)


# =============================================================================================
# ApproxSign (Bi-Real Net)
# =============================================================================================


class ApproxSign(Function):
    """Bi-Real Net's piecewise-polynomial surrogate (Liu et al. 2018, the ApproxSign function).

    forward:  y = sign(x)
    backward: dx = dy · max(0, 2 − 2|x|)    (= 2 + 2x on [−1, 0), 2 − 2x on [0, 1), 0 outside:
                                             the derivative of the quadratic ApproxSign curve)
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return sign(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        xp = get_array_module(x)
        return grad * xp.maximum(0, 2 - 2 * xp.abs(x))


def approx_sign(x: Tensor) -> Tensor:
    """sign(x) forward, dy·max(0, 2 − 2|x|) backward (see :class:`ApproxSign`)."""
    return ApproxSign.apply(x)


@register("approx_sign", kind="activation")
class ApproxSignQuantizer(Quantizer):
    """ApproxSign (Bi-Real Net).

    forward:  y = sign(x)
    backward: dx = dy · max(0, 2 − 2|x|)
    parameters: none.
    Source: Liu et al. 2018, "Bi-Real Net", Sec. 3 (approximation of the derivative of sign:
    ApproxSign(x) = 2x + x² on [−1, 0), 2x − x² on [0, 1), ±1 outside).
    """

    summary = "sign(x); dx = dy·max(0, 2 − 2|x|)"

    def forward(self, x):
        return ApproxSign.apply(x)


# =============================================================================================
# SwishSign (BNN+)
# =============================================================================================


class SwishSign(Function):
    """BNN+'s SignSwish surrogate (Darabi et al. 2018), with slope ``beta``.

    forward:  y = sign(x)
    backward: dx = dy · β(2 − βx·tanh(βx/2)) / (1 + cosh(βx))
              (the derivative of SS_β(x) = 2σ(βx)(1 + βx(1 − σ(βx))) − 1)
    """

    @staticmethod
    def forward(ctx, x, beta=5.0):
        ctx.save_for_backward(x)
        ctx.beta = beta
        return sign(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        xp = get_array_module(x)
        z = ctx.beta * x
        # 1 / (1 + cosh z) written as 2e^{−|z|} / (1 + e^{−|z|})², which never overflows
        e = xp.exp(-xp.abs(z))
        inv_one_plus_cosh = 2 * e / (1 + e) ** 2
        return grad * ctx.beta * (2 - z * xp.tanh(z / 2)) * inv_one_plus_cosh


def swish_sign(x: Tensor, beta: float = 5.0) -> Tensor:
    """sign(x) forward, SignSwish derivative backward (see :class:`SwishSign`)."""
    return SwishSign.apply(x, beta=beta)


@register("swish_sign", kind="activation")
class SwishSignQuantizer(Quantizer):
    """SwishSign (BNN+).

    forward:  y = sign(x)
    backward: dx = dy · β(2 − βx·tanh(βx/2)) / (1 + cosh(βx))
    parameters: beta = 5.0 (larger β: a narrower, taller bump around 0).
    Source: Darabi et al. 2018, "BNN+: Improved Binary Network Training" (SignSwish and its
    derivative).
    """

    summary = "sign(x); dx = dy·β(2 − βx·tanh(βx/2))/(1 + cosh βx), β = 5"

    def __init__(self, beta: float = 5.0):
        super().__init__()
        self.beta = _check_positive("swish_sign beta", beta)

    def forward(self, x):
        return SwishSign.apply(x, beta=self.beta)

    def extra_repr(self):
        return f"beta={self.beta}"


# =============================================================================================
# EDE: Error Decay Estimator (IR-Net)
# =============================================================================================


def ede_schedule(epoch: int, epochs: int, t_min: float = 0.1, t_max: float = 10.0):
    """IR-Net's EDE schedule (Qin et al. 2020) at ``epoch`` (0-based) of ``epochs``:

        t = T_min · 10^((e/E) · log10(T_max / T_min)),   k = max(1/t, 1).

    Returns (t, k): t grows geometrically from T_min (epoch 0) to T_max (epoch E).
    """
    if epochs <= 0:
        raise ConfigError(f"epochs must be positive, got {epochs}")
    t = t_min * 10 ** ((epoch / epochs) * math.log10(t_max / t_min))
    return t, max(1.0 / t, 1.0)


class EDESign(Function):
    """IR-Net's Error Decay Estimator (Qin et al. 2020).

    forward:  y = sign(x)
    backward: dx = dy · k·t·(1 − tanh²(t·x))  (the derivative of k·tanh(t·x))
    Early in training (t small, k = 1/t) this is ≈ the identity; late (t large, k = 1) it
    approaches the true derivative of sign.
    """

    @staticmethod
    def forward(ctx, x, t=0.1, k=10.0):
        ctx.save_for_backward(x)
        ctx.t, ctx.k = t, k
        return sign(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        xp = get_array_module(x)
        t, k = ctx.t, ctx.k
        return grad * (k * t) * (1 - xp.tanh(t * x) ** 2)


def ede_sign(x: Tensor, t: float = 0.1, k: float = 10.0) -> Tensor:
    """sign(x) forward, dy·k·t·(1 − tanh²(tx)) backward (see :class:`EDESign`)."""
    return EDESign.apply(x, t=t, k=k)


class _EDESchedule:
    """Mixin: holds EDE's t and k as buffers (so a checkpoint restores them) and advances them in
    ``set_progress``. The owner's ``__init__`` calls ``_init_ede(t_min, t_max)``."""

    def _init_ede(self, t_min: float, t_max: float) -> None:
        self.t_min = _check_positive("EDE t_min", t_min)
        self.t_max = _check_positive("EDE t_max", t_max)
        t, k = ede_schedule(0, 1, self.t_min, self.t_max)
        self.register_buffer("t", np.asarray(t, dtype=np.float64))
        self.register_buffer("k", np.asarray(k, dtype=np.float64))

    def set_progress(self, epoch: int, epochs: int) -> None:
        t, k = ede_schedule(epoch, epochs, self.t_min, self.t_max)
        self.set_buffer("t", np.asarray(t, dtype=np.float64))
        self.set_buffer("k", np.asarray(k, dtype=np.float64))


@register("ede", kind="both")
class EDE(_EDESchedule, Quantizer):
    """IR-Net's Error Decay Estimator.

    forward:  y = sign(x)
    backward: dx = dy · k·t·(1 − tanh²(t·x))
    schedule: t = T_min·10^((e/E)·log10(T_max/T_min)), k = max(1/t, 1), set by
              ``set_progress(e, E)``; before the first call t = T_min, k = 1/T_min.
    parameters: t_min = 0.1, t_max = 10.0.
    Source: Qin et al. 2020, "Forward and Backward Information Retention for Accurate Binary
    Neural Networks" (IR-Net), Sec. 3 (Error Decay Estimator).
    """

    summary = "sign(x); dx = dy·k·t·(1 − tanh²(tx)), t: 0.1 → 10 over training, k = max(1/t, 1)"

    def __init__(self, t_min: float = 0.1, t_max: float = 10.0):
        super().__init__()
        self._init_ede(t_min, t_max)

    def forward(self, x):
        return EDESign.apply(x, t=float(self.t), k=float(self.k))

    def extra_repr(self):
        return f"t={float(self.t):.4g}, k={float(self.k):.4g}"


# =============================================================================================
# ReCU activations
# =============================================================================================


class ScaleByStd(Function):
    """y = a / √(var(a) + eps), the variance taken per sample over every axis but the first
    (C, H, W for images), unbiased (divisor M − 1), as the ReCU reference code (``a.var([1,2,3])``).
    No mean is subtracted: this only rescales, so sign(y) = sign(a).

    Shapes: a (N, ...) -> y (N, ...).
    backward (M = elements per sample, μ their mean, r = 1/√(var + eps)):
        da_j = r·dy_j − r³·(a_j − μ)/(M − 1) · Σ_i dy_i·a_i      (sums within the sample)
    """

    @staticmethod
    def forward(ctx, a, eps=1e-5):
        axes = tuple(range(1, a.ndim))
        m = int(np.prod(a.shape[1:]))
        if m < 2:
            raise ConfigError(f"ReCU's activation standardization needs at least 2 values per "
                              f"sample, got input shape {a.shape}")
        xp = get_array_module(a)
        mean = a.mean(axis=axes, keepdims=True)
        var = ((a - mean) ** 2).sum(axis=axes, keepdims=True) / (m - 1)
        r = 1 / xp.sqrt(var + eps)
        ctx.save_for_backward(a, mean, r)
        ctx.m = m
        return a * r

    @staticmethod
    def backward(ctx, grad):
        a, mean, r = ctx.saved_tensors
        axes = tuple(range(1, a.ndim))
        dot = (grad * a).sum(axis=axes, keepdims=True)
        return r * grad - r ** 3 * (a - mean) / (ctx.m - 1) * dot


def recu_act(x: Tensor, training: bool = True, eps: float = 1e-5) -> Tensor:
    """ReCU's activation binarizer: sign(a0) with ApproxSign's backward on a0, where
    a0 = a/√(var_CHW(a) + eps) in training and a0 = a in evaluation (see :class:`RecuAct`)."""
    a0 = ScaleByStd.apply(x, eps=eps) if training else x
    return ApproxSign.apply(a0)


@register("recu_act", kind="activation")
class RecuAct(Quantizer):
    """ReCU's activation binarizer.

    forward:  training: a0 = a / √(var_CHW(a) + 1e-5) (per sample, unbiased variance, no mean
              subtracted); evaluation: a0 = a.  y = sign(a0) (= sign(a): the rescaling never
              changes a sign).
    backward: da0 = dy · max(0, 2 − 2|a0|), then through the rescaling, variance included
              (:class:`ScaleByStd`): the surrogate's window is measured in units of the sample's
              standard deviation.
    parameters: eps = 1e-5.
    Source: Xu et al. 2021, "ReCU: Reviving the Dead Weights in Binary Neural Networks" (reference
    code: the rescaling in ``BinarizeConv2d.forward``, the backward in ``BinaryQuantize_a``).
    """

    summary = "sign(a/√(var_CHW a + 1e-5)) in training; dx = dy·max(0, 2 − 2|a0|) via a0"

    def __init__(self, eps: float = 1e-5):
        super().__init__()
        self.eps = _check_positive("recu_act eps", eps)

    def forward(self, x):
        return recu_act(x, training=self.training, eps=self.eps)


# =============================================================================================
# RSign (ReActNet)
# =============================================================================================


class RSignFn(Function):
    """ReActNet's RSign: sign with a learnable per-channel threshold (Liu et al. 2020).

    Shapes: x (N, C, ...) (channels on ``axis``), b (C,) -> y like x.
    forward:  y = sign(x + b)
    backward: dx = dy · max(0, 2 − 2|x + b|)   (ApproxSign at x + b; ReActNet)
              or, given ``clip``, dx = dy · 1[|x + b| <= clip]   (clipped STE; BNext, clip = 1.5)
              db = Σ over every axis but ``axis`` of dx
    """

    @staticmethod
    def forward(ctx, x, b, axis=1, clip=None):
        xp = get_array_module(x)
        shifted = x + b.reshape(channel_shape(x.ndim, axis, b.size))
        if clip is None:
            window = xp.maximum(0, 2 - 2 * xp.abs(shifted))
        else:
            window = xp.abs(shifted) <= clip
        ctx.save_for_backward(window)
        ctx.axis = axis
        return sign(shifted)

    @staticmethod
    def backward(ctx, grad):
        (window,) = ctx.saved_tensors
        gx = grad * window
        gb = reduce_to_channels(gx, ctx.axis) if ctx.needs_input_grad[1] else None
        return gx if ctx.needs_input_grad[0] else None, gb


def rsign(x: Tensor, b, axis: int = 1, clip: float | None = None) -> Tensor:
    """sign(x + b) with ApproxSign's backward (or the clipped STE when ``clip`` is given) for x
    and b (see :class:`RSignFn`)."""
    return RSignFn.apply(x, b, axis=axis, clip=clip)


class _PerChannel:
    """Mixin for quantizers with per-channel parameters created at ``build`` time."""

    channels: int | None = None
    axis: int = 1

    def _make(self, channels: int) -> None:
        raise NotImplementedError

    def build(self, channels: int, axis: int = 1) -> None:
        if self.channels is not None and self.channels != channels:
            raise ConfigError(f"this {type(self).__name__} was built for {self.channels} channels "
                              f"and cannot serve a layer with {channels}; give each layer its own "
                              f"quantizer (pass a name instead of an instance)")
        if self.channels is None:
            self.channels = int(channels)
            self._make(self.channels)
        self.axis = axis

    def _require_built(self, x=None) -> None:
        """Raise a clear error when the channel count is unknown, or (given the input ``x``)
        does not match the input."""
        if self.channels is None:
            raise ConfigError(f"{type(self).__name__} has per-channel parameters but does not know "
                              f"the channel count: pass channels=C when creating it, or use it "
                              f"inside a binary layer (which calls build())")
        if x is not None:
            _check_channels(self, x, self.channels, self.axis)


def _check_channels(quantizer, x, channels, axis):
    if x.ndim == 0 or x.shape[axis] != channels:
        raise ShapeError(f"{type(quantizer).__name__} was built for {channels} channels on axis "
                         f"{axis}, but the input has shape {tuple(x.shape)}")


@register("rsign", kind="activation")
class RSign(_PerChannel, Quantizer):
    """ReActNet's RSign (learnable threshold).

    forward:  y = sign(x + b), b learnable, one per channel (init 0)
    backward: dx = dy · max(0, 2 − 2|x + b|) (ApproxSign), or dy · 1[|x + b| <= clip] when
              ``clip`` is given;  db = Σ_{N, H, W} dx
    parameters: channels = None (set by the layer through ``build``), axis = 1 (channel axis of
              the input; −1 for (..., C) features), clip = None (BNext: ``RSign(clip=1.5)``).
    Source: Liu et al. 2020, "ReActNet", Sec. 3 (RSign; the paper writes sign(x − α), we learn
    b = −α), with Bi-Real's ApproxSign as backward as in the ReActNet code; BNext (Guo et al.
    2022) keeps the learnable bias with a clipped STE on [−1.5, 1.5].
    """

    summary = "sign(x + b), b per channel; dx = dy·max(0, 2 − 2|x + b|), db = Σ dx"

    def __init__(self, channels: int | None = None, axis: int = 1, clip: float | None = None):
        super().__init__()
        self.clip = None if clip is None else _check_positive("rsign clip", clip)
        if channels is not None:
            self.build(channels, axis)
        self.axis = axis

    def _make(self, channels):
        self.b = Parameter(np.zeros(channels, dtype=np.float32))

    def forward(self, x):
        self._require_built(x)
        return RSignFn.apply(x, self.b, axis=self.axis, clip=self.clip)

    def extra_repr(self):
        return f"channels={self.channels}, axis={self.axis}, clip={self.clip}"


# =============================================================================================
# Heaviside {0, 1}
# =============================================================================================


class HeavisideSTE(Function):
    """The {0, 1} step with a clipped STE (Larq's ``ste_heaviside``).

    forward:  y = 1[x >= 0]          (H(0) = 1, consistent with sign(0) = +1: H = (sign + 1)/2)
    backward: dx = dy · 1[|x| <= clip]
    """

    @staticmethod
    def forward(ctx, x, clip=1.0):
        xp = get_array_module(x)
        ctx.save_for_backward(xp.abs(x) <= clip)
        return (x >= 0).astype(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside


def heaviside(x: Tensor, clip: float = 1.0) -> Tensor:
    """1[x >= 0] forward, dy·1[|x| <= clip] backward (see :class:`HeavisideSTE`)."""
    return HeavisideSTE.apply(x, clip=clip)


@register("heaviside", kind="activation")
class Heaviside(Quantizer):
    """Heaviside step with a clipped STE: {0, 1} activations (``levels = "01"``).

    forward:  y = 1[x >= 0]          (H(0) = 1; Larq's ``ste_heaviside`` gives 0 there)
    backward: dx = dy · 1[|x| <= clip]
    parameters: clip = 1.0.
    Source: Larq ``ste_heaviside``; the {0, 1} activations of BiBERT/BiT-style attention.
    """

    summary = "1[x >= 0] ∈ {0, 1}; dx = dy·1[|x| <= 1]"
    levels = "01"

    def __init__(self, clip: float = 1.0):
        super().__init__()
        self.clip = _check_positive("heaviside clip", clip)

    def forward(self, x):
        return HeavisideSTE.apply(x, clip=self.clip)

    def extra_repr(self):
        return f"clip={self.clip}"


# =============================================================================================
# Elastic binarizer (BiT), with GSB's gradients
# =============================================================================================

ALPHA_GRAD_MODES = ("mean", "lsq", "sum")


class ElasticBinarize(Function):
    """BiT's elastic binarizer with a learnable scale α and shift b (Liu et al. 2022, "BiT",
    elastic binarization function; gradients of α as re-derived by GSB, Gao et al., Eq. 28–29).

    Shapes: x any, α (1,), b (1,) or (C,) broadcast along ``axis``. Let u = (x + b)/α.

    signed (mixed-sign inputs):
        forward:  y = α·sign(u)                             (= α·sign(x + b) for α > 0)
        backward: dx = dy · 1[|u| <= 1];   db = Σ dx (per channel)
                  dα = R(dy · D),  D = sign(u) − u where |u| <= 1, else sign(u)
    unsigned (non-negative inputs: after softmax/ReLU/GELU):
        forward:  y = α·q,  q = clip(round(u), 0, 1)        (= α·1[u > 0.5], round half to even)
        backward: dx = dy · 1[0 <= u <= 1];  db = Σ dx (per channel)
                  dα = R(dy · D),  D = q − u where 0 <= u <= 1, else q

    R reduces over all elements: "mean" (GSB Eq. 28: Σ/N), "lsq" (BiT/LSQ: Σ/√(N·Q_p), Q_p = 1)
    or "sum" (the plain chain rule). D is the LSQ-style surrogate of ∂y/∂α; the exact derivative
    of the forward would be sign(u) (or q) alone.
    """

    @staticmethod
    def forward(ctx, x, alpha, b, signed=True, axis=None, alpha_grad="mean"):
        xp = get_array_module(x)
        b_view = b.reshape(channel_shape(x.ndim, axis, b.size)) if axis is not None else b
        a = alpha.reshape(())
        u = (x + b_view) / a
        if signed:
            q = sign(u)
            inside = xp.abs(u) <= 1
        else:
            q = xp.clip(xp.round(u), 0, 1)
            inside = (u >= 0) & (u <= 1)
        ctx.save_for_backward(u, q, inside)
        ctx.axis, ctx.alpha_grad = axis, alpha_grad
        ctx.alpha_shape, ctx.b_shape = alpha.shape, b.shape
        return a * q

    @staticmethod
    def backward(ctx, grad):
        u, q, inside = ctx.saved_tensors
        xp = get_array_module(grad)
        gx = grad * inside
        galpha = gb = None
        if ctx.needs_input_grad[1]:
            d = xp.where(inside, q - u, q)
            total = (grad * d).sum()
            n = grad.size
            scale = {"mean": 1.0 / n, "lsq": 1.0 / math.sqrt(n), "sum": 1.0}[ctx.alpha_grad]
            galpha = (total * scale).reshape(ctx.alpha_shape)
        if ctx.needs_input_grad[2]:
            gb = reduce_to_channels(gx, ctx.axis).reshape(ctx.b_shape)
        return (gx if ctx.needs_input_grad[0] else None), galpha, gb


def elastic_binarize(x: Tensor, alpha, b, signed: bool = True, axis: int | None = None,
                     alpha_grad: str = "mean") -> Tensor:
    """α·sign((x + b)/α) (signed) or α·clip(round((x + b)/α), 0, 1) (unsigned) with BiT/GSB
    gradients (see :class:`ElasticBinarize`). ``b`` is one value, or one per channel along
    ``axis``."""
    if alpha_grad not in ALPHA_GRAD_MODES:
        raise ConfigError(f"unknown alpha_grad {alpha_grad!r}; use one of {ALPHA_GRAD_MODES}")
    return ElasticBinarize.apply(x, alpha, b, signed=signed, axis=axis, alpha_grad=alpha_grad)


@register("elastic", kind="activation")
class Elastic(Quantizer):
    """BiT's elastic binarizer: learnable scale α and shift b.

    forward:  signed:   y = α·sign(x + b)
              unsigned: y = α·clip(round((x + b)/α), 0, 1) ∈ {0, α}
    backward: see :class:`ElasticBinarize` (dx windowed by 1[|u| <= 1] or 1[0 <= u <= 1],
              u = (x + b)/α; dα = R(dy·D) with GSB's D; db = Σ dx).
    parameters: signed = True; alpha_grad = "mean" (GSB Eq. 28), "lsq" (BiT) or "sum";
              channels = None: one shared b, or one b per channel once built by a layer (or given
              here); axis = 1 (channel axis for b).
    init:     b = 0; α is set from the first training batch: mean|x + b| (signed) or
              2·mean|x + b| (unsigned: the threshold α/2 starts at the mean), as LSQ/BiT do.
    Source: Liu et al. 2022, "BiT: Robustly Binarized Multi-distilled Transformer" (elastic
    binarization function);
    Gao et al., "GSB", Sec. III-A and Eq. 28–29 (gradient of the scale).
    """

    summary = ("α·sign(x + b) or α·clip(round((x + b)/α), 0, 1); dx = dy·1[u in window], "
               "dα = mean(dy·(q − u | q))")
    levels = "pm1"

    def __init__(self, signed: bool = True, alpha_grad: str = "mean",
                 channels: int | None = None, axis: int = 1):
        super().__init__()
        if alpha_grad not in ALPHA_GRAD_MODES:
            raise ConfigError(f"unknown alpha_grad {alpha_grad!r}; use one of {ALPHA_GRAD_MODES}")
        self.signed, self.alpha_grad = bool(signed), alpha_grad
        self.levels = "pm1" if self.signed else "01"
        self.alpha = Parameter(np.ones(1, dtype=np.float32))
        self.b = Parameter(np.zeros(1, dtype=np.float32))
        self.channels, self.axis = None, axis
        self.register_buffer("initialized", np.zeros((), dtype=np.int8))
        if channels is not None:
            self.build(channels, axis)

    def build(self, channels: int, axis: int = 1) -> None:
        if self.channels is not None and self.channels != channels:
            raise ConfigError(f"this Elastic quantizer was built for {self.channels} channels and "
                              f"cannot serve a layer with {channels}; pass a name instead")
        if self.channels is None:
            self.channels = int(channels)
            self.b = Parameter(np.zeros(self.channels, dtype=np.float32))
        self.axis = axis

    def forward(self, x):
        axis = self.axis if self.channels is not None else None
        if axis is not None:
            _check_channels(self, x, self.channels, axis)
        if self.training and not int(self.initialized):
            xp = get_array_module(x.data)
            b = self.b.data.reshape(channel_shape(x.ndim, axis, self.b.size)) if axis is not None \
                else self.b.data
            mean_abs = float(xp.abs(x.data + b).mean())
            self.alpha.data[...] = max(mean_abs, 1e-8) * (1.0 if self.signed else 2.0)
            self.set_buffer("initialized", np.ones((), dtype=np.int8))
        return ElasticBinarize.apply(x, self.alpha, self.b, signed=self.signed, axis=axis,
                                     alpha_grad=self.alpha_grad)

    def extra_repr(self):
        return f"signed={self.signed}, alpha_grad={self.alpha_grad!r}, channels={self.channels}"
