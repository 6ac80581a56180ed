"""Optimizers, learning-rate schedules and gradient clipping (``import tinybnn.optim as optim``).

- :class:`SGD`, :class:`Adam`, :class:`AdamW` -- ``torch.optim`` semantics, parameter groups,
  ``state_dict``/``load_state_dict`` (see :mod:`tinybnn.optim.optimizer` for the format, and
  :func:`flatten_state`/:func:`unflatten_state` for writing it as ``.npz`` + JSON);
- :class:`Bop` -- the latent-free binary optimizer, and the :func:`flip_ratio` metric;
- :class:`Routed`, :class:`CaseOptimizer`, :func:`bop_with` -- one optimizer per parameter;
- :func:`make_optimizer` -- optimizers by name (``"sgd"``, ``"adam"``, ``"adamw"``, ``"bop"``);
- :mod:`~tinybnn.optim.schedule` -- :class:`CosineWarmup`, :class:`StepLR`, :class:`LinearDecay`;
- :func:`clip_grad_norm_`.
"""

from .optimizer import Optimizer, flatten_state, required, unflatten_state
from .sgd import SGD
from .adam import Adam, AdamW
from .bop import Bop, flip_ratio
from .routing import CaseOptimizer, Routed, bop_with
from .registry import make_optimizer, optimizer_names
from .schedule import CosineWarmup, LinearDecay, LRScheduler, MilestoneLR, StepLR
from .clip import clip_grad_norm_
from . import schedule

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "Bop", "flip_ratio", "Routed", "CaseOptimizer",
    "bop_with", "make_optimizer", "optimizer_names", "LRScheduler", "CosineWarmup", "StepLR",
    "LinearDecay", "clip_grad_norm_", "flatten_state", "unflatten_state", "required", "schedule",
]
