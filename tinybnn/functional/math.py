"""Elementwise, reduction and shape Functions: the operators behind ``+ - * / @ **`` and friends.

Each Function takes its array module from its inputs (``xp``) and un-broadcasts its gradients:
when ``forward`` broadcast an input of shape (3, 1) to (3, 4), ``backward`` sums the gradient back
to (3, 1).
"""

from __future__ import annotations

from ..autograd import Function, Tensor
from ..backend import get_array_module
from . import fused


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched, so it has ``shape``."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)


def _shape(x):
    return getattr(x, "shape", ())


# --- arithmetic ----------------------------------------------------------------------------

def add_arrays(a, b):
    """a + b on plain arrays or numbers; two NumPy float arrays of one shape and dtype (a
    residual sum, a gradient accumulation) take the parallel kernel :func:`.fused.add`."""
    if _shape(a) == _shape(b) and fused.supports(a, b):
        return fused.add(a, b)
    return a + b


class Add(Function):
    """y = a + b (broadcasting)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (_shape(a), _shape(b))
        return add_arrays(a, b)

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        return (unbroadcast(grad, sa) if ctx.needs_input_grad[0] else None,
                unbroadcast(grad, sb) if ctx.needs_input_grad[1] else None)


class Sub(Function):
    """y = a − b (broadcasting)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (_shape(a), _shape(b))
        return a - b

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        return (unbroadcast(grad, sa) if ctx.needs_input_grad[0] else None,
                unbroadcast(-grad, sb) if ctx.needs_input_grad[1] else None)


class Mul(Function):
    """y = a · b (broadcasting); dy/da = b, dy/db = a."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return (unbroadcast(grad * b, _shape(a)) if ctx.needs_input_grad[0] else None,
                unbroadcast(grad * a, _shape(b)) if ctx.needs_input_grad[1] else None)


class Div(Function):
    """y = a / b (broadcasting); dy/da = 1/b, dy/db = −a/b²."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return (unbroadcast(grad / b, _shape(a)) if ctx.needs_input_grad[0] else None,
                unbroadcast(-grad * a / (b * b), _shape(b)) if ctx.needs_input_grad[1] else None)


class Neg(Function):
    """y = −x."""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Function):
    """y = a ** b; dy/da = b·a^(b−1), dy/db = a^b·ln a (only defined for a > 0)."""

    @staticmethod
    def forward(ctx, a, b):
        xp = get_array_module(a, b)
        y = xp.power(a, b)
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        a, b, y = ctx.saved_tensors
        xp = get_array_module(grad)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = unbroadcast(grad * b * xp.power(a, b - 1), _shape(a))
        if ctx.needs_input_grad[1]:
            gb = unbroadcast(grad * y * xp.log(a), _shape(b))
        return ga, gb


