"""The fully connected layer as one Function."""

from __future__ import annotations

from ..autograd import Function, Tensor
from ..errors import ShapeError


class Linear(Function):
    """y = x Wᵀ + b.

    Shapes: x (..., in), W (out, in), b (out,) or None -> y (..., out).
    Backward: dx = g W, dW = gᵀ x (summed over the leading axes), db = Σ g.
    """

    @staticmethod
    def forward(ctx, x, w, b=None):
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        y = x @ w.T
        if b is not None:
            y += b
        return y

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        g2 = grad.reshape(-1, grad.shape[-1])
        gx = (grad @ w) if ctx.needs_input_grad[0] else None
        gw = (g2.T @ x.reshape(-1, x.shape[-1])) if ctx.needs_input_grad[1] else None
        gb = g2.sum(axis=0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Fully connected layer: x (..., in) @ weight (out, in)ᵀ + bias (out,)."""
    if x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear: input has {x.shape[-1]} features but the weight expects "
                         f"{weight.shape[1]} (weight shape {tuple(weight.shape)}, input shape "
                         f"{tuple(x.shape)})")
    return Linear.apply(x, weight, bias)
