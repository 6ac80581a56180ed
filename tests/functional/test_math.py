"""Operators and reductions: forward against NumPy, backward against finite differences."""

import numpy as np
import pytest

import tinybnn as tb
import tinybnn.functional as F
from tinybnn.gradcheck import gradcheck

rng = np.random.default_rng(0)


def r(*shape):
    return rng.standard_normal(shape)


def pos(*shape):
    return rng.uniform(0.5, 2.0, shape)


@pytest.mark.parametrize("op, npop", [
    (lambda a, b: a + b, np.add), (lambda a, b: a - b, np.subtract),
    (lambda a, b: a * b, np.multiply), (lambda a, b: a / b, np.divide),
])
@pytest.mark.parametrize("sa, sb", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)),
                                    ((3, 4), ())])
def test_broadcasting_binary_ops(op, npop, sa, sb):
    a, b = r(*sa), pos(*sb) if sb else np.float64(1.7)
    np.testing.assert_allclose(op(tb.tensor(a), tb.tensor(b)).data, npop(a, b))
    gradcheck(op, a, np.asarray(b))


def test_ops_with_python_constants_on_both_sides():
    a = r(3)
    gradcheck(lambda x: 2.0 - x * 3.0 + 1.0 / (x * x + 1.0), a)
    gradcheck(lambda x: 2.0 / (x * x + 1.0) - (-x), a)


@pytest.mark.parametrize("sa, sb", [((3, 4), (4, 5)), ((2, 3, 4), (4, 2)), ((4,), (4, 3)),
                                    ((3, 4), (4,)), ((2, 3, 4), (2, 4, 5))])
def test_matmul(sa, sb):
    a, b = r(*sa), r(*sb)
    np.testing.assert_allclose((tb.tensor(a) @ tb.tensor(b)).data, a @ b)
    gradcheck(lambda x, y: x @ y, a, b)


def test_pow_with_scalar_and_tensor_exponent():
    a, b = pos(3, 2), r(3, 2)
    np.testing.assert_allclose((tb.tensor(a) ** 3).data, a**3)
    gradcheck(lambda x: x ** 3, a)
    gradcheck(lambda x, y: x ** y, a, b)
    gradcheck(lambda y: 2.0 ** y, b)


@pytest.mark.parametrize("fn, ref, make", [
    (F.exp, np.exp, r), (F.log, np.log, pos), (F.sqrt, np.sqrt, pos), (F.abs, np.abs, r),
    (lambda x: -x, np.negative, r),
])
def test_elementwise(fn, ref, make):
    a = make(4, 3)
    np.testing.assert_allclose(fn(tb.tensor(a)).data, ref(a))
    gradcheck(fn, a)


def test_clip_passes_gradient_only_inside():
    a = np.array([-2.0, -0.5, 0.3, 1.5])
    x = tb.tensor(a, requires_grad=True)
    y = F.clip(x, -1.0, 1.0)
    np.testing.assert_allclose(y.data, np.clip(a, -1, 1))
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [0, 1, 1, 0])


def test_where():
    a, b = r(3, 4), r(4)
    cond = r(3, 4) > 0
    np.testing.assert_allclose(F.where(cond, tb.tensor(a), tb.tensor(b)).data, np.where(cond, a, b))
    gradcheck(lambda x, y: F.where(cond, x, y), a, b)


@pytest.mark.parametrize("axis, keepdims", [(None, False), (0, False), (1, True), ((0, 2), False),
                                            (-1, False)])
def test_reductions(axis, keepdims):
    a = r(3, 4, 5)
    x = tb.tensor(a)
    np.testing.assert_allclose(x.sum(axis, keepdims).data, a.sum(axis=axis, keepdims=keepdims))
    np.testing.assert_allclose(x.mean(axis, keepdims).data, a.mean(axis=axis, keepdims=keepdims))
    np.testing.assert_allclose(x.max(axis, keepdims).data, a.max(axis=axis, keepdims=keepdims))
    gradcheck(lambda t: t.sum(axis, keepdims), a)
    gradcheck(lambda t: t.mean(axis, keepdims), a)
    gradcheck(lambda t: t.max(axis, keepdims), a)


def test_max_splits_gradient_between_ties():
    x = tb.tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad, [0, 0.5, 0.5])


def test_shape_ops():
    a = r(2, 3, 4)
    np.testing.assert_allclose(tb.tensor(a).reshape(6, 4).data, a.reshape(6, 4))
    np.testing.assert_allclose(tb.tensor(a).transpose(2, 0, 1).data, a.transpose(2, 0, 1))
    np.testing.assert_allclose(tb.tensor(a).T.data, a.T)
    gradcheck(lambda t: t.reshape(4, -1) * 2, a)
    gradcheck(lambda t: t.transpose(2, 0, 1) * np.arange(24.0).reshape(4, 2, 3), a)
    gradcheck(lambda t: t.T * 1.0, a)
    gradcheck(lambda t: t.flatten(1) * 1.0, a)


@pytest.mark.parametrize("index", [
    (slice(None), 1), (0, slice(1, 3)), (np.array([0, 0, 1]),), (Ellipsis, 2),
    (r(2, 3, 4) > 0,), (slice(None, None, -1),),
])
def test_indexing(index):
    a = r(2, 3, 4)
    np.testing.assert_allclose(tb.tensor(a)[index].data, a[index])
    gradcheck(lambda t: t[index] * 1.0, a)


def test_repeated_index_accumulates():
    x = tb.tensor(np.zeros(3), requires_grad=True)
    x[np.array([0, 0, 2])].sum().backward()
    np.testing.assert_allclose(x.grad, [2, 0, 1])


def test_concat_and_stack():
    a, b = r(2, 3), r(4, 3)
    np.testing.assert_allclose(F.concat([tb.tensor(a), tb.tensor(b)]).data, np.concatenate([a, b]))
    gradcheck(lambda x, y: F.concat([x, y], axis=0), a, b)
    c = r(2, 3)
    np.testing.assert_allclose(F.stack([tb.tensor(a), tb.tensor(c)], axis=1).data,
                               np.stack([a, c], axis=1))
    gradcheck(lambda x, y: F.stack([x, y], axis=1), a, c)


def test_stop_gradient():
    x = tb.tensor(r(3), requires_grad=True)
    y = x * 2 + F.stop_gradient(x * 5)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(3, 2.0))


def test_comparisons_give_plain_masks():
    x = tb.tensor(np.array([-1.0, 0.0, 2.0]))
    assert (x > 0).tolist() == [False, False, True]
    assert (x >= 0).tolist() == [False, True, True]
