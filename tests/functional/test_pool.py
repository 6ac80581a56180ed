"""max_pool2d, avg_pool2d, adaptive_avg_pool2d: forward against NumPy sliding windows, backward
against finite differences in float64."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import tinybnn as tb
import tinybnn.functional as F
from tinybnn.gradcheck import gradcheck

rng = np.random.default_rng(3)


def windows(x, kernel, stride, padding, value):
    """(N, C, OH, OW, kh, kw): every pooling window of x padded with ``value``."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)
    return sliding_window_view(xpad, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


def distinct(*shape):
    """Values with no ties, at least 1e-2 apart (finite differences never swap a maximum)."""
    return rng.permutation(np.arange(np.prod(shape))).reshape(shape) * 1e-2 + 0.5


# (input shape, kernel, stride, padding)
CASES = [
    ((2, 3, 6, 6), (2, 2), (2, 2), (0, 0)),
    ((2, 2, 7, 5), (3, 3), (2, 2), (1, 1)),        # overlapping windows, padding
    ((1, 2, 5, 6), (2, 3), (1, 2), (1, 1)),        # non-square kernel and stride
    ((2, 1, 5, 5), (3, 3), (3, 3), (0, 0)),        # rows and columns left over
]


@pytest.mark.parametrize("shape, kernel, stride, padding", CASES)
def test_max_pool2d(shape, kernel, stride, padding):
    x = distinct(*shape)
    y = F.max_pool2d(tb.tensor(x), kernel, stride, padding)
    expected = windows(x, kernel, stride, padding, -np.inf).max(axis=(4, 5))
    np.testing.assert_array_equal(y.data, expected)
    gradcheck(lambda a: F.max_pool2d(a, kernel, stride, padding), x)


@pytest.mark.parametrize("shape, kernel, stride, padding", CASES)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d(shape, kernel, stride, padding, count_include_pad):
    x = rng.standard_normal(shape)
    y = F.avg_pool2d(tb.tensor(x), kernel, stride, padding, count_include_pad)
    total = windows(x, kernel, stride, padding, 0.0).sum(axis=(4, 5))
    if count_include_pad:
        expected = total / (kernel[0] * kernel[1])
    else:
        real = windows(np.ones((1, 1) + shape[2:]), kernel, stride, padding, 0.0).sum(axis=(4, 5))
        expected = total / real
    np.testing.assert_allclose(y.data, expected, rtol=1e-12)
    gradcheck(lambda a: F.avg_pool2d(a, kernel, stride, padding, count_include_pad), x)


def test_pool_stride_defaults_to_kernel():
    x = rng.standard_normal((1, 2, 4, 6))
    np.testing.assert_array_equal(F.max_pool2d(tb.tensor(x), 2).data,
                                  x.reshape(1, 2, 2, 2, 3, 2).max(axis=(3, 5)))
    np.testing.assert_allclose(F.avg_pool2d(tb.tensor(x), 2).data,
                               x.reshape(1, 2, 2, 2, 3, 2).mean(axis=(3, 5)))


def test_max_pool2d_tie_sends_gradient_to_first_maximum():
    x = tb.tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad, [[[[1.0, 0.0], [0.0, 0.0]]]])


def test_adaptive_avg_pool2d_global():
    x = rng.standard_normal((3, 4, 5, 6))
    y = F.adaptive_avg_pool2d(tb.tensor(x), 1)
    assert y.shape == (3, 4, 1, 1)
    np.testing.assert_allclose(y.data, x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)
    gradcheck(lambda a: F.adaptive_avg_pool2d(a, 1), x)


def test_adaptive_avg_pool2d_sizes():
    x = rng.standard_normal((2, 3, 4, 6))
    even = F.adaptive_avg_pool2d(tb.tensor(x), (2, 3))
    np.testing.assert_allclose(even.data, x.reshape(2, 3, 2, 2, 3, 2).mean(axis=(3, 5)))
    # uneven: 5 rows into 3 bins -> [0, 2), [1, 4), [3, 5) as PyTorch
    x = rng.standard_normal((1, 2, 5, 4))
    y = F.adaptive_avg_pool2d(tb.tensor(x), (3, 1))
    expected = np.stack([x[:, :, a:b].mean(axis=(2, 3)) for a, b in [(0, 2), (1, 4), (3, 5)]],
                        axis=2)[..., None]
    np.testing.assert_allclose(y.data, expected, rtol=1e-12)
    gradcheck(lambda a: F.adaptive_avg_pool2d(a, (3, 1)), x)


def test_pool_errors():
    x = tb.tensor(np.zeros((1, 2, 4, 4)))
    with pytest.raises(tb.ShapeError, match="N, C, H, W"):
        F.max_pool2d(tb.tensor(np.zeros((2, 4, 4))), 2)
    with pytest.raises(tb.ConfigError, match="half the kernel"):
        F.avg_pool2d(x, 2, padding=2)
    with pytest.raises(tb.ShapeError, match="does not fit"):
        F.max_pool2d(x, 5)
    with pytest.raises(tb.ConfigError, match="output size"):
        F.adaptive_avg_pool2d(x, 5)


def test_pools_match_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x = rng.standard_normal((2, 3, 7, 8)).astype(np.float32)
    cases = [
        (lambda a: F.max_pool2d(a, 3, 2, 1), lambda t: tf.max_pool2d(t, 3, 2, 1)),
        (lambda a: F.avg_pool2d(a, 3, 2, 1), lambda t: tf.avg_pool2d(t, 3, 2, 1)),
        (lambda a: F.avg_pool2d(a, 3, 2, 1, False),
         lambda t: tf.avg_pool2d(t, 3, 2, 1, count_include_pad=False)),
        (lambda a: F.adaptive_avg_pool2d(a, (3, 5)), lambda t: tf.adaptive_avg_pool2d(t, (3, 5))),
    ]
    for ours, theirs in cases:
        xt = tb.tensor(x, requires_grad=True)
        y = ours(xt)
        g = rng.standard_normal(y.shape).astype(np.float32)
        y.backward(g)
        tx = torch.tensor(x, requires_grad=True)
        ty = theirs(tx)
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(xt.grad, tx.grad.numpy(), rtol=1e-5, atol=1e-6)
