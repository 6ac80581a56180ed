"""Gradient clipping by global norm."""

from __future__ import annotations

import math
from typing import Iterable

from ..autograd import Tensor
from ..backend import get_array_module
from ..errors import ConfigError


def clip_grad_norm_(params: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0) -> float:
    r"""Rescale all gradients together so that their global norm is at most ``max_norm``.

    The gradients of all parameters are treated as one long vector :math:`g` (parameters whose
    ``grad`` is ``None`` are skipped). With :math:`\|g\|` its norm (L2 by default,
    ``norm_type=float("inf")`` for the largest absolute entry, or any :math:`p`-norm):

    .. math::

        c = \frac{\text{max\_norm}}{\|g\| + 10^{-6}}, \qquad
        g \leftarrow g \cdot \min(c, 1)

    -- the same rule as ``torch.nn.utils.clip_grad_norm_`` (Pascanu, Mikolov & Bengio, 2013, "On
    the difficulty of training recurrent neural networks", Algorithm 1). The gradients are changed
    in place; the norm is accumulated in float64.

    Args:
        params: an iterable of Tensors/Parameters, or a single Tensor.
        max_norm: the largest allowed norm (>= 0).
        norm_type: :math:`p` of the :math:`p`-norm (> 0), or ``inf``. Default 2.

    Returns:
        the total norm *before* clipping, as a Python float.
    """
    if isinstance(params, Tensor):
        params = [params]
    if not max_norm >= 0:
        raise ConfigError(f"max_norm must be >= 0, got {max_norm}")
    if not (norm_type > 0):
        raise ConfigError(f"norm_type must be > 0 or inf, got {norm_type}")
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0

    if math.isinf(norm_type):                       # ||g||_inf = max_i |g_i|
        total = 0.0
        for g in grads:
            xp = get_array_module(g)
            if g.size:
                total = max(total, float(xp.max(xp.abs(g))))
    else:                                           # ||g||_p = (sum_i |g_i|^p)^(1/p)
        acc = 0.0
        for g in grads:
            xp = get_array_module(g)
            acc += float(xp.sum(xp.abs(g.astype(xp.float64)) ** norm_type))
        total = acc ** (1.0 / norm_type)

    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g *= coef
    return total
