"""The generalized STEs (SLSTE, PLSTE, DLSTE) against the thesis's written shapes (Ch. 3)."""

import numpy as np
import pytest

import tinybnn as tb
from tinybnn import nn, quant
from tinybnn.errors import ConfigError
from tinybnn.quant import activation as A

from .helpers import forward_backward, np_sign, with_zeros

GRID = np.linspace(-2.5, 2.5, 2001)          # step 1/400: hits the window edges ±1/a exactly


def written_slste(x, a):
    return np.where((x > -1 / a) & (x <= 1 / a), a, 0.0)


def written_dlste(x, a_n, a_p):
    out = np.zeros_like(x)
    negative = (-1 / a_n <= x) & (x <= 0)
    positive = (0 < x) & (x <= 1 / a_p)
    out[negative] = 2 * a_n * (1 + a_n * x[negative])
    out[positive] = 2 * a_p * (1 - a_p * x[positive])
    return out


CASES = [("slste", {"a": a}, lambda x, a=a: written_slste(x, a)) for a in (0.5, 1.0, 2.0, 4.0)] + \
    [("plste", {"a": a}, lambda x, a=a: written_dlste(x, a, a)) for a in (0.5, 1.0, 2.0)] + \
    [("dlste", {"a_n": n, "a_p": p}, lambda x, n=n, p=p: written_dlste(x, n, p))
     for n, p in ((1.0, 1.0), (0.5, 2.0), (4.0, 0.8))]


@pytest.mark.parametrize("name, options, written", CASES)
def test_forward_is_sign_and_backward_is_the_written_shape(name, options, written):
    q = quant.make_quantizer(name, **options)
    x = with_zeros(GRID)
    y, dx, grad = forward_backward(q, x)
    np.testing.assert_array_equal(y, np_sign(x))                 # sign(0) = +1
    np.testing.assert_allclose(dx, grad * written(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, options, written", CASES)
def test_every_shape_keeps_the_area_of_the_baseline(name, options, written):
    """∫ S(u) du = 2 (= Q_n + Q_p) for every a: the thesis's "mass preservation"."""
    u = np.linspace(-5, 5, 400_001)
    area = np.trapezoid(quant.make_quantizer(name, **options).surrogate(u), u)
    assert area == pytest.approx(2.0, abs=1e-3)


def test_a_equal_to_one_is_the_clipped_ste_and_approx_sign():
    x = GRID[np.abs(np.abs(GRID) - 1) > 1e-9]     # tinybnn's ste_sign also passes x = −1
    _, slste, grad = forward_backward(quant.make_quantizer("slste"), x)
    _, clipped, _ = forward_backward(quant.make_quantizer("ste_sign"), x, grad)
    np.testing.assert_array_equal(slste, clipped)
    _, plste, _ = forward_backward(quant.make_quantizer("plste"), x, grad)
    _, approx, _ = forward_backward(A.approx_sign, x, grad)
    np.testing.assert_allclose(plste, approx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, options", [("slste", {"a": 0.7}), ("plste", {"a": 1.6}),
                                           ("dlste", {"a_n": 0.6, "a_p": 2.5})])
def test_d_surrogate_da_is_the_derivative_with_the_window_held_fixed(name, options):
    q = quant.make_quantizer(name, **options)
    x = np.random.default_rng(0).uniform(-2, 2, 5000)
    eps = 1e-6
    got = q.d_surrogate_da(x)
    names = ["a"] if name != "dlste" else ["a_n", "a_p"]
    got = got if isinstance(got, tuple) else (got,)
    for key, derivative in zip(names, got):
        window = q.surrogate(x) != 0
        shifted = quant.make_quantizer(name, **{**options, key: options[key] + eps})
        still_inside = window & (shifted.surrogate(x) != 0)    # away from the window's edges
        numeric = (shifted.surrogate(x) - q.surrogate(x)) / eps
        np.testing.assert_allclose(derivative[still_inside], numeric[still_inside], atol=1e-4)
        assert (derivative[~window] == 0).all()


def test_shapes_train_a_binary_layer():
    """A BinaryLinear with a GSTE on inputs and weights: the gradients reach the latent weights
    through the shape (checked against the written formula for the weights)."""
    rng = np.random.default_rng(1)
    layer = nn.BinaryLinear(6, 3, input_quantizer="plste", weight_quantizer="slste", rng=rng)
    layer.weight_quantizer.a = 2.0
    x = tb.tensor(rng.uniform(-1, 1, (5, 6)), requires_grad=True)
    y = layer(x)
    grad = rng.standard_normal(y.shape)
    y.backward(grad)
    w = layer.weight.data
    xb = np_sign(x.data)
    expected_dw = (grad.T @ xb) * written_slste(w, 2.0)
    np.testing.assert_allclose(layer.weight.grad, expected_dw, rtol=1e-6, atol=1e-6)
    expected_dx = (grad @ np_sign(w)) * written_dlste(x.data, 1.0, 1.0)
    np.testing.assert_allclose(x.grad, expected_dx, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name, options, key", [
    ("slste", {"a": 0}, "slste a"), ("plste", {"a": -1.0}, "plste a"),
    ("dlste", {"a_n": float("inf")}, "dlste a_n"), ("dlste", {"a_p": "x"}, "dlste a_p")])
def test_shape_parameters_must_be_positive_and_finite(name, options, key):
    with pytest.raises(ConfigError, match=f"{key} must be a positive finite number"):
        quant.make_quantizer(name, **options)
