"""The autodiff engine: :class:`Tensor`, :class:`Function`, and reverse-mode ``backward``.

Everything tinybnn differentiates is a :class:`Function` with two static methods that sit side by
side::

    class Square(Function):
        @staticmethod
        def forward(ctx, x):            # x: an array (numpy or cupy), never a Tensor
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):        # grad: dL/d(output), same shape as the output
            (x,) = ctx.saved_tensors
            return 2 * x * grad         # dL/dx, one gradient per input of forward

    y = Square.apply(t)                 # t: a Tensor; y records Square and its input

``Function.apply`` unwraps the Tensors, runs ``forward`` on plain arrays, and (when gradients are
wanted) remembers the context and the inputs on the output Tensor (``y.grad_fn``). ``loss.backward()``
visits the graph in reverse topological order and calls each ``backward`` once with the summed
gradient of its output. Leaf tensors with ``requires_grad=True`` accumulate into ``.grad`` across
backward calls until zeroed. Hooks registered with :meth:`Tensor.register_hook` see, and may
replace, the gradient flowing into a tensor.

Surrogate gradients of binarization (the STE family and friends) are just Functions whose
``backward`` is not the derivative of ``forward``: see :mod:`tinybnn.quant`.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import numpy as np

from .backend import get_array_module

# ---------------------------------------------------------------------------------------------
# Gradient mode
# ---------------------------------------------------------------------------------------------

_grad_enabled = True


def is_grad_enabled() -> bool:
    """True unless inside a :func:`no_grad` block."""
    return _grad_enabled


@contextlib.contextmanager
def no_grad():
    """Context in which Functions record nothing (evaluation, optimizer updates)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


