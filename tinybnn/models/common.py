"""Parts shared by the CNN models: precision variants, shortcuts, initialisation.

Precision variants
------------------
Every CNN in the zoo comes in three precisions, chosen with ``variant``:

=========  ==========================================  =====================================
variant    hidden convolutions                         names in the papers
=========  ==========================================  =====================================
``w1a1``   binary weights and binary activations       1/1, W1A1, "binary", BNN
``w1a32``  binary weights, real-valued activations     1/32, W1A32, BWN, BinaryConnect
``fp``     real weights and activations                32/32, "real-valued", full precision
=========  ==========================================  =====================================

The first convolution (which sees the image) and the classifier stay real-valued in every variant
unless a model offers an option to binarize them: this is what all the papers compared in the
recipes do. The estimators (which surrogate gradient, which weight binarizer) are chosen
separately for the two roles, by their names in :mod:`tinybnn.quant`::

    resnet20(variant="w1a1", input_quantizer="approx_sign", weight_quantizer="magnitude_aware")

:class:`Binarization` bundles these choices and builds the hidden layers accordingly.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .. import nn
from ..autograd import Function
from ..backend import get_array_module
from ..errors import ConfigError
from ..nn import init
from ..nn.module import Module
from ..quant.base import make_quantizer

VARIANTS = ("w1a1", "w1a32", "fp")

#: the value of ``input_quantizer``/``weight_quantizer`` that means "the variant's default":
#: ``"ste_sign"`` (BNN's clipped STE) where the variant binarizes, nothing where it does not
AUTO = "auto"


@dataclass(frozen=True)
class Binarization:
    """How the hidden layers of a model are quantized.

    Attributes:
        variant: ``"w1a1"``, ``"w1a32"`` or ``"fp"`` (see the module docstring).
        input_quantizer: quantizer of the activations entering each binary layer: a name from
            :mod:`tinybnn.quant`, a dict ``{"name": ..., **options}`` (e.g.
            ``{"name": "dorefa_act", "bits": 1}``), a Quantizer class or instance; ``None`` for
            real inputs.
        weight_quantizer: quantizer of the latent weights, same kinds.
        scale: per-output-channel scaling of the binary layers: None, ``"mean_abs"`` or
            ``"learnable"``.
        pad_value: the value the binary convolutions pad their (binarized) input with: 0, +1
            or −1.
    """

    variant: str = "w1a1"
    input_quantizer: Any = "ste_sign"
    weight_quantizer: Any = "ste_sign"
    scale: Any = None
    pad_value: float = 0.0

    @property
    def binary(self) -> bool:
        return self.variant != "fp"

    def conv(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
             padding: int = 0, rng=None) -> Module:
        """A hidden convolution of this precision, without bias (a batch norm follows)."""
        if not self.binary:
            return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                             padding=padding, bias=False, rng=rng)
        return nn.BinaryConv2d(in_channels, out_channels, kernel_size, stride=stride,
                               padding=padding, pad_value=self.pad_value, bias=False,
                               input_quantizer=_fresh(self.input_quantizer),
                               weight_quantizer=_fresh(self.weight_quantizer),
                               scale=self.scale, rng=rng)

    def linear(self, in_features: int, out_features: int, bias: bool = True, rng=None) -> Module:
        """A fully connected layer of this precision."""
        if not self.binary:
            return nn.Linear(in_features, out_features, bias=bias, rng=rng)
        return nn.BinaryLinear(in_features, out_features, bias=bias,
                               input_quantizer=_fresh(self.input_quantizer),
                               weight_quantizer=_fresh(self.weight_quantizer),
                               scale=self.scale, rng=rng)


def _fresh(spec):
    """Each layer gets its own quantizer: names and classes are built by the layer; a dict
    ``{"name": ..., **options}`` is built here with its options; an instance is copied, so that
    learnable quantizers never share their parameters by accident."""
    if isinstance(spec, Module):
        return copy.deepcopy(spec)
    if isinstance(spec, Mapping):
        options = dict(spec)
        if "name" not in options:
            raise ConfigError(f"a quantizer given as a dict needs a 'name' entry, got {spec!r}")
        return make_quantizer(options.pop("name"), **options)
    return spec


def make_binarization(variant: str = "w1a1", input_quantizer=AUTO, weight_quantizer=AUTO,
                      scale=None, pad_value: float = 0.0) -> Binarization:
    """Check the options of a model builder and resolve :data:`AUTO`.

    ``w1a1``: both quantizers default to ``"ste_sign"``. ``w1a32``: the weights default to
    ``"ste_sign"``; the activations are never quantized (an input quantizer other than
    ``None``/``"auto"`` is an error). ``fp``: giving a quantizer, a scale or a pad value is an
    error, since nothing is binarized.
    """
    if variant not in VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}; use 'w1a1' (binary weights and "
                          f"activations), 'w1a32' (binary weights) or 'fp' (full precision)")
    if pad_value not in (0, 0.0, 1, 1.0, -1, -1.0):
        raise ConfigError(f"pad_value must be 0, +1 or -1, got {pad_value!r}")
    if variant == "fp":
        given = [n for n, v in (("input_quantizer", input_quantizer),
                                ("weight_quantizer", weight_quantizer)) if v not in (AUTO, None)]
        if given or scale is not None or pad_value != 0:
            what = ", ".join(given + (["scale"] if scale is not None else [])
                             + (["pad_value"] if pad_value != 0 else []))
            raise ConfigError(f"variant 'fp' binarizes nothing, so {what} has no effect; drop "
                              f"it or use variant 'w1a1'/'w1a32'")
        return Binarization("fp", None, None, None, 0.0)
    weight = "ste_sign" if weight_quantizer == AUTO else weight_quantizer
    if variant == "w1a32":
        if input_quantizer not in (AUTO, None):
            raise ConfigError(f"variant 'w1a32' keeps activations real-valued, but "
                              f"input_quantizer={input_quantizer!r} was given; use variant "
                              f"'w1a1' to binarize activations")
        return Binarization("w1a32", None, weight, scale, float(pad_value))
    activation = "ste_sign" if input_quantizer == AUTO else input_quantizer
    return Binarization("w1a1", activation, weight, scale, float(pad_value))


def activation(name: str) -> Module:
    """``"relu"`` or ``"hardtanh"`` as a layer (a new instance each call)."""
    if name == "relu":
        return nn.ReLU()
    if name == "hardtanh":
        return nn.Hardtanh()
    raise ConfigError(f"unknown activation {name!r}; use 'relu' or 'hardtanh'")


# ---------------------------------------------------------------------------------------------
# Shortcuts
# ---------------------------------------------------------------------------------------------


class PadChannels(Function):
    """Append zero channels: (N, C, H, W) -> (N, before + C + after, H, W).

    forward:  y[:, before:before + C] = x, zeros elsewhere
    backward: dx = dy[:, before:before + C]   (the zeros depend on nothing)
    """

    @staticmethod
    def forward(ctx, x, before=0, after=0):
        xp = get_array_module(x)
        n, c, *spatial = x.shape
        y = xp.zeros((n, before + c + after, *spatial), dtype=x.dtype)
        y[:, before:before + c] = x
        ctx.window = (before, before + c)
        return y

    @staticmethod
    def backward(ctx, grad):
        start, stop = ctx.window
        return grad[:, start:stop]


class ZeroPadChannels(Module):
    """Widen a feature map with zero channels, half before and half after (the parameter-free
    "option A" shortcut of He et al. 2016, Sec. 4.2).

    Shapes: x (N, in_channels, H, W) -> (N, out_channels, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        if out_channels < in_channels:
            raise ConfigError(f"ZeroPadChannels can only add channels, got {in_channels} -> "
                              f"{out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        extra = out_channels - in_channels
        self.before, self.after = extra // 2, extra - extra // 2

    def forward(self, x):
        if x.shape[1] != self.in_channels:
            raise ConfigError(f"ZeroPadChannels expects {self.in_channels} channels, got input "
                              f"of shape {x.shape}")
        return PadChannels.apply(x, before=self.before, after=self.after)

    def extra_repr(self):
        return f"{self.in_channels} -> {self.out_channels}"


class Subsample(Module):
    """Keep every ``stride``-th pixel: (N, C, H, W) -> (N, C, ⌈H/s⌉, ⌈W/s⌉) (He et al.'s option A
    downsampling, ``x[:, :, ::s, ::s]``)."""

    def __init__(self, stride: int = 2):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        s = self.stride
        return x[:, :, ::s, ::s]

    def extra_repr(self):
        return f"stride={self.stride}"


SHORTCUTS = ("avgpool", "subsample", "conv", "avgpool_conv")


def shortcut(in_channels: int, out_channels: int, stride: int, kind: str, rng=None) -> Module:
    """The shortcut of a residual unit from (N, in, H, W) to (N, out, H/stride, W/stride).

    When neither the size nor the width changes it is the identity. Otherwise ``kind`` says how:

    - ``"avgpool"``: AvgPool2d(stride) then zero channel padding (parameter-free; IR-Net/ReCU's
      binary ResNet-20);
    - ``"subsample"``: keep every stride-th pixel, then zero channel padding (He et al.'s
      option A, the standard CIFAR ResNet-20);
    - ``"conv"``: a real 1×1 convolution with that stride, then BN (He et al.'s option B, the
      standard ResNet-18);
    - ``"avgpool_conv"``: AvgPool2d(stride), a real 1×1 convolution, BN (Bi-Real Net, ReActNet,
      BNext: the downsampling shortcut of binary ResNet-18s).
    """
    if kind not in SHORTCUTS:
        raise ConfigError(f"unknown shortcut {kind!r}; use one of {', '.join(SHORTCUTS)}")
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if kind in ("avgpool", "subsample"):
        layers = []
        if stride != 1:
            layers.append(nn.AvgPool2d(stride) if kind == "avgpool" else Subsample(stride))
        if out_channels != in_channels:
            layers.append(ZeroPadChannels(in_channels, out_channels))
        return nn.Sequential(*layers)
    conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride if kind == "conv" else 1,
                     bias=False, rng=rng)
    layers = [conv, nn.BatchNorm2d(out_channels)]
    if kind == "avgpool_conv" and stride != 1:
        layers.insert(0, nn.AvgPool2d(stride))
    return nn.Sequential(*layers)


class GlobalAvgPool(Module):
    """Average over the spatial axes: (N, C, H, W) -> (N, C)."""

    def forward(self, x):
        return x.mean(axis=(2, 3))


# ---------------------------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------------------------


def kaiming_normal_(model: Module, rng=None) -> Module:
    """Re-initialise every convolution and linear weight (latent binary weights included) from
    N(0, 2/fan_in) (He et al. 2015), as the CIFAR ResNets of He et al., IR-Net and ReCU do.

    Biases keep their initialisation; batch norms keep γ = 1, β = 0. A learnable per-channel scale
    α of a binary layer is reset to mean|W| of the new weights (as the layer itself would).
    """
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if weight is None or weight.ndim not in (2, 4):
            continue
        weight.data[...] = init.kaiming_normal(weight.shape, rng=rng)
        alpha = getattr(module, "alpha", None)
        if getattr(module, "scale", None) == "learnable" and alpha is not None:
            per_channel = np.abs(weight.data).reshape(weight.shape[0], -1).mean(axis=1)
            alpha.data[...] = per_channel.reshape(alpha.shape)
    return model


def flat_features(channels: int, height: int, width: int, pools: int) -> int:
    """Features after ``pools`` 2×2 max pools (floor division) and flattening."""
    for _ in range(pools):
        height, width = height // 2, width // 2
    if height < 1 or width < 1:
        raise ConfigError(f"the input is too small for {pools} 2x2 poolings")
    return channels * height * width
