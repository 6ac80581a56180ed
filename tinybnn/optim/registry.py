"""Optimizers by name, for the CLI's ``--optimizer`` and for configuration files."""

from __future__ import annotations

import inspect
from typing import Callable

from ..errors import ConfigError
from .adam import Adam, AdamW
from .sgd import SGD

#: Extra defaults the registry uses where a name's class default is not the usual choice.
REGISTRY_DEFAULTS = {"sgd": {"momentum": 0.9}}


def _build_sgd(params, lr, weight_decay, **kw):
    kw = {**REGISTRY_DEFAULTS["sgd"], **kw}
    return SGD(params, lr=lr, weight_decay=0.0 if weight_decay is None else weight_decay, **kw)


def _build_adam(params, lr, weight_decay, **kw):
    return Adam(params, lr=lr, weight_decay=0.0 if weight_decay is None else weight_decay, **kw)


def _build_adamw(params, lr, weight_decay, **kw):
    if weight_decay is not None:
        kw["weight_decay"] = weight_decay
    return AdamW(params, lr=lr, **kw)


def _build_bop(params, lr, weight_decay, **kw):
    from .routing import bop_with

    return bop_with(params, lr=lr, weight_decay=weight_decay, **kw)


#: name -> (builder, the callables whose keyword arguments the name accepts)
_OPTIMIZERS: dict[str, tuple[Callable, tuple[Callable, ...]]] = {
    "sgd": (_build_sgd, (SGD,)),
    "adam": (_build_adam, (Adam,)),
    "adamw": (_build_adamw, (AdamW,)),
    "bop": (_build_bop, ()),   # options: see _accepted_options (bop_with + the other optimizer)
}


def optimizer_names() -> list[str]:
    """The names :func:`make_optimizer` accepts."""
    return sorted(_OPTIMIZERS)


def _accepted_options(name: str) -> set[str]:
    if name == "bop":
        from .routing import bop_with

        targets = (bop_with, SGD, Adam, AdamW)
    else:
        targets = _OPTIMIZERS[name][1]
    options = set()
    for target in targets:
        sig = inspect.signature(target)
        options |= {p for p, v in sig.parameters.items()
                    if v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY)}
    return options - {"self", "params", "model_or_params", "lr", "weight_decay"}


def make_optimizer(name: str, params, lr: float, weight_decay: float | None = None, **kw):
    """Build an optimizer by name.

    ======  ==========================================================================
    name    what it builds
    ======  ==========================================================================
    sgd     :class:`SGD` with ``momentum=0.9`` unless ``momentum`` is given
    adam    :class:`Adam` (L2 weight decay)
    adamw   :class:`AdamW` (decoupled weight decay)
    bop     :func:`bop_with`: :class:`Bop` for binary weights, Adam (or ``other=``) for the rest;
            ``lr`` and ``weight_decay`` go to the other optimizer, ``threshold``/``gamma``
            to Bop
    ======  ==========================================================================

    Args:
        name: one of the names above (case-insensitive).
        params: parameters, ``named_parameters()``, parameter groups, or a Module (whose
            parameters, with their names, are used).
        lr: learning rate.
        weight_decay: ``None`` (default) keeps each optimizer's own default -- 0 for SGD and Adam,
            1e-2 for AdamW; a number overrides it.
        **kw: further options of the chosen optimizer (``momentum``, ``nesterov``, ``betas``,
            ``eps``, ``amsgrad``, ``threshold``, ``gamma``, ``other``, ...).

    Raises:
        ConfigError: unknown name (the message lists the valid ones), or an option the chosen
            optimizer does not take.
    """
    key = str(name).lower()
    if key not in _OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of "
                          f"{', '.join(optimizer_names())}")
    unknown = sorted(set(kw) - _accepted_options(key))
    if unknown:
        raise ConfigError(f"optimizer {key!r} does not take option(s) {unknown}; it accepts "
                          f"{sorted(_accepted_options(key))}")
    if key != "bop" and hasattr(params, "named_parameters") and callable(params.named_parameters):
        params = list(params.named_parameters())
    builder, _ = _OPTIMIZERS[key]
    return builder(params, lr, weight_decay, **kw)
