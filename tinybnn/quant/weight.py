"""Weight binarizers: a latent real weight W (out, ...) in, its binary version (scales included,
broadcast over every axis but the first) out, with the surrogate gradient of each method.

A binary layer calls its weight quantizer on the latent weight and uses the result in place of W::

    w_b = XnorWeightQuantizer()(layer.weight)     # α·sign(W), same shape as W

Per-output-channel statistics ("per filter") are taken over every axis but axis 0: over (in, kh, kw)
for a convolution, over (in,) for a linear layer. sign(0) = +1 throughout. In the formulas, dy is
∂L/∂(quantized weight) and dW = ∂L/∂W.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Function, Tensor
from ..backend import get_array_module
from ..errors import ConfigError
from ..functional import math as M
from ..nn.module import Parameter
from .activation import EDESign, _check_positive, _EDESchedule, _PerChannel
from .base import Quantizer, channel_shape, register
from .sign import SignSTE, sign


def _filter_axes(w) -> tuple[int, ...]:
    """The axes of one output channel's weights: all but axis 0."""
    return tuple(range(1, w.ndim))


def mean_abs_per_channel(w):
    """α = mean|W| over each output channel, shape (out, 1, ...) so it broadcasts over W."""
    xp = get_array_module(w)
    return xp.abs(w).mean(axis=_filter_axes(w), keepdims=True) if w.ndim > 1 else xp.abs(w)


# =============================================================================================
# XNOR-Net and Bi-Real Net: α·sign(W) with α = mean|W| per output channel
# =============================================================================================


class XnorSign(Function):
    """XNOR-Net's scaled sign (Rastegari et al. 2016, Sec. 3.1) with α treated as a constant.

    Shapes: w (out, ...) -> y (out, ...).
    forward:  y = α ⊙ sign(w),  α_o = mean|w_o| over output channel o (no gradient through α)
    backward: dw = dy · 1[|w| <= clip]   (clipped STE straight through the whole α·sign(w);
              the ReActNet/Bi-Real code trains XNOR-style weights this way)
    """

    @staticmethod
    def forward(ctx, w, clip=1.0):
        xp = get_array_module(w)
        ctx.save_for_backward(xp.abs(w) <= clip)
        return mean_abs_per_channel(w) * sign(w)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside


def xnor_weight(w: Tensor, clip: float = 1.0) -> Tensor:
    """mean|W|·sign(W) per output channel, dy·1[|W| <= clip] backward (see :class:`XnorSign`)."""
    return XnorSign.apply(w, clip=clip)


@register("xnor", kind="weight")
class XnorWeightQuantizer(Quantizer):
    """XNOR-Net weights: per-output-channel mean|W| scale, detached.

    forward:  y = α ⊙ sign(W),  α_o = mean|W_o| (a constant for the backward)
    backward: dW = dy · 1[|W| <= clip]
    parameters: clip = 1.0.
    Source: Rastegari et al. 2016, "XNOR-Net", Sec. 3.1 (α* = ‖W‖₁/n); DoReFa-Net's
    1-bit weights use the same forward with one α per layer.
    """

    summary = "mean|W|·sign(W) per out channel (α detached); dW = dy·1[|W| <= 1]"

    def __init__(self, clip: float = 1.0):
        super().__init__()
        self.clip = _check_positive("xnor clip", clip)

    def forward(self, w):
        return XnorSign.apply(w, clip=self.clip)

    def extra_repr(self):
        return f"clip={self.clip}"


class MagnitudeAwareSign(Function):
    """Bi-Real Net's magnitude-aware weight sign (Liu et al. 2018).

    Shapes: w (out, ...) -> y (out, ...).
    forward:  y = stop_grad(α) ⊙ sign(w),  α_o = mean|w_o|
    backward: dw = dy · α · 1[|w| <= 1]   (the chain rule through the constant α and the clipped
              STE of sign: the update of W is scaled by the magnitude of its filter)
    """

    @staticmethod
    def forward(ctx, w, clip=1.0):
        xp = get_array_module(w)
        alpha = mean_abs_per_channel(w)
        ctx.save_for_backward(alpha * (xp.abs(w) <= clip))
        return alpha * sign(w)

    @staticmethod
    def backward(ctx, grad):
        (alpha_inside,) = ctx.saved_tensors
        return grad * alpha_inside


