"""Learning-rate schedules: a value of the learning rate for each step count ``t = 0, 1, 2, ...``.

A schedule holds an optimizer and the *base* value of each parameter group (its ``"lr"`` when the
schedule was built). ``scheduler.step()`` advances a counter ``t`` by one and writes
``lr_at(base, t)`` into every group. The unit of ``t`` is whatever the caller counts: call
``step()`` once per epoch and give ``total_steps`` in epochs, or once per batch and give it in
batches -- the formulas are the same::

    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = CosineWarmup(opt, total_steps=epochs, warmup_steps=5)
    for epoch in range(epochs):
        train_one_epoch(model, opt)          # uses lr_at(0.1, epoch)
        sched.step()

Building a schedule already sets the learning rate of step 0 (so a warm-up starts small).

Groups that lack the scheduled key are left alone -- for example Bop's groups inside a routed
Bop + Adam optimizer, which have no ``"lr"``. ``key`` selects another hyperparameter to schedule,
e.g. ``CosineWarmup(bop, total, key="gamma")`` decays Bop's adaptivity rate.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import CheckpointError, ConfigError


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a positive integer, got {value!r}")
    return value


class LRScheduler:
    """Base class: keeps the optimizer, the base values and the step counter.

    Subclasses define :meth:`lr_at`.

    Args:
        optimizer: an :class:`~tinybnn.optim.Optimizer` (or :class:`~tinybnn.optim.Routed`).
        key: the group entry to schedule. Default ``"lr"``.

    Attributes:
        last_step: the counter ``t`` (0 after construction, +1 per :meth:`step`).
        base_lrs: the base value of each group (``None`` for groups without ``key``).
    """

    def __init__(self, optimizer, key: str = "lr"):
        self.optimizer = optimizer
        self.key = key
        self.base_lrs: list[float | None] = [g.get(key) for g in optimizer.param_groups]
        if all(base is None for base in self.base_lrs):
            raise ConfigError(f"{type(self).__name__}: no parameter group of "
                              f"{type(optimizer).__name__} has a {key!r} to schedule")
        self.last_step = 0
        self._apply()

    def lr_at(self, base: float, t: int) -> float:
        """The scheduled value at step ``t`` for a group whose base value is ``base``."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance the counter by one step (one epoch, or one batch) and set the new values."""
        self.last_step += 1
        self._apply()

    def _apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            if base is not None:
                group[self.key] = self.lr_at(base, self.last_step)

    def get_last_lr(self) -> list[float]:
        """The current value of every scheduled group, in group order."""
        return [group[self.key] for group, base in zip(self.optimizer.param_groups, self.base_lrs)
                if base is not None]

    def state_dict(self) -> dict[str, Any]:
        """``{"last_step": int, "base_lrs": [float | None, ...], "key": str}`` (JSON-able)."""
        return {"last_step": self.last_step, "base_lrs": list(self.base_lrs), "key": self.key}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the counter and the base values, and set the values of that step."""
        try:
            last_step, base_lrs = int(state["last_step"]), list(state["base_lrs"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"not a {type(self).__name__} state: expected 'last_step' and "
                                  f"'base_lrs'") from None
        if len(base_lrs) != len(self.base_lrs):
            raise CheckpointError(f"schedule state has {len(base_lrs)} parameter groups, the "
                                  f"optimizer has {len(self.base_lrs)}")
        if state.get("key", self.key) != self.key:
            raise CheckpointError(f"schedule state schedules {state['key']!r}, this schedule "
                                  f"schedules {self.key!r}")
        self.last_step, self.base_lrs = last_step, base_lrs
        self._apply()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(step={self.last_step}, {self.key}={self.get_last_lr()})"


class CosineWarmup(LRScheduler):
    r"""Linear warm-up, then cosine annealing (Loshchilov & Hutter, 2017, "SGDR", eq. (5),
    without restarts; warm-up as in Goyal et al., 2017, "Accurate, Large Minibatch SGD", §2.2).

    With base value :math:`\eta`, warm-up length :math:`W`, total :math:`T` and floor
    :math:`\eta_{\min}`:

    .. math::

        \eta_t = \begin{cases}
            \eta\,\dfrac{t + 1}{W + 1} & 0 \le t < W \quad\text{(warm-up)}\\[1ex]
            \eta_{\min} + (\eta - \eta_{\min})\,\dfrac{1 + \cos(\pi p_t)}{2},\quad
            p_t = \min\!\Bigl(1, \dfrac{t - W}{T - W}\Bigr) & t \ge W
        \end{cases}

    The warm-up climbs from :math:`\eta/(W+1)` (near zero, but not zero, so the first step
    already learns) to the base value at :math:`t = W`; the cosine then falls to exactly
    :math:`\eta_{\min}` at :math:`t = T` and stays there. (If :math:`W = T`, :math:`p_t = 1`
    from :math:`t = W` on.)

    Args:
        optimizer: the optimizer whose groups to schedule.
        total_steps: :math:`T \ge 1`, in the caller's unit (epochs or batches).
        warmup_steps: :math:`0 \le W \le T`. Default 0 (pure cosine).
        min_lr: :math:`\eta_{\min} \ge 0`. Default 0.
        key: the group entry to schedule. Default ``"lr"``.
    """

    def __init__(self, optimizer, total_steps: int, warmup_steps: int = 0, min_lr: float = 0.0,
                 key: str = "lr"):
        self.total_steps = _positive_int(total_steps, "total_steps")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        if warmup_steps > total_steps:
            raise ConfigError(f"warmup_steps ({warmup_steps}) is longer than total_steps "
                              f"({total_steps}); shorten the warm-up or train longer")
        if not min_lr >= 0:
            raise ConfigError(f"min_lr must be >= 0, got {min_lr}")
        self.warmup_steps, self.min_lr = warmup_steps, min_lr
        super().__init__(optimizer, key)

    def lr_at(self, base: float, t: int) -> float:
        W, T = self.warmup_steps, self.total_steps
        if t < W:
            return base * (t + 1) / (W + 1)
        p = 1.0 if T == W else min(1.0, (t - W) / (T - W))
        return self.min_lr + (base - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * p))


class StepLR(LRScheduler):
    r"""Multiply the value by :math:`\gamma` every ``step_size`` steps (``torch.optim.lr_scheduler
    .StepLR``): :math:`\eta_t = \eta\,\gamma^{\lfloor t / s \rfloor}`.

    Args:
        optimizer: the optimizer whose groups to schedule.
        step_size: :math:`s \ge 1`, in the caller's unit.
        gamma: :math:`\gamma \ge 0`. Default 0.1.
        key: the group entry to schedule. Default ``"lr"``.
    """

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, key: str = "lr"):
        self.step_size = _positive_int(step_size, "step_size")
        if not gamma >= 0:
            raise ConfigError(f"gamma must be >= 0, got {gamma}")
        self.gamma = gamma
        super().__init__(optimizer, key)

    def lr_at(self, base: float, t: int) -> float:
        return base * self.gamma ** (t // self.step_size)

class MilestoneLR(LRScheduler):
    r"""Multiply the value by :math:`\gamma` at each milestone:
    :math:`\eta_t = \eta\,\gamma^{|\{m \in \text{milestones} : m \le t\}|}`
    (``torch.optim.lr_scheduler.MultiStepLR``; the recipes' ``"step"`` schedule, in epochs).
    """

    def __init__(self, optimizer, milestones, gamma: float = 0.1, key: str = "lr"):
        self.milestones, self.gamma = sorted(int(m) for m in milestones), gamma
        super().__init__(optimizer, key)

    def lr_at(self, base: float, t: int) -> float:
        return base * self.gamma ** sum(1 for m in self.milestones if m <= t)



class LinearDecay(LRScheduler):
    r"""Decay linearly from the base value to ``end_factor`` times it over ``total_steps``, then
    stay there:

    .. math::

        \eta_t = \eta\,\Bigl(1 - (1 - f)\,\frac{\min(t, T)}{T}\Bigr)

    Args:
        optimizer: the optimizer whose groups to schedule.
        total_steps: :math:`T \ge 1`, in the caller's unit.
        end_factor: :math:`f \in [0, 1]`. Default 0 (decay to zero).
        key: the group entry to schedule. Default ``"lr"``.
    """

    def __init__(self, optimizer, total_steps: int, end_factor: float = 0.0, key: str = "lr"):
        self.total_steps = _positive_int(total_steps, "total_steps")
        if not 0 <= end_factor <= 1:
            raise ConfigError(f"end_factor must be in [0, 1], got {end_factor}")
        self.end_factor = end_factor
        super().__init__(optimizer, key)

    def lr_at(self, base: float, t: int) -> float:
        T = self.total_steps
        return base * (1.0 - (1.0 - self.end_factor) * min(t, T) / T)
