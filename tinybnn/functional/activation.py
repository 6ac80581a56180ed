"""Activation Functions: relu, hardtanh, prelu, gelu, sigmoid, tanh, softmax, log_softmax, dropout.

Shapes: every function here is elementwise (any shape) except ``softmax``/``log_softmax`` (normalise
along ``axis``) and ``prelu`` (one slope per channel, channels on axis 1).
"""

from __future__ import annotations

import math

from ..autograd import Function, Tensor, is_grad_enabled
from ..backend import get_array_module
from ..random import get_rng
from . import fused
from .math import unbroadcast


class ReLU(Function):
    """y = max(x, 0); dy/dx = 1[x > 0]."""

    @staticmethod
    def forward(ctx, x):
        mask = x > 0
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask


class Hardtanh(Function):
    """y = clip(x, low, high); dy/dx = 1[low <= x <= high].

    The backward recomputes the mask from x (kept alive by the graph anyway) rather than storing
    it; on NumPy float arrays each direction is one parallel pass (:mod:`.fused`).
    """

    @staticmethod
    def forward(ctx, x, low=-1.0, high=1.0):
        ctx.save_for_backward(x)
        ctx.bounds = (low, high)
        return fused.clip(x, low, high) if fused.supports(x) else get_array_module(x).clip(
            x, low, high)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        low, high = ctx.bounds
        if fused.supports(grad, x):
            return fused.pass_inside(grad, x, low, high)
        return grad * ((x >= low) & (x <= high))


class PReLU(Function):
    """y = x if x > 0 else a·x, with one slope a per channel (axis 1) or a single shared slope.

    Shapes: x (N, C, ...), a (C,) or (1,).
    """

    @staticmethod
    def forward(ctx, x, a):
        shape = (1, -1) + (1,) * (x.ndim - 2) if a.size > 1 else (1,) * x.ndim
        slope = a.reshape(shape)
        positive = x > 0
        ctx.save_for_backward(x, slope, positive)
        ctx.a_shape = a.shape
        return get_array_module(x).where(positive, x, slope * x)

    @staticmethod
    def backward(ctx, grad):
        x, slope, positive = ctx.saved_tensors
        xp = get_array_module(grad)
        gx = xp.where(positive, grad, grad * slope) if ctx.needs_input_grad[0] else None
        ga = None
        if ctx.needs_input_grad[1]:
            ga = unbroadcast(xp.where(positive, 0, grad * x), slope.shape).reshape(ctx.a_shape)
        return gx, ga


class GELU(Function):
    """GELU with the tanh approximation (PyTorch's ``approximate='tanh'``):

    y = ½x(1 + tanh(u)), u = √(2/π)(x + 0.044715x³).
    dy/dx = ½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²).
    """

    C = math.sqrt(2.0 / math.pi)

    @staticmethod
    def forward(ctx, x):
        xp = get_array_module(x)
        t = xp.tanh(GELU.C * (x + 0.044715 * x**3))
        ctx.save_for_backward(x, t)
        return 0.5 * x * (1 + t)

    @staticmethod
    def backward(ctx, grad):
        x, t = ctx.saved_tensors
        du = GELU.C * (1 + 3 * 0.044715 * x * x)
        return grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)


class Sigmoid(Function):
    """y = 1/(1 + e⁻ˣ); dy/dx = y(1 − y)."""

    @staticmethod
    def forward(ctx, x):
        xp = get_array_module(x)
        y = 0.5 * (1 + xp.tanh(0.5 * x))  # the tanh form never overflows
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y * (1 - y)


class Tanh(Function):
    """y = tanh x; dy/dx = 1 − y²."""

    @staticmethod
    def forward(ctx, x):
        y = get_array_module(x).tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y)


class Softmax(Function):
    """y = eˣ / Σ eˣ along ``axis``; dx = y·(g − Σ g·y)."""

    @staticmethod
    def forward(ctx, x, axis=-1):
        xp = get_array_module(x)
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        y = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return y * (grad - (grad * y).sum(axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    """y = x − log Σ eˣ along ``axis``; dx = g − softmax(x)·Σ g."""

    @staticmethod
    def forward(ctx, x, axis=-1):
        xp = get_array_module(x)
        shifted = x - x.max(axis=axis, keepdims=True)
        y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        xp = get_array_module(grad)
        return grad - xp.exp(y) * grad.sum(axis=ctx.axis, keepdims=True)


class Dropout(Function):
    """Inverted dropout: y = x·mask/(1 − p), mask ~ Bernoulli(1 − p); identity in eval."""

    @staticmethod
    def forward(ctx, x, p=0.5, rng=None):
        xp = get_array_module(x)
        keep = get_rng(rng).random(x.shape) >= p
        scale = xp.asarray(keep, dtype=x.dtype) / (1.0 - p)
        ctx.save_for_backward(scale)
        return x * scale

    @staticmethod
    def backward(ctx, grad):
        (scale,) = ctx.saved_tensors
        return grad * scale


def relu(x): return ReLU.apply(x)
def hardtanh(x, min_val=-1.0, max_val=1.0): return Hardtanh.apply(x, low=min_val, high=max_val)
def prelu(x, weight): return PReLU.apply(x, weight)
def gelu(x): return GELU.apply(x)
def sigmoid(x): return Sigmoid.apply(x)
def tanh(x): return Tanh.apply(x)
def softmax(x, axis=-1): return Softmax.apply(x, axis=axis)
def log_softmax(x, axis=-1): return LogSoftmax.apply(x, axis=axis)


def dropout(x, p=0.5, training=True, rng=None) -> Tensor:
    """Zero each element with probability ``p`` in training (scaling the rest by 1/(1 − p))."""
    if not 0.0 <= p < 1.0:
        from ..errors import ConfigError

        raise ConfigError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    return Dropout.apply(x, p=p, rng=rng)


__all__ = ["relu", "hardtanh", "prelu", "gelu", "sigmoid", "tanh", "softmax", "log_softmax",
           "dropout", "is_grad_enabled"]
