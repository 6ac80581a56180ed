"""k-bit quantizers: DoReFa activations and weights, LSQ (step size gradient and its scale)."""

import math

import numpy as np
import pytest

import tinybnn as tb
from tinybnn import quant
from tinybnn.errors import ConfigError
from tinybnn.quant import multibit as Q

from .helpers import forward_backward, np_sign

rng = np.random.default_rng(7)


# --- DoReFa activations ------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_dorefa_act(bits):
    x = rng.uniform(-0.5, 1.5, (6, 10))
    q = quant.make_quantizer("dorefa_act", bits=bits)
    y, dx, g = forward_backward(q, x)
    n = 2 ** bits - 1
    np.testing.assert_allclose(y, np.round(np.clip(x, 0, 1) * n) / n)
    assert len(np.unique(y)) <= n + 1
    np.testing.assert_allclose(dx, g * ((x >= 0) & (x <= 1)))


def test_bad_bits():
    with pytest.raises(ConfigError, match="bits"):
        quant.make_quantizer("dorefa_act", bits=0)
    with pytest.raises(ConfigError, match="bits"):
        quant.make_quantizer("dorefa_weight", bits=2.5)


# --- DoReFa weights ----------------------------------------------------------------------------


def test_dorefa_weight_one_bit():
    w = rng.standard_normal((4, 5))
    w[0, 0] = 0.0
    y, dw, g = forward_backward(quant.make_quantizer("dorefa_weight", bits=1), w)
    e = np.abs(w).mean()
    np.testing.assert_allclose(y, e * np_sign(w))
    assert y[0, 0] == pytest.approx(e)
    np.testing.assert_array_equal(dw, g)


@pytest.mark.parametrize("bits", [2, 3])
def test_dorefa_weight_k_bits(bits):
    w = rng.standard_normal((4, 3, 3, 3))
    y, dw, g = forward_backward(quant.make_quantizer("dorefa_weight", bits=bits), w)
    t = np.tanh(w)
    m = np.abs(t).max()
    n = 2 ** bits - 1
    x = t / (2 * m) + 0.5
    np.testing.assert_allclose(y, 2 * np.round(x * n) / n - 1)
    # straight through quantize_k; the normalization's true derivative, the max included
    dt = g / m
    j = np.unravel_index(np.argmax(np.abs(t)), t.shape)
    dt[j] -= np.sign(t[j]) * (g * t).sum() / m ** 2
    np.testing.assert_allclose(dw, (1 - t ** 2) * dt, rtol=1e-10, atol=1e-12)


# --- LSQ ---------------------------------------------------------------------------------------


def lsq_np(v, s, qn, qp, g, axis=None):
    """Esser et al. 2020: forward and the gradients of v and s (with the 1/√(N·Q_p) scale)."""
    if axis is None:
        step, n = s.reshape(()), v.size
        reduce = lambda a: a.sum().reshape(1)  # noqa: E731
    else:
        step = s.reshape((-1,) + (1,) * (v.ndim - 1))
        n = v.size // s.size
        reduce = lambda a: a.reshape(a.shape[0], -1).sum(axis=1)  # noqa: E731
    u = v / step
    y = np.round(np.clip(u, -qn, qp)) * step
    inside = (u > -qn) & (u < qp)
    dv = g * inside
    d = np.where(inside, np.round(u) - u, np.where(u <= -qn, -qn, qp))
    ds = reduce(g * d) / math.sqrt(n * qp)
    return y, dv, ds


@pytest.mark.parametrize("bits, signed", [(2, True), (3, True), (2, False), (1, False)])
def test_lsq_per_tensor(bits, signed):
    qn, qp = Q.lsq_levels(bits, signed)
    assert (qn, qp) == ((2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1))
    v = rng.standard_normal((5, 8)) * 0.6
    s = tb.tensor(np.array([0.3]), requires_grad=True)
    y, dv, g = forward_backward(lambda t: Q.lsq(t, s, bits=bits, signed=signed), v)
    ey, edv, eds = lsq_np(v, s.data, qn, qp, g)
    np.testing.assert_allclose(y, ey)
    np.testing.assert_allclose(dv, edv)
    np.testing.assert_allclose(s.grad, eds, rtol=1e-10)


def test_lsq_per_channel():
    v = rng.standard_normal((4, 3, 3, 3))
    s = tb.tensor(rng.uniform(0.2, 0.6, 4), requires_grad=True)
    y, dv, g = forward_backward(lambda t: Q.lsq(t, s, bits=3, axis=0), v)
    ey, edv, eds = lsq_np(v, s.data, 4, 3, g, axis=0)
    np.testing.assert_allclose(y, ey)
    np.testing.assert_allclose(dv, edv)
    np.testing.assert_allclose(s.grad, eds, rtol=1e-10)


def test_lsq_quantizer_initialises_its_step_once():
    v = rng.standard_normal((6, 10))
    q = quant.make_quantizer("lsq", bits=3)
    q(tb.tensor(v))
    assert float(q.step.data[0]) == pytest.approx(2 * np.abs(v).mean() / math.sqrt(3), rel=1e-6)
    q(tb.tensor(v * 5))
    assert float(q.step.data[0]) == pytest.approx(2 * np.abs(v).mean() / math.sqrt(3), rel=1e-6)
    # per channel: one step per output channel, created by build()
    pc = quant.make_quantizer("lsq", bits=2, per_channel=True)
    pc.build(6, 0)
    pc(tb.tensor(v))
    np.testing.assert_allclose(pc.step.data, 2 * np.abs(v).mean(axis=1) / math.sqrt(1), rtol=1e-6)
    # a checkpoint keeps the step and the "initialised" flag
    fresh = quant.make_quantizer("lsq", bits=2, per_channel=True, channels=6)
    fresh.load_state_dict(pc.state_dict())
    fresh(tb.tensor(v * 5))
    np.testing.assert_allclose(fresh.step.data, pc.step.data)


def test_signed_one_bit_lsq_is_refused():
    with pytest.raises(ConfigError, match="bits >= 2"):
        quant.make_quantizer("lsq", bits=1)
