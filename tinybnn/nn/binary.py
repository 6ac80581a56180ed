"""Binary layers: real latent weights, binarized (with a surrogate gradient) in every forward.

A binary layer has two pluggable quantizers (see :mod:`tinybnn.quant`):
- ``input_quantizer`` binarizes the incoming activations (``None`` keeps them real: W1A32);
- ``weight_quantizer`` binarizes the latent weights (``None`` keeps them real).
Its latent weight is a :class:`Parameter` with ``binary=True`` (when the weight quantizer has one
bit) so Bop, the summary and the export know it is stored with one bit. Each layer exposes
``input_quantizer``, ``weight_quantizer``, ``scale`` (and for convolutions ``pad_value``) for the
model summary and the export.

Also here: the small real-valued layers that binary networks put around their binary layers —
:class:`RPReLU`, :class:`LearnableBias` and :class:`Scale` (ReActNet, BNext).
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..backend import get_array_module
from ..errors import ConfigError, ShapeError
from ..functional.conv import conv2d
from ..quant.base import channel_shape, make_quantizer
from . import init
from .module import Module, Parameter

SCALES = (None, "mean_abs", "learnable")
PAD_VALUES = (0.0, 1.0, -1.0)


def check_scale(scale):
    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}; use None, 'mean_abs' (XNOR-Net α = mean|W| "
                          f"per output channel) or 'learnable' (a trained α per output channel)")
    return scale


def output_scale(layer, weight_data):
    """The per-output-channel α of a binary layer, shape (out,), or None.

    "mean_abs": α = mean|W| over each output channel's weights, treated as a constant (XNOR-Net,
    Rastegari et al. 2016, Eq. 4); "learnable": the Parameter ``layer.alpha``.
    """
    if layer.scale == "mean_abs":
        xp = get_array_module(weight_data)
        return xp.abs(weight_data).reshape(weight_data.shape[0], -1).mean(axis=1)
    if layer.scale == "learnable":
        return layer.alpha
    return None


def check_pad_value(pad_value) -> float:
    """The padding value of a binary convolution: 0, +1 or −1 (ConfigError otherwise)."""
    try:
        value = float(pad_value)
    except (TypeError, ValueError):
        value = None
    if value not in PAD_VALUES or isinstance(pad_value, bool):
        raise ConfigError(f"pad_value must be 0, +1 or -1 (the value the binarized input is padded "
                          f"with), got {pad_value!r}")
    return value


def _name_of(quantizer):
    """A quantizer's registry name (or its class name, or None) for printing."""
    if quantizer is None:
        return None
    return getattr(quantizer, "registry_name", type(quantizer).__name__)


class _BinaryLayer(Module):
    """What BinaryLinear and BinaryConv2d share: the two quantizers, the output scale, the latent
    weight marked binary when its quantizer has one bit."""

    def _setup_binary(self, weight_shape, in_channels, input_axis, input_quantizer,
                      weight_quantizer, scale, bias, rng):
        self.input_quantizer = make_quantizer(input_quantizer)
        self.weight_quantizer = make_quantizer(weight_quantizer)
        wq = self.weight_quantizer
        one_bit = wq is not None and getattr(wq, "bits", 1) == 1
        self.weight = Parameter(init.kaiming_uniform(weight_shape, rng=rng), binary=one_bit)
        out_channels = weight_shape[0]
        self.bias = (Parameter(init.bias_uniform((out_channels,), weight_shape, rng))
                     if bias else None)
        # quantizers with per-channel parameters (rsign, recu_weight, lsq per channel) size them now
        if hasattr(self.input_quantizer, "build"):
            self.input_quantizer.build(in_channels, input_axis)
        if hasattr(self.weight_quantizer, "build"):
            self.weight_quantizer.build(out_channels, 0)
        self.scale = check_scale(scale)
        if scale == "learnable":
            alpha = mean_abs_per_out_channel(self.weight.data)
            self.alpha = Parameter(alpha.astype(np.float32))

    def quantized_input(self, x):
        return self.input_quantizer(x) if self.input_quantizer is not None else x

    def quantized_weight(self):
        if self.weight_quantizer is None:
            return self.weight
        return self.weight_quantizer(self.weight)

    def _quantizer_repr(self):
        return (f"input_quantizer={_name_of(self.input_quantizer)}, "
                f"weight_quantizer={_name_of(self.weight_quantizer)}, scale={self.scale}, "
                f"bias={self.bias is not None}")


def mean_abs_per_out_channel(weight_data):
    """mean|W| over each output channel: shape (out,)."""
    xp = get_array_module(weight_data)
    return xp.abs(weight_data).reshape(weight_data.shape[0], -1).mean(axis=1)


