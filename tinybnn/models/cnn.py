"""A small CNN for small images (the 8×8 digits, MNIST), binary or real-valued.

It is VGG-Small in miniature: a real first convolution, then binary convolutions each followed by
a 2×2 max-pool, and a real classifier behind a BatchNorm1d::

    conv 3×3 C→w ─ BN ─ act                              H×W       (real)
    conv 3×3 w→2w ─ maxpool ─ BN ─ act                   H/2×W/2   (binary)
    conv 3×3 2w→4w ─ maxpool ─ BN ─ act                  H/4×W/4   (binary)
    flatten ─ BatchNorm1d ─ fc → classes                           (real)

With the default width w = 32 on the 1×8×8 digits the flattened features are 128·2·2 = 512 and
the model has 99,050 parameters, 92,160 of them binary (2.36 M binary MACs per image).
``binary_cnn`` is the W1A1 version (hardtanh; clipped-STE sign by default, ``approx_sign``
activations train it a little better: >= 95 % test accuracy on the digits in 10 epochs, see the
``binary_cnn-digits`` recipe), ``cnn`` the full-precision one (ReLU).
"""

from __future__ import annotations

from .. import nn
from ..errors import ConfigError
from ..nn.module import Module
from .common import (AUTO, Binarization, activation, flat_features, kaiming_normal_,
                     make_binarization)
from .registry import register_model


class SmallCNN(Module):
    """See the module docstring. Shapes: x (N, C, H, W) -> (N, num_classes).

    Attributes: ``features`` (Sequential), ``flatten``, ``bn_fc`` (BatchNorm1d), ``fc``.
    """

    def __init__(self, input_shape, num_classes: int, binarization: Binarization, width: int = 32,
                 act: str = "hardtanh", rng=None):
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError(f"a CNN needs images of shape (C, H, W), got input_shape "
                              f"{tuple(input_shape)}")
        channels, height, width_px = (int(n) for n in input_shape)
        b = binarization
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1, bias=False, rng=rng),
            nn.BatchNorm2d(width), activation(act),
            b.conv(width, 2 * width, 3, padding=1, rng=rng), nn.MaxPool2d(2),
            nn.BatchNorm2d(2 * width), activation(act),
            b.conv(2 * width, 4 * width, 3, padding=1, rng=rng), nn.MaxPool2d(2),
            nn.BatchNorm2d(4 * width), activation(act),
        )
        features = flat_features(4 * width, height, width_px, pools=2)
        self.flatten = nn.Flatten()
        self.bn_fc = nn.BatchNorm1d(features)
        self.fc = nn.Linear(features, num_classes, rng=rng)
        kaiming_normal_(self, rng)

    def forward(self, x):
        return self.fc(self.bn_fc(self.flatten(self.features(x))))


@register_model("binary_cnn")
def binary_cnn(input_shape=(1, 8, 8), num_classes: int = 10, width: int = 32,
               variant: str = "w1a1", input_quantizer=AUTO, weight_quantizer=AUTO, scale=None,
               pad_value: float = 0.0, act: str = "hardtanh", rng=None) -> SmallCNN:
    """The binary small CNN (W1A1 hidden convolutions, real first and last layers)."""
    b = make_binarization(variant, input_quantizer, weight_quantizer, scale, pad_value)
    return SmallCNN(input_shape, num_classes, b, width=width, act=act, rng=rng)


@register_model("cnn")
def cnn(input_shape=(1, 8, 8), num_classes: int = 10, width: int = 32, act: str = "relu",
        rng=None) -> SmallCNN:
    """The full-precision small CNN (same layout as :func:`binary_cnn`, ReLU)."""
    return SmallCNN(input_shape, num_classes, make_binarization("fp"), width=width, act=act,
                    rng=rng)
