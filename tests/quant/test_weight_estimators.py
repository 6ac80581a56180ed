"""Weight binarizers: forward against NumPy, backward against each written formula, schedules."""

import math

import numpy as np
import pytest

import tinybnn as tb
from tinybnn import quant
from tinybnn.errors import ConfigError
from tinybnn.gradcheck import gradcheck
from tinybnn.quant import weight as Wq

from .helpers import forward_backward, np_sign, with_zeros

rng = np.random.default_rng(99)
SHAPES = [(4, 3, 3, 3), (5, 7)]


def per_channel_mean_abs(w):
    return np.abs(w).reshape(w.shape[0], -1).mean(axis=1).reshape((-1,) + (1,) * (w.ndim - 1))


def standardize_np(w, eps, gain=1.0):
    axes = tuple(range(1, w.ndim))
    mu = w.mean(axis=axes, keepdims=True)
    sigma = np.sqrt(w.var(axis=axes, ddof=1, keepdims=True) + eps)
    return gain * (w - mu) / sigma, (w - mu) / sigma, sigma


def standardize_backward_np(gz, z, sigma):
    """d/dw of z = (w − μ)/σ per output channel (unbiased σ): (gz − mean gz − z·Σ(gz z)/(M−1))/σ."""
    axes = tuple(range(1, z.ndim))
    m = np.prod(z.shape[1:])
    return (gz - gz.mean(axis=axes, keepdims=True)
            - z * (gz * z).sum(axis=axes, keepdims=True) / (m - 1)) / sigma


def symmetric_rows(out, half):
    """Rows [−a…, 0, …a] of dyadic values: the mean is exactly 0, so the 0 stays exactly 0 after
    standardization."""
    a = rng.integers(1, 17, (out, half)) / 16
    return np.concatenate([-a, np.zeros((out, 1)), a[:, ::-1]], axis=1)


# --- XNOR and magnitude-aware ------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_xnor_forward_backward(shape):
    w = with_zeros(rng.uniform(-1.6, 1.6, shape), every=7)
    y, dw, g = forward_backward(quant.make_quantizer("xnor"), w)
    alpha = per_channel_mean_abs(w)
    np.testing.assert_allclose(y, alpha * np_sign(w))
    assert (y[w == 0] > 0).all()  # sign(0) = +1
    np.testing.assert_allclose(dw, g * (np.abs(w) <= 1))


@pytest.mark.parametrize("shape", SHAPES)
def test_magnitude_aware_forward_backward(shape):
    w = with_zeros(rng.uniform(-1.6, 1.6, shape), every=7)
    y, dw, g = forward_backward(quant.make_quantizer("magnitude_aware"), w)
    alpha = per_channel_mean_abs(w)
    np.testing.assert_allclose(y, alpha * np_sign(w))
    assert (y[w == 0] > 0).all()
    np.testing.assert_allclose(dw, g * alpha * (np.abs(w) <= 1))


# --- standardization ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_standardize_forward_and_gradcheck(shape):
    w = rng.standard_normal(shape)
    y = Wq.standardize(tb.tensor(w), eps=1e-5, gain=2.0).data
    np.testing.assert_allclose(y, standardize_np(w, 1e-5, 2.0)[0])
    gradcheck(lambda t: Wq.standardize(t, eps=1e-5, gain=2.0), w)


# --- IR-Net ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_irnet_weight_forward_backward(shape):
    w = rng.standard_normal(shape) * 0.1
    q = quant.make_quantizer("irnet_weight")
    q.set_progress(7, 10)
    t, k = float(q.t), float(q.k)
    assert t == pytest.approx(0.1 * 10 ** (0.7 * 2)) and k == 1.0
    y, dw, g = forward_backward(q, w)
    w_hat, z, sigma = standardize_np(w, 1e-12)
    s = 2.0 ** np.round(np.log2(per_channel_mean_abs(w_hat)))
    np.testing.assert_allclose(y, s * np_sign(w_hat))
    g_hat = g * s * k * t * (1 - np.tanh(t * w_hat) ** 2)  # EDE through the detached scale
    np.testing.assert_allclose(dw, standardize_backward_np(g_hat, z, sigma), rtol=1e-8, atol=1e-10)


def test_irnet_power_of_two_scale_is_a_shift():
    w = rng.standard_normal((6, 4, 3, 3))
    y = quant.make_quantizer("irnet_weight")(tb.tensor(w)).data
    mags = np.unique(np.abs(y))
    assert np.allclose(np.log2(mags), np.round(np.log2(mags)))


# --- ReCU --------------------------------------------------------------------------------------


