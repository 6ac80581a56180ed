"""Gradient probes: record, step by step, the gradient that flows into a tensor or a layer.

A probe is a hook (:meth:`Tensor.register_hook`) that writes down what passes through it::

    probe = GradientProbe("hidden")
    h = layer1(x); probe.attach(h)          # any tensor that requires grad
    loss.backward()
    probe.last, probe.summaries[-1]          # the array, and {count, mean, std, norm, ...}

For a whole model, :class:`GradientRecorder` puts probes on the inputs, outputs and weights of
chosen layers (by default every binary layer, SURGE-wrapped or not) and shares one step clock::

    with GradientRecorder(model, what=("input", "weight")) as rec:
        for batch in data:
            loss = ...; loss.backward(); opt.step()
            rec.step()                               # one training step done
    rec.get("features.3", "input", step=120)         # the array, if that step was kept
    rec.series("features.3", "input", "frac_zero")   # a summary over time

Memory stays bounded however long the run: every gradient is reduced to a small summary dict
(the list of summaries is thinned to every 2nd, 4th, ... record when it exceeds
``max_summaries``), running totals are kept over every record, and full arrays are kept only every
``keep_every``-th step and only the most recent ``max_arrays`` of them (``None``: all).
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Iterable

import numpy as np

from ..autograd import Tensor
from ..backend import to_numpy
from ..errors import ConfigError
from ..nn.module import Module, Parameter
from .metrics import summarize


class GradientProbe:
    """Records the gradients arriving at one place, with bounded memory.

    Args:
        name: a label for plots and messages.
        keep_every: keep the full array on steps that are multiples of this (0: never).
        max_arrays: how many kept arrays to hold at most (the oldest go first); None: no limit.
        max_summaries: the summary list is thinned by half whenever it grows beyond this.
        clock: a function returning the current step; by default the probe counts its records
            (record 0, 1, 2, ...), which is the step when one gradient arrives per step.

    Attributes:
        steps, summaries: the step of each kept summary and the summary (a dict from
            :func:`~tinybnn.inspect.metrics.summarize`: count, mean, std, norm, abs_max,
            frac_zero).
        arrays: ``deque`` of ``(step, array)`` pairs, NumPy copies.
        last, last_step: the latest gradient (always kept) and its step.
        totals: running aggregates over *every* record: ``records``, ``mean_norm``,
            ``max_norm``, ``mean_frac_zero``.
    """

    def __init__(self, name: str = "", keep_every: int = 1, max_arrays: int | None = 64,
                 max_summaries: int = 10_000, clock: Callable[[], int] | None = None):
        if keep_every < 0 or (max_arrays is not None and max_arrays < 0) or max_summaries < 2:
            raise ConfigError(f"probe {name!r}: keep_every >= 0, max_arrays >= 0 (or None) and "
                              f"max_summaries >= 2 are needed")
        self.name = name
        self.keep_every, self.max_arrays, self.max_summaries = keep_every, max_arrays, max_summaries
        self.clock = clock
        self.steps: list[int] = []
        self.summaries: list[dict] = []
        self.arrays: deque = deque(maxlen=max_arrays)
        self.last: np.ndarray | None = None
        self.last_step: int | None = None
        self.totals = {"records": 0, "mean_norm": 0.0, "max_norm": 0.0, "mean_frac_zero": 0.0}
        self._stride = 1  # a summary is kept every _stride-th record (grows as we thin)
        self._removers: list[Callable] = []

    # -- recording ------------------------------------------------------------------------
    def record(self, grad, step: int | None = None) -> None:
        """Write down one gradient (an array or Tensor), at ``step`` or the clock's step."""
        if isinstance(grad, Tensor):
            grad = grad.data
        array = np.array(to_numpy(grad), copy=True)
        index = self.totals["records"]
        if step is None:
            step = self.clock() if self.clock is not None else index
        summary = summarize(array)

        n = index + 1
        t = self.totals
        t["records"] = n
        t["mean_norm"] += (summary["norm"] - t["mean_norm"]) / n          # running means
        t["mean_frac_zero"] += (summary["frac_zero"] - t["mean_frac_zero"]) / n
        t["max_norm"] = max(t["max_norm"], summary["norm"])

        if index % self._stride == 0:
            self.steps.append(step)
            self.summaries.append(summary)
            if len(self.summaries) > self.max_summaries:
                self.steps, self.summaries = self.steps[::2], self.summaries[::2]
                self._stride *= 2
        if self.keep_every and step % self.keep_every == 0 and self.max_arrays != 0:
            self.arrays.append((step, array))
        self.last, self.last_step = array, step

    def hook(self, grad):
        """The function given to ``register_hook``: records and leaves the gradient unchanged."""
        self.record(grad)

    def attach(self, tensor: Tensor) -> Callable:
        """Record every gradient that flows into ``tensor``; returns a remover."""
        remove = tensor.register_hook(self.hook)
        self._removers.append(remove)
        return remove

    def remove(self) -> None:
        """Detach from every tensor this probe was attached to."""
        for remove in self._removers:
            remove()
        self._removers = []

    # -- reading --------------------------------------------------------------------------
    def series(self, key: str = "norm") -> np.ndarray:
        """One summary statistic over the kept steps, e.g. ``series("frac_zero")``."""
        return np.array([s[key] for s in self.summaries], dtype=np.float64)

    def get(self, step: int) -> np.ndarray:
        """The kept gradient of ``step`` (the latest one if several arrived in that step)."""
        if self.last_step == step:
            return self.last
        for s, array in reversed(self.arrays):
            if s == step:
                return array
        kept = [s for s, _ in self.arrays]
        shown = f"{kept[:3]} ... {kept[-3:]}" if len(kept) > 6 else f"{kept}"
        raise KeyError(f"probe {self.name!r} kept no gradient for step {step}; kept steps: "
                       f"{shown} (raise max_arrays or lower keep_every to keep more)")

    def stacked(self) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, arrays)`` of every kept array, stacked along a new first axis (for heatmaps);
        the arrays must share a shape."""
        if not self.arrays:
            return np.zeros(0, dtype=int), np.zeros((0,))
        steps = np.array([s for s, _ in self.arrays])
        return steps, np.stack([a for _, a in self.arrays])

    def __len__(self) -> int:
        return self.totals["records"]

    def __repr__(self) -> str:
        return (f"GradientProbe({self.name!r}, records={len(self)}, kept arrays="
                f"{len(self.arrays)}, mean norm={self.totals['mean_norm']:.4g})")


def probe_tensor(tensor: Tensor, name: str = "", **options) -> GradientProbe:
    """Attach a new :class:`GradientProbe` to ``tensor`` and return it."""
    probe = GradientProbe(name or (tensor.name or "tensor"), **options)
    probe.attach(tensor)
    return probe


# ---------------------------------------------------------------------------------------------
# Probes on the layers of a model
# ---------------------------------------------------------------------------------------------


def _default_layers(model: Module) -> list[tuple[str, Module]]:
    """Every binary layer of the model, counting a SURGE wrapper (not the layer inside it)."""
    from ..surge import SurgeLayer, is_binary_layer

    chosen, inside = [], set()
    for name, m in model.named_modules():
        if any(name.startswith(prefix + ".") for prefix in inside):
            continue
        if isinstance(m, SurgeLayer):
            chosen.append((name, m))
            inside.add(name)
        elif is_binary_layer(m):
            chosen.append((name, m))
    return chosen


def _find_parameter(module: Module, key: str) -> Parameter | None:
    """The parameter ``key`` of ``module``, looking inside wrappers: "weight" finds
    ``layer.weight`` in a SURGE layer, "aux_weight" its auxiliary weight."""
    matches = [(n.count("."), n, p) for n, p in module.named_parameters()
               if n == key or n.endswith("." + key)]
    return min(matches, key=lambda m: (m[0], m[1]))[2] if matches else None


class GradientRecorder:
    """Probes on the input, output and/or parameters of chosen layers, sharing one step clock.

    Args:
        model: the Module to watch.
        layers: None (every binary layer; a SURGE wrapper counts as its layer), a list of dotted
            module names, or a predicate ``f(name, module) -> bool``.
        what: any of "input" (∂L/∂x of the layer's first argument), "output" (∂L/∂y), and
            parameter names such as "weight", "aux_weight", "bias" (∂L/∂param, found inside
            wrappers too).
        keep_every, max_arrays, max_summaries: as for :class:`GradientProbe`.

    Attributes:
        probes: ``{layer name: {kind: GradientProbe}}``.
        current_step: the clock; advance it with :meth:`step` after each training step.
    """

    def __init__(self, model: Module, layers=None, what: Iterable[str] = ("input", "weight"),
                 keep_every: int = 1, max_arrays: int | None = 64, max_summaries: int = 10_000):
        self.model = model
        self.current_step = 0
        self.probes: dict[str, dict[str, GradientProbe]] = {}
        self._removers: list[Callable] = []
        modules = dict(model.named_modules())
        if layers is None:
            chosen = _default_layers(model)
        elif callable(layers):
            chosen = [(n, m) for n, m in model.named_modules() if layers(n, m)]
        else:
            unknown = [n for n in layers if n not in modules]
            if unknown:
                raise ConfigError(f"GradientRecorder: no module named {unknown}; names look like "
                                  f"{[n for n in list(modules)[1:6]]}")
            chosen = [(n, modules[n]) for n in layers]
        options = dict(keep_every=keep_every, max_arrays=max_arrays, max_summaries=max_summaries,
                       clock=lambda: self.current_step)
        for name, module in chosen:
            kinds = {}
            for kind in what:
                probe = GradientProbe(f"{name}:{kind}", **options)
                if kind in ("input", "output"):
                    self._removers.append(module.register_forward_hook(
                        self._forward_hook(probe, kind)))
                else:
                    param = _find_parameter(module, kind)
                    if param is None:
                        raise ConfigError(f"layer {name!r} ({type(module).__name__}) has no "
                                          f"parameter {kind!r}; use 'input', 'output' or one of "
                                          f"{[n for n, _ in module.named_parameters()]}")
                    self._removers.append(param.register_hook(probe.hook))
                kinds[kind] = probe
            self.probes[name] = kinds

    @staticmethod
    def _forward_hook(probe: GradientProbe, kind: str):
        def hook(module, args, output):
            tensor = output if kind == "output" else (args[0] if args else None)
            if isinstance(tensor, Tensor) and tensor.requires_grad:
                tensor.register_hook(probe.hook)
        return hook

    def step(self) -> None:
        """Advance the clock by one step (call it once per training step)."""
        self.current_step += 1

    def remove(self) -> None:
        """Detach every hook; the recorded data stays."""
        for remove in self._removers:
            remove()
        self._removers = []

    def __enter__(self) -> "GradientRecorder":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    # -- reading --------------------------------------------------------------------------
    def probe(self, layer: str, kind: str) -> GradientProbe:
        try:
            return self.probes[layer][kind]
        except KeyError:
            raise KeyError(f"no probe for layer {layer!r}, kind {kind!r}; recorded: "
                           f"{ {n: list(k) for n, k in self.probes.items()} }") from None

    def get(self, layer: str, kind: str, step: int) -> np.ndarray:
        """The kept gradient of ``layer``'s ``kind`` at ``step``."""
        return self.probe(layer, kind).get(step)

    def series(self, layer: str, kind: str, key: str = "norm") -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of one summary statistic of one probe."""
        p = self.probe(layer, kind)
        return np.array(p.steps), p.series(key)

    def norms(self, kind: str = "input") -> dict[str, np.ndarray]:
        """Per-layer gradient norms over time for one kind: ``{layer: norms}``."""
        return {name: kinds[kind].series("norm") for name, kinds in self.probes.items()
                if kind in kinds}
