"""VGG-Small: the CIFAR-10 VGG of LQ-Nets (Zhang et al. 2018), used by XNOR-Net/DoReFa
re-implementations, IR-Net, RBNN, ReCU and SURGE.

Six 3×3 convolutions (padding 1) in three pairs of 128, 256 and 512 channels, a 2×2 max-pool after
each pair, and one fully connected classifier::

    conv 3→128 ─ BN ─ act                          32×32
    conv 128→128 ─ maxpool ─ BN ─ act              16×16
    conv 128→256 ─ BN ─ act
    conv 256→256 ─ maxpool ─ BN ─ act               8×8
    conv 256→512 ─ BN ─ act
    conv 512→512 ─ maxpool ─ BN ─ act               4×4
    flatten (8192) ─ fc → classes

(the order conv → pool → BN → act is IR-Net's). In the binary variants the five hidden
convolutions are binary and the activation is hardtanh; the first convolution and the classifier
are real-valued unless ``binary_first_layer``/``binary_last_layer`` ask otherwise. The real
version uses ReLU. Parameters: 4,660,106 for 10 classes (no biases in the convolutions).
"""

from __future__ import annotations

from .. import nn
from ..errors import ConfigError
from ..nn.module import Module
from .common import (AUTO, Binarization, activation, flat_features, kaiming_normal_,
                     make_binarization)
from .registry import register_model
from .resnet import _channels


def first_layer(binarization: Binarization, binary: bool, in_channels: int, out_channels: int,
                rng=None) -> Module:
    """The convolution that sees the image (3×3, padding 1): real-valued, or with binary weights
    and the real image as input (binarizing the pixels themselves would destroy the image; papers
    that binarize the first layer binarize its weights)."""
    if not binary:
        return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False, rng=rng)
    weights_only = Binarization("w1a32", None, binarization.weight_quantizer,
                                binarization.scale, binarization.pad_value)
    return weights_only.conv(in_channels, out_channels, 3, padding=1, rng=rng)


def last_layer(binarization: Binarization, binary: bool, in_features: int, num_classes: int,
               rng=None) -> Module:
    """The classifier: real-valued, or binary like the hidden layers (inputs and weights)."""
    if not binary:
        return nn.Linear(in_features, num_classes, rng=rng)
    return binarization.linear(in_features, num_classes, rng=rng)


class VGGSmall(Module):
    """VGG-Small; see the module docstring.

    Shapes: x (N, in_channels, 32, 32) -> (N, num_classes).

    Attributes: ``features`` (a Sequential of the conv/pool/BN/act layers), ``flatten``, ``fc``.
    """

    def __init__(self, num_classes: int, binarization: Binarization, in_channels: int = 3,
                 image_size=(32, 32), act: str = "hardtanh", binary_first_layer: bool = False,
                 binary_last_layer: bool = False, rng=None):
        super().__init__()
        b = binarization
        layers = [first_layer(b, binary_first_layer, in_channels, 128, rng),
                  nn.BatchNorm2d(128), activation(act)]
        plan = [(128, 128, True), (128, 256, False), (256, 256, True), (256, 512, False),
                (512, 512, True)]
        for c_in, c_out, pool in plan:
            layers.append(b.conv(c_in, c_out, 3, padding=1, rng=rng))
            if pool:
                layers.append(nn.MaxPool2d(2))
            layers += [nn.BatchNorm2d(c_out), activation(act)]
        self.features = nn.Sequential(*layers)
        self.flatten = nn.Flatten()
        height, width = image_size
        self.fc = last_layer(b, binary_last_layer, flat_features(512, height, width, pools=3),
                             num_classes, rng)
        kaiming_normal_(self, rng)

    def forward(self, x):
        return self.fc(self.flatten(self.features(x)))


def vgg_small(num_classes: int = 10, variant: str = "w1a1", input_quantizer=AUTO,
              weight_quantizer=AUTO, scale=None, pad_value: float = 0.0, in_channels: int = 3,
              image_size=(32, 32), act: str | None = None, binary_first_layer: bool = False,
              binary_last_layer: bool = False, rng=None) -> VGGSmall:
    """VGG-Small (see the module docstring). Options as :func:`~tinybnn.models.resnet.resnet20`,
    plus ``binary_first_layer`` (binary weights in the first convolution) and
    ``binary_last_layer`` (a binary classifier), both off as in the papers."""
    b = make_binarization(variant, input_quantizer, weight_quantizer, scale, pad_value)
    if (binary_first_layer or binary_last_layer) and not b.binary:
        raise ConfigError("binary_first_layer/binary_last_layer need variant 'w1a1' or 'w1a32'")
    act = act or ("hardtanh" if b.binary else "relu")
    return VGGSmall(num_classes, b, in_channels=in_channels, image_size=image_size, act=act,
                    binary_first_layer=binary_first_layer, binary_last_layer=binary_last_layer,
                    rng=rng)


@register_model("vgg_small")
def _build_vgg_small(input_shape=(3, 32, 32), num_classes: int = 10, **options) -> VGGSmall:
    return vgg_small(num_classes=num_classes, in_channels=_channels(input_shape),
                     image_size=tuple(input_shape[1:]), **options)
