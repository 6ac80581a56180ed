"""Numerical gradient checks: compare a Function's backward with central finite differences.

Use float64 inputs. ``gradcheck(f, *inputs)`` evaluates ``f(*tensors)``, contracts the output with a
fixed random weight (so every output element matters), back-propagates, and compares each input's
gradient with (L(x + h) − L(x − h)) / 2h computed element by element.
"""

from __future__ import annotations

import numpy as np

from .autograd import Tensor


def numerical_gradient(loss_of, array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``loss_of()`` with respect to every element of ``array``
    (which ``loss_of`` reads; it is perturbed in place and restored)."""
    grad = np.zeros_like(array)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = loss_of()
        flat[i] = old - eps
        minus = loss_of()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


def gradcheck(f, *inputs, eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-4,
              seed: int = 0) -> None:
    """Assert that the analytic gradients of ``f`` match central finite differences.

    ``inputs`` are float64 arrays or Tensors; those that are Tensors with ``requires_grad`` (or all
    arrays) are checked. Raises AssertionError naming the input and the worst element.
    """
    tensors = [x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.float64),
                                                      requires_grad=True) for x in inputs]
    for t in tensors:
        if t.requires_grad and t.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs, got {t.dtype}")
    out = f(*tensors)
    weight = np.random.default_rng(seed).standard_normal(out.shape)

    def loss_value():
        return float((f(*tensors).data * weight).sum())

    for t in tensors:
        t.grad = None
    out.backward(weight)
    for index, t in enumerate(tensors):
        if not t.requires_grad:
            continue
        expected = numerical_gradient(loss_value, t.data, eps)
        actual = np.zeros_like(t.data) if t.grad is None else t.grad
        if not np.allclose(actual, expected, atol=atol, rtol=rtol):
            worst = np.unravel_index(np.argmax(np.abs(actual - expected)), actual.shape)
            raise AssertionError(f"gradient of input {index} (shape {t.shape}) differs from "
                                 f"finite differences at {worst}: analytic {actual[worst]:.6g}, "
                                 f"numerical {expected[worst]:.6g}")
