"""Generalized straight-through estimators (GSTE): surrogate gradients with a shape parameter ``a``.

Source: the GSTE thesis draft (``../shared/seeds/gste-thesis.txt``), Chapter 3 ("surrogate
shapes"); names as in its later chapters, with aliases: SLSTE = Scaling GSTE = SGSTE, PLSTE = PWL
GSTE, DLSTE = Dual PWL GSTE. Each surrogate keeps the forward ``y = sign(x)`` (sign(0) = +1) and
replaces the derivative of sign by a shape S(a; u) of the normalized input u = x / s. For binary
levels the thesis's Q_n = Q_p = 1 and, with no learned step size here, s = 1, so u = x:

- **SLSTE** (Scaling):       S = a · 1[−1/a < u ≤ 1/a]
- **PLSTE** (PWL, triangle): S = 2a(1 + a·u) on [−1/a, 0],  2a(1 − a·u) on (0, 1/a],  0 elsewhere
- **DLSTE** (Dual PWL):      PLSTE with a_n on the negative side and a_p on the positive side

Every shape is initialised at a = 1, the baseline: SLSTE(1) is the clipped STE of the thesis's
quantizer (band −1 < u ≤ 1; tinybnn's ``ste_sign`` also passes u = −1, the only difference), and
PLSTE(1) is Bi-Real's ApproxSign derivative. The integral of S over u is 2 for every a ("mass
preservation", Ch. 3): a < 1 widens and flattens the window, a > 1 narrows and amplifies it.

In this module ``a`` is a hyperparameter (a number). The thesis *learns* it with hypergradients
(Ch. 4: the loss after the next weight step, differentiated through that step); for those methods
each quantizer also gives ``d_surrogate_da(x)``, ∂S/∂a with the window held fixed (what autograd
would give, Ch. 3): SLSTE 1 in the window; PLSTE 2 + 4a·u on the negative side, 2 − 4a·u on the
positive side; DLSTE the same per side (∂/∂a_n on the negative side, ∂/∂a_p on the positive one).
The delayed greedy hypergradient (Ch. 4 with App. A.2's delay) learns a for weight quantizers:
:class:`tinybnn.train.GreedyHypergradient`; the window methods (FAGU, P-FAGU, FLAGU) are not
implemented.
"""

from __future__ import annotations

from ..autograd import Function, Tensor
from ..backend import get_array_module
from ..errors import ConfigError
from .base import Quantizer, register
from .sign import sign


