"""batch_norm and layer_norm: forward and running statistics against the formulas in NumPy,
backward against finite differences in float64."""

import numpy as np
import pytest

import tinybnn as tb
import tinybnn.functional as F
from tinybnn.gradcheck import gradcheck

rng = np.random.default_rng(4)


def reference_batch_norm(x, mean, var, weight, bias, eps=1e-5):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    x_hat = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    return x_hat * weight.reshape(shape) + bias.reshape(shape)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 2, 4, 5)])
def test_batch_norm_training_forward_and_running_stats(shape):
    x = rng.standard_normal(shape) * 3 + 1
    c = shape[1]
    weight, bias = rng.standard_normal(c), rng.standard_normal(c)
    running_mean, running_var = rng.standard_normal(c), rng.random(c) + 0.5
    old_mean, old_var = running_mean.copy(), running_var.copy()
    y = F.batch_norm(tb.tensor(x), running_mean, running_var, tb.tensor(weight), tb.tensor(bias),
                     training=True, momentum=0.2, eps=1e-5)
    axes = tuple(i for i in range(x.ndim) if i != 1)
    mean, var = x.mean(axis=axes), x.var(axis=axes)                 # biased, for normalising
    np.testing.assert_allclose(y.data, reference_batch_norm(x, mean, var, weight, bias),
                               rtol=1e-10, atol=1e-10)
    unbiased = x.var(axis=axes, ddof=1)
    np.testing.assert_allclose(running_mean, 0.8 * old_mean + 0.2 * mean, rtol=1e-12)
    np.testing.assert_allclose(running_var, 0.8 * old_var + 0.2 * unbiased, rtol=1e-12)


@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 3, 4)])
def test_batch_norm_training_backward(shape):
    c = shape[1]
    x = rng.standard_normal(shape)
    weight, bias = rng.standard_normal(c), rng.standard_normal(c)
    gradcheck(lambda a, w, b: F.batch_norm(a, None, None, w, b, training=True), x, weight, bias)
    gradcheck(lambda a: F.batch_norm(a, None, None, training=True), x)   # no affine


@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 3, 4)])
def test_batch_norm_eval(shape):
    c = shape[1]
    x = rng.standard_normal(shape)
    weight, bias = rng.standard_normal(c), rng.standard_normal(c)
    running_mean, running_var = rng.standard_normal(c), rng.random(c) + 0.5
    before = running_mean.copy(), running_var.copy()
    y = F.batch_norm(tb.tensor(x), running_mean, running_var, tb.tensor(weight), tb.tensor(bias),
                     training=False)
    np.testing.assert_allclose(y.data, reference_batch_norm(x, running_mean, running_var, weight,
                                                            bias), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(running_mean, before[0])       # eval leaves them alone
    np.testing.assert_array_equal(running_var, before[1])
    gradcheck(lambda a, w, b: F.batch_norm(a, running_mean, running_var, w, b, training=False),
              x, weight, bias)


def test_batch_norm_float32_stays_float32():
    x = tb.tensor(rng.standard_normal((8, 4, 3, 3)).astype(np.float32), requires_grad=True)
    mean, var = np.zeros(4, np.float32), np.ones(4, np.float32)
    y = F.batch_norm(x, mean, var, training=True)
    y.backward(np.ones(y.shape, np.float32))
    assert y.dtype == np.float32 and x.grad.dtype == np.float32 and mean.dtype == np.float32
    np.testing.assert_allclose(y.data.mean(axis=(0, 2, 3)), 0, atol=1e-6)


def test_batch_norm_errors():
    x = tb.tensor(np.zeros((4, 3, 2, 2)))
    with pytest.raises(tb.ShapeError, match=r"3 channels.*running_mean has shape \(5,\)"):
        F.batch_norm(x, np.zeros(5), np.ones(5), training=True)
    with pytest.raises(tb.ShapeError, match="more than 1 value"):
        F.batch_norm(tb.tensor(np.zeros((1, 3))), None, None, training=True)
    with pytest.raises(tb.ConfigError, match="running_mean"):
        F.batch_norm(x, None, None, training=False)


@pytest.mark.parametrize("shape, normalized", [((4, 6), (6,)), ((2, 3, 4, 5), (4, 5))])
def test_layer_norm(shape, normalized):
    x = rng.standard_normal(shape) * 2 + 1
    weight, bias = rng.standard_normal(normalized), rng.standard_normal(normalized)
    y = F.layer_norm(tb.tensor(x), normalized, tb.tensor(weight), tb.tensor(bias))
    axes = tuple(range(x.ndim - len(normalized), x.ndim))
    x_hat = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True)
                                                              + 1e-5)
    np.testing.assert_allclose(y.data, x_hat * weight + bias, rtol=1e-10, atol=1e-10)
    gradcheck(lambda a, w, b: F.layer_norm(a, normalized, w, b), x, weight, bias)
    gradcheck(lambda a: F.layer_norm(a, normalized), x)


def test_layer_norm_errors():
    with pytest.raises(tb.ShapeError, match="does not end with"):
        F.layer_norm(tb.tensor(np.zeros((2, 3))), (4,))


def test_norms_match_torch():
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((8, 4, 5, 5)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    w, b = rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    mean, var = np.zeros(4, np.float32), np.ones(4, np.float32)
    tmean, tvar = torch.zeros(4), torch.ones(4)
    xt, wt, bt = (tb.tensor(a, requires_grad=True) for a in (x, w, b))
    F.batch_norm(xt, mean, var, wt, bt, training=True).backward(g)
    tx, tw, tbias = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    torch.nn.functional.batch_norm(tx, tmean, tvar, tw, tbias, training=True).backward(
        torch.tensor(g))
    for ours, theirs in ((xt.grad, tx.grad), (wt.grad, tw.grad), (bt.grad, tbias.grad),
                         (mean, tmean), (var, tvar)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=1e-5)
    xt = tb.tensor(x, requires_grad=True)
    F.layer_norm(xt, (5, 5)).backward(g)
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.layer_norm(tx, (5, 5)).backward(torch.tensor(g))
    np.testing.assert_allclose(xt.grad, tx.grad.numpy(), rtol=1e-4, atol=1e-5)

