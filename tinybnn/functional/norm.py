"""Normalization: ``batch_norm`` and ``layer_norm``, each one fused Function with its analytic
backward (no graph of small ops).

Batch norm normalises every channel (axis 1) over the batch and all other axes::

    training:  μ, σ² = mean and biased variance of the batch;  x̂ = (x − μ) / √(σ² + ε)
               running_mean ← (1 − m)·running_mean + m·μ
               running_var  ← (1 − m)·running_var  + m·σ²·M/(M − 1)   (unbiased, M values)
    eval:      x̂ = (x − running_mean) / √(running_var + ε)
    both:      y = γ·x̂ + β

Backward in training mode (M values per channel, sums over them)::

    dβ = Σ g,   dγ = Σ g·x̂,   dx = γ/√(σ² + ε) · (g − dβ/M − x̂·dγ/M)

In eval mode the statistics are constants, so dx = γ/√(running_var + ε) · g.
"""

from __future__ import annotations

import math

from ..autograd import Function, Tensor
from ..backend import get_array_module
from ..errors import ConfigError, ShapeError
from . import fused


def _channel_sum(a3):
    """Sum of a (N, C, L) array over N and L -> (C,). The contiguous axis L is reduced first."""
    return a3.sum(axis=2).sum(axis=0)


def _channel_dot(a3, b3):
    """Σ a·b over N and L -> (C,), without the temporary array a·b."""
    return get_array_module(a3).einsum("ncl,ncl->c", a3, b3)


def _as_array(t):
    return t.data if isinstance(t, Tensor) else t


class BatchNorm(Function):
    """Batch normalization over axis 1. Shapes: x (N, C, *spatial), weight/bias (C,) or None.

    ``running_mean`` / ``running_var`` (C,) arrays are updated in place in training mode.
    The backward pass gets x (which the graph keeps anyway), μ and 1/√(σ² + ε) from the forward
    pass and rebuilds x̂ = (x − μ)/√(σ² + ε) on the fly, so no (N, C, L) array is stored.

    Training mode on NumPy arrays runs the fused kernels of :mod:`.fused` (one parallel pass for
    the statistics and y, one for the two channel sums and dx); the NumPy formulas below are
    the same computation, used for CuPy arrays and in eval mode (whose float32 results the
    bit-packed export reproduces bit for bit, so they must not change).
    """

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, running_mean=None, running_var=None,
                training=True, momentum=0.1, eps=1e-5):
        n, c = x.shape[:2]
        x3 = x.reshape(n, c, -1)                      # (N, C, L): a view
        if not training:
            y, mean, inv_std = _eval_forward(x3, weight, bias, running_mean, running_var, eps)
        else:
            if fused.supports(x3):
                y, mean, var, inv_std = fused.batch_norm_forward(x3, weight, bias, eps)
            else:
                y, mean, var, inv_std = _train_forward(x3, weight, bias, eps)
            if running_mean is not None:              # running_var gets the unbiased σ²
                count = n * x3.shape[2]
                running_mean *= 1 - momentum
                running_mean += momentum * mean
                running_var *= 1 - momentum
                running_var += (momentum * count / (count - 1)) * var
        ctx.save_for_backward(x3, mean, inv_std, weight)
        ctx.training = training
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x3, mean, inv_std, weight = ctx.saved_tensors
        g3 = grad.reshape(x3.shape)
        if ctx.training and fused.supports(g3, x3):
            dx, dgamma, dbeta = fused.batch_norm_backward(g3, x3, mean, inv_std, weight)
        else:
            dx, dgamma, dbeta = _backward(g3, x3, mean, inv_std, weight, ctx.training)
        need_x, need_w, need_b = ctx.needs_input_grad
        return (dx.reshape(grad.shape) if need_x else None, dgamma if need_w else None,
                dbeta if need_b else None)


def _affine(x_hat, weight, bias):
    """y = γ·x̂ + β for x̂ (N, C, L), γ/β (C,) or None; overwrites x̂ when γ is None."""
    y = x_hat * weight[:, None] if weight is not None else x_hat
    if bias is not None:
        y += bias[:, None]
    return y


def _train_forward(x3, weight, bias, eps):
    """The NumPy/CuPy formula of the training forward: returns y, μ, σ² (biased), 1/√(σ² + ε)."""
    xp = get_array_module(x3)
    count = x3.shape[0] * x3.shape[2]
    mean = _channel_sum(x3) / count
    x_hat = x3 - mean[:, None]
    var = _channel_dot(x_hat, x_hat) / count
    inv_std = (1.0 / xp.sqrt(var + eps)).astype(x3.dtype, copy=False)
    x_hat *= inv_std[:, None]                         # in place: x − μ becomes x̂
    return _affine(x_hat, weight, bias), mean, var, inv_std


