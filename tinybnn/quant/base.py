"""Quantizers as Modules, and the registry that names them.

A quantizer maps a real tensor to its binary (or k-bit) version in ``forward``; its gradient is a
*surrogate* written in the ``backward`` of a :class:`~tinybnn.autograd.Function`. Quantizers are
Modules because some learn (RSign's threshold, LSQ's step, ReCU's α) and some follow a schedule
over training (IR-Net's t, ReCU's τ, BNext's temperature). Layers take them by name::

    BinaryLinear(64, 64, input_quantizer="approx_sign", weight_quantizer="xnor")

Schedules advance through one mechanism: the training loop calls :func:`advance_schedules` at the
start of each epoch, which calls ``set_progress(epoch, epochs)`` on every quantizer in the model.
"""

from __future__ import annotations

from typing import Callable

from ..errors import ConfigError
from ..nn.module import Module

_REGISTRY: dict[str, type] = {}
_KINDS: dict[str, str] = {}


def register(name: str, kind: str = "activation") -> Callable[[type], type]:
    """Class decorator: make a Quantizer available by ``name``.

    ``kind`` is "activation", "weight" or "both" (what the quantizer is meant for; used in the
    listings and the CLI, not enforced).
    """

    def wrap(cls: type) -> type:
        if name in _REGISTRY:
            raise ConfigError(f"quantizer name {name!r} is already registered by "
                              f"{_REGISTRY[name].__name__}")
        _REGISTRY[name] = cls
        _KINDS[name] = kind
        cls.registry_name = name
        return cls

    return wrap


def available(kind: str | None = None) -> list[str]:
    """Registered quantizer names, optionally only those of one kind ("activation"/"weight")."""
    return sorted(n for n in _REGISTRY if kind is None or _KINDS[n] in (kind, "both"))


def make_quantizer(spec, **options) -> "Quantizer | None":
    """Build a quantizer from a name (``"ste_sign"``), a class, an instance, or ``None``
    (no quantization: the layer uses real values)."""
    if spec is None or isinstance(spec, Module):
        if options:
            raise ConfigError("quantizer options are only accepted together with a name")
        return spec
    if isinstance(spec, type) and issubclass(spec, Module):
        return spec(**options)
    if isinstance(spec, str):
        if spec not in _REGISTRY:
            raise ConfigError(f"unknown quantizer {spec!r}; choose one of: "
                              f"{', '.join(available())}")
        return _REGISTRY[spec](**options)
    raise ConfigError(f"a quantizer must be a name, a Quantizer class or instance, or None; got "
                      f"{type(spec).__name__}")


class Quantizer(Module):
    """Base class: ``forward(x)`` returns the quantized Tensor. Override ``set_progress`` for an
    epoch schedule."""

    #: bits of the output (1 for sign-like quantizers), used by the model summary and export
    bits: int = 1
    #: value set of a 1-bit output: "pm1" for {−1, +1}, "01" for {0, 1}
    levels: str = "pm1"

    def set_progress(self, epoch: int, epochs: int) -> None:
        """Called at the start of each epoch (0-based) of ``epochs``; no-op by default."""


def advance_schedules(model: Module, epoch: int, epochs: int) -> None:
    """Advance every quantizer schedule in ``model`` to ``epoch`` (0-based) of ``epochs``."""
    for m in model.modules():
        if isinstance(m, Quantizer):
            m.set_progress(epoch, epochs)
