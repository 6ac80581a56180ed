"""Which gradient arrays a leaf may keep as ``.grad`` without a copy (``Function.new_grad_arrays``),
and the aliasing cases where it must still get a copy of its own."""

import numpy as np

import tinybnn as tb
import tinybnn.functional as F
from tinybnn.autograd import Function


def t64(shape, seed=0):
    return tb.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


class Double(Function):
    """y = 2·x; backward allocates its result and remembers it in ``made`` for the tests."""

    new_grad_arrays = True
    made: list = []

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad):
        out = 2 * grad
        Double.made.append(out)
        return out


class SameForBoth(Function):
    """y = a + b, backward returning the very same new array for both inputs (breaking the
    promise of ``new_grad_arrays``; the engine must still give each leaf its own array)."""

    new_grad_arrays = True

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        out = grad.copy()
        return out, out


class Passing(Double):
    """A subclass whose backward returns ``grad`` itself: it must not inherit the promise."""

    @staticmethod
    def backward(ctx, grad):
        return grad


def test_leaf_keeps_a_new_gradient_array_without_a_copy():
    Double.made.clear()
    x = t64((3, 4))
    Double.apply(x).backward(np.ones((3, 4)))
    assert x.grad is Double.made[-1]
    np.testing.assert_array_equal(x.grad, np.full((3, 4), 2.0))


def test_caller_gradient_and_pass_through_gradients_are_copied():
    x = t64((5,))
    g = np.ones(5)
    x.backward(g)                                   # the root is the leaf: g is the caller's
    assert x.grad is not g and not np.shares_memory(x.grad, g)
    y = t64((5,), 1)
    Passing.apply(y).backward(g)
    assert not np.shares_memory(y.grad, g)
    y.grad *= 3                                     # an optimizer updating .grad in place
    np.testing.assert_array_equal(g, np.ones(5))


def test_one_array_returned_for_two_inputs_gives_each_leaf_its_own():
    a, b = t64((4,)), t64((4,), 1)
    SameForBoth.apply(a, b).backward(np.ones(4))
    assert not np.shares_memory(a.grad, b.grad)
    a.grad += 5
    np.testing.assert_array_equal(b.grad, np.ones(4))


def test_add_of_two_leaves_and_of_a_leaf_with_itself():
    a, b = t64((4,)), t64((4,), 1)
    (a + b).backward(np.ones(4))
    assert not np.shares_memory(a.grad, b.grad)
    a.grad += 5
    np.testing.assert_array_equal(b.grad, np.ones(4))
    c = t64((4,), 2)
    (c + c).backward(np.ones(4))
    np.testing.assert_array_equal(c.grad, np.full(4, 2.0))


def test_hook_that_keeps_the_gradient_sees_no_later_in_place_update():
    Double.made.clear()
    x = t64((3,))
    seen = []
    x.register_hook(lambda g: seen.append(g))
    Double.apply(x).backward(np.ones(3))
    assert seen[0] is Double.made[-1]
    assert not np.shares_memory(x.grad, seen[0])
    x.grad -= 1
    np.testing.assert_array_equal(seen[0], np.full(3, 2.0))


def test_hook_replacement_is_copied():
    x = t64((3,))
    replacement = np.full(3, 7.0)
    x.register_hook(lambda g: replacement)
    Double.apply(x).backward(np.ones(3))
    assert not np.shares_memory(x.grad, replacement)
    x.grad *= 0
    np.testing.assert_array_equal(replacement, np.full(3, 7.0))


def test_retained_intermediate_gradient_is_a_copy():
    x = t64((3,))
    y = Double.apply(x).retain_grad()
    z = Double.apply(y)
    z.backward(np.ones(3))
    assert not np.shares_memory(y.grad, x.grad)
    y.grad += 100
    np.testing.assert_array_equal(x.grad, np.full(3, 4.0))


def test_accumulation_leaves_the_first_gradient_array_untouched():
    x = t64((3,))
    Double.apply(x).backward(np.ones(3))
    first = x.grad
    Double.apply(x).backward(np.ones(3))
    np.testing.assert_array_equal(first, np.full(3, 2.0))
    np.testing.assert_array_equal(x.grad, np.full(3, 4.0))


def test_gradient_cast_to_the_leaf_dtype_is_kept():
    x = tb.tensor(np.ones(3, dtype=np.float32), requires_grad=True)

    class Wider(Function):
        @staticmethod
        def forward(ctx, a):
            return a.astype(np.float64)

        @staticmethod
        def backward(ctx, grad):
            return grad                             # float64 for a float32 input: cast

    g = np.ones(3)
    Wider.apply(x).backward(g)
    assert x.grad.dtype == np.float32
    x.grad += 1
    np.testing.assert_array_equal(g, np.ones(3))


def test_conv2d_gradients_are_the_leaves_own():
    rng = np.random.default_rng(0)
    x = tb.tensor(rng.standard_normal((2, 3, 5, 5)), requires_grad=True)
    w = tb.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    b = tb.tensor(rng.standard_normal(4), requires_grad=True)
    g = rng.standard_normal((2, 4, 5, 5))
    F.conv2d(x, w, b, padding=1).backward(g)
    arrays = [x.grad, w.grad, b.grad, g, x.data, w.data, b.data]
    for i, a in enumerate(arrays[:3]):
        assert a.flags.writeable and a.flags.c_contiguous
        assert not any(np.shares_memory(a, other) for other in arrays[i + 1:])
    np.testing.assert_allclose(b.grad, g.sum(axis=(0, 2, 3)))
