"""Activations, losses and the linear layer: forward against NumPy, backward against finite
differences in float64."""

import numpy as np
import pytest

import tinybnn as tb
import tinybnn.functional as F
from tinybnn.gradcheck import gradcheck

rng = np.random.default_rng(1)


def r(*shape):
    x = rng.standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.1  # stay away from kinks for finite differences
    return x


def np_softmax(a, axis=-1):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("fn, ref", [
    (F.relu, lambda a: np.maximum(a, 0)),
    (F.sigmoid, lambda a: 1 / (1 + np.exp(-a))),
    (F.tanh, np.tanh),
    (F.hardtanh, lambda a: np.clip(a, -1, 1)),
    (F.gelu, lambda a: 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a**3)))),
    (lambda x: F.softmax(x, axis=1), lambda a: np_softmax(a, 1)),
    (lambda x: F.log_softmax(x, axis=-1), lambda a: np.log(np_softmax(a))),
])
def test_activation(fn, ref):
    a = r(4, 5) * 2
    a[np.abs(np.abs(a) - 1) < 1e-3] = 0.5  # hardtanh kinks
    np.testing.assert_allclose(fn(tb.tensor(a)).data, ref(a), rtol=1e-7, atol=1e-9)
    gradcheck(fn, a)


@pytest.mark.parametrize("slopes", [1, 3])
def test_prelu(slopes):
    x, a = r(2, 3, 4, 4), rng.uniform(0.1, 0.5, slopes)
    ref = np.where(x > 0, x, a.reshape((1, -1, 1, 1) if slopes > 1 else ()) * x)
    np.testing.assert_allclose(F.prelu(tb.tensor(x), tb.tensor(a)).data, ref)
    gradcheck(F.prelu, x, a)


def test_dropout_scales_kept_units_and_is_identity_in_eval():
    x = tb.tensor(np.ones((1000,)), requires_grad=True)
    y = F.dropout(x, 0.25, training=True, rng=np.random.default_rng(0))
    kept = y.data != 0
    np.testing.assert_allclose(y.data[kept], 1 / 0.75)
    assert 0.7 < kept.mean() < 0.8
    y.sum().backward()
    np.testing.assert_allclose(x.grad, y.data)
    assert F.dropout(x, 0.25, training=False) is x
    with pytest.raises(tb.ConfigError, match="dropout probability"):
        F.dropout(x, 1.0)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy(smoothing):
    logits, labels = r(6, 4), rng.integers(0, 4, 6)
    q = np.full((6, 4), smoothing / 4)
    q[np.arange(6), labels] += 1 - smoothing
    expected = -(q * np.log(np_softmax(logits))).sum(axis=1).mean()
    np.testing.assert_allclose(F.cross_entropy(tb.tensor(logits), labels, smoothing).data, expected)
    gradcheck(lambda z: F.cross_entropy(z, labels, smoothing), logits)


def test_cross_entropy_errors():
    logits = tb.tensor(r(3, 4))
    with pytest.raises(tb.ShapeError, match=r"logits \(N, C\) and labels \(N,\)"):
        F.cross_entropy(logits, np.array([0, 1]))
    with pytest.raises(tb.ShapeError, match="integer class labels"):
        F.cross_entropy(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(tb.ShapeError, match=r"must lie in \[0, 4\)"):
        F.cross_entropy(logits, np.array([0, 1, 4]))


def test_mse_loss():
    p, t = r(3, 2), r(3, 2)
    np.testing.assert_allclose(F.mse_loss(tb.tensor(p), t).data, ((p - t) ** 2).mean())
    gradcheck(lambda x: F.mse_loss(x, t), p)
    with pytest.raises(tb.ShapeError, match="same shape"):
        F.mse_loss(tb.tensor(p), r(2, 3))


@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 3)])
def test_linear(shape):
    x, w, b = r(*shape), r(4, 3), r(4)
    np.testing.assert_allclose(F.linear(tb.tensor(x), tb.tensor(w), tb.tensor(b)).data, x @ w.T + b)
    gradcheck(F.linear, x, w, b)
    gradcheck(lambda a, c: F.linear(a, c), x, w)


def test_linear_shape_error_names_both_sizes():
    with pytest.raises(tb.ShapeError, match="input has 3 features but the weight expects 5"):
        F.linear(tb.tensor(r(2, 3)), tb.tensor(r(4, 5)))
