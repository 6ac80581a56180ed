"""The engine itself: graph recording, accumulation, hooks, no_grad, errors."""

import numpy as np
import pytest

import tinybnn as tb
from tinybnn.autograd import Function


def t64(shape, seed=0, requires_grad=True):
    return tb.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=requires_grad)


def test_tensor_from_python_values_is_float32_and_ints_stay_ints():
    assert tb.tensor([1.0, 2.0]).dtype == np.float32
    assert tb.tensor(3.0).dtype == np.float32
    assert tb.tensor([1, 2, 3]).dtype.kind == "i"
    assert tb.tensor(np.zeros(2)).dtype == np.float64  # arrays keep their dtype


def test_graph_is_inspectable():
    a, b = t64((2,)), t64((2,), 1)
    c = a * b
    d = c.sum()
    assert d.grad_fn.function.__name__ == "Sum"
    assert d.grad_fn.parents == [c]
    assert c.grad_fn.parents == [a, b]
    assert a.is_leaf and not c.is_leaf


def test_gradients_accumulate_until_zeroed():
    a = t64((3,))
    (a * 2).sum().backward()
    (a * 2).sum().backward()
    np.testing.assert_allclose(a.grad, np.full(3, 4.0))
    a.zero_grad()
    (a * 3).sum().backward()
    np.testing.assert_allclose(a.grad, np.full(3, 3.0))


def test_shared_subexpression_gradients_sum():
    a = t64((4,))
    b = a * a          # used twice below
    (b + b).sum().backward()
    np.testing.assert_allclose(a.grad, 4 * a.data)


def test_no_grad_records_nothing():
    a = t64((2,))
    with tb.no_grad():
        b = a * 2
    assert not b.requires_grad and b.grad_fn is None
    assert tb.is_grad_enabled()



def test_hook_sees_and_replaces_gradient():
    a = t64((3,))
    b = a * 2
    seen = []
    b.register_hook(lambda g: seen.append(g.copy()))
    remove = b.register_hook(lambda g: g * 0 + 1.0)
    b.sum().backward()
    np.testing.assert_allclose(seen[0], np.ones(3))
    np.testing.assert_allclose(a.grad, np.full(3, 2.0))
    remove()
    a.zero_grad()
    (b * 5).sum().backward()
    np.testing.assert_allclose(a.grad, np.full(3, 10.0))


def test_retain_grad_keeps_intermediate_gradient():
    a = t64((3,))
    b = (a * 3).retain_grad()
    (b * b).sum().backward()
    np.testing.assert_allclose(b.grad, 2 * b.data)


def test_backward_errors_are_clear():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tb.tensor([1.0]).backward()
    with pytest.raises(RuntimeError, match="single-element"):
        (t64((3,)) * 2).backward()
    with pytest.raises(RuntimeError, match="cannot register a hook"):
        tb.tensor([1.0]).register_hook(print)


def test_custom_function_extension_point():
    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 3 * x * x * grad

    tb.gradcheck.gradcheck(lambda x: Cube.apply(x), np.random.default_rng(0).standard_normal((3, 2)))


def test_wrong_gradient_shape_from_backward_is_reported():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, grad):
            return np.ones(7)

    with pytest.raises(RuntimeError, match="gradient of shape"):
        Bad.apply(t64((2, 2))).backward()


def test_manual_seed_makes_initialisation_repeatable():
    tb.manual_seed(3)
    a = tb.nn.Linear(4, 3).weight.data.copy()
    tb.manual_seed(3)
    b = tb.nn.Linear(4, 3).weight.data.copy()
    np.testing.assert_array_equal(a, b)


def test_numpy_array_on_the_left_uses_tensor_operator():
    a = t64((3,))
    out = np.ones(3) * a
    assert isinstance(out, tb.Tensor)


def test_detach_cuts_the_graph():
    a = t64((2,))
    b = (a * 2).detach()
    assert b.grad_fn is None and not b.requires_grad


def test_get_rng_accepts_seed_generator_or_none_and_rejects_others():
    from tinybnn.random import get_rng

    g = np.random.default_rng(1)
    assert get_rng(g) is g
    assert get_rng(5).integers(1000) == np.random.default_rng(5).integers(1000)
    with pytest.raises(tb.ConfigError, match="rng must be None, an int seed"):
        get_rng("x")
