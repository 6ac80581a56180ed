"""Loss Functions: cross-entropy with integer labels (and label smoothing), mean squared error."""

from __future__ import annotations

from ..autograd import Function, Tensor
from ..backend import get_array_module
from ..errors import ShapeError


class CrossEntropy(Function):
    """Mean cross-entropy between logits and integer labels, with optional label smoothing.

    Shapes: logits (N, C), labels (N,) integers in [0, C).
    Target distribution q = (1 − ε)·onehot(label) + ε/C.
    loss = −(1/N) Σ_n Σ_c q_nc · log_softmax(logits)_nc ;  dloss/dlogits = (softmax − q)/N.
    """

    @staticmethod
    def forward(ctx, logits, labels, label_smoothing=0.0):
        xp = get_array_module(logits)
        n, c = logits.shape
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        q = xp.full(logits.shape, label_smoothing / c, dtype=logits.dtype)
        q[xp.arange(n), labels] += 1.0 - label_smoothing
        ctx.save_for_backward(log_p, q)
        return -(q * log_p).sum() / n

    @staticmethod
    def backward(ctx, grad):
        log_p, q = ctx.saved_tensors
        xp = get_array_module(log_p)
        return grad * (xp.exp(log_p) - q) / log_p.shape[0], None


def cross_entropy(logits: Tensor, labels, label_smoothing: float = 0.0) -> Tensor:
    """Mean cross-entropy of ``logits`` (N, C) against integer ``labels`` (N,)."""
    labels = labels.data if isinstance(labels, Tensor) else labels
    xp = get_array_module(labels)
    labels = xp.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ShapeError(f"cross_entropy needs logits (N, C) and labels (N,), got logits "
                         f"{tuple(logits.shape)} and labels {tuple(labels.shape)}")
    if labels.dtype.kind not in "iu":
        raise ShapeError(f"cross_entropy needs integer class labels, got dtype {labels.dtype}")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]):
        raise ShapeError(f"labels must lie in [0, {logits.shape[1]}), got values in "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    if not 0.0 <= label_smoothing < 1.0:
        raise ShapeError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    return CrossEntropy.apply(logits, labels, label_smoothing=label_smoothing)


def mse_loss(prediction: Tensor, target) -> Tensor:
    """Mean squared error, averaged over every element."""
    target_shape = getattr(target, "shape", ())
    if tuple(target_shape) not in ((), tuple(prediction.shape)):
        raise ShapeError(f"mse_loss needs prediction and target of the same shape, got "
                         f"{tuple(prediction.shape)} and {tuple(target_shape)}")
    diff = prediction - target
    return (diff * diff).mean()
