"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay."""

from __future__ import annotations

from typing import Iterable

from ..errors import ConfigError
from .optimizer import Optimizer, check_number, required


class SGD(Optimizer):
    r"""Stochastic gradient descent, with exactly the semantics of ``torch.optim.SGD``.

    For each parameter :math:`p` with gradient :math:`g_t` at step :math:`t = 1, 2, \dots`:

    .. math::

        g_t &\leftarrow g_t + \lambda\, p_{t-1}                     && \text{(L2 weight decay)}\\
        b_1 &= g_1, \qquad b_t = \mu\, b_{t-1} + (1 - \tau)\, g_t  && \text{(momentum buffer)}\\
        d_t &= g_t + \mu\, b_t \ \text{(Nesterov)} \quad\text{or}\quad d_t = b_t\\
        p_t &= p_{t-1} - \eta\, d_t

    with learning rate :math:`\eta` (``lr``), momentum :math:`\mu`, dampening :math:`\tau` and
    weight decay :math:`\lambda`. With :math:`\mu = 0` there is no buffer and :math:`d_t = g_t`.
    Note that the buffer starts as the first gradient itself (not :math:`(1-\tau) g_1`), as in
    PyTorch. Nesterov momentum follows Sutskever et al. (2013), "On the importance of
    initialization and momentum in deep learning", eq. (3)-(4), in the reformulation used by
    PyTorch.

    Args:
        params: parameters or parameter groups (see :class:`Optimizer`).
        lr: learning rate :math:`\eta \ge 0` (required).
        momentum: :math:`\mu \ge 0`. Default 0.
        dampening: :math:`\tau`. Default 0.
        weight_decay: L2 coefficient :math:`\lambda \ge 0`, added to the gradient. Default 0.
        nesterov: use Nesterov momentum (needs :math:`\mu > 0` and :math:`\tau = 0`).

    State per parameter: ``"momentum_buffer"`` (:math:`b_t`, only when :math:`\mu > 0`).
    """

    def __init__(self, params: Iterable, lr: float = required, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    def _check_group(self, group):
        super()._check_group(group)
        check_number(group, "momentum", "momentum", low=0.0)
        check_number(group, "dampening", "dampening", low=0.0, high=1.0)
        check_number(group, "weight_decay", "weight decay", low=0.0)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ConfigError(f"Nesterov momentum needs momentum > 0 and dampening = 0, got "
                              f"momentum={group['momentum']}, dampening={group['dampening']}; "
                              f"set momentum (e.g. 0.9) or nesterov=False")

    def _step(self) -> None:
        for group in self.param_groups:
            lr, mu = group["lr"], group["momentum"]
            tau, wd = group["dampening"], group["weight_decay"]
            for p, grad, state, xp in self._params_with_grad(group):
                d = grad
                if wd != 0:
                    d = d + wd * p.data                      # g + λ p
                if mu != 0:
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = xp.array(d, dtype=p.data.dtype, copy=True)   # b_1 = g_1
                        state["momentum_buffer"] = buf
                    else:
                        buf *= mu                            # b_t = μ b_{t-1} + (1 - τ) g_t
                        buf += (1 - tau) * d
                    d = d + mu * buf if group["nesterov"] else buf
                p.data -= lr * d                             # p_t = p_{t-1} - η d_t
