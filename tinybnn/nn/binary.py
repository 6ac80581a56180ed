"""Binary layers: real latent weights, binarized (with a surrogate gradient) in every forward.

A binary layer has two pluggable quantizers (see :mod:`tinybnn.quant`):
- ``input_quantizer`` binarizes the incoming activations (``None`` keeps them real: W1A32);
- ``weight_quantizer`` binarizes the latent weights (``None`` keeps them real).
Its latent weight is a :class:`Parameter` with ``binary=True`` so Bop, the summary and the export
know it is stored with one bit.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..backend import get_array_module
from ..errors import ConfigError
from ..quant.base import make_quantizer
from . import init
from .module import Module, Parameter

SCALES = (None, "mean_abs", "learnable")


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


class BinaryLinear(Module):
    """y = α ⊙ (Q_x(x) Q_w(W)ᵀ) + b.

    Shapes: x (N, in_features) -> y (N, out_features); W (out, in) latent, α (out,).
    Defaults follow BNN (Hubara et al. 2016): ``ste_sign`` for both inputs and weights, no scale,
    no bias. ``scale`` is None, "mean_abs" or "learnable" (see :func:`output_scale`).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False,
                 input_quantizer="ste_sign", weight_quantizer="ste_sign", scale=None, rng=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        shape = (out_features, in_features)
        self.weight = Parameter(init.kaiming_uniform(shape, rng=rng), binary=True)
        self.bias = Parameter(init.bias_uniform((out_features,), shape, rng)) if bias else None
        self.input_quantizer = make_quantizer(input_quantizer)
        self.weight_quantizer = make_quantizer(weight_quantizer)
        self.scale = check_scale(scale)
        if scale == "learnable":
            alpha = np.abs(self.weight.data).mean(axis=1)
            self.alpha = Parameter(alpha.astype(np.float32))

    def quantized_input(self, x):
        return self.input_quantizer(x) if self.input_quantizer is not None else x

    def quantized_weight(self):
        return self.weight_quantizer(self.weight) if self.weight_quantizer is not None else self.weight

    def forward(self, x):
        y = F.linear(self.quantized_input(x), self.quantized_weight())
        alpha = output_scale(self, self.weight.data)
        if alpha is not None:
            y = y * alpha
        if self.bias is not None:
            y = y + self.bias
        return y

    def extra_repr(self):
        return (f"{self.in_features}, {self.out_features}, input_quantizer="
                f"{getattr(self.input_quantizer, 'registry_name', self.input_quantizer)}, "
                f"weight_quantizer="
                f"{getattr(self.weight_quantizer, 'registry_name', self.weight_quantizer)}, "
                f"scale={self.scale}, bias={self.bias is not None}")
