"""The fused Numba kernels (tinybnn.functional.fused) against the NumPy formulas they replace, and
every Function that uses them against its own NumPy path (``fused.supports`` patched to False)."""

import numpy as np
import pytest

import tinybnn as tb
import tinybnn.functional as F
from tinybnn.functional import fused, norm
from tinybnn.quant import ste_sign

rng = np.random.default_rng(11)
DTYPES = [np.float32, np.float64]


def special_values(shape, dtype):
    """Random values with exact zeros, −0, ±1 and ±clip boundary cases mixed in."""
    x = rng.standard_normal(shape).astype(dtype) * 1.5
    flat = x.reshape(-1)
    flat[:6] = [0.0, -0.0, 1.0, -1.0, 1.5, -1.5]
    return x


def strided(x):
    """A non-contiguous view of x's values (every other column of a wider array)."""
    wide = np.repeat(x[..., None], 2, axis=-1)
    return wide[..., 0]


@pytest.fixture(autouse=True)
def kernels_for_every_size(monkeypatch):
    """The small test arrays take the kernels too (not the NumPy path, below the size limit)."""
    monkeypatch.setattr(fused, "MIN_PARALLEL_SIZE", 0)


def test_small_arrays_take_the_numpy_formula(monkeypatch):
    monkeypatch.setattr(fused, "MIN_PARALLEL_SIZE", 100)
    assert not fused.supports(np.zeros(99, np.float32))
    assert fused.supports(np.zeros((10, 10), np.float32))


