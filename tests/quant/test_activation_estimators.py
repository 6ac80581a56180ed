"""Activation estimators: forward against NumPy, backward against each written surrogate formula.

The expected gradients are explicit NumPy expressions of the papers' formulas (finite differences
of sign() would be meaningless); where the surrogate is the derivative of a smooth curve, that
curve is checked by finite differences too.
"""

import math

import numpy as np
import pytest

import tinybnn as tb
from tinybnn import quant
from tinybnn.errors import ConfigError
from tinybnn.gradcheck import gradcheck
from tinybnn.quant import activation as A

from .helpers import forward_backward, np_sign, with_zeros

rng = np.random.default_rng(1234)
X = with_zeros(rng.uniform(-2.5, 2.5, size=(4, 3, 5, 5)))


def swish_grad(x, beta):
    return beta * (2 - beta * x * np.tanh(beta * x / 2)) / (1 + np.cosh(beta * x))


# (name, options, expected dx/dy as a function of x)
SIGN_ESTIMATORS = [
    ("ste_sign", {}, lambda x: (np.abs(x) <= 1).astype(float)),
    ("ste_sign", {"clip": 1.5}, lambda x: (np.abs(x) <= 1.5).astype(float)),
    ("identity_ste", {}, lambda x: np.ones_like(x)),
    ("approx_sign", {}, lambda x: np.maximum(0, 2 - 2 * np.abs(x))),
    ("swish_sign", {}, lambda x: swish_grad(x, 5.0)),
    ("swish_sign", {"beta": 2.0}, lambda x: swish_grad(x, 2.0)),
    ("ede", {}, lambda x: 10 * 0.1 * (1 - np.tanh(0.1 * x) ** 2)),  # epoch 0: t = 0.1, k = 10
]


@pytest.mark.parametrize("name, options, expected", SIGN_ESTIMATORS)
def test_sign_estimators_forward_and_backward(name, options, expected):
    q = quant.make_quantizer(name, **options)
    y, dx, g = forward_backward(q, X)
    np.testing.assert_array_equal(y, np_sign(X))
    assert (y[X == 0] == 1).all()  # sign(0) = +1
    np.testing.assert_allclose(dx, g * expected(X), rtol=1e-12, atol=1e-12)


def test_functional_forms_match_the_quantizers():
    for fn, q in [(A.approx_sign, quant.make_quantizer("approx_sign")),
                  (A.identity_ste, quant.make_quantizer("identity_ste")),
                  (lambda x: A.swish_sign(x, 5.0), quant.make_quantizer("swish_sign")),
                  (lambda x: A.ede_sign(x, 0.1, 10.0), quant.make_quantizer("ede"))]:
        y1, dx1, _ = forward_backward(fn, X, seed=3)
        y2, dx2, _ = forward_backward(q, X, seed=3)
        np.testing.assert_array_equal(y1, y2)
        np.testing.assert_array_equal(dx1, dx2)


