"""Models by name: ``make_model("binary_mlp", input_shape=(1, 8, 8), num_classes=10)``.

Each builder takes ``input_shape`` (C, H, W) or (features,), ``num_classes`` and its own keyword
options; the CLI's ``--model`` and the recipes use these names.
"""

from __future__ import annotations

import inspect
from typing import Callable

from ..errors import ConfigError

_MODELS: dict[str, Callable] = {}


def register_model(name: str) -> Callable[[Callable], Callable]:
    """Decorator: make a model builder available by ``name``."""

    def wrap(builder: Callable) -> Callable:
        if name in _MODELS:
            raise ConfigError(f"model name {name!r} is already registered")
        _MODELS[name] = builder
        return builder

    return wrap


def available_models() -> list[str]:
    return sorted(_MODELS)


def make_model(name: str, input_shape, num_classes: int, **options):
    """Build the model registered as ``name``."""
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(available_models())}")
    builder = _MODELS[name]
    accepted = inspect.signature(builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = [key for key in options if key not in accepted]
        if unknown:
            raise ConfigError(f"model {name!r} does not take the option(s) {unknown}; it accepts "
                              f"{[k for k in accepted if k not in ('input_shape', 'num_classes')]}")
    return builder(input_shape=tuple(input_shape), num_classes=num_classes, **options)
