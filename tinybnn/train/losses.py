"""Training losses: cross-entropy (from :mod:`tinybnn.functional`) and knowledge distillation.

Knowledge distillation (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural
Network") trains a *student* (here: a binary network) to match the softened output distribution of
a *teacher* (a trained real-valued network). BNN papers use it heavily (Real-to-Binary, ReActNet,
BNext), because the teacher's "dark knowledge" -- which wrong classes are almost right -- is a much
richer target than the one-hot label.
"""

from __future__ import annotations

from .. import functional as F
from ..autograd import Tensor
from ..backend import get_array_module
from ..errors import ConfigError, ShapeError
from ..functional import cross_entropy

__all__ = ["cross_entropy", "distillation_loss"]


def _log_softmax_array(z, axis: int = 1):
    """log softmax of a plain array (the teacher side needs no gradient)."""
    xp = get_array_module(z)
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def distillation_loss(student_logits: Tensor, teacher_logits, labels, alpha: float = 0.5,
                      temperature: float = 4.0) -> Tensor:
    r"""Hinton's distillation loss: a mix of matching the teacher and matching the labels.

    .. math::

        L = \alpha \, T^2 \, \mathrm{KL}\big(p_T \,\|\, q_T\big)
            + (1 - \alpha)\, \mathrm{CE}(z_s, y)

    where :math:`p_T = \mathrm{softmax}(z_t / T)` is the teacher's softened distribution,
    :math:`q_T = \mathrm{softmax}(z_s / T)` the student's, KL is averaged over the batch and CE is
    the ordinary cross-entropy of the student's logits at temperature 1. The factor :math:`T^2`
    keeps the size of the KL gradient independent of :math:`T` (its gradient is
    :math:`(q_T - p_T)/T` per logit, Hinton et al. Sec. 2), so ``alpha`` means the same at every
    temperature.

    Args:
        student_logits: Tensor (N, C), the network being trained.
        teacher_logits: array or Tensor (N, C); treated as a constant (no gradient flows into the
            teacher).
        labels: integer class indices (N,). Unused when ``alpha == 1``.
        alpha: weight of the distillation term in [0, 1]; 1 = pure distillation (as in BNext),
            0 = plain cross-entropy.
        temperature: T > 0; larger T softens both distributions.

    Returns:
        A scalar Tensor. It is 0 for ``alpha = 1`` when the student's logits equal the teacher's.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"distillation alpha must be in [0, 1], got {alpha}")
    if not temperature > 0:
        raise ConfigError(f"distillation temperature must be > 0, got {temperature}")
    teacher = teacher_logits.data if isinstance(teacher_logits, Tensor) else teacher_logits
    xp = get_array_module(student_logits.data)
    teacher = xp.asarray(teacher, dtype=student_logits.dtype)
    if student_logits.ndim != 2 or teacher.shape != student_logits.shape:
        raise ShapeError(f"distillation_loss needs student and teacher logits of the same shape "
                         f"(N, C), got {student_logits.shape} and {tuple(teacher.shape)}")

    n = student_logits.shape[0]
    log_p = _log_softmax_array(teacher / temperature)          # (N, C), constant
    p = xp.exp(log_p)
    log_q = F.log_softmax(student_logits / temperature, axis=1)  # (N, C), a Tensor
    # KL(p || q) = Σ_c p_c (log p_c − log q_c), averaged over the N samples.
    kl = ((log_p - log_q) * p).sum() / n
    loss = kl * (alpha * temperature ** 2)
    if alpha < 1.0:
        loss = loss + cross_entropy(student_logits, labels) * (1.0 - alpha)
    return loss