def central_difference(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


def test_surrogates_are_derivatives_of_their_smooth_curves():
    x = rng.uniform(-1.8, 1.8, size=200)
    x = x[np.abs(np.abs(x) - 1) > 1e-3]  # away from the kinks of ApproxSign at ±1
    x = x[np.abs(x) > 1e-3]             # and at 0

    def approx_curve(v):  # Bi-Real Eq. 5
        return np.where(v < -1, -1.0, np.where(v < 0, 2 * v + v * v,
                                               np.where(v < 1, 2 * v - v * v, 1.0)))

    def swish_curve(v, beta=5.0):  # BNN+: SS_β(x) = 2σ(βx)(1 + βx(1 − σ(βx))) − 1
        s = 1 / (1 + np.exp(-beta * v))
        return 2 * s * (1 + beta * v * (1 - s)) - 1

    def ede_curve(v, t=0.7, k=1 / 0.7):  # IR-Net: k·tanh(t·x)
        return k * np.tanh(t * v)

    for curve, fn in [(approx_curve, A.approx_sign), (swish_curve, A.swish_sign),
                      (ede_curve, lambda v: A.ede_sign(v, t=0.7, k=1 / 0.7))]:
        _, dx, _ = forward_backward(fn, x, grad=np.ones_like(x))
        np.testing.assert_allclose(dx, central_difference(curve, x), rtol=1e-5, atol=1e-6)


def test_swish_sign_backward_does_not_overflow_float32():
    x = np.array([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=np.float32)
    t = tb.tensor(x, requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        A.swish_sign(t).backward(np.ones_like(x))
    assert t.grad.dtype == np.float32
    assert np.isfinite(t.grad).all()
    np.testing.assert_allclose(t.grad[[0, 1, 3, 4]], 0.0, atol=1e-12)
    np.testing.assert_allclose(t.grad[2], 5.0)  # β(2 − 0)/(1 + cosh 0) = β = 5


# --- EDE schedule ------------------------------------------------------------------------------


@pytest.mark.parametrize("epoch, t, k", [(0, 0.1, 10.0), (50, 1.0, 1.0), (100, 10.0, 1.0),
                                         (25, 10 ** -0.5, 10 ** 0.5)])
def test_ede_schedule_points(epoch, t, k):
    got_t, got_k = A.ede_schedule(epoch, 100)
    assert got_t == pytest.approx(t) and got_k == pytest.approx(k)


def test_ede_quantizer_follows_set_progress():
    q = quant.make_quantizer("ede")
    assert float(q.t) == pytest.approx(0.1) and float(q.k) == pytest.approx(10)
    q.set_progress(30, 40)
    t = 0.1 * 10 ** (30 / 40 * 2)
    assert float(q.t) == pytest.approx(t) and float(q.k) == pytest.approx(1.0)
    _, dx, g = forward_backward(q, X)
    np.testing.assert_allclose(dx, g * t * (1 - np.tanh(t * X) ** 2), rtol=1e-10)
    # the schedule is a buffer: a checkpoint restores it
    fresh = quant.make_quantizer("ede")
    fresh.load_state_dict(q.state_dict())
    assert float(fresh.t) == pytest.approx(t)


def test_advance_schedules_reaches_every_quantizer():
    model = tb.nn.Sequential(tb.nn.BinaryLinear(4, 4, input_quantizer="ede",
                                                weight_quantizer="irnet_weight"),
                             tb.nn.BinaryLinear(4, 4, input_quantizer="ede"))
    quant.advance_schedules(model, 10, 10)
    ts = [float(m.t) for m in model.modules() if isinstance(m, (A.EDE, quant.IrnetWeight))]
    assert len(ts) == 3 and ts == pytest.approx([10.0] * 3)


# --- ReCU activations --------------------------------------------------------------------------


def recu_expected_grad(a, g, eps=1e-5):
    """ReCU (train mode): a0 = a/σ, σ = √(var_CHW(a, ddof=1) + eps) per sample; the backward is
    ApproxSign's window at a0, then through the rescaling:
    da_j = r·g0_j − r³·(a_j − μ)/(M − 1)·Σ_i g0_i·a_i,  r = 1/σ,  g0 = g·max(0, 2 − 2|a0|)."""
    axes = tuple(range(1, a.ndim))
    m = np.prod(a.shape[1:])
    mu = a.mean(axis=axes, keepdims=True)
    r = 1 / np.sqrt(a.var(axis=axes, ddof=1, keepdims=True) + eps)
    a0 = a * r
    g0 = g * np.maximum(0, 2 - 2 * np.abs(a0))
    return r * g0 - r ** 3 * (a - mu) / (m - 1) * (g0 * a).sum(axis=axes, keepdims=True)


@pytest.mark.parametrize("shape", [(3, 4, 5, 5), (6, 7)])
def test_recu_act_train_mode(shape):
    a = with_zeros(rng.standard_normal(shape) * 0.7)
    q = quant.make_quantizer("recu_act")
    y, dx, g = forward_backward(q, a)
    np.testing.assert_array_equal(y, np_sign(a))
    assert (y[a == 0] == 1).all()
    np.testing.assert_allclose(dx, recu_expected_grad(a, g), rtol=1e-10, atol=1e-12)


def test_recu_act_eval_mode_uses_the_raw_activation():
    a = rng.standard_normal((3, 4, 5, 5)) * 3
    q = quant.make_quantizer("recu_act").eval()
    y, dx, g = forward_backward(q, a)
    np.testing.assert_array_equal(y, np_sign(a))
    np.testing.assert_allclose(dx, g * np.maximum(0, 2 - 2 * np.abs(a)))


def test_recu_rescaling_forward_and_gradcheck():
    a = rng.standard_normal((2, 3, 4, 4))
    y = A.ScaleByStd.apply(tb.tensor(a), eps=1e-5).data
    expected = a / np.sqrt(a.var(axis=(1, 2, 3), ddof=1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, expected)
    gradcheck(lambda t: A.ScaleByStd.apply(t, eps=1e-5), a)


def test_recu_act_all_zero_sample_gives_plus_one():
    y, _, _ = forward_backward(quant.make_quantizer("recu_act"), np.zeros((2, 3, 2, 2)))
    assert (y == 1).all()


# --- RSign -------------------------------------------------------------------------------------


def test_rsign_forward_backward_per_channel_nchw():
    q = quant.RSign(channels=3)
    b = rng.uniform(-0.5, 0.5, 3)
    q.b.data = b.copy()
    x = rng.uniform(-2, 2, (4, 3, 5, 5))
    x[0, :, 0, 0] = -b  # x + b = 0 exactly: sign(0) = +1
    y, dx, g = forward_backward(q, x)
    shifted = x + b.reshape(1, 3, 1, 1)
    np.testing.assert_array_equal(y, np_sign(shifted))
    assert (y[0, :, 0, 0] == 1).all()
    window = np.maximum(0, 2 - 2 * np.abs(shifted))
    np.testing.assert_allclose(dx, g * window, rtol=1e-12)
    np.testing.assert_allclose(q.b.grad, (g * window).sum(axis=(0, 2, 3)), rtol=1e-6)


def test_rsign_features_on_last_axis():
    b = tb.tensor(rng.uniform(-0.5, 0.5, 6), requires_grad=True)
    x = rng.uniform(-2, 2, (2, 5, 6))
    y, dx, g = forward_backward(lambda t: A.rsign(t, b, axis=-1), x)
    shifted = x + b.data
    np.testing.assert_array_equal(y, np_sign(shifted))
    window = np.maximum(0, 2 - 2 * np.abs(shifted))
    np.testing.assert_allclose(b.grad, (g * window).sum(axis=(0, 1)))


def test_rsign_with_bnext_clipped_ste():
    q = quant.RSign(channels=3, clip=1.5)
    q.b.data = np.array([0.2, -0.3, 0.0])
    x = rng.uniform(-2.5, 2.5, (2, 3, 4))
    y, dx, g = forward_backward(q, x)
    shifted = x + q.b.data.reshape(1, 3, 1)
    np.testing.assert_array_equal(y, np_sign(shifted))
    np.testing.assert_allclose(dx, g * (np.abs(shifted) <= 1.5))
    np.testing.assert_allclose(q.b.grad, (g * (np.abs(shifted) <= 1.5)).sum(axis=(0, 2)), rtol=1e-6)


def test_rsign_without_channels_is_a_clear_error():
    with pytest.raises(ConfigError, match="channels"):
        quant.make_quantizer("rsign")(tb.tensor(np.ones((2, 3))))


# --- Heaviside ---------------------------------------------------------------------------------


def test_heaviside_levels_01():
    q = quant.make_quantizer("heaviside")
    assert q.levels == "01"
    y, dx, g = forward_backward(q, X)
    np.testing.assert_array_equal(y, (X >= 0).astype(float))
    assert (y[X == 0] == 1).all()  # H(0) = 1 = (sign(0) + 1)/2
    np.testing.assert_allclose(dx, g * (np.abs(X) <= 1))


# --- Elastic (BiT / GSB) -----------------------------------------------------------------------

ALPHA_SCALES = {"mean": lambda n: 1 / n, "lsq": lambda n: 1 / math.sqrt(n), "sum": lambda n: 1.0}


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("mode", ["mean", "lsq", "sum"])
def test_elastic_forward_and_gradients(signed, mode):
    x = rng.uniform(-1.5, 2.5, (4, 3, 6)) if signed else rng.uniform(0, 1.2, (4, 3, 6))
    b0 = rng.uniform(-0.2, 0.2, 3)
    alpha = tb.tensor(np.array([0.8]), requires_grad=True)
    b = tb.tensor(b0, requires_grad=True)
    y, dx, g = forward_backward(
        lambda t: A.elastic_binarize(t, alpha, b, signed=signed, axis=1, alpha_grad=mode), x)
    u = (x + b0.reshape(1, 3, 1)) / 0.8
    if signed:
        q = np_sign(u)
        inside = np.abs(u) <= 1
    else:
        q = np.clip(np.round(u), 0, 1)
        inside = (u >= 0) & (u <= 1)
    np.testing.assert_allclose(y, 0.8 * q)
    np.testing.assert_allclose(dx, g * inside)
    np.testing.assert_allclose(b.grad, (g * inside).sum(axis=(0, 2)))
    d = np.where(inside, q - u, q)  # GSB Eq. 29: sign(u) − u (or q − u) inside, sign(u) (q) outside
    np.testing.assert_allclose(alpha.grad, [(g * d).sum() * ALPHA_SCALES[mode](x.size)])


def test_elastic_unsigned_threshold_at_half_and_signed_zero():
    alpha, b = tb.tensor(np.array([1.0])), tb.tensor(np.array([0.0]))
    x = np.array([0.0, 0.49, 0.5, 0.51, 1.0, 3.0, -1.0])
    y = A.elastic_binarize(tb.tensor(x), alpha, b, signed=False).data
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1, 1, 0])  # GSB Eq. 3: 1 iff x > 0.5
    y = A.elastic_binarize(tb.tensor(x), alpha, b, signed=True).data
    np.testing.assert_array_equal(y, np_sign(x))


def test_elastic_quantizer_initialises_alpha_from_the_first_batch():
    x = rng.standard_normal((8, 4)) * 3
    q = quant.make_quantizer("elastic")
    q.build(4, -1)
    assert q.b.shape == (4,)
    q(tb.tensor(x))
    assert float(q.alpha.data[0]) == pytest.approx(np.abs(x).mean(), rel=1e-6)
    q(tb.tensor(x * 10))  # only once
    assert float(q.alpha.data[0]) == pytest.approx(np.abs(x).mean(), rel=1e-6)
    u = quant.make_quantizer("elastic", signed=False)
    assert u.levels == "01"
    u(tb.tensor(np.abs(x)))
    assert float(u.alpha.data[0]) == pytest.approx(2 * np.abs(x).mean(), rel=1e-6)


def test_elastic_bad_alpha_grad_mode():
    with pytest.raises(ConfigError, match="alpha_grad"):
        quant.make_quantizer("elastic", alpha_grad="median")
