"""Weight initialisations (PyTorch's defaults), drawing from an explicit Generator.

``fan_in`` of a weight of shape (out, in, *kernel) is in·prod(kernel).
"""

from __future__ import annotations

import math

import numpy as np

from ..random import get_rng


def fan_in(shape) -> int:
    return int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])


def uniform(shape, bound: float, rng=None, dtype=np.float32) -> np.ndarray:
    """U(−bound, bound)."""
    return get_rng(rng).uniform(-bound, bound, size=shape).astype(dtype)


def kaiming_uniform(shape, a: float = math.sqrt(5), rng=None) -> np.ndarray:
    """PyTorch's default for Linear and Conv2d weights: U(−b, b), b = gain·√(3/fan_in),
    gain = √(2/(1 + a²)); with a = √5 this is b = 1/√fan_in."""
    gain = math.sqrt(2.0 / (1 + a * a))
    return uniform(shape, gain * math.sqrt(3.0 / fan_in(shape)), rng)


def kaiming_normal(shape, rng=None) -> np.ndarray:
    """N(0, 2/fan_in) (He et al. 2015, fan-in mode, ReLU gain): used by the CIFAR ResNets."""
    std = math.sqrt(2.0 / fan_in(shape))
    return (get_rng(rng).standard_normal(shape) * std).astype(np.float32)


def bias_uniform(shape, weight_shape, rng=None) -> np.ndarray:
    """PyTorch's default bias: U(−1/√fan_in, 1/√fan_in) with the weight's fan_in."""
    return uniform(shape, 1.0 / math.sqrt(fan_in(weight_shape)), rng)