def magnitude_aware_sign(w: Tensor, clip: float = 1.0) -> Tensor:
    """stop_grad(mean|W|)·sign(W), dy·α·1[|W| <= clip] backward (see
    :class:`MagnitudeAwareSign`)."""
    return MagnitudeAwareSign.apply(w, clip=clip)


@register("magnitude_aware", kind="weight")
class MagnitudeAware(Quantizer):
    """Bi-Real Net's magnitude-aware sign.

    forward:  y = stop_grad(α) ⊙ sign(W),  α_o = mean|W_o|
    backward: dW = dy · α · 1[|W| <= clip]
    parameters: clip = 1.0.
    Source: Liu et al. 2018, "Bi-Real Net", Sec. 3 (magnitude-aware gradient with respect to
    weights); Larq's ``magnitude_aware_sign``.
    """

    summary = "stop_grad(mean|W|)·sign(W); dW = dy·α·1[|W| <= 1]"

    def __init__(self, clip: float = 1.0):
        super().__init__()
        self.clip = _check_positive("magnitude_aware clip", clip)

    def forward(self, w):
        return MagnitudeAwareSign.apply(w, clip=self.clip)

    def extra_repr(self):
        return f"clip={self.clip}"


# =============================================================================================
# Per-filter standardization (IR-Net, ReCU)
# =============================================================================================


class Standardize(Function):
    """y = gain · (w − μ_o) / σ_o per output channel o, σ_o = √(var_o + eps), var unbiased
    (divisor M − 1, M = weights per channel), as ``torch.std``/``torch.var`` in the IR-Net and ReCU
    code.

    Shapes: w (out, ...) -> y (out, ...).
    backward (z = (w − μ)/σ, gz = gain·dy, sums and means within the channel):
        dw = (gz − mean(gz) − z · Σ(gz·z)/(M − 1)) / σ
    """

    @staticmethod
    def forward(ctx, w, eps=1e-12, gain=1.0):
        axes = _filter_axes(w)
        m = int(np.prod(w.shape[1:]))
        if m < 2:
            raise ConfigError(f"standardizing a weight per output channel needs at least 2 "
                              f"weights per channel, got weight shape {w.shape}")
        xp = get_array_module(w)
        centred = w - w.mean(axis=axes, keepdims=True)
        sigma = xp.sqrt((centred ** 2).sum(axis=axes, keepdims=True) / (m - 1) + eps)
        z = centred / sigma
        ctx.save_for_backward(z, sigma)
        ctx.m, ctx.gain = m, gain
        return gain * z

    @staticmethod
    def backward(ctx, grad):
        z, sigma = ctx.saved_tensors
        axes = _filter_axes(z)
        gz = ctx.gain * grad
        return (gz - gz.mean(axis=axes, keepdims=True)
                - z * (gz * z).sum(axis=axes, keepdims=True) / (ctx.m - 1)) / sigma


def standardize(w: Tensor, eps: float = 1e-12, gain: float = 1.0) -> Tensor:
    """gain·(w − mean)/√(var + eps) per output channel (see :class:`Standardize`)."""
    return Standardize.apply(w, eps=eps, gain=gain)


# =============================================================================================
# IR-Net Libra-PB
# =============================================================================================


def power_of_two_scale(w_hat):
    """IR-Net's shift scale per output channel: 2^round(log2(mean|ŵ_o|)), shape (out, 1, ...)."""
    xp = get_array_module(w_hat)
    return 2.0 ** xp.round(xp.log2(xp.maximum(mean_abs_per_channel(w_hat), 1e-30)))


def irnet_weight(w: Tensor, t: float = 0.1, k: float = 10.0) -> Tensor:
    """IR-Net's Libra-PB weight (see :class:`IrnetWeight`): standardize per filter, sign with
    EDE's backward (t, k), times the detached power-of-two scale."""
    w_hat = Standardize.apply(w)
    scale = power_of_two_scale(w_hat.data).astype(w_hat.dtype)
    return EDESign.apply(w_hat, t=t, k=k) * scale


