"""``Module`` and ``Parameter``: the containers every layer and model is built from.

A Module holds Parameters (trainable tensors), buffers (non-trainable arrays such as batch-norm
running statistics) and child Modules, found by attribute assignment just as in PyTorch::

    class TwoLayer(Module):
        def __init__(self):
            super().__init__()
            self.fc1 = Linear(64, 32)        # a child Module
            self.scale = Parameter(np.ones(32, dtype=np.float32))

        def forward(self, x):
            return relu(self.fc1(x)) * self.scale
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Iterator

import numpy as np

from ..autograd import Tensor
from ..errors import CheckpointError


class Parameter(Tensor):
    """A trainable tensor: ``requires_grad`` is on and Modules register it automatically.

    ``binary`` marks latent weights that a layer binarizes in its forward pass; Bop, the model
    summary and the export treat those differently from real-valued parameters.
    """

    def __init__(self, data, requires_grad: bool = True, binary: bool = False):
        super().__init__(data, requires_grad=requires_grad)
        self.binary = binary

    def __repr__(self) -> str:
        kind = "binary " if self.binary else ""
        return f"Parameter({kind}shape={self.shape}, dtype={self.dtype})"


class Module:
    """Base class of layers and models. Subclasses define ``forward``; call the module itself."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", [])
        object.__setattr__(self, "training", True)

    # -- registration ---------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                               f"before assigning attributes")
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, array) -> None:
        """Keep a non-trainable array (saved in ``state_dict``, not given to optimizers)."""
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def set_buffer(self, name: str, array) -> None:
        """Replace the value of a registered buffer (e.g. updated running statistics)."""
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    # -- calling --------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        for hook in self._forward_hooks:
            replaced = hook(self, args, out)
            if replaced is not None:
                out = replaced
        return out

    def register_forward_hook(self, fn: Callable) -> Callable:
        """Call ``fn(module, inputs, output)`` after every forward; returns a remover."""
        self._forward_hooks.append(fn)

        def remove():
            if fn in self._forward_hooks:
                self._forward_hooks.remove(fn)

        return remove

    # -- traversal ------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        yield from self._modules.items()

    def children(self) -> Iterator["Module"]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        seen = set()
        for mod_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self) -> Iterator[tuple[str, object]]:
        for mod_name, module in self.named_modules():
            for name, b in module._buffers.items():
                yield (f"{mod_name}.{name}" if mod_name else name), b

    def binary_parameters(self) -> Iterator[Parameter]:
        """The latent weights that are binarized in the forward pass."""
        return (p for p in self.parameters() if p.binary)

    # -- modes and gradients --------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Every parameter and buffer by dotted name, as NumPy arrays (copies)."""
        from ..backend import to_numpy

        state = OrderedDict()
        for name, p in self.named_parameters():
            state[name] = to_numpy(p.data).copy()
        for name, b in self.named_buffers():
            state[name] = to_numpy(b).copy()
        return state

    def load_state_dict(self, state, strict: bool = True) -> None:
        """Copy arrays from ``state`` into the parameters and buffers of the same names.

        Raises :class:`CheckpointError` on missing or unexpected names (``strict``) and on any
        shape mismatch, naming the entry.
        """
        own = dict(self.named_parameters())
        buffers = {name: None for name, _ in self.named_buffers()}
        missing = [k for k in list(own) + list(buffers) if k not in state]
        unexpected = [k for k in state if k not in own and k not in buffers]
        if strict and (missing or unexpected):
            raise CheckpointError(f"state does not match the model: missing {missing[:5]}, "
                                  f"unexpected {unexpected[:5]}; was it saved from another model "
                                  f"or configuration?")
        for name, value in state.items():
            value = np.asarray(value)
            if name in own:
                p = own[name]
                if value.shape != p.data.shape:
                    raise CheckpointError(f"shape mismatch for {name}: checkpoint has "
                                          f"{value.shape}, model has {p.shape}")
                p.data[...] = value
            elif name in buffers:
                module, attr = self._owner_of(name)
                old = module._buffers[attr]
                if getattr(old, "shape", ()) != value.shape:
                    raise CheckpointError(f"shape mismatch for buffer {name}: checkpoint has "
                                          f"{value.shape}, model has {getattr(old, 'shape', ())}")
                module.set_buffer(attr, value.astype(getattr(old, "dtype", value.dtype)).copy())

    def _owner_of(self, dotted: str) -> tuple["Module", str]:
        *path, attr = dotted.split(".")
        module = self
        for part in path:
            module = module._modules[part]
        return module, attr

    # -- printing -------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [head]
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"
