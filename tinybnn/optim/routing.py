"""Routing parameters to several optimizers: Bop for binary weights, Adam/SGD for the rest.

A binary network trained with Bop still has real-valued parameters (batch norm, scales, the
first and last layers) that need a regular optimizer. Larq solves this with ``CaseOptimizer``;
tinybnn offers the same idea in three sizes:

- :class:`Routed` -- several optimizers that are already built, stepped together::

      opt = Routed([Bop(binary_params), Adam(other_params, lr=1e-3)])

- :class:`CaseOptimizer` -- predicates decide which optimizer gets each parameter::

      opt = CaseOptimizer(model.named_parameters(),
                          (lambda p: p.binary, lambda ps: Bop(ps, gamma=1e-4)),
                          default=lambda ps: Adam(ps, lr=1e-3))

- :func:`bop_with` -- the usual case in one call: ``opt = bop_with(model, other="adam", lr=1e-3)``.

In every case each parameter belongs to exactly one optimizer; a parameter claimed twice is a
:class:`~tinybnn.errors.ConfigError` naming it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from ..autograd import Tensor, enable_grad
from ..errors import CheckpointError, ConfigError
from .optimizer import Optimizer, _describe


def _named_list(params) -> list[tuple[str | None, Tensor]]:
    """``[(name or None, parameter)]`` from a Module, named pairs, or bare parameters."""
    if hasattr(params, "named_parameters") and callable(params.named_parameters):
        return list(params.named_parameters())
    if isinstance(params, Tensor):
        params = [params]
    out = []
    for item in params:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            out.append(item)
        elif isinstance(item, Tensor):
            out.append((getattr(item, "name", None), item))
        else:
            raise ConfigError(f"expected parameters or (name, parameter) pairs, got "
                              f"{type(item).__name__}")
    return out


def _as_input(named: list[tuple[str | None, Tensor]]) -> list:
    """What to hand to an optimizer: named pairs when every name is known, else bare parameters."""
    if named and all(name is not None for name, _ in named):
        return list(named)
    return [p for _, p in named]


class Routed:
    """Several optimizers acting as one, each owning a disjoint set of parameters.

    Presents the interface of :class:`~tinybnn.optim.Optimizer` -- ``step()``, ``zero_grad()``,
    ``param_groups`` (the groups of all optimizers, in order, so learning-rate schedules apply to
    every group that has an ``"lr"``), ``state``, ``state_dict()``/``load_state_dict()`` -- but is
    not a subclass of it.

    Args:
        optimizers: the optimizers, already built over their parameters.
        params: optionally, every parameter of the model (or the Module itself); then each must
            be owned by one of the optimizers, so that none is silently left untrained.

    Raises:
        ConfigError: if two optimizers own the same parameter, or (with ``params``) a parameter is
            owned by none.

    Checkpoint format: ``{"optimizers": [sd_0, sd_1, ...], "types": ["Bop", "Adam", ...]}`` with
    each ``sd_k`` the :meth:`Optimizer.state_dict` of optimizer ``k``.
    """

    def __init__(self, optimizers: Sequence[Optimizer], params: Iterable | None = None):
        self.optimizers = list(optimizers)
        if not self.optimizers:
            raise ConfigError("Routed needs at least one optimizer")
        for k, opt in enumerate(self.optimizers):
            if not hasattr(opt, "param_groups") or not hasattr(opt, "step"):
                raise ConfigError(f"item {k} given to Routed is a {type(opt).__name__}, not an "
                                  f"optimizer")
        owner: dict[int, int] = {}
        for k, opt in enumerate(self.optimizers):
            index = 0
            for group in opt.param_groups:
                names = group.get("param_names") or [None] * len(group["params"])
                for p, name in zip(group["params"], names):
                    if id(p) in owner:
                        j = owner[id(p)]
                        raise ConfigError(
                            f"{_describe(p, index, name)} of optimizer {k} "
                            f"({type(opt).__name__}) is also claimed by optimizer {j} "
                            f"({type(self.optimizers[j]).__name__}); each parameter must go to "
                            f"exactly one optimizer")
                    owner[id(p)] = k
                    index += 1
        if params is not None:
            for i, (name, p) in enumerate(_named_list(params)):
                if id(p) not in owner:
                    raise ConfigError(f"{_describe(p, i, name)} is handled by no optimizer; "
                                      f"give it to one of them (or leave it out of params)")

    # -- the Optimizer interface ----------------------------------------------------------
    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The parameter groups of every optimizer, in order (the dicts themselves, not copies)."""
        return [g for opt in self.optimizers for g in opt.param_groups]

    @property
    def state(self) -> dict:
        """Per-parameter state of every optimizer, merged (read it; do not assign)."""
        merged = {}
        for opt in self.optimizers:
            merged.update(opt.state)
        return merged

    def step(self, closure: Callable[[], Any] | None = None):
        """Call ``closure`` once (if given), then step every optimizer; returns the loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for opt in self.optimizers:
            opt.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [opt.state_dict() for opt in self.optimizers],
                "types": [type(opt).__name__ for opt in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        types = [type(opt).__name__ for opt in self.optimizers]
        saved = state_dict.get("optimizers") if isinstance(state_dict, dict) else None
        if saved is None or list(state_dict.get("types", [])) != types:
            got = state_dict.get("types") if isinstance(state_dict, dict) else None
            raise CheckpointError(f"optimizer state was saved from {got}, but this routed "
                                  f"optimizer is {types}; use the same --optimizer as the run "
                                  f"being resumed")
        for opt, sd in zip(self.optimizers, saved):
            opt.load_state_dict(sd)

    # -- conveniences ---------------------------------------------------------------------
    @property
    def last_flip_ratio(self) -> dict:
        """``last_flip_ratio`` of every optimizer that has one (Bop), merged."""
        merged = {}
        for opt in self.optimizers:
            merged.update(getattr(opt, "last_flip_ratio", {}))
        return merged

    def __getitem__(self, k: int) -> Optimizer:
        return self.optimizers[k]

    def __len__(self) -> int:
        return len(self.optimizers)

    def __repr__(self) -> str:
        body = ",\n".join("  " + repr(opt).replace("\n", "\n  ") for opt in self.optimizers)
        return f"{type(self).__name__}(\n{body}\n)"


class CaseOptimizer(Routed):
    """Route each parameter to an optimizer by predicate (after Larq's ``CaseOptimizer``).

    Args:
        params: the parameters to train: a Module, ``model.named_parameters()`` (names are passed
            on, so Bop's flip ratios and error messages use them) or bare parameters.
        *cases: ``(predicate, make_optimizer)`` pairs. ``predicate(p) -> bool`` decides whether the
            case claims parameter ``p``; ``make_optimizer(params) -> Optimizer`` builds the
            optimizer from the list of parameters it claimed (named pairs when names are known),
            e.g. ``lambda ps: Bop(ps)`` or ``functools.partial(Adam, lr=1e-3)``.
        default: ``make_optimizer`` for the parameters no predicate claims (``None``: such a
            parameter is an error).

    A case (or the default) that claims no parameter builds no optimizer.

    Raises:
        ConfigError: if two predicates claim the same parameter, or a parameter is claimed by none
            and there is no default.
    """

    def __init__(self, params, *cases: tuple[Callable[[Tensor], bool], Callable[[list], Optimizer]],
                 default: Callable[[list], Optimizer] | None = None):
        for k, case in enumerate(cases):
            if not (isinstance(case, tuple) and len(case) == 2 and all(map(callable, case))):
                raise ConfigError(f"case {k} must be a (predicate, make_optimizer) pair of "
                                  f"callables")
        named = _named_list(params)
        if not named:
            raise ConfigError("CaseOptimizer got an empty parameter list")
        claimed: list[list] = [[] for _ in cases]
        rest = []
        for i, (name, p) in enumerate(named):
            hits = [k for k, (predicate, _) in enumerate(cases) if predicate(p)]
            if len(hits) > 1:
                raise ConfigError(f"{_describe(p, i, name)} is claimed by cases {hits}; each "
                                  f"parameter must go to exactly one optimizer, so make the "
                                  f"predicates exclusive")
            if hits:
                claimed[hits[0]].append((name, p))
            elif default is not None:
                rest.append((name, p))
            else:
                raise ConfigError(f"{_describe(p, i, name)} is claimed by no case and there is "
                                  f"no default optimizer; add default=... or a case for it")
        optimizers = [make(_as_input(ps)) for (_, make), ps in zip(cases, claimed) if ps]
        if rest:
            optimizers.append(default(_as_input(rest)))
        super().__init__(optimizers, params=[p for _, p in named])


def bop_with(model_or_params, other: str = "adam", lr: float = 1e-3, threshold: float = 1e-8,
             gamma: float = 1e-4, weight_decay: float | None = None, **other_kwargs) -> Routed:
    """Bop for the binary weights (``Parameter.binary``), another optimizer for the rest.

    Args:
        model_or_params: a Module (its parameter names are used in flip ratios and messages),
            its ``named_parameters()``, or an iterable of parameters.
        other: ``"adam"``, ``"adamw"`` or ``"sgd"`` (built by :func:`make_optimizer`, so SGD gets
            momentum 0.9 unless ``momentum=`` is given).
        lr, weight_decay, **other_kwargs: for the other optimizer (``weight_decay=None`` keeps its
            own default).
        threshold, gamma: Bop's :math:`\\tau` and :math:`\\gamma`.

    Returns:
        a :class:`Routed` of ``[Bop, other]`` (just ``[Bop]`` when every parameter is binary).
    """
    from .bop import Bop
    from .registry import make_optimizer

    if other not in ("adam", "adamw", "sgd"):
        raise ConfigError(f"bop_with: other optimizer {other!r} is not one of 'adam', 'adamw', "
                          f"'sgd'")
    named = _named_list(model_or_params)
    binary = [(n, p) for n, p in named if getattr(p, "binary", False)]
    real = [(n, p) for n, p in named if not getattr(p, "binary", False)]
    if not binary:
        raise ConfigError("Bop needs binary weights, but no parameter is marked binary=True; use "
                          "a model with binary layers, or another optimizer (e.g. 'adam')")
    optimizers = [Bop(_as_input(binary), threshold=threshold, gamma=gamma)]
    if real:
        optimizers.append(make_optimizer(other, _as_input(real), lr=lr,
                                         weight_decay=weight_decay, **other_kwargs))
    return Routed(optimizers)