@register("irnet_weight", kind="weight")
class IrnetWeight(_EDESchedule, Quantizer):
    """IR-Net's Libra Parameter Binarization with the Error Decay Estimator.

    forward:  Ŵ = (W − mean)/std per output channel (unbiased std: maximizes the entropy of the
              binary weights and minimizes the quantization error);
              y = s ⊙ sign(Ŵ),  s_o = 2^round(log2(mean|Ŵ_o|)) (a bit shift; no gradient)
    backward: dŴ = dy · s · k·t·(1 − tanh²(t·Ŵ))  (EDE), then through the standardization
              (:class:`Standardize`)
    schedule: EDE's t = T_min·10^((e/E)·log10(T_max/T_min)), k = max(1/t, 1) via ``set_progress``.
    parameters: t_min = 0.1, t_max = 10.0.
    Source: Qin et al. 2020, "IR-Net", Sec. 3 (Libra Parameter Binarization, Error Decay
    Estimator), and the shift scale and unbiased std of the authors' code.
    """

    summary = ("2^round(log2 mean|Ŵ|)·sign(Ŵ), Ŵ = standardized W per filter; EDE backward, "
               "t: 0.1 → 10")

    def __init__(self, t_min: float = 0.1, t_max: float = 10.0):
        super().__init__()
        self._init_ede(t_min, t_max)

    def forward(self, w):
        return irnet_weight(w, t=float(self.t), k=float(self.k))

    def extra_repr(self):
        return f"t={float(self.t):.4g}, k={float(self.k):.4g}"


# =============================================================================================
# ReCU
# =============================================================================================

RECU_GAIN = 2 * math.sqrt(2)


def recu_tau(epoch: int, epochs: int, tau_min: float = 0.85, tau_max: float = 0.99) -> float:
    """ReCU's exponential schedule of τ at ``epoch`` of ``epochs``:

        τ = A·e^(epoch/epochs) + B,   A = (τ_max − τ_min)/(e − 1),   B = τ_min − A,

    so τ = τ_min at epoch 0 and τ_max at epoch = epochs.
    """
    if epochs <= 0:
        raise ConfigError(f"epochs must be positive, got {epochs}")
    a = (tau_max - tau_min) / (math.e - 1)
    return a * math.exp(epoch / epochs) + (tau_min - a)


def recu_weight(w: Tensor, alpha, tau: float = 0.85, eps: float = 1e-5) -> Tensor:
    """ReCU's weight (see :class:`RecuWeight`): standardize with the 2√2 gain, clamp to ±Q_τ,
    sign with the identity STE, times α per output channel (``alpha`` of shape (out,))."""
    w1 = Standardize.apply(w, eps=eps, gain=RECU_GAIN)
    q_tau = -float(get_array_module(w1.data).abs(w1.data).mean()) * math.log(2 - 2 * tau)
    w2 = M.Clip.apply(w1, low=-q_tau, high=q_tau)
    binary = SignSTE.apply(w2, clip=math.inf)
    return binary * alpha.reshape(channel_shape(w.ndim, 0, alpha.size))


@register("recu_weight", kind="weight")
class RecuWeight(_PerChannel, Quantizer):
    """ReCU: rectified clamp unit on standardized weights, learnable α per output channel.

    forward:  w1 = (W − mean)/(√(var + 1e-5)/(2√2)) per output channel (unbiased var);
              Q_τ = −mean|w1|·ln(2 − 2τ) (over the whole tensor, no gradient);
              w2 = clamp(w1, −Q_τ, Q_τ);  y = α ⊙ sign(w2)
    backward: dα_o = Σ_{W_o} dy·sign(w2);  dw2 = α·dy (identity STE);
              dw1 = dw2 · 1[|w1| <= Q_τ] (the clamp); then through the standardization.
    schedule: τ = A·e^(e/E) + B, A = (τ_max − τ_min)/(e − 1), B = τ_min − A (τ 0.85 → 0.99),
              via ``set_progress``; before the first call τ = τ_min.
    parameters: tau_min = 0.85, tau_max = 0.99, eps = 1e-5; channels = None (set by the layer).
    init:     α = 1 (the reference code draws U(0, 1); a batch norm follows every ReCU conv).
    Source: Xu et al. 2021, "ReCU: Reviving the Dead Weights in Binary Neural Networks",
    the rectified clamp unit, the weight standardization and the exponential τ schedule (all three
    as in the authors' code).
    """

    summary = ("α·sign(clamp(2√2·(W − μ)/σ, ±Q_τ)), Q_τ = −mean|w1|·ln(2 − 2τ), τ 0.85 → 0.99; "
               "identity STE")

    def __init__(self, tau_min: float = 0.85, tau_max: float = 0.99, eps: float = 1e-5,
                 channels: int | None = None):
        super().__init__()
        if not 0 < tau_min <= tau_max < 1:
            raise ConfigError(f"ReCU needs 0 < tau_min <= tau_max < 1, got {tau_min}, {tau_max}")
        self.tau_min, self.tau_max = float(tau_min), float(tau_max)
        self.eps = _check_positive("recu_weight eps", eps)
        self.register_buffer("tau", np.asarray(self.tau_min, dtype=np.float64))
        if channels is not None:
            self.build(channels, 0)

    def _make(self, channels):
        self.alpha = Parameter(np.ones(channels, dtype=np.float32))

    def set_progress(self, epoch: int, epochs: int) -> None:
        tau = recu_tau(epoch, epochs, self.tau_min, self.tau_max)
        self.set_buffer("tau", np.asarray(tau, dtype=np.float64))

    def forward(self, w):
        self._require_built(w)
        return recu_weight(w, self.alpha, tau=float(self.tau), eps=self.eps)

    def extra_repr(self):
        return f"tau={float(self.tau):.4f}, channels={self.channels}"