class MatMul(Function):
    """y = a @ b with NumPy's matmul semantics (batched, broadcasting leading axes).

    Shapes: a (..., n, k), b (..., k, m) -> y (..., n, m). 1-D operands are handled as in NumPy.
    """

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        xp = get_array_module(grad)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = unbroadcast(g2 @ xp.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            gb = unbroadcast(xp.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb


# --- elementwise functions ------------------------------------------------------------------

class Exp(Function):
    """y = eˣ; dy/dx = y."""

    @staticmethod
    def forward(ctx, x):
        y = get_array_module(x).exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y


class Log(Function):
    """y = ln x; dy/dx = 1/x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return get_array_module(x).log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


class Sqrt(Function):
    """y = √x; dy/dx = 1/(2√x)."""

    @staticmethod
    def forward(ctx, x):
        y = get_array_module(x).sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad / (2 * y)


class Abs(Function):
    """y = |x|; dy/dx = sign(x) (0 at x = 0)."""

    @staticmethod
    def forward(ctx, x):
        xp = get_array_module(x)
        ctx.save_for_backward(x)
        return xp.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * get_array_module(x).sign(x)


class Clip(Function):
    """y = min(max(x, low), high); the gradient passes where low <= x <= high, else 0."""

    @staticmethod
    def forward(ctx, x, low=None, high=None):
        xp = get_array_module(x)
        mask = xp.ones(x.shape, dtype=bool)
        if low is not None:
            mask &= x >= low
        if high is not None:
            mask &= x <= high
        ctx.save_for_backward(mask)
        return xp.clip(x, low, high)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask


class Where(Function):
    """y = a where cond else b (cond: boolean array, no gradient)."""

    @staticmethod
    def forward(ctx, cond, a, b):
        xp = get_array_module(a, b)
        ctx.save_for_backward(cond)
        ctx.shapes = (_shape(a), _shape(b))
        return xp.where(cond, a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        sa, sb = ctx.shapes
        ga = unbroadcast(grad * cond, sa) if ctx.needs_input_grad[1] else None
        gb = unbroadcast(grad * ~cond, sb) if ctx.needs_input_grad[2] else None
        return None, ga, gb


class Cast(Function):
    """y = x converted to another dtype; the gradient is cast back."""

    @staticmethod
    def forward(ctx, x, dtype=None):
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.dtype)


# --- reductions -----------------------------------------------------------------------------

def _expand_like(grad, shape, axis, keepdims):
    """Broadcast a reduced gradient back to the input ``shape``."""
    xp = get_array_module(grad)
    if axis is not None and not keepdims:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        axes = tuple(a % len(shape) for a in axes)
        grad = xp.expand_dims(grad, axes)
    return xp.broadcast_to(grad, shape)


class Sum(Function):
    """y = Σ x over ``axis`` (all axes when None)."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.args = (x.shape, axis, keepdims)
        return x.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        shape, axis, keepdims = ctx.args
        return _expand_like(grad, shape, axis, keepdims).copy()


class Mean(Function):
    """y = mean of x over ``axis``; each input gets grad / (number of averaged elements)."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        y = x.mean(axis=axis, keepdims=keepdims)
        ctx.args = (x.shape, axis, keepdims)
        ctx.count = x.size // max(y.size, 1)
        return y

    @staticmethod
    def backward(ctx, grad):
        shape, axis, keepdims = ctx.args
        return _expand_like(grad / ctx.count, shape, axis, keepdims).copy()


class Max(Function):
    """y = max of x over ``axis``; the gradient goes to the maxima, split evenly between ties."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        y = x.max(axis=axis, keepdims=True)
        mask = x == y
        ctx.save_for_backward(mask / mask.sum(axis=axis, keepdims=True))
        ctx.args = (x.shape, axis, keepdims)
        return y if keepdims else (y.reshape(()) if axis is None else y.squeeze(axis))

    @staticmethod
    def backward(ctx, grad):
        (share,) = ctx.saved_tensors
        shape, axis, keepdims = ctx.args
        return (_expand_like(grad, shape, axis, keepdims) * share).astype(grad.dtype)


# --- shape ----------------------------------------------------------------------------------

class Reshape(Function):
    """y = x viewed with another shape."""

    @staticmethod
    def forward(ctx, x, shape=None):
        ctx.in_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.in_shape)


class Transpose(Function):
    """y = x with its axes permuted (reversed when ``axes`` is None)."""

    @staticmethod
    def forward(ctx, x, axes=None):
        xp = get_array_module(x)
        ctx.axes = axes
        return xp.transpose(x, axes)

    @staticmethod
    def backward(ctx, grad):
        xp = get_array_module(grad)
        if ctx.axes is None:
            return xp.transpose(grad)
        return xp.transpose(grad, xp.argsort(xp.asarray(ctx.axes)).tolist())


class GetItem(Function):
    """y = x[index] for any NumPy index (slices, integers, integer/boolean arrays).

    The backward scatters the gradient back with ``add.at`` so repeated indices accumulate.
    """

    @staticmethod
    def forward(ctx, x, index=None):
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        ctx.args = (x.shape, index)
        return x[index]

    @staticmethod
    def backward(ctx, grad):
        shape, index = ctx.args
        xp = get_array_module(grad)
        out = xp.zeros(shape, dtype=grad.dtype)
        xp.add.at(out, index, grad)
        return out


class Concat(Function):
    """y = concatenation of the inputs along ``axis``."""

    @staticmethod
    def forward(ctx, *xs, axis=0):
        xp = get_array_module(*xs)
        ctx.axis = axis
        ctx.sizes = [x.shape[axis] for x in xs]
        return xp.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        xp = get_array_module(grad)
        cuts = list(_cumulative(ctx.sizes))[:-1]
        return tuple(xp.split(grad, cuts, axis=ctx.axis))


class Stack(Function):
    """y = the inputs stacked along a new ``axis``."""

    @staticmethod
    def forward(ctx, *xs, axis=0):
        xp = get_array_module(*xs)
        ctx.axis = axis
        return xp.stack(xs, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        xp = get_array_module(grad)
        n = grad.shape[ctx.axis]
        return tuple(xp.take(grad, i, axis=ctx.axis) for i in range(n))


class StopGradient(Function):
    """y = x in the forward pass; no gradient flows back (``stopgrad`` in SURGE's Eq. 5)."""

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return None


def _cumulative(sizes):
    total = 0
    for s in sizes:
        total += s
        yield total


# --- functional wrappers --------------------------------------------------------------------

def concat(tensors, axis=0) -> Tensor:
    """Concatenate tensors along an existing axis."""
    return Concat.apply(*tensors, axis=axis)


cat = concat


def stack(tensors, axis=0) -> Tensor:
    """Stack tensors along a new axis."""
    return Stack.apply(*tensors, axis=axis)


def where(cond, a, b) -> Tensor:
    """Elementwise ``a if cond else b``; ``cond`` may be a boolean array or Tensor."""
    if isinstance(cond, Tensor):
        cond = cond.data
    return Where.apply(cond, a, b)


def exp(x): return Exp.apply(x)
def log(x): return Log.apply(x)
def sqrt(x): return Sqrt.apply(x)
def abs(x): return Abs.apply(x)  # noqa: A001  (mirrors torch.abs)
def clip(x, low=None, high=None): return Clip.apply(x, low=low, high=high)
def stop_gradient(x): return StopGradient.apply(x)