def _eval_forward(x3, weight, bias, running_mean, running_var, eps):
    """Eval forward with the running statistics: returns y, μ (a copy), 1/√(σ² + ε).

    The order of the float32 operations here is part of the contract with the bit-packed
    export (see tinybnn/deploy): do not reorder them.
    """
    xp = get_array_module(x3)
    x_hat = (x3 - running_mean[:, None]).astype(x3.dtype, copy=False)
    inv_std = (1.0 / xp.sqrt(running_var + eps)).astype(x3.dtype, copy=False)
    x_hat *= inv_std[:, None]
    return _affine(x_hat, weight, bias), running_mean.copy(), inv_std


def _backward(g3, x3, mean, inv_std, weight, training):
    """The NumPy/CuPy formula of the backward, for g3, x3 (N, C, L): returns dx, dγ, dβ.

    dβ = Σ g, dγ = Σ g·x̂, and dx = γ/√(σ² + ε) · (g − dβ/M − x̂·dγ/M) in training mode
    (M values per channel), dx = γ/√(var + ε) · g in eval mode.
    """
    x_hat = (x3 - mean[:, None]) * inv_std[:, None]
    count = x3.shape[0] * x3.shape[2]
    dbeta = _channel_sum(g3)
    dgamma = _channel_dot(g3, x_hat)
    scale = inv_std if weight is None else weight * inv_std
    if training:
        dx = x_hat * (dgamma / count)[:, None]
        dx += (dbeta / count)[:, None]
        dx = g3 - dx
        dx *= scale[:, None]
    else:                                             # the statistics are constants
        dx = g3 * scale[:, None]
    return dx, dgamma, dbeta


def batch_norm(x: Tensor, running_mean, running_var, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Batch normalization (PyTorch's ``F.batch_norm``) over axis 1 of x (N, C) or (N, C, ...).

    Args:
        running_mean, running_var: (C,) arrays (or Tensors), updated in place when ``training``;
            may be None in training mode (no running statistics kept).
        weight, bias: γ and β of shape (C,), or None (γ = 1, β = 0).
        training: normalise with the batch statistics (True) or the running ones (False).
    Returns:
        y, the same shape as x.
    """
    if len(x.shape) < 2:
        raise ShapeError(f"batch_norm expects x of shape (N, C) or (N, C, ...), got "
                         f"{tuple(x.shape)}")
    channels = x.shape[1]
    running_mean, running_var = _as_array(running_mean), _as_array(running_var)
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (channels,):
            raise ShapeError(f"batch_norm: input has {channels} channels but {name} has shape "
                             f"{tuple(t.shape)}; they must match")
    if training:
        values = math.prod(x.shape) // channels
        if values < 2:
            raise ShapeError(f"batch_norm needs more than 1 value per channel in training mode, "
                             f"got input shape {tuple(x.shape)}")
    elif running_mean is None or running_var is None:
        raise ConfigError("batch_norm in eval mode (training=False) needs running_mean and "
                          "running_var")
    return BatchNorm.apply(x, weight, bias, running_mean=running_mean, running_var=running_var,
                           training=bool(training), momentum=float(momentum), eps=float(eps))


class LayerNorm(Function):
    """Layer normalization over the last axes. Shapes: x (B, D) (the caller flattens), weight/bias
    (D,) or None.

    y = γ·x̂ + β with x̂ = (x − μ)/√(σ² + ε), μ and σ² (biased) taken over D for every row.
    dx = 1/√(σ² + ε) · (h − mean(h) − x̂·mean(h·x̂)) with h = γ·g; dγ = Σ_rows g·x̂; dβ = Σ_rows g.
    """

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, eps=1e-5):
        xp = get_array_module(x)
        mean = x.mean(axis=1, keepdims=True)
        x_hat = x - mean
        var = (x_hat * x_hat).mean(axis=1, keepdims=True)
        inv_std = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
        x_hat *= inv_std
        y = x_hat * weight if weight is not None else x_hat.copy()
        if bias is not None:
            y += bias
        ctx.save_for_backward(x_hat, inv_std, weight)
        return y

    @staticmethod
    def backward(ctx, grad):
        x_hat, inv_std, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        dx = None
        if need_x:
            h = grad * weight if weight is not None else grad
            dx = h - h.mean(axis=1, keepdims=True)
            dx -= x_hat * (h * x_hat).mean(axis=1, keepdims=True)
            dx *= inv_std
        dgamma = (grad * x_hat).sum(axis=0) if need_w else None
        dbeta = grad.sum(axis=0) if need_b else None
        return dx, dgamma, dbeta


def layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Layer normalization over the last ``len(normalized_shape)`` axes (PyTorch's
    ``F.layer_norm``).

    Shapes: x (..., *normalized_shape); weight and bias ``normalized_shape`` or None; y like x.
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if len(x.shape) < k or tuple(x.shape[len(x.shape) - k:]) != shape:
        raise ShapeError(f"layer_norm: input shape {tuple(x.shape)} does not end with "
                         f"normalized_shape {shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise ShapeError(f"layer_norm: {name} has shape {tuple(t.shape)}, expected {shape}")
    size = math.prod(shape)
    flat = x.reshape(-1, size)
    w = weight.reshape(size) if weight is not None else None
    b = bias.reshape(size) if bias is not None else None
    return LayerNorm.apply(flat, w, b, eps=float(eps)).reshape(x.shape)