# =============================================================================================
# Progressive binarization (BNext)
# =============================================================================================


class ProgressiveSign(Function):
    """BNext's progressive binarization with temperature T.

    forward:  y = clip(w/T, −1, 1) while T >= threshold; y = sign(w) once T < threshold
    backward: dw = dy  (identity)
    """

    @staticmethod
    def forward(ctx, w, temperature=1.0, threshold=1e-7):
        if temperature < threshold:
            return sign(w)
        return get_array_module(w).clip(w / temperature, -1, 1)

    @staticmethod
    def backward(ctx, grad):
        return grad


def progressive_sign(w: Tensor, temperature: float = 1.0, threshold: float = 1e-7) -> Tensor:
    """clip(w/T, −1, 1) (sign(w) once T < threshold), identity backward (see
    :class:`ProgressiveSign`)."""
    return ProgressiveSign.apply(w, temperature=temperature, threshold=threshold)


@register("progressive", kind="weight")
class Progressive(Quantizer):
    """BNext's progressive weight binarization.

    forward:  in training, first clamp the latent weight in place to [−clamp, clamp];
              y = clip(W/T, −1, 1), and y = sign(W) once T < 1e-7
    backward: dW = dy (identity)
    schedule: T = t0·decay^e at epoch e (T ← decay·T each epoch), via ``set_progress``.
    parameters: t0 = 1.0, decay = 0.9, clamp = 1.5, threshold = 1e-7.
    Source: Guo et al. 2022, "Join the High Accuracy Club on ImageNet with a Binary Neural Network
    Ticket" (BNext), Sec. 5.1 ("progressive weight binarization") and the authors' code.
    """

    summary = "clip(W/T, −1, 1), T = 0.9^epoch, sign once T < 1e-7; latent clamped to ±1.5; dW = dy"

    def __init__(self, t0: float = 1.0, decay: float = 0.9, clamp: float = 1.5,
                 threshold: float = 1e-7):
        super().__init__()
        self.t0 = _check_positive("progressive t0", t0)
        if not 0 < decay <= 1:
            raise ConfigError(f"progressive decay must be in (0, 1], got {decay}")
        self.decay = float(decay)
        self.clamp = _check_positive("progressive clamp", clamp)
        self.threshold = float(threshold)
        self.register_buffer("temperature", np.asarray(self.t0, dtype=np.float64))

    def set_progress(self, epoch: int, epochs: int) -> None:
        self.set_buffer("temperature", np.asarray(self.t0 * self.decay ** epoch, dtype=np.float64))

    def forward(self, w):
        if self.training and w.is_leaf:
            xp = get_array_module(w.data)
            xp.clip(w.data, -self.clamp, self.clamp, out=w.data)
        return ProgressiveSign.apply(w, temperature=float(self.temperature),
                                     threshold=self.threshold)

    def extra_repr(self):
        return f"temperature={float(self.temperature):.4g}"
