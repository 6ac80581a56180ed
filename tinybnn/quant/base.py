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


def describe(kind: str | None = None) -> list[tuple[str, str, str]]:
    """(name, kind, one-line summary) of every registered quantizer, sorted by name, optionally only
    those of one kind; the CLI prints this table. The summary is the class attribute ``summary``
    (a formula), or the first line of the class docstring."""
    rows = []
    for name in available(kind):
        cls = _REGISTRY[name]
        text = getattr(cls, "summary", "") or (cls.__doc__ or "").strip().split("\n")[0]
        rows.append((name, _KINDS[name], text))
    return rows


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

    #: one-line formula shown by :func:`describe` (and the CLI)
    summary: str = ""

    def set_progress(self, epoch: int, epochs: int) -> None:
        """Called at the start of each epoch (0-based) of ``epochs``; no-op by default."""

    def build(self, channels: int, axis: int = 1) -> None:
        """Called once by the layer that owns the quantizer, before any forward, with the size of
        the channel axis of the tensors the quantizer will see and which axis that is: 1 for the
        activations of a convolution (N, C, H, W), −1 for the inputs of a linear layer (..., C),
        0 for a weight (out, ...). Quantizers with per-channel parameters (RSign's threshold,
        ReCU's α, per-channel LSQ steps) create them here; the others ignore it.
        """


def channel_shape(ndim: int, axis: int, channels: int) -> tuple[int, ...]:
    """The shape that broadcasts a per-channel vector of length ``channels`` along ``axis`` of an
    ``ndim``-dimensional array: ``channel_shape(4, 1, 8) == (1, 8, 1, 1)``."""
    shape = [1] * ndim
    shape[axis] = channels
    return tuple(shape)


def reduce_to_channels(grad, axis: int | None):
    """Sum ``grad`` over every axis except ``axis`` (over all axes when ``axis`` is None): the
    gradient of a per-channel (or single shared) parameter that was broadcast over ``grad``.
    Returns shape (C,) or (1,)."""
    if axis is None:
        return grad.sum().reshape(1)
    axis = axis % grad.ndim
    others = tuple(i for i in range(grad.ndim) if i != axis)
    return grad.sum(axis=others)


def advance_schedules(model: Module, epoch: int, epochs: int) -> None:
    """Advance every quantizer schedule in ``model`` to ``epoch`` (0-based) of ``epochs``."""
    for m in model.modules():
        if isinstance(m, Quantizer):
            m.set_progress(epoch, epochs)