def test_recu_tau_schedule_endpoints():
    assert Wq.recu_tau(0, 200) == pytest.approx(0.85)
    assert Wq.recu_tau(200, 200) == pytest.approx(0.99)
    mid = Wq.recu_tau(100, 200)
    a = 0.14 / (math.e - 1)
    assert mid == pytest.approx(a * math.exp(0.5) + 0.85 - a)
    q = quant.RecuWeight(channels=2)
    assert float(q.tau) == pytest.approx(0.85)
    q.set_progress(200, 200)
    assert float(q.tau) == pytest.approx(0.99)


def recu_np(w, alpha, tau, eps=1e-5):
    w1, z, sigma = standardize_np(w, eps, 2 * math.sqrt(2))
    q_tau = -np.abs(w1).mean() * math.log(2 - 2 * tau)
    w2 = np.clip(w1, -q_tau, q_tau)
    return w1, z, sigma, q_tau, w2


@pytest.mark.parametrize("shape", SHAPES)
def test_recu_weight_forward_backward(shape):
    w = rng.standard_normal(shape) * 0.05
    alpha = tb.tensor(rng.uniform(0.5, 1.5, shape[0]), requires_grad=True)
    tau = 0.85
    y, dw, g = forward_backward(lambda t: Wq.recu_weight(t, alpha, tau=tau), w)
    w1, z, sigma, q_tau, w2 = recu_np(w, alpha.data, tau)
    a = alpha.data.reshape((-1,) + (1,) * (w.ndim - 1))
    np.testing.assert_allclose(y, a * np_sign(w2))
    clamped = np.abs(w1) > q_tau
    assert clamped.any() and not clamped.all()  # the clamp matters in this test
    g_w1 = g * a * ~clamped                     # identity STE, then the clamp's window
    expected = standardize_backward_np(2 * math.sqrt(2) * g_w1, z, sigma)
    np.testing.assert_allclose(dw, expected, rtol=1e-8, atol=1e-10)
    # α: dα_o = Σ over channel o of dy·sign(w2)
    axes = tuple(range(1, w.ndim))
    np.testing.assert_allclose(alpha.grad, (g * np_sign(w2)).sum(axis=axes))


def test_recu_alpha_gradient_by_finite_differences():
    w = rng.standard_normal((3, 2, 3, 3))
    alpha = rng.uniform(0.5, 1.5, 3)
    gradcheck(lambda a: Wq.recu_weight(tb.tensor(w), a, tau=0.9), alpha)


def test_recu_weight_quantizer_zero_maps_to_plus_alpha():
    w = symmetric_rows(3, 4)
    q = quant.RecuWeight(channels=3)
    y = q(tb.tensor(w)).data
    assert (y[:, 4] == q.alpha.data).all()
    assert q.alpha.shape == (3,)


def test_recu_weight_needs_channels():
    with pytest.raises(ConfigError, match="channels"):
        quant.make_quantizer("recu_weight")(tb.tensor(np.ones((2, 3))))


# --- Progressive (BNext) -----------------------------------------------------------------------


def test_progressive_temperature_decays_and_becomes_sign():
    q = quant.make_quantizer("progressive")
    assert float(q.temperature) == 1.0
    for epoch in (1, 2, 10):
        q.set_progress(epoch, 300)
        assert float(q.temperature) == pytest.approx(0.9 ** epoch)
    q.set_progress(5, 300)
    w = with_zeros(rng.uniform(-1, 1, (4, 6)))
    y, dw, g = forward_backward(q, w)
    np.testing.assert_allclose(y, np.clip(w / 0.9 ** 5, -1, 1))
    np.testing.assert_array_equal(dw, g)  # identity backward
    # 0.9^152 ≈ 1.1e-7 is still soft; 0.9^153 ≈ 9.9e-8 < 1e-7 is the exact sign
    q.set_progress(152, 300)
    assert float(q.temperature) >= 1e-7
    soft = q(tb.tensor(w)).data
    assert (soft[w == 0] == 0).all()
    q.set_progress(153, 300)
    assert float(q.temperature) < 1e-7
    y, dw, g = forward_backward(q, w)
    np.testing.assert_array_equal(y, np_sign(w))
    assert (y[w == 0] == 1).all()
    np.testing.assert_array_equal(dw, g)


def test_progressive_clamps_latent_weights_in_place_in_training_only():
    q = quant.make_quantizer("progressive")
    p = tb.nn.Parameter(np.array([[-3.0, -1.0, 0.5, 2.0]]))
    q.eval()
    q(p)
    np.testing.assert_array_equal(p.data, [[-3.0, -1.0, 0.5, 2.0]])
    q.train()
    q(p)
    np.testing.assert_array_equal(p.data, [[-1.5, -1.0, 0.5, 1.5]])