@contextlib.contextmanager
def enable_grad():
    """Context that turns recording back on (e.g. inside a ``no_grad`` block)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, True
    try:
        yield
    finally:
        _grad_enabled = previous


# ---------------------------------------------------------------------------------------------
# Function
# ---------------------------------------------------------------------------------------------


class Context:
    """What a Function's ``forward`` leaves for its ``backward``.

    Attributes:
        saved_tensors: the arrays given to :meth:`save_for_backward`.
        needs_input_grad: one bool per positional input of ``forward``.
        function: the Function class that made the output.
        inputs: the positional inputs of ``forward`` as given to ``apply`` (Tensors or constants).
    Any other attribute may be set freely (``ctx.stride = 2``).
    """

    def __init__(self, function: type, inputs: tuple, needs_input_grad: tuple[bool, ...]):
        self.function = function
        self.inputs = inputs
        self.needs_input_grad = needs_input_grad
        self.saved_tensors: tuple = ()

    def save_for_backward(self, *arrays) -> None:
        self.saved_tensors = arrays

    @property
    def name(self) -> str:
        return self.function.__name__

    @property
    def parents(self) -> list["Tensor"]:
        """The input Tensors of the Function (constants left out)."""
        return [t for t in self.inputs if isinstance(t, Tensor)]

    def __repr__(self) -> str:
        return f"<{self.name}Backward>"


class Function:
    """Base class of every differentiable operation. Subclass it and write two static methods:

    - ``forward(ctx, *inputs, **options)`` on arrays, returning one array;
    - ``backward(ctx, grad)`` returning the gradient for each positional input of ``forward``
      (a tuple, or a single array when there is one input; ``None`` where no gradient flows).

    Positional inputs may be Tensors or constants (numbers, arrays, tuples); keyword options are
    passed to ``forward`` unchanged. Gradients are only computed for Tensor inputs that require
    them (``ctx.needs_input_grad`` tells ``backward`` which).

    A Function whose ``backward`` returns only arrays it has just allocated, one per input,
    referenced by nothing else (no views of ``grad``, of saved arrays or of one another), may set
    ``new_grad_arrays = True`` in its own class body (a subclass does not inherit the promise).
    The engine then hands such an array to a leaf as its ``.grad`` instead of copying it.
    """

    new_grad_arrays = False

    @staticmethod
    def forward(ctx: Context, *inputs: Any, **options: Any):
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **options: Any) -> "Tensor":
        needs = tuple(isinstance(t, Tensor) and t.requires_grad for t in inputs)
        record = _grad_enabled and any(needs)
        ctx = Context(cls, inputs if record else (), needs)
        arrays = [t.data if isinstance(t, Tensor) else t for t in inputs]
        out = cls.forward(ctx, *arrays, **options)
        result = Tensor(out, requires_grad=record)
        if record:
            result.grad_fn = ctx
        return result


# ---------------------------------------------------------------------------------------------
# Tensor
# ---------------------------------------------------------------------------------------------


def _as_array(data, dtype=None):
    """Wrap ``data`` as an ndarray. Python floats and float lists become float32; Python ints and
    int lists stay integer (labels, indices); arrays keep their dtype and device."""
    if isinstance(data, Tensor):
        data = data.data
    xp = get_array_module(data)
    if dtype is not None:
        return xp.asarray(data, dtype=dtype)
    if type(data) in (bool, int, float, list, tuple):  # numpy scalars keep their dtype
        array = np.asarray(data)
        return array.astype(np.float32) if array.dtype == np.float64 else array
    return xp.asarray(data)


class Tensor:
    """An array with a gradient.

    Attributes:
        data: the ndarray (numpy or cupy) holding the values.
        grad: dL/d(self) after ``backward`` (leaf tensors, or any tensor after ``retain_grad``),
            same shape as ``data``; ``None`` before the first backward or after ``zero_grad``.
        requires_grad: whether gradients flow into this tensor.
        grad_fn: the :class:`Context` of the Function that made this tensor (``None`` for leaves);
            ``grad_fn.function`` is the Function, ``grad_fn.inputs`` its inputs.
    """

    __array_priority__ = 1000  # so that ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _as_array(data, dtype)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.grad_fn: Context | None = None
        self.name: str | None = None
        self._hooks: list[Callable] = []
        self._retain_grad = False

    # -- basic properties -----------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def T(self) -> "Tensor":
        return self.transpose()

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = f", grad_fn={self.grad_fn!r}" if self.grad_fn is not None else (
            ", requires_grad=True" if self.requires_grad else "")
        body = np.array2string(np.asarray(self.numpy()), precision=4, threshold=20,
                               prefix="tensor(")
        return f"tensor({body}{grad})"

    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (copied from the GPU when needed)."""
        from .backend import to_numpy

        return to_numpy(self.data)

    def item(self) -> float:
        return self.data.item()

    def detach(self) -> "Tensor":
        """A new leaf tensor sharing ``data``, cut from the graph (no gradient flows through)."""
        return Tensor(self.data)

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        self.requires_grad = flag
        return self

    def astype(self, dtype) -> "Tensor":
        from .functional import math as M

        return M.Cast.apply(self, dtype=dtype)

    # -- gradients ------------------------------------------------------------------------
    def register_hook(self, fn: Callable) -> Callable:
        """Call ``fn(grad)`` with the gradient flowing into this tensor during ``backward``.

        If ``fn`` returns an array, it replaces the gradient (for this tensor's ``.grad`` and for
        everything upstream). Returns a function that removes the hook.
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad; "
                               "create it with requires_grad=True")
        self._hooks.append(fn)

        def remove():
            if fn in self._hooks:
                self._hooks.remove(fn)

        return remove

    def retain_grad(self) -> "Tensor":
        """Keep ``.grad`` on this non-leaf tensor after ``backward`` (for inspection)."""
        self._retain_grad = True
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def backward(self, grad=None) -> None:
        """Back-propagate from this tensor. ``grad`` defaults to 1 for a single-element tensor."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: no parameter "
                               "or input with requires_grad=True contributed to it")
        xp = get_array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a single-element "
                                   f"tensor, got shape {self.shape}; pass grad= explicitly")
            grad = xp.ones_like(self.data)
        else:
            grad = _as_array(grad, self.data.dtype)
            if grad.shape != self.data.shape:
                grad = xp.broadcast_to(grad, self.data.shape).copy()
        _run_backward(self, grad)

    # -- operators (the Functions live in tinybnn.functional.math) --------------------------
    def __add__(self, other): return M.Add.apply(self, other)
    def __radd__(self, other): return M.Add.apply(other, self)
    def __sub__(self, other): return M.Sub.apply(self, other)
    def __rsub__(self, other): return M.Sub.apply(other, self)
    def __mul__(self, other): return M.Mul.apply(self, other)
    def __rmul__(self, other): return M.Mul.apply(other, self)
    def __truediv__(self, other): return M.Div.apply(self, other)
    def __rtruediv__(self, other): return M.Div.apply(other, self)
    def __matmul__(self, other): return M.MatMul.apply(self, other)
    def __rmatmul__(self, other): return M.MatMul.apply(other, self)
    def __pow__(self, other): return M.Pow.apply(self, other)
    def __rpow__(self, other): return M.Pow.apply(other, self)
    def __neg__(self): return M.Neg.apply(self)
    def __getitem__(self, index): return M.GetItem.apply(self, index=index)

    # comparisons give plain boolean arrays: they have no gradient
    def __gt__(self, other): return self.data > _raw(other)
    def __ge__(self, other): return self.data >= _raw(other)
    def __lt__(self, other): return self.data < _raw(other)
    def __le__(self, other): return self.data <= _raw(other)

    def sum(self, axis=None, keepdims=False): return M.Sum.apply(self, axis=axis, keepdims=keepdims)
    def mean(self, axis=None, keepdims=False): return M.Mean.apply(self, axis=axis, keepdims=keepdims)
    def max(self, axis=None, keepdims=False): return M.Max.apply(self, axis=axis, keepdims=keepdims)
    def exp(self): return M.Exp.apply(self)
    def log(self): return M.Log.apply(self)
    def sqrt(self): return M.Sqrt.apply(self)
    def abs(self): return M.Abs.apply(self)
    def clip(self, low=None, high=None): return M.Clip.apply(self, low=low, high=high)
    def flatten(self, start_dim=0):
        return self.reshape(*self.shape[:start_dim], -1)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return M.Reshape.apply(self, shape=shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return M.Transpose.apply(self, axes=axes or None)


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """Build a :class:`Tensor`. Python floats and float lists become float32; arrays keep their
    dtype (use float64 for gradient checks)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# Reverse-mode traversal
# ---------------------------------------------------------------------------------------------


def _topological_order(root: Tensor) -> list[Tensor]:
    """Tensors reachable from ``root`` through ``grad_fn``, each after all tensors it feeds."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node.grad_fn is not None:
            for parent in node.grad_fn.inputs:
                if isinstance(parent, Tensor) and parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order[::-1]  # root first


def _run_backward(root: Tensor, grad) -> None:
    """Visit the graph from ``root`` (whose gradient is ``grad``) in reverse topological order.

    ``grads`` holds the gradient summed so far for each tensor still to visit; ``owned`` the ids of
    those whose summed array only the engine holds (a sum, a cast, or the fresh result of a
    Function with ``new_grad_arrays``): a leaf may keep such an array as ``.grad`` uncopied.
    """
    grads, owned = {id(root): grad}, set()
    for node in _topological_order(root):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        for hook in node._hooks:
            replaced = hook(g)
            if replaced is not None:
                g = replaced
        if node.grad_fn is None or node._retain_grad:
            _keep_grad(node, g, id(node) in owned)
        ctx = node.grad_fn
        if ctx is None:
            continue
        with no_grad():
            input_grads = ctx.function.backward(ctx, g)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if len(input_grads) != len(ctx.inputs):
            raise RuntimeError(f"{ctx.name}.backward returned {len(input_grads)} gradients for "
                               f"{len(ctx.inputs)} inputs")
        fresh = vars(ctx.function).get("new_grad_arrays", False)
        for parent, pg in zip(ctx.inputs, input_grads):
            if pg is None or not (isinstance(parent, Tensor) and parent.requires_grad):
                continue
            if pg.shape != parent.data.shape:
                raise RuntimeError(f"{ctx.name}.backward gave a gradient of shape {pg.shape} "
                                   f"for an input of shape {parent.shape}")
            new = fresh and sum(other is pg for other in input_grads) == 1
            if pg.dtype != parent.data.dtype:
                pg, new = pg.astype(parent.data.dtype), True
            key = id(parent)
            if key in grads:
                grads[key], new = M.add_arrays(grads[key], pg), True
            else:
                grads[key] = pg
            if new:
                owned.add(key)


def _keep_grad(node: Tensor, g, owned: bool) -> None:
    """Add ``g`` into ``node.grad``. A leaf without hooks takes ``g`` itself when the engine owns
    it (nothing else can see it, so later in-place updates of ``.grad`` touch nothing else);
    otherwise ``.grad`` gets a copy, never an array that a Function, a hook or the caller of
    ``backward`` may still hold."""
    if node.grad is not None:
        node.grad = node.grad + g
    elif owned and node.grad_fn is None and not node._hooks:
        node.grad = g
    else:
        node.grad = g.copy()


from .functional import math as M  # noqa: E402  (the operators above need Tensor defined first)