def test_supports():
    a32, a64 = np.zeros(3, np.float32), np.zeros(3)
    assert fused.supports(a32) and fused.supports(a64, a64)
    assert not fused.supports(a32, a64)                       # one dtype
    assert not fused.supports(np.zeros(3, np.float16))
    assert not fused.supports(np.zeros(3, np.int64))
    assert not fused.supports(1.0) and not fused.supports(a32, 2.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sign(dtype):
    x = special_values((3, 4, 5), dtype)
    x.reshape(-1)[7] = np.nan
    expected = ((x >= 0).astype(dtype) * 2 - 1)               # sign(0) = sign(−0) = +1, NaN −1
    for a in (x, strided(x)):
        y = fused.sign(a)
        assert y.dtype == dtype and y.flags.c_contiguous
        np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip(dtype):
    x = special_values((2, 3, 7), dtype)
    x[0, 0, 6] = np.nan
    for low, high in ((-1.0, 1.0), (-0.5, 2.0)):
        np.testing.assert_array_equal(fused.clip(strided(x), low, high),
                                      np.clip(x, low, high))     # NaN stays NaN


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("clip", [1.0, 1.5, 0.1, np.inf])
def test_pass_inside(dtype, clip):
    x = special_values((4, 33), dtype)
    x[0, 10] = dtype(0.1)              # float32(0.1) > 0.1: the bounds are rounded to x's dtype
    x[0, 11] = np.nan
    g = rng.standard_normal(x.shape).astype(dtype)
    g[0, :2] = [np.nan, -3.0]          # outside the window: NaN·0 = NaN, −3·0 = −0
    x[0, :2] = 9.0
    expected = g * (np.abs(x) <= clip)
    np.testing.assert_array_equal(fused.pass_inside(g, x, -clip, clip), expected)
    np.testing.assert_array_equal(fused.pass_inside(strided(g), strided(x), -clip, clip),
                                  expected)
    np.testing.assert_array_equal(fused.pass_inside(g, x, -0.5, clip),
                                  g * ((x >= -0.5) & (x <= clip)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_add(dtype):
    a, b = (rng.standard_normal((5, 6, 7)).astype(dtype) for _ in range(2))
    np.testing.assert_array_equal(fused.add(a, b), a + b)
    np.testing.assert_array_equal(fused.add(strided(a), b), a + b)


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_kernels_match_formulas(dtype, tol, affine):
    x3 = (rng.standard_normal((6, 3, 50)) * 2 + 3).astype(dtype)
    g3 = rng.standard_normal(x3.shape).astype(dtype)
    weight = rng.standard_normal(3).astype(dtype) if affine else None
    bias = rng.standard_normal(3).astype(dtype) if affine else None
    y, mean, var, inv_std = fused.batch_norm_forward(x3, weight, bias, 1e-5)
    y_ref, mean_ref, var_ref, inv_std_ref = norm._train_forward(x3, weight, bias, 1e-5)
    assert y.dtype == dtype
    for ours, ref in ((y, y_ref), (mean, mean_ref), (var, var_ref), (inv_std, inv_std_ref)):
        np.testing.assert_allclose(ours, ref, rtol=tol, atol=tol)
    grads = fused.batch_norm_backward(strided(g3), x3, mean, inv_std, weight)
    refs = norm._backward(g3, x3, mean, inv_std, weight, training=True)
    for ours, ref in zip(grads, refs):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, ref, rtol=tol, atol=tol * 10)


def run_batch_norm(x, training):
    """Forward and backward of a BatchNorm2d-like call; returns y, dx, dγ, dβ, running stats."""
    c = x.shape[1]
    xt = tb.tensor(x, requires_grad=True)
    w = tb.tensor(np.linspace(0.5, 2.0, c).astype(x.dtype), requires_grad=True)
    b = tb.tensor(np.linspace(-1.0, 1.0, c).astype(x.dtype), requires_grad=True)
    running_mean, running_var = np.full(c, 0.5, x.dtype), np.full(c, 2.0, x.dtype)
    y = F.batch_norm(xt, running_mean, running_var, w, b, training=training, momentum=0.1)
    y.backward(np.cos(np.arange(y.size)).reshape(y.shape).astype(x.dtype))
    return y.data, xt.grad, w.grad, b.grad, running_mean, running_var


@pytest.fixture
def image_batch():
    return (rng.standard_normal((8, 4, 5, 5)) * 3 + 1).astype(np.float32)


def test_batch_norm_function_fused_matches_numpy_path(image_batch, monkeypatch):
    fast = run_batch_norm(image_batch, training=True)
    monkeypatch.setattr(fused, "supports", lambda *arrays: False)
    slow = run_batch_norm(image_batch, training=True)
    for ours, ref in zip(fast, slow):        # y, dx, dγ, dβ, running mean and (unbiased) var
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


def test_batch_norm_eval_is_the_exact_float32_formula(image_batch):
    """Eval mode keeps its exact float32 operation order (the bit-packed export relies on it)."""
    y = run_batch_norm(image_batch, training=False)[0]
    mean, var = np.full(4, 0.5, np.float32), np.full(4, 2.0, np.float32)
    w, b = np.linspace(0.5, 2.0, 4).astype(np.float32), np.linspace(-1, 1, 4).astype(np.float32)
    x_hat = image_batch.reshape(8, 4, -1) - mean[:, None]
    x_hat *= (1.0 / np.sqrt(var + 1e-5)).astype(np.float32)[:, None]
    expected = x_hat * w[:, None]
    expected += b[:, None]
    np.testing.assert_array_equal(y, expected.reshape(image_batch.shape))


@pytest.mark.parametrize("op", [lambda t: ste_sign(t, clip=1.0), lambda t: ste_sign(t, 1.5),
                                F.hardtanh, lambda t: F.hardtanh(t, -0.5, 2.0),
                                lambda t: t + t * 2.0])
def test_elementwise_functions_fused_match_numpy_path(op, monkeypatch):
    x = special_values((3, 5, 4), np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)

    def run():
        t = tb.tensor(x, requires_grad=True)
        y = op(t)
        y.backward(g)
        return y.data, t.grad

    fast = run()
    monkeypatch.setattr(fused, "supports", lambda *arrays: False)
    slow = run()
    for ours, ref in zip(fast, slow):
        assert ours.dtype == np.float32
        np.testing.assert_array_equal(ours, ref)