class BinaryLinear(_BinaryLayer):
    """y = α ⊙ (Q_x(x) Q_w(W)ᵀ) + b.

    Shapes: x (..., in_features) -> y (..., out_features); W (out, in) latent, α (out,).
    Defaults follow BNN (Hubara et al. 2016): ``ste_sign`` for both inputs and weights, no scale,
    no bias. ``scale`` is None, "mean_abs" or "learnable" (see :func:`output_scale`). Quantizers
    with per-channel parameters see the features on the last axis.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False,
                 input_quantizer="ste_sign", weight_quantizer="ste_sign", scale=None, rng=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._setup_binary((out_features, in_features), in_features, -1, input_quantizer,
                           weight_quantizer, scale, bias, rng)

    def forward(self, x):
        y = F.linear(self.quantized_input(x), self.quantized_weight())
        alpha = output_scale(self, self.weight.data)
        if alpha is not None:
            y = y * alpha
        if self.bias is not None:
            y = y + self.bias
        return y

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, {self._quantizer_repr()}"


class BinaryConv2d(_BinaryLayer):
    """y = α ⊙ conv2d(Q_x(x), Q_w(W), stride, padding filled with pad_value) + b.

    Shapes: x (N, in_channels, H, W) -> y (N, out_channels, OH, OW), OH = (H + 2p − k)//s + 1;
    W (out, in, kh, kw) latent, α (out,), b (out,).

    The input is quantized first and the *quantized* map is padded: ``pad_value`` is the value of
    the border, 0 (as a real convolution; the bit-packed kernels need a correction term for it),
    +1 or −1 (a pure ±1 input, as Larq Compute Engine and daBNN pad). Defaults follow BNN:
    ``ste_sign`` for inputs and weights, no scale, no bias.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size, stride, padding: int or (for H, for W) pair.
        pad_value: 0, +1 or −1.
        bias: add a learnable bias per output channel.
        input_quantizer, weight_quantizer: a name from ``tinybnn.quant.available()``, a Quantizer,
            or None (keep real values).
        scale: None, "mean_abs" (XNOR-Net α = mean|W| per output channel, not trained) or
            "learnable" (a trained α per output channel, initialised to mean|W|).
        rng: numpy Generator or seed for the initialisation (PyTorch's Conv2d default).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 pad_value=0.0, bias: bool = False, input_quantizer="ste_sign",
                 weight_quantizer="ste_sign", scale=None, rng=None):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ConfigError(f"BinaryConv2d needs kernel_size >= 1, stride >= 1, padding >= 0; "
                              f"got {self.kernel_size}, {self.stride}, {self.padding}")
        self.pad_value = check_pad_value(pad_value)
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self._setup_binary(shape, self.in_channels, 1, input_quantizer, weight_quantizer, scale,
                           bias, rng)

    def forward(self, x):
        y = conv2d(self.quantized_input(x), self.quantized_weight(), None, stride=self.stride,
                   padding=self.padding, pad_value=self.pad_value)
        alpha = output_scale(self, self.weight.data)
        if alpha is not None:
            y = y * alpha.reshape(1, -1, 1, 1)
        if self.bias is not None:
            y = y + self.bias.reshape(1, -1, 1, 1)
        return y

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, pad_value={self.pad_value:+g}, "
                f"{self._quantizer_repr()}")


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ConfigError(f"{name} must be an int or a pair of ints, got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


# =============================================================================================
# Real-valued companions of binary layers (ReActNet, BNext)
# =============================================================================================


class _ChannelLayer(Module):
    """Per-channel parameters broadcast along axis 1 of (N, C) or (N, C, H, W) inputs."""

    def _per_channel(self, param, x):
        if x.ndim < 2 or x.shape[1] != self.channels:
            raise ShapeError(f"{type(self).__name__}({self.channels}) expects input (N, "
                             f"{self.channels}, ...), got shape {tuple(x.shape)}")
        return param.reshape(channel_shape(x.ndim, 1, self.channels))

    def extra_repr(self):
        return f"{self.channels}"


class LearnableBias(_ChannelLayer):
    """ReActNet's "move": y = x + b, one learnable shift per channel (init 0).

    Shapes: x (N, C) or (N, C, H, W) -> y like x; b (C,).
    Source: Liu et al. 2020, "ReActNet" (the learnable shift before RSign and inside RPReLU).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.channels = int(channels)
        self.bias = Parameter(np.zeros(self.channels, dtype=np.float32))

    def forward(self, x):
        return x + self._per_channel(self.bias, x)


class Scale(_ChannelLayer):
    """y = x ⊙ s, one learnable multiplier per channel (init ``init_value`` = 1).

    Shapes: x (N, C) or (N, C, H, W) -> y like x; s (C,).
    """

    def __init__(self, channels: int, init_value: float = 1.0):
        super().__init__()
        self.channels = int(channels)
        self.weight = Parameter(np.full(self.channels, init_value, dtype=np.float32))

    def forward(self, x):
        return x * self._per_channel(self.weight, x)


class RPReLU(_ChannelLayer):
    """ReActNet's RPReLU: y = PReLU_β(x − γ) + ζ, every parameter per channel.

        y = x − γ + ζ        if x > γ
        y = β(x − γ) + ζ     otherwise

    Shapes: x (N, C) or (N, C, H, W) -> y like x; γ, β, ζ (C,). Init γ = ζ = 0, β = 0.25 (PReLU's
    default slope).
    Source: Liu et al. 2020, "ReActNet", Sec. 3 (RPReLU).
    """

    def __init__(self, channels: int, init_slope: float = 0.25):
        super().__init__()
        self.channels = int(channels)
        self.gamma = Parameter(np.zeros(self.channels, dtype=np.float32))
        self.beta = Parameter(np.full(self.channels, init_slope, dtype=np.float32))
        self.zeta = Parameter(np.zeros(self.channels, dtype=np.float32))

    def forward(self, x):
        shifted = x - self._per_channel(self.gamma, x)
        return F.prelu(shifted, self.beta) + self._per_channel(self.zeta, x)
