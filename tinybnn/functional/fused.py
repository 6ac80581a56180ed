"""Fused Numba kernels: the CPU fast path of the memory-bound Functions of a training step.

Batch norm, the sign STE, hardtanh and the residual add do little arithmetic per element, so
their time is the number of passes over memory. Written as NumPy formulas, each op makes several
passes (one per intermediate array) on one core; here each is one or two passes, spread over
every core. The readable NumPy formula of every op stays in its Function (it is the path for
CuPy arrays, and for everything these kernels do not cover); the kernels compute the same thing,
up to float rounding in the batch-norm sums (accumulated in float64 here).

Use: ``if fused.supports(a, b): ... fused.op(a, b) ... else: <the NumPy formula>``.
:func:`supports` accepts NumPy float32/float64 arrays of one dtype; the wrappers below take any
shape and memory layout and return new C-contiguous arrays (inputs are never modified).

The kernels spread their loops over every core with ``prange`` (elements, or the channels of
batch norm), so they must be called from the main thread, never from the convolution's worker
threads (:mod:`tinybnn.functional.parallel`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: float flags of the reduction kernels: only "reassoc", which lets LLVM split a long sum into
#: vector lanes (a different but equally accurate order); no other IEEE rule is relaxed
_SUMS = {"reassoc"}


#: Smallest array (elements) worth a parallel kernel. Launching one costs ~0.06-0.1 ms (Numba's
#: OpenMP pool with sleeping threads, tinybnn/backend.py; 0.1-0.3 ms with its workqueue pool),
#: more than NumPy needs for the sign of a 512×512 weight. Measured (workqueue): ``tinybnn train``
#: (binary MLP, 512×512 weights, batch 16) took 19.3 s with those weights on the kernels and
#: 14.6 s without. The activations of the W1A1 ResNet-20
#: (batch 128: 2^19–2^21 values) stay on the kernels.
MIN_PARALLEL_SIZE = 2**19


def supports(*arrays) -> bool:
    """True when every argument is a NumPy float32 or float64 array, all of one dtype, and the
    first has at least :data:`MIN_PARALLEL_SIZE` elements: the kernels of this module apply.
    (CuPy arrays, other dtypes and small arrays take the NumPy formula.)"""
    first = arrays[0]
    return all(isinstance(a, np.ndarray) and a.dtype == first.dtype for a in arrays) and (
        first.dtype in (np.float32, np.float64)) and first.size >= MIN_PARALLEL_SIZE


def _flat(a):
    """A 1-D view of ``a`` (a copy only if ``a`` is not contiguous)."""
    return a.reshape(-1)


# ---------------------------------------------------------------------------------------------
# Elementwise kernels on 1-D arrays (the wrappers flatten)
# ---------------------------------------------------------------------------------------------


@njit(parallel=True, cache=True)
def _sign_kernel(x, y):
    for i in prange(x.size):
        y[i] = 1.0 if x[i] >= 0 else -1.0


@njit(parallel=True, cache=True)
def _clip_kernel(x, low, high, y):
    for i in prange(x.size):
        v = x[i]
        y[i] = low if v < low else (high if v > high else v)   # NaN stays NaN, as in np.clip


@njit(parallel=True, cache=True)
def _pass_inside_kernel(grad, x, low, high, out):
    for i in prange(grad.size):
        g = grad[i]
        out[i] = g if low <= x[i] <= high else 0.0 * g    # = g·1[...] exactly (NaN·0 is NaN)


@njit(parallel=True, cache=True)
def _add_kernel(a, b, out):
    for i in prange(a.size):
        out[i] = a[i] + b[i]


def sign(x):
    """sign(x) with sign(0) = +1 (NaN gives −1, like ``2·[x >= 0] − 1``). Same shape and dtype."""
    y = np.empty(x.shape, x.dtype)
    _sign_kernel(_flat(x), _flat(y))
    return y


def clip(x, low: float, high: float):
    """clip(x, low, high) (NaN stays NaN), like ``np.clip``: the hardtanh forward."""
    y = np.empty(x.shape, x.dtype)
    _clip_kernel(_flat(x), x.dtype.type(low), x.dtype.type(high), _flat(y))
    return y


def pass_inside(grad, x, low: float, high: float):
    """grad · 1[low <= x <= high] for x of grad's shape: the backward of hardtanh and of the
    clipped STE (low = −clip, high = clip, since |x| <= clip ⟺ −clip <= x <= clip).

    The mask is recomputed from x instead of being stored by the forward pass: x is kept alive
    by the graph anyway, and a stored mask costs a fresh array per op. ``low``/``high`` are
    rounded to x's dtype first, as NumPy does when comparing an array with a Python float.
    """
    out = np.empty(grad.shape, grad.dtype)
    _pass_inside_kernel(_flat(grad), _flat(x), x.dtype.type(low), x.dtype.type(high), _flat(out))
    return out


def add(a, b):
    """a + b for two arrays of one shape (no broadcasting)."""
    out = np.empty(a.shape, a.dtype)
    _add_kernel(_flat(a), _flat(b), _flat(out))
    return out


# ---------------------------------------------------------------------------------------------
# Batch norm in training mode: x viewed as (N, C, L), one channel per prange iteration
# ---------------------------------------------------------------------------------------------


@njit(parallel=True, cache=True, fastmath=_SUMS)
def _batch_norm_forward_kernel(x, weight, bias, eps, y, mean, var, inv_std):
    n, channels, length = x.shape
    count = n * length
    for c in prange(channels):
        total = 0.0                                  # pass 1: μ
        for i in range(n):
            for j in range(length):
                total += x[i, c, j]
        mu = total / count
        squares = 0.0                                # pass 2: σ² = mean of (x − μ)²
        for i in range(n):
            for j in range(length):
                d = x[i, c, j] - mu
                squares += d * d
        sigma2 = squares / count
        s = 1.0 / np.sqrt(sigma2 + eps)
        scale = weight[c] * s                        # pass 3: y = γ·(x − μ)·s + β
        shift = bias[c] - mu * scale
        for i in range(n):
            for j in range(length):
                y[i, c, j] = x[i, c, j] * scale + shift
        mean[c], var[c], inv_std[c] = mu, sigma2, s


@njit(parallel=True, cache=True, fastmath=_SUMS)
def _batch_norm_backward_kernel(g, x, mean, inv_std, weight, dx, dgamma, dbeta):
    n, channels, length = x.shape
    count = n * length
    for c in prange(channels):
        mu, s = mean[c], inv_std[c]
        sum_g = 0.0                                  # pass 1: dβ = Σ g, dγ = Σ g·x̂
        sum_gx = 0.0
        for i in range(n):
            for j in range(length):
                gv = g[i, c, j]
                sum_g += gv
                sum_gx += gv * (x[i, c, j] - mu)
        dgamma_c = sum_gx * s
        scale = weight[c] * s                        # pass 2: dx = γ·s·(g − dβ/M − x̂·dγ/M)
        shift = sum_g / count
        slope = dgamma_c * s / count                 # x̂·dγ/M = (x − μ)·s·dγ/M
        for i in range(n):
            for j in range(length):
                dx[i, c, j] = scale * (g[i, c, j] - shift - (x[i, c, j] - mu) * slope)
        dgamma[c], dbeta[c] = dgamma_c, sum_g


def _per_channel(a, channels: int, fill: float, dtype):
    """γ or β as a (C,) array of ``dtype``; ``fill`` (1 or 0) when the layer has none."""
    return np.full(channels, fill, dtype) if a is None else np.asarray(a, dtype)


def batch_norm_forward(x3, weight, bias, eps: float):
    """Training-mode batch norm of x3 (N, C, L) with the batch statistics.

    Returns y (N, C, L) like x3, and the (C,) float64 arrays μ, σ² (biased) and
    1/√(σ² + ε). ``weight``/``bias`` (C,) or None (γ = 1, β = 0).
    """
    channels = x3.shape[1]
    y = np.empty(x3.shape, x3.dtype)
    mean, var, inv_std = (np.empty(channels) for _ in range(3))
    _batch_norm_forward_kernel(x3, _per_channel(weight, channels, 1.0, x3.dtype),
                               _per_channel(bias, channels, 0.0, x3.dtype), float(eps), y,
                               mean, var, inv_std)
    return y, mean, var, inv_std


def batch_norm_backward(g3, x3, mean, inv_std, weight):
    """Training-mode batch-norm backward. Shapes: g3, x3 (N, C, L); mean, inv_std (C,) as
    returned by :func:`batch_norm_forward`; weight (C,) or None.

    Returns dx (N, C, L) like g3, and dγ = Σ g·x̂, dβ = Σ g, both (C,) of g3's dtype.
    """
    channels = x3.shape[1]
    dx = np.empty(g3.shape, g3.dtype)
    dgamma, dbeta = np.empty(channels, g3.dtype), np.empty(channels, g3.dtype)
    _batch_norm_backward_kernel(g3, x3, mean, inv_std,
                                _per_channel(weight, channels, 1.0, g3.dtype), dx, dgamma, dbeta)
    return dx, dgamma, dbeta
