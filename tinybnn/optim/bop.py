"""Bop, the latent-free Binary optimizer (Helwegen et al., 2019), and the flip-ratio metric."""

from __future__ import annotations

from typing import Iterable

from ..autograd import Tensor
from ..backend import get_array_module
from ..errors import ConfigError, ShapeError
from .optimizer import Optimizer, _describe, check_number


def flip_ratio(before, after) -> float:
    r"""The fraction of entries whose sign changed between two snapshots of the same weights.

    .. math::

        \text{flip ratio} = \frac{1}{n} \sum_{i=1}^{n}
            \mathbb 1\bigl[\operatorname{sign}(w^{\text{before}}_i) \ne
                           \operatorname{sign}(w^{\text{after}}_i)\bigr]

    with tinybnn's convention sign(0) = +1. This is Larq's "flip ratio" metric. It works for Bop
    (whose weights are ±1) and for latent-weight optimizers alike: copy ``p.data`` before
    ``opt.step()`` and compare with ``p.data`` after, since the forward pass binarizes with sign.

    Args:
        before, after: arrays (NumPy or CuPy) or Tensors of the same shape.

    Returns:
        a Python float in [0, 1] (0.0 for empty arrays).
    """
    a = before.data if isinstance(before, Tensor) else before
    b = after.data if isinstance(after, Tensor) else after
    if tuple(a.shape) != tuple(b.shape):
        raise ShapeError(f"flip_ratio needs two snapshots of the same weights, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    if a.size == 0:
        return 0.0
    xp = get_array_module(a, b)
    changed = (xp.asarray(a) >= 0) != (xp.asarray(b) >= 0)
    return float(xp.count_nonzero(changed)) / a.size


class Bop(Optimizer):
    r"""Bop, the Binary optimizer: flips binary weights when a gradient average asks for it.

    Helwegen, Widdicombe, Geiger, Nusselder & Huerta (2019), "Latent Weights Do Not Exist:
    Rethinking Binarized Neural Network Optimization", Algorithm 1; hyperparameter names and
    defaults from Larq's ``larq.optimizers.Bop``. There are no latent real-valued weights: the
    parameter *is* the binary weight :math:`w \in \{-1, +1\}`, and the only real-valued state is an
    exponential moving average of its gradient. For each binary parameter, at step :math:`t`:

    .. math::

        m_t &= (1 - \gamma)\, m_{t-1} + \gamma\, g_t, \qquad m_0 = 0\\
        w_t &= \begin{cases} -w_{t-1} & \text{if } w_{t-1} \cdot m_t > \tau\\
                             \phantom{-}w_{t-1} & \text{otherwise}\end{cases}

    The condition :math:`w \cdot m > \tau` reads: the gradient has, consistently (adaptivity rate
    :math:`\gamma`), pointed in the direction of :math:`w` itself -- the loss would decrease by
    moving :math:`w` towards the other sign -- and strongly enough (threshold :math:`\tau`).
    A weight flips when the product is *strictly* greater than :math:`\tau`.

    Conventions (tinybnn's choices, documented here):

    - **Initialisation.** When a parameter is handed to Bop (at construction, or by
      :meth:`add_param_group`), its data is replaced in place by :math:`\operatorname{sign}(w)`
      with sign(0) = +1, so that the very first forward pass already uses ±1 values. A real-valued
      initialisation (e.g. Kaiming) therefore only chooses the initial signs.
    - Only parameters marked ``binary=True`` (:class:`~tinybnn.nn.Parameter`) are accepted; give
      the other parameters (batch norm, scales, first/last layer) to a regular optimizer through
      :class:`~tinybnn.optim.Routed` / :func:`~tinybnn.optim.bop_with`.
    - Weight decay and learning rates do not exist for Bop; its groups have no ``"lr"`` entry, so
      learning-rate schedules leave them alone. To decay :math:`\gamma` (Helwegen et al. decay it
      on ImageNet) use a schedule with ``key="gamma"``.

    Args:
        params: binary parameters, or parameter groups of them (see :class:`Optimizer`).
        threshold: :math:`\tau \ge 0`. Default 1e-8 (Larq).
        gamma: adaptivity rate :math:`\gamma \in [0, 1]`. Default 1e-4 (Larq).

    State per parameter: ``"momentum"`` (:math:`m_t`).

    Attributes:
        last_flip_ratio: dict from each parameter's name (when named parameters were given) or its
            index to the fraction of its weights flipped by the last :meth:`step`.
        last_flips: total number of weights flipped by the last step (over all parameters).
    """

    def __init__(self, params: Iterable, threshold: float = 1e-8, gamma: float = 1e-4):
        self.last_flip_ratio: dict = {}
        self.last_flips = 0
        self._last_stepped = 0
        super().__init__(params, dict(threshold=threshold, gamma=gamma))

    def _check_group(self, group):
        super()._check_group(group)
        check_number(group, "threshold", "Bop threshold", low=0.0)
        check_number(group, "gamma", "Bop gamma", low=0.0, high=1.0)
        first = sum(len(g["params"]) for g in self.param_groups)
        names = group.get("param_names", [None] * len(group["params"]))
        for i, p in enumerate(group["params"]):
            if not getattr(p, "binary", False):
                raise ConfigError(f"Bop only trains binary weights, but "
                                  f"{_describe(p, first + i, names[i])} is not marked "
                                  f"binary=True; give it to another optimizer, e.g. with "
                                  f"tinybnn.optim.bop_with(model)")

    def _init_group(self, group):
        for p in group["params"]:
            xp = get_array_module(p.data)
            p.data[...] = xp.where(p.data >= 0, 1, -1).astype(p.data.dtype)   # sign, sign(0)=+1

    def _key(self, index: int, group: dict, i: int):
        """How ``last_flip_ratio`` names a parameter: its name if known, else its index."""
        names = group.get("param_names")
        return names[i] if names else index

    def _step(self) -> None:
        self.last_flip_ratio = {}
        self.last_flips = 0
        self._last_stepped = 0
        index = 0
        for group in self.param_groups:
            tau, gamma = group["threshold"], group["gamma"]
            for i, p in enumerate(group["params"]):
                key = self._key(index, group, i)
                index += 1
                if p.grad is None:
                    continue
                xp = get_array_module(p.data)
                state = self.state.setdefault(p, {})
                m = state.get("momentum")
                if m is None:
                    m = state["momentum"] = xp.zeros_like(p.data)
                m *= 1 - gamma                              # m_t = (1 - γ) m_{t-1} + γ g_t
                m += gamma * p.grad
                flip = p.data * m > tau                     # flip where w · m_t > τ
                p.data[flip] *= -1                          # w ← -w
                n = int(xp.count_nonzero(flip))
                self.last_flips += n
                self._last_stepped += p.data.size
                self.last_flip_ratio[key] = n / p.data.size if p.data.size else 0.0

    @property
    def total_flip_ratio(self) -> float:
        """Fraction of all binary weights (of the parameters stepped) flipped by the last step."""
        return self.last_flips / self._last_stepped if self._last_stepped else 0.0
