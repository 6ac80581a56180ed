"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), as in ``torch.optim``."""

from __future__ import annotations

import math
from typing import Iterable

from ..errors import ConfigError
from .optimizer import Optimizer, check_number


class Adam(Optimizer):
    r"""Adam with bias correction, optional AMSGrad and L2 weight decay (``torch.optim.Adam``).

    Kingma & Ba (2015), "Adam: A Method for Stochastic Optimization", Algorithm 1, in the
    "efficient" form of Section 2 (bias corrections folded into the step size). For each
    parameter :math:`p` with gradient :math:`g_t` at step :math:`t = 1, 2, \dots`:

    .. math::

        g_t &\leftarrow g_t + \lambda\, p_{t-1}                      && \text{(L2, coupled)}\\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t,\qquad m_0 = 0   && \text{(first moment)}\\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2,\qquad v_0 = 0 && \text{(second moment)}\\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \text{ (AMSGrad) or } v_t\\
        p_t &= p_{t-1} - \frac{\eta}{1 - \beta_1^t}\;
               \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    AMSGrad is Reddi, Kale & Kumar (2018), "On the Convergence of Adam and Beyond", Algorithm 2
    (with PyTorch's bias correction). Note where :math:`\epsilon` sits: it is added *after* the
    bias correction of :math:`\sqrt{v}`, exactly as PyTorch does.

    Args:
        params: parameters or parameter groups (see :class:`Optimizer`).
        lr: step size :math:`\eta \ge 0`. Default 1e-3.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1). Default (0.9, 0.999).
        eps: :math:`\epsilon \ge 0`. Default 1e-8.
        weight_decay: L2 coefficient :math:`\lambda \ge 0`, added to the gradient. Default 0.
        amsgrad: use the running maximum of :math:`v_t`. Default False.

    State per parameter: ``"step"`` (int :math:`t`), ``"exp_avg"`` (:math:`m_t`),
    ``"exp_avg_sq"`` (:math:`v_t`) and, with AMSGrad, ``"max_exp_avg_sq"`` (:math:`\hat v_t`).
    """

    #: True for AdamW: weight decay shrinks the weights directly instead of entering the gradient.
    decoupled_weight_decay = False

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults)

    def _check_group(self, group):
        super()._check_group(group)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ConfigError(f"betas must be a pair (beta1, beta2), e.g. (0.9, 0.999); got "
                              f"betas={betas!r}")
        group["betas"] = tuple(betas)
        for i in (0, 1):
            check_number({f"betas[{i}]": betas[i]}, f"betas[{i}]", f"beta{i + 1}",
                         low=0.0, high=1.0, high_open=True)
        check_number(group, "eps", "eps", low=0.0)
        check_number(group, "weight_decay", "weight decay", low=0.0)

    def _step(self) -> None:
        for group in self.param_groups:
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            for p, grad, state, xp in self._params_with_grad(group):
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = xp.zeros_like(p.data)
                    state["exp_avg_sq"] = xp.zeros_like(p.data)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = xp.zeros_like(p.data)
                state["step"] += 1
                t = state["step"]

                if wd != 0:
                    if self.decoupled_weight_decay:
                        p.data *= 1 - lr * wd                # AdamW: p ← p (1 - η λ)
                    else:
                        grad = grad + wd * p.data            # Adam: g ← g + λ p

                m, v = state["exp_avg"], state["exp_avg_sq"]
                m *= beta1                                   # m_t = β1 m + (1 - β1) g
                m += (1 - beta1) * grad
                v *= beta2                                   # v_t = β2 v + (1 - β2) g²
                v += (1 - beta2) * grad * grad

                if group["amsgrad"]:
                    v_hat = state.setdefault("max_exp_avg_sq", xp.zeros_like(p.data))
                    xp.maximum(v_hat, v, out=v_hat)          # v̂_t = max(v̂_{t-1}, v_t)
                else:
                    v_hat = v

                bias1 = 1 - beta1 ** t
                bias2 = 1 - beta2 ** t
                denom = xp.sqrt(v_hat) / math.sqrt(bias2) + eps
                p.data -= (lr / bias1) * m / denom


class AdamW(Adam):
    r"""Adam with *decoupled* weight decay (``torch.optim.AdamW``).

    Loshchilov & Hutter (2019), "Decoupled Weight Decay Regularization", Algorithm 2: the decay
    does not enter the gradient (so it is not rescaled by :math:`1/\sqrt{\hat v}`); instead the
    weights shrink first, then take the Adam step of :class:`Adam` computed from :math:`g_t`:

    .. math::

        p \leftarrow p\,(1 - \eta\lambda), \qquad
        p_t = p - \frac{\eta}{1 - \beta_1^t}\;
              \frac{m_t}{\sqrt{\hat v_t}/\sqrt{1 - \beta_2^t} + \epsilon}

    As in PyTorch the decay is multiplied by the learning rate :math:`\eta` (so a learning-rate
    schedule also schedules the decay).

    Args: as :class:`Adam`, but ``weight_decay`` (:math:`\lambda`) defaults to 1e-2.
    """

    decoupled_weight_decay = True

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)