def _check_shape_parameter(name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = None
    if value is None or not value > 0 or value == float("inf"):
        raise ConfigError(f"{name} must be a positive finite number (1 is the baseline STE), "
                          f"got {value!r}")
    return value


# =============================================================================================
# The shapes, as array formulas (shared by the Functions and by d_surrogate_da)
# =============================================================================================


def slste_surrogate(x, a: float):
    """S(a; u) = a · 1[−1/a < u ≤ 1/a] (thesis Ch. 3, Scaling GSTE, binary levels, u = x)."""
    return a * ((x > -1.0 / a) & (x <= 1.0 / a))


def dual_pwl_surrogate(x, a_n: float, a_p: float):
    """S = 2a_n(1 + a_n·u) on [−1/a_n, 0], 2a_p(1 − a_p·u) on (0, 1/a_p], 0 elsewhere
    (thesis Ch. 3, Dual PWL GSTE; a_n = a_p = a is the PWL GSTE, a = 1 ApproxSign's derivative)."""
    xp = get_array_module(x)
    negative = (x >= -1.0 / a_n) & (x <= 0)
    positive = (x > 0) & (x <= 1.0 / a_p)
    return xp.where(negative, 2 * a_n * (1 + a_n * x), 0) + \
        xp.where(positive, 2 * a_p * (1 - a_p * x), 0)


class ShapedSign(Function):
    """forward: y = sign(x) (sign(0) = +1); backward: dx = dy · ``surrogate(x)``.

    The surrogate is one of this module's array formulas with its parameters bound (a callable of
    x); the backward recomputes it from the saved x, and first hands (dy, x) to ``on_backward``
    when given (the hypergradient's record of g ⊙ ∂S/∂a)."""

    @staticmethod
    def forward(ctx, x, surrogate=None, on_backward=None):
        ctx.save_for_backward(x)
        ctx.surrogate, ctx.on_backward = surrogate, on_backward
        return sign(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.on_backward is not None:
            ctx.on_backward(grad, x)
        return grad * ctx.surrogate(x).astype(grad.dtype, copy=False)


# =============================================================================================
# The registered quantizers
# =============================================================================================


class ShapedQuantizer(Quantizer):
    """What the GSTE quantizers share: sign forward, ``self.surrogate(x)`` backward, a repr of
    the shape parameters named in ``shape_parameters``, and, while ``record_terms`` is True,
    ``last_terms``: one array g ⊙ ∂S/∂θ per shape parameter θ from the latest backward (g = dy,
    the gradient reaching the quantizer), which :class:`~tinybnn.train.GreedyHypergradient`
    reads."""

    shape_parameters: tuple[str, ...] = ()
    record_terms = False

    def forward(self, x: Tensor) -> Tensor:
        record = self._record if self.record_terms else None
        return ShapedSign.apply(x, surrogate=self.surrogate, on_backward=record)

    def _record(self, grad, x):
        derivatives = self.d_surrogate_da(x)
        if not isinstance(derivatives, tuple):
            derivatives = (derivatives,)
        self.last_terms = tuple(grad * d for d in derivatives)

    def extra_repr(self):
        return ", ".join(f"{name}={getattr(self, name)}" for name in self.shape_parameters)


@register("slste", kind="both")
class SLSTE(ShapedQuantizer):
    """Scaling GSTE (SLSTE, also SGSTE).

    forward:  y = sign(x)
    backward: dx = dy · a · 1[−1/a < x ≤ 1/a]
    parameters: a = 1.0 (a > 0; 1 is the clipped STE; the window's area is 2 for every a).
    Source: GSTE thesis draft, Ch. 3 ("Scaling GSTE"; binary levels Q_n = Q_p = 1, step s = 1).
    For binary levels it is the finite-difference STE with h = 1/a.
    """

    summary = "sign(x); dx = dy·a·1[−1/a < x ≤ 1/a], a = 1"
    shape_parameters = ("a",)

    def __init__(self, a: float = 1.0):
        super().__init__()
        self.a = _check_shape_parameter("slste a", a)

    def surrogate(self, x):
        """S(a; x), the factor the backward applies (an array like x)."""
        return slste_surrogate(x, self.a)

    def d_surrogate_da(self, x):
        """∂S/∂a with the window held fixed: 1 inside (−1/a, 1/a], 0 outside."""
        return ((x > -1.0 / self.a) & (x <= 1.0 / self.a)).astype(x.dtype)


@register("dlste", kind="both")
class DLSTE(ShapedQuantizer):
    """Dual piecewise-linear GSTE (DLSTE): a triangle with its own slope on each side.

    forward:  y = sign(x)
    backward: dx = dy · S,  S = 2a_n(1 + a_n·x) on [−1/a_n, 0], 2a_p(1 − a_p·x) on (0, 1/a_p],
              0 elsewhere
    parameters: a_n = a_p = 1.0 (both > 0; 1 and 1 is Bi-Real's ApproxSign derivative; the
    triangle's area is 2 for every a_n, a_p).
    Source: GSTE thesis draft, Ch. 3 ("Dual PWL GSTE"; binary levels, u = x).
    """

    summary = "sign(x); dx = dy·2a(1 ∓ a·x) on each side's window (a_n < 0 ≤ a_p), a = 1"
    shape_parameters = ("a_n", "a_p")

    def __init__(self, a_n: float = 1.0, a_p: float = 1.0):
        super().__init__()
        self.a_n = _check_shape_parameter("dlste a_n", a_n)
        self.a_p = _check_shape_parameter("dlste a_p", a_p)

    def surrogate(self, x):
        """S(a_n, a_p; x), the factor the backward applies (an array like x)."""
        return dual_pwl_surrogate(x, self.a_n, self.a_p)

    def d_surrogate_da(self, x):
        """(∂S/∂a_n, ∂S/∂a_p) with the windows held fixed: 2 + 4a_n·x on [−1/a_n, 0] (else 0),
        and 2 − 4a_p·x on (0, 1/a_p] (else 0)."""
        xp = get_array_module(x)
        negative = (x >= -1.0 / self.a_n) & (x <= 0)
        positive = (x > 0) & (x <= 1.0 / self.a_p)
        return (xp.where(negative, 2 + 4 * self.a_n * x, 0).astype(x.dtype),
                xp.where(positive, 2 - 4 * self.a_p * x, 0).astype(x.dtype))


@register("plste", kind="both")
class PLSTE(DLSTE):
    """Piecewise-linear GSTE (PLSTE, PWL GSTE): a symmetric triangle of half-width 1/a.

    forward:  y = sign(x)
    backward: dx = dy · 2a(1 − a·|x|) for −1/a ≤ x ≤ 1/a, else 0
    parameters: a = 1.0 (a > 0; 1 is Bi-Real's ApproxSign derivative, 2 − 2|x|; area 2).
    Source: GSTE thesis draft, Ch. 3 ("PWL GSTE"; binary levels, u = x). ``d_surrogate_da``
    gives ∂S/∂a = 2 − 4a·|x| in the window (the sum of DLSTE's two sides).
    """

    summary = "sign(x); dx = dy·2a·max(0, 1 − a|x|), a = 1"
    shape_parameters = ("a",)

    def __init__(self, a: float = 1.0):
        a = _check_shape_parameter("plste a", a)
        super().__init__(a_n=a, a_p=a)

    @property
    def a(self) -> float:
        """The triangle's a: both sides' slopes (setting it sets a_n and a_p)."""
        return self.a_n

    @a.setter
    def a(self, value: float) -> None:
        self.a_n = self.a_p = value

    def d_surrogate_da(self, x):
        """∂S/∂a with the window held fixed: 2 − 4a·|x| inside [−1/a, 1/a], 0 outside."""
        negative, positive = super().d_surrogate_da(x)
        return negative + positive
