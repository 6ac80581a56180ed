"""The :class:`Optimizer` base class: parameter groups, per-parameter state, checkpoints.

An optimizer owns a list of *parameter groups*. Each group is a plain dict holding the parameters
it updates (``group["params"]``) and the hyperparameters used for them (``lr``, ``weight_decay``,
...), so that, as in PyTorch, different parts of a model can be trained with different settings::

    opt = SGD([
        {"params": model.features.parameters()},              # uses the defaults below
        {"params": model.classifier.parameters(), "lr": 1e-3},  # its own learning rate
    ], lr=0.1, momentum=0.9)

Between steps the optimizer keeps a small dict of *state* per parameter (momentum buffers, Adam's
moment estimates, Bop's gradient average); ``opt.state[p]`` is that dict for parameter ``p``.

A subclass passes its hyperparameters as ``defaults`` to ``Optimizer.__init__`` and writes:

- ``_check_group(group)``: raise :class:`~tinybnn.errors.ConfigError` for bad hyperparameters
  (call ``super()._check_group(group)`` first; it checks ``lr``);
- ``_step()``: for every group and every parameter whose ``grad`` is not ``None``, update
  ``p.data`` **in place** with the array module of the parameter
  (``xp = get_array_module(p.data)``), so that the same code runs on NumPy and CuPy arrays.
  The public :meth:`Optimizer.step` calls it (after the optional closure);
- optionally ``_init_group(group)``, run once when a group is added (Bop binarizes there).

Keep the per-parameter state to arrays and Python numbers, so that it can be checkpointed.

Checkpoint format
-----------------
:meth:`Optimizer.state_dict` returns a nested dict made only of NumPy arrays, Python numbers,
strings, booleans, ``None``, lists and dicts (no pickled objects), laid out as in PyTorch::

    {
      "state": {                       # per parameter, by its index (see below)
        0: {"step": 3, "exp_avg": ndarray, "exp_avg_sq": ndarray},
        ...
      },
      "param_groups": [                # one dict per group, in order
        {"lr": 0.001, "betas": [0.9, 0.999], ..., "params": [0, 1, 2]},
        ...
      ],
    }

Parameters are numbered ``0, 1, 2, ...`` in the order they appear in the groups (group 0 first).
Tuples are stored as lists. Arrays are NumPy copies (moved off the GPU).

To write it as ``.npz`` + JSON use :func:`flatten_state` and :func:`unflatten_state`::

    arrays, meta = flatten_state(opt.state_dict(), prefix="optim")
    np.savez(path_npz, **arrays); json.dump(meta, fh)
    ...
    opt.load_state_dict(unflatten_state(dict(np.load(path_npz)), json.load(fh)))

JSON turns the integer keys of ``"state"`` into strings; :meth:`load_state_dict` accepts both.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

from ..autograd import Tensor, enable_grad
from ..backend import get_array_module, to_numpy
from ..errors import CheckpointError, ConfigError


class _Required:
    """Marker for a hyperparameter that has no default and must be given (e.g. SGD's ``lr``)."""

    def __repr__(self) -> str:
        return "<required>"


required = _Required()


def check_number(group: dict[str, Any], key: str, what: str, low: float | None = None,
                 high: float | None = None, high_open: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``group[key]`` is a real number in ``[low, high]``
    (``[low, high)`` when ``high_open``). ``what`` is the human name used in the message."""
    value = group[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{what} must be a number, got {key}={value!r}")
    too_low = low is not None and not value >= low
    too_high = high is not None and not (value < high if high_open else value <= high)
    if too_low or too_high or value != value:
        if low is not None and high is not None:
            rule = f"in [{low:g}, {high:g}{')' if high_open else ']'}"
        else:
            rule = f">= {low:g}" if low is not None else f"<= {high:g}"
        raise ConfigError(f"{what} must be {rule}, got {key}={value}")


def _describe(p: Tensor, index: int, name: str | None = None) -> str:
    """A short human description of a parameter for error messages: its name or index, and shape."""
    label = f"'{name}'" if name else f"#{index}"
    return f"parameter {label} (shape {tuple(p.data.shape)})"


class Optimizer:
    """Base class of every optimizer: keeps parameter groups and per-parameter state.

    Args:
        params: an iterable of Parameters (one group), of ``(name, Parameter)`` pairs such as
            ``model.named_parameters()`` (one group, names remembered for logs and error
            messages), or of dicts, each a parameter group with a ``"params"`` entry and any
            hyperparameters that override ``defaults``.
        defaults: the hyperparameters of the optimizer (used by groups that do not set them).

    Attributes:
        param_groups: the list of group dicts; a group's ``"params"`` is a list of Parameters and
            ``"param_names"`` (when names were given) a list of their names. Learning-rate
            schedules change ``group["lr"]`` here.
        state: dict ``Parameter -> dict`` of per-parameter buffers (empty until the first step).
        defaults: the default hyperparameters.
    """

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}

        if isinstance(params, Tensor):
            raise ConfigError(f"{type(self).__name__} expects an iterable of parameters, got a "
                              f"single tensor; wrap it in a list: [param]")
        if hasattr(params, "parameters") and callable(params.parameters):
            raise ConfigError(f"{type(self).__name__} expects parameters, got a Module; pass "
                              f"model.parameters()")
        items = list(params)
        if not items:
            raise ConfigError(f"{type(self).__name__} got an empty parameter list; pass the "
                              f"parameters to train, e.g. model.parameters()")
        if all(isinstance(item, dict) for item in items):
            groups = items
        elif any(isinstance(item, dict) for item in items):
            raise ConfigError("mix of parameter-group dicts and bare parameters; give either a "
                              "list of parameters or a list of dicts with a 'params' entry")
        else:
            groups = [{"params": items}]
        for group in groups:
            self.add_param_group(group)

    # -- groups ---------------------------------------------------------------------------
    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a parameter group (a dict with ``"params"``), filling missing hyperparameters
        from ``defaults``; checks the hyperparameters and that no parameter is already owned by
        another group."""
        if not isinstance(group, dict) or "params" not in group:
            raise ConfigError("a parameter group must be a dict with a 'params' entry, e.g. "
                              "{'params': model.fc.parameters(), 'lr': 0.01}")
        group = dict(group)
        raw = group["params"]
        if isinstance(raw, Tensor):
            raw = [raw]
        params, names = [], []
        for item in raw:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                name, p = item
            else:
                name, p = getattr(item, "name", None), item
            if not isinstance(p, Tensor):
                raise ConfigError(f"{type(self).__name__} can only optimize Tensors/Parameters, "
                                  f"got {type(p).__name__}")
            params.append(p)
            names.append(name)
        if not params:
            raise ConfigError(f"parameter group {len(self.param_groups)} of "
                              f"{type(self).__name__} has no parameters")
        group["params"] = params
        if "param_names" not in group and any(n is not None for n in names):
            group["param_names"] = [n if n is not None else str(i) for i, n in enumerate(names)]

        for key, value in self.defaults.items():
            group.setdefault(key, value)
            if group[key] is required:
                raise ConfigError(f"{type(self).__name__} needs '{key}'; give it as an argument "
                                  f"or in every parameter group")

        seen = {id(p) for g in self.param_groups for p in g["params"]}
        first_index = sum(len(g["params"]) for g in self.param_groups)
        own = set()
        for i, p in enumerate(params):
            if id(p) in seen or id(p) in own:
                where = "another parameter group" if id(p) in seen else "the same group twice"
                raise ConfigError(f"{_describe(p, first_index + i, names[i])} appears in {where}; "
                                  f"each parameter must belong to exactly one group")
            own.add(id(p))

        self._check_group(group)
        self.param_groups.append(group)
        self._init_group(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Raise :class:`ConfigError` for invalid hyperparameters (subclasses extend this)."""
        if "lr" in group:
            check_number(group, "lr", "learning rate", low=0.0)

    def _init_group(self, group: dict[str, Any]) -> None:
        """Hook run once when a group is added (Bop uses it to binarize its weights)."""

    # -- the two operations of a training step --------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of every parameter (``grad = None``, or zeros in place)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad[...] = 0

    def step(self, closure: Callable[[], Any] | None = None):
        """Update every parameter that has a gradient. If ``closure`` is given, it is called
        first (with gradient recording on) to recompute the loss, which is returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        self._step()
        return loss

    def _step(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not define _step()")

    # -- helpers for subclasses -----------------------------------------------------------
    def _params_with_grad(self, group: dict[str, Any]):
        """Yield ``(p, grad, state, xp)`` for each parameter of ``group`` that has a gradient."""
        for p in group["params"]:
            if p.grad is None:
                continue
            yield p, p.grad, self.state.setdefault(p, {}), get_array_module(p.data)

    def _all_params(self) -> list[Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's hyperparameters and buffers as arrays and plain values (module
        docstring: "Checkpoint format"). Arrays are NumPy copies."""
        index = {id(p): i for i, p in enumerate(self._all_params())}
        groups = []
        for group in self.param_groups:
            saved = {k: _plain(v) for k, v in group.items() if k != "params"}
            saved["params"] = [index[id(p)] for p in group["params"]]
            groups.append(saved)
        state = {}
        for p, buffers in self.state.items():
            if id(p) in index and buffers:
                state[index[id(p)]] = {k: _plain(v) for k, v in buffers.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and buffers saved by :meth:`state_dict` into an optimizer
        built over the same parameters (same groups, same order, same shapes).

        Raises :class:`CheckpointError` naming the mismatch otherwise.
        """
        try:
            saved_groups = state_dict["param_groups"]
            saved_state = state_dict["state"]
        except (KeyError, TypeError):
            raise CheckpointError(f"not a {type(self).__name__} state: expected a dict with "
                                  f"'state' and 'param_groups'") from None
        if len(saved_groups) != len(self.param_groups):
            raise CheckpointError(f"optimizer state has {len(saved_groups)} parameter groups, this "
                                  f"{type(self).__name__} has {len(self.param_groups)}; was it "
                                  f"saved with another optimizer configuration?")
        for g, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise CheckpointError(f"parameter group {g} has {len(group['params'])} parameters, "
                                      f"the saved state has {len(saved['params'])}")
        params = self._all_params()
        buffers_by_index = {int(k): v for k, v in saved_state.items()}
        for i, buffers in buffers_by_index.items():
            if not 0 <= i < len(params):
                raise CheckpointError(f"optimizer state names parameter #{i}, but there are only "
                                      f"{len(params)}")
            for key, value in buffers.items():
                shape = getattr(value, "shape", ())
                if shape != () and tuple(shape) != tuple(params[i].data.shape):
                    raise CheckpointError(f"optimizer state '{key}' of "
                                          f"{_describe(params[i], i)} has shape {tuple(shape)}")

        # Everything checks out: now overwrite.
        for group, saved in zip(self.param_groups, saved_groups):
            for key, value in saved.items():
                if key in ("params", "param_names"):
                    continue
                if isinstance(group.get(key), tuple) and isinstance(value, list):
                    value = tuple(value)
                group[key] = value
        self.state = {}
        for i, buffers in buffers_by_index.items():
            p = params[i]
            xp = get_array_module(p.data)
            restored = {}
            for key, value in buffers.items():
                if isinstance(value, np.ndarray) and value.shape != ():
                    restored[key] = xp.asarray(value, dtype=p.data.dtype).copy()
                elif isinstance(value, np.ndarray):
                    restored[key] = value.item()
                else:
                    restored[key] = value
            self.state[p] = restored

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for g, group in enumerate(self.param_groups):
            lines.append(f"  group {g}: {len(group['params'])} parameters")
            for key in sorted(k for k in group if k not in ("params", "param_names")):
                lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"


# ---------------------------------------------------------------------------------------------
# Plain values and the flat (.npz + JSON) representation
# ---------------------------------------------------------------------------------------------


def _plain(value):
    """Turn one state value into something :func:`flatten_state` can write: arrays become NumPy
    copies, tuples lists, NumPy scalars Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return to_numpy(value).copy()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


_ARRAY_TAG = "__array__"


def flatten_state(tree, prefix: str = "") -> tuple[dict[str, np.ndarray], Any]:
    """Split a nested state (dicts, lists, arrays, numbers, strings) into ``(arrays, meta)``.

    ``arrays`` maps a dotted path (``"state.0.exp_avg"``, prefixed by ``prefix.`` if given) to each
    array, ready for ``np.savez``; ``meta`` is the same tree with every array replaced by
    ``{"__array__": path}``, ready for ``json.dump``. Dict keys become strings.
    :func:`unflatten_state` puts the two back together.
    """
    arrays: dict[str, np.ndarray] = {}

    def walk(node, path: str):
        if isinstance(node, dict):
            return {str(k): walk(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [walk(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(node)]
        if isinstance(node, np.generic):
            return node.item()
        if hasattr(node, "shape") and hasattr(node, "dtype"):
            arrays[path] = to_numpy(node)
            return {_ARRAY_TAG: path}
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        raise CheckpointError(f"cannot store a {type(node).__name__} at '{path}' in a checkpoint; "
                              f"only arrays, numbers, strings, lists and dicts")

    meta = walk(tree, prefix)
    return arrays, meta


def unflatten_state(arrays: dict[str, np.ndarray], meta) -> Any:
    """Inverse of :func:`flatten_state`: put ``arrays[path]`` back wherever the metadata says
    ``{"__array__": path}``."""

    def walk(node):
        if isinstance(node, dict):
            if set(node) == {_ARRAY_TAG}:
                path = node[_ARRAY_TAG]
                if path not in arrays:
                    raise CheckpointError(f"checkpoint is missing the array '{path}'; the .npz and "
                                          f"the JSON metadata do not belong together")
                return np.asarray(arrays[path])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(meta)
