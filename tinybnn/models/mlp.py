"""Multi-layer perceptrons: full precision, and binary with FP first and last layers.

The binary MLP (BNN-style, Hubara et al. 2016) is the main job of ``tinybnn train``::

    flatten -> Linear(in, h) -> BN -> [BinaryLinear(h, h) -> BN] x depth -> Linear(h, classes)

Its first layer sees the real input and its last layer is real-valued, as in most BNN papers; the
hidden layers binarize both their inputs and their weights. The batch norm before each binary layer
centres the activations around the sign threshold.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from .registry import register_model


def _features(input_shape) -> int:
    return int(np.prod(input_shape))


@register_model("mlp")
def mlp(input_shape, num_classes: int, hidden: int = 256, depth: int = 2, rng=None) -> nn.Module:
    """Full-precision MLP: flatten -> [Linear -> BN -> ReLU] x depth -> Linear."""
    layers, width = [nn.Flatten()], _features(input_shape)
    for _ in range(depth):
        layers += [nn.Linear(width, hidden, rng=rng), nn.BatchNorm1d(hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, num_classes, rng=rng))
    return nn.Sequential(*layers)


@register_model("binary_mlp")
def binary_mlp(input_shape, num_classes: int, hidden: int = 256, depth: int = 2,
               input_quantizer="ste_sign", weight_quantizer="ste_sign", scale=None,
               rng=None) -> nn.Module:
    """Binary MLP: real first and last layers, ``depth`` binary hidden layers (W1A1).

    flatten -> Linear(in, hidden) -> BN -> [BinaryLinear(hidden, hidden) -> BN] x depth
    -> Linear(hidden, num_classes). Estimators are selectable (names from ``tinybnn.quant``).
    """
    layers = [nn.Flatten(), nn.Linear(_features(input_shape), hidden, rng=rng),
              nn.BatchNorm1d(hidden)]
    for _ in range(depth):
        layers += [nn.BinaryLinear(hidden, hidden, input_quantizer=input_quantizer,
                                   weight_quantizer=weight_quantizer, scale=scale, rng=rng),
                   nn.BatchNorm1d(hidden)]
    layers.append(nn.Linear(hidden, num_classes, rng=rng))
    return nn.Sequential(*layers)
