"""Shared helpers of the estimator tests: run a quantizer forward and backward on float64 arrays."""

import numpy as np

import tinybnn as tb


def np_sign(x):
    """sign with sign(0) = +1, the tinybnn convention."""
    return np.where(x >= 0, 1.0, -1.0)


def forward_backward(fn, x, grad=None, seed=0):
    """y = fn(Tensor(x)); back-propagate ``grad`` (random when None). Returns (y, dx, grad)."""
    t = tb.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    y = fn(t)
    if grad is None:
        grad = np.random.default_rng(seed).standard_normal(y.shape)
    y.backward(grad)
    return y.data, t.grad, grad


def with_zeros(x, every=5):
    """A copy of ``x`` with exact zeros at every ``every``-th element (to test sign(0) = +1)."""
    x = np.array(x, dtype=np.float64)
    x.reshape(-1)[::every] = 0.0
    return x
