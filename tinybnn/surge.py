"""SURGE: the Dual-Path Gradient Compensator (DPGC) and the Adaptive Gradient Scaler (AGS).

Source: "SURGE: Surrogate Gradient Adaptation in Binary Neural Networks", Sec. 4 and Algorithm A
(digest: ``shared/methods/surge.md``). SURGE changes only the *backward* pass of a binary layer;
the forward output stays exactly the plain BNN's, and the extra branch is thrown away for
inference.

The idea in three lines
-----------------------
A binary layer computes ``f_b(x) = Q_W(W_b)ᵀ Q_x(x)`` (Eq. 2). Its input gradient is the STE's
(Eq. 4): ``g_b = ∂L/∂f_b · ∂f_b/∂x |_STE``, which is zero wherever the estimator clips (|x| > 1).
SURGE adds a full-precision twin ``f_a(x) = W_aᵀ x`` of the same shape on the *real* input and
combines the two so that the twin is invisible in the forward pass but present in the backward::

    out = f_b − stopgrad(λ·f_a) + λ·f_a                           (Eq. 5)   value: f_b
    ∂L/∂x = g_b + λ·g_a,   g_a = ∂L/∂out · ∂f_a/∂x                 (Eq. 6)
    ∂L/∂W_b = g_wb (the STE's),   ∂L/∂W_a = λ·∂L/∂W_a|_{λ=1}      (Algorithm A, lines 13 and 15)
    λ ← η·‖g_b‖₂ / (‖g_a‖₂ + ε),   used one step later             (Eq. 7, Algorithm A line 19)
    λ⁽⁰⁾ = 1/√|W_a|                                                (Algorithm A, line 2)

so that the compensation ``λ·g_a`` is, one step late, η times as long as the binary gradient:
STE keeps the lead, the auxiliary branch fills in what clipping threw away.

How the layer is built (and why)
--------------------------------
:class:`SurgeLayer` wraps any binary layer (``BinaryLinear``, ``BinaryConv2d``)::

                 ┌─ Tap ───────────────▶ layer (binary)  ── f_b ─┐
    x ──────────┤                                                ├─ DualPathMerge ─▶ out (= f_b)
                 └─ GradScale(λ) ──────▶ aux op (W_a, real) ─ f_a ┘
                                              ▲
                        W_a ── GradScale(λ) ──┘

1. **Exactness.** Eq. 5 written literally, ``f_b − stopgrad(f_ao) + f_ao``, is *not* bit-exact in
   floating point: ``(f_b − c) + c`` rounds twice, e.g. with f_b = 1e-8 and c = 1 it gives 0 in
   float32. (Reassociated as ``f_b + (f_ao − stopgrad(f_ao))`` it is exact for finite values, since
   ``c − c = 0`` exactly, except that −0 becomes +0 and an infinite ``c`` gives NaN.) So the layer
   merges the two paths with a tiny Function, :class:`DualPathMerge`, whose forward *returns f_b*
   and whose backward hands the incoming gradient to both branches. The literal, student-readable
   form is :func:`compensate` with ``exact=False`` (and ``SurgeLayer(..., exact=False)``); both
   give the same gradients, which the tests check.
2. **Where λ goes.** Everything in the auxiliary branch is linear in λ, and the *value* of
   λ·f_a cancels in the forward pass, so multiplying f_a by λ (as Eq. 5 writes) and multiplying
   the branch's two outgoing gradients by λ (at x and at W_a, with :class:`GradScale`) give
   identical gradients. We do the latter so that the gradients *inside* the branch are Eq. 6's
   unscaled ``g_a`` and ``∂L/∂W_a``: AGS needs ‖g_a‖ even when λ is 0, and the probes of
   :mod:`tinybnn.inspect` see the paper's quantities.
3. **Measuring g_b and g_a.** Two identity nodes (``Tap`` for the binary path, ``GradScale`` for
   the auxiliary path) split x into two tensors, so the engine delivers the two gradients
   separately before adding them into ``x.grad``; hooks on them (:meth:`Tensor.register_hook`)
   record the norms, apply the compensation scope, and update λ. ``g_b`` is whatever the input
   quantizer's backward produced, so SURGE works with every activation estimator (STE,
   ApproxSign, ReCU, ...).

Decisions where the paper is silent (digest: "open choices")
-------------------------------------------------------------
- ``init="copy"`` (default): W_a starts as a copy of the latent W_b, so the auxiliary branch
  begins as the full-precision version of the binary layer and ``g_a = ∂L/∂out·W_a`` starts out
  as "the gradient without sign and without clipping". ``init="independent"`` draws W_a afresh
  with the layer's own initialisation (Kaiming-uniform), which makes g_a initially a random
  direction. For the 1×1 variant, "copy" sums W_b over its kernel window (the 1×1 kernel that
  answers a spatially constant input like the 3×3 one).
- The auxiliary branch sees the *raw* input x of the binary layer (before any normalisation a
  quantizer may do internally, e.g. ReCU's division by the standard deviation), has no bias (a
  bias changes no input gradient) and, for convolutions, uses zero padding (a real convolution),
  whatever padding value the binary branch uses.
- The norms ‖g_b‖, ‖g_a‖ are taken over the whole batch tensor of the layer input.
- Compensation scope (Table 6b): "all" (default), "clipped" (g_a kept only where |x| > clip) or
  "unclipped" (only where |x| <= clip), with ``clip`` the input quantizer's clip (1 by default).
  AGS measures ‖g_a‖ *after* the mask, i.e. the compensation actually applied.
- If the layer's input needs no gradient (the first layer of a network fed with data), there is
  no g_b or g_a: λ keeps its value, and the auxiliary branch changes nothing in training (it only
  ever shapes ∂L/∂x), although W_a still receives its gradient.
- λ is updated on every backward pass through the layer, as soon as both ‖g_b‖ and ‖g_a‖ of that
  pass are known; the forward of the *next* pass uses it (the lag of Algorithm A, line 7).
- ``compensation="noise"`` is the control experiment of the paper's Fig. G ("STE+Noise"): the
  compensation λ·g_a is replaced by Gaussian noise of exactly the same norm.
- Under ``no_grad`` the layer just runs the binary layer (the output is the same).

Example::

    import tinybnn.surge as surge
    model = surge.wrap(model, eta=0.01)          # every binary layer gets its twin
    ... train ...
    print(surge.layer_stats(model))              # λ, ‖g_b‖, ‖g_a‖, cos(g_wb, g_wa) per layer
    plain = surge.unwrap(model)                  # back to the plain binary model (for export)
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from . import functional as F
from .autograd import Function, Tensor, is_grad_enabled
from .backend import get_array_module, to_numpy
from .errors import ConfigError, ShapeError
from .nn import init as nn_init
from .nn.module import Module, Parameter
from .random import get_rng

SCOPES = ("all", "clipped", "unclipped")
INITS = ("copy", "independent")
COMPENSATIONS = ("aux", "noise")


# ---------------------------------------------------------------------------------------------
# The three small Functions
# ---------------------------------------------------------------------------------------------


class DualPathMerge(Function):
    """out = f_b − stopgrad(f_ao) + f_ao, computed exactly (Eq. 5).

    forward:  out = f_b, bit for bit (the two f_ao terms cancel; we do not compute them).
    backward: d f_b = d out,  d f_ao = d out   (the derivative of Eq. 5 with respect to each path).

    Shapes: f_b and f_ao must have the same shape (the layer's output shape).
    """

    @staticmethod
    def forward(ctx, f_b, f_ao):
        if f_b.shape != f_ao.shape:
            raise ShapeError(f"SURGE: the binary branch gives shape {tuple(f_b.shape)} but the "
                             f"auxiliary branch gives {tuple(f_ao.shape)}; the auxiliary kernel, "
                             f"stride and padding must produce the same output size")
        return f_b.copy()

    @staticmethod
    def backward(ctx, grad):
        return (grad if ctx.needs_input_grad[0] else None,
                grad if ctx.needs_input_grad[1] else None)


class GradScale(Function):
    """Identity forward, gradient times ``scale`` backward: y = x, dx = scale·dy.

    SURGE puts it where the auxiliary branch's gradients leave the branch (at x and at W_a), which
    is the same as multiplying the branch's output by λ (module docstring, point 2).
    """

    @staticmethod
    def forward(ctx, x, scale=1.0):
        ctx.scale = scale
        return x.view()

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale


class Tap(Function):
    """Identity forward and backward: a separate tensor for a path, so a hook can see the
    gradient of that path alone."""

    @staticmethod
    def forward(ctx, x):
        return x.view()

    @staticmethod
    def backward(ctx, grad):
        return grad


def compensate(f_b: Tensor, f_ao: Tensor, exact: bool = True) -> Tensor:
    """Eq. 5: ``f_b − stopgrad(f_ao) + f_ao``.

    With ``exact=True`` (default) this is :class:`DualPathMerge`, whose output is f_b bit for bit.
    With ``exact=False`` it is the formula exactly as the paper writes it, with the engine's
    :func:`~tinybnn.functional.stop_gradient`; its value equals f_b up to float rounding, and its
    gradients are identical.
    """
    if exact:
        return DualPathMerge.apply(f_b, f_ao)
    return f_b - F.stop_gradient(f_ao) + f_ao


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _norm(a) -> float:
    xp = get_array_module(a)
    return float(xp.sqrt((a.astype(xp.float64) ** 2).sum()))


def cosine(a, b) -> float:
    """cos∠(a, b) of two arrays seen as flat vectors; NaN when either is zero."""
    na, nb = _norm(a), _norm(b)
    if na == 0.0 or nb == 0.0:
        return float("nan")
    xp = get_array_module(a)
    dot = float((a.astype(xp.float64) * b.astype(xp.float64)).sum())
    return dot / (na * nb)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def is_binary_layer(module: Module) -> bool:
    """True for the layers SURGE wraps: a binary linear or convolution layer, i.e. a Module with a
    binarized latent ``weight`` (``Parameter(binary=True)``) and an ``input_quantizer``."""
    if isinstance(module, SurgeLayer):
        return False
    weight = getattr(module, "weight", None)
    return (isinstance(weight, Parameter) and weight.binary and weight.ndim in (2, 4)
            and hasattr(module, "input_quantizer"))


def _match_kernel(w, shape):
    """Map a weight (or weight gradient) of shape (O, I, k, k) to ``shape`` = (O, I, k_a, k_a):
    with a smaller kernel, each tap is the sum over the k − k_a + 1 window it stands for (so a
    spatially constant input gets the same answer); with a larger one, w sits in the centre and
    the rest is 0. Returns ``w`` itself when the shapes agree."""
    if tuple(w.shape) == tuple(shape):
        return w
    xp = get_array_module(w)
    (kh, kw), (ah, aw) = w.shape[2:], shape[2:]
    out = xp.zeros(shape, dtype=w.dtype)
    if ah <= kh and aw <= kw:
        for i in range(ah):
            for j in range(aw):
                out[:, :, i, j] = w[:, :, i:i + kh - ah + 1, j:j + kw - aw + 1].sum(axis=(2, 3))
    else:
        oh, ow = (ah - kh) // 2, (aw - kw) // 2
        out[:, :, oh:oh + kh, ow:ow + kw] = w
    return out


class _Pass:
    """What SURGE learns about one forward/backward pass of one layer: the λ it used and the two
    gradient norms, filled in by the hooks as the backward pass reaches them."""

    __slots__ = ("lam", "g_b_norm", "g_a_norm")

    def __init__(self, lam: float):
        self.lam = lam
        self.g_b_norm: float | None = None
        self.g_a_norm: float | None = None


# ---------------------------------------------------------------------------------------------
# The wrapper layer
# ---------------------------------------------------------------------------------------------


class SurgeLayer(Module):
    """A binary layer with SURGE's auxiliary full-precision branch (DPGC, Sec. 4.1) and its
    adaptive scale λ (AGS, Sec. 4.2). See the module docstring for the equations and choices.

    Args:
        layer: the binary layer (``BinaryLinear`` or ``BinaryConv2d``), kept as ``self.layer``.
        eta: η of Eq. 7 (0.01 as on CIFAR-10; the paper uses 0.001 for ImageNet two-stage).
        scope: "all", "clipped" or "unclipped": where λ·g_a is added (Table 6b).
        fixed_lambda: a constant λ instead of AGS (Fig. 3a); None for adaptive λ.
        aux_kernel: kernel size of the auxiliary convolution; None = the binary layer's kernel,
            1 = SURGE* (1×1 auxiliary convolutions, Table A). Ignored for linear layers.
        init: "copy" (W_a = W_b, default) or "independent" (fresh Kaiming-uniform W_a).
        compensation: "aux" (SURGE) or "noise" (the STE+Noise control of Fig. G: noise of the
            same norm as λ·g_a instead of λ·g_a).
        eps: ε of Eq. 7 (1e-8).
        exact: merge the paths with :class:`DualPathMerge` (True) or with the literal Eq. 5.
        rng: generator for ``init="independent"`` and for the noise control.

    Shapes: as the wrapped layer, e.g. x (N, in) -> (N, out), or x (N, C, H, W) -> (N, O, H', W').

    Attributes:
        aux_weight: W_a, a real-valued Parameter: (out, in) or (out, in, k_a, k_a).
        lam: the λ the next forward pass will use (stored as the buffer ``surge_lambda``, so it
            is saved in ``state_dict`` checkpoints).
        stats: the latest measurements: ``lam`` (next λ), ``lam_used`` (λ of the last pass),
            ``g_b_norm``, ``g_a_norm``, ``steps`` (passes measured); :meth:`statistics` adds the
            cosine similarity of the main and auxiliary weight gradients.
    """

    def __init__(self, layer: Module, eta: float = 0.01, scope: str = "all",
                 fixed_lambda: float | None = None, aux_kernel: int | None = None,
                 init: str = "copy", compensation: str = "aux", eps: float = 1e-8,
                 exact: bool = True, rng=None):
        super().__init__()
        if not is_binary_layer(layer):
            raise ConfigError(f"SURGE wraps binary layers (BinaryLinear, BinaryConv2d), got "
                              f"{type(layer).__name__}")
        if scope not in SCOPES:
            raise ConfigError(f"unknown SURGE scope {scope!r}; use one of {SCOPES}")
        if init not in INITS:
            raise ConfigError(f"unknown SURGE init {init!r}; use 'copy' (W_a = W_b) or "
                              f"'independent' (fresh initialisation)")
        if compensation not in COMPENSATIONS:
            raise ConfigError(f"unknown compensation {compensation!r}; use 'aux' (SURGE) or "
                              f"'noise' (the STE+Noise control)")
        if eta < 0 or (fixed_lambda is not None and fixed_lambda < 0):
            raise ConfigError(f"SURGE needs eta >= 0 and fixed_lambda >= 0 (or None), got "
                              f"eta={eta}, fixed_lambda={fixed_lambda}")
        self.layer = layer
        self.eta, self.eps = float(eta), float(eps)
        self.scope, self.init, self.compensation, self.exact = scope, init, compensation, exact
        self.fixed_lambda = None if fixed_lambda is None else float(fixed_lambda)
        self.rng = get_rng(rng)
        self.kind = "conv" if layer.weight.ndim == 4 else "linear"
        self.aux_kernel, self.aux_padding = self._aux_geometry(aux_kernel)
        self.aux_weight = Parameter(self._initial_aux_weight())

        # Algorithm A, line 2: λ⁽⁰⁾ = 1/√|W_a| (or the fixed λ). Kept as a buffer, so that a
        # checkpoint of the wrapped model resumes with the λ it had.
        self.register_buffer("surge_lambda", np.array(0.0))
        self.lam = (self.fixed_lambda if self.fixed_lambda is not None
                    else 1.0 / math.sqrt(self.aux_weight.size))
        self.stats = {"lam": self.lam, "lam_used": None, "g_b_norm": None, "g_a_norm": None,
                      "steps": 0}
        self._last_gwb = None  # latest ∂L/∂W_b (main weight gradient), for the cosine
        self._last_gwa = None  # latest ∂L/∂W_a (unscaled), for the cosine
        self._removers: list[Callable] = []
        if layer.weight.requires_grad:
            self._removers.append(layer.weight.register_hook(self._on_main_weight_grad))

    @property
    def lam(self) -> float:
        """The λ the next forward pass will use (the buffer ``surge_lambda``)."""
        return float(self.surge_lambda)

    @lam.setter
    def lam(self, value: float) -> None:
        self.set_buffer("surge_lambda", np.array(float(value)))

    # -- construction ---------------------------------------------------------------------
    def _aux_geometry(self, aux_kernel):
        """Kernel size and padding of the auxiliary convolution, chosen so that its output has
        exactly the binary convolution's size and each output pixel looks at the same centre:
        padding_a = padding − (k − k_a)/2. A negative padding_a means "crop the input by that
        much" (e.g. a 1×1 twin of an unpadded 3×3 convolution skips the border pixels)."""
        if self.kind == "linear":
            return None, None
        k = _pair(self.layer.weight.shape[2:])
        pad = _pair(self.layer.padding)
        if aux_kernel is None:
            return k, pad
        ka = _pair(aux_kernel)
        if min(ka) < 1 or any((size - size_a) % 2 for size, size_a in zip(k, ka)):
            raise ConfigError(f"auxiliary kernel {ka} for a {k} convolution: the two kernels must "
                              f"differ by an even number (e.g. 1 or 3 for a 3×3 layer) so that "
                              f"both branches are centred on the same pixels")
        return ka, tuple(p - (size - size_a) // 2 for size, size_a, p in zip(k, ka, pad))

    def _initial_aux_weight(self) -> np.ndarray:
        w = to_numpy(self.layer.weight.data)
        shape = w.shape if self.kind == "linear" else w.shape[:2] + self.aux_kernel
        if self.init == "independent":
            fresh = nn_init.kaiming_uniform(shape, rng=self.rng).astype(w.dtype)
            return self._to_device(fresh)
        return self._to_device(_match_kernel(w, shape).copy())

    def _to_device(self, array):
        xp = get_array_module(self.layer.weight.data)
        return xp.asarray(array)

    # -- forward --------------------------------------------------------------------------
    def auxiliary(self, x: Tensor, weight: Tensor) -> Tensor:
        """f_a(x) = W_aᵀx: the full-precision twin of the binary layer, on the real input x."""
        if self.kind == "linear":
            return F.linear(x, weight)
        from .functional.conv import conv2d

        stride = getattr(self.layer, "stride", 1)
        (ph, pw) = self.aux_padding
        if ph < 0 or pw < 0:  # crop instead of a negative padding
            ch, cw = max(0, -ph), max(0, -pw)
            x = x[:, :, ch:x.shape[2] - ch, cw:x.shape[3] - cw]
            ph, pw = max(ph, 0), max(pw, 0)
        return conv2d(x, weight, stride=stride, padding=(ph, pw))

    def forward(self, x):
        if not is_grad_enabled():
            return self.layer(x)
        current = _Pass(self.lam)
        x_main = Tap.apply(x)                              # its gradient will be g_b
        x_aux = GradScale.apply(x, scale=current.lam)      # its gradient will be g_a
        w_aux = GradScale.apply(self.aux_weight, scale=current.lam)
        if x_main.requires_grad:
            x_main.register_hook(lambda g: self._on_main_grad(current, g))
            x_aux.register_hook(lambda g: self._on_aux_grad(current, x, g))
        if w_aux.requires_grad:
            w_aux.register_hook(self._on_aux_weight_grad)
        f_b = self.layer(x_main)
        f_a = self.auxiliary(x_aux, w_aux)
        return compensate(f_b, f_a, exact=self.exact)

    # -- the hooks: measure, mask, and update λ (Algorithm A, lines 13-19) ------------------
    def _on_main_grad(self, current: _Pass, g_b):
        current.g_b_norm = _norm(g_b)
        self._maybe_update(current)

    def _on_aux_grad(self, current: _Pass, x: Tensor, g_a):
        if self.scope != "all":
            xp = get_array_module(g_a)
            clip = float(getattr(self.layer.input_quantizer, "clip", 1.0))
            clipped = xp.abs(x.data) > clip
            g_a = g_a * (clipped if self.scope == "clipped" else ~clipped)
        current.g_a_norm = _norm(g_a)
        if self.compensation == "noise":
            xp = get_array_module(g_a)
            noise = xp.asarray(self.rng.standard_normal(g_a.shape)).astype(g_a.dtype)
            n = _norm(noise)
            g_a = noise * (current.g_a_norm / n) if n > 0 else noise * 0
        self._maybe_update(current)
        return g_a

    def _maybe_update(self, current: _Pass):
        if current.g_b_norm is None or current.g_a_norm is None:
            return
        if self.fixed_lambda is None:
            # Eq. 7, lagged: the ratio measured now is the λ of the next pass.
            self.lam = self.eta * current.g_b_norm / (current.g_a_norm + self.eps)
        self.stats = {"lam": self.lam, "lam_used": current.lam, "g_b_norm": current.g_b_norm,
                      "g_a_norm": current.g_a_norm, "steps": self.stats["steps"] + 1}

    def _on_main_weight_grad(self, g):
        self._last_gwb = g

    def _on_aux_weight_grad(self, g):
        self._last_gwa = g

    # -- inspection -----------------------------------------------------------------------
    def weight_grad_cosine(self) -> float:
        """cos∠(∂L/∂W_b, ∂L/∂W_a) of the latest backward pass (the paper's Fig. F); NaN before
        the first one. With a smaller auxiliary kernel, ∂L/∂W_b is summed over the kernel window
        as in the "copy" initialisation."""
        if self._last_gwb is None or self._last_gwa is None:
            return float("nan")
        gwb, gwa = _match_kernel(self._last_gwb, self._last_gwa.shape), self._last_gwa
        return cosine(gwb, gwa)

    def statistics(self) -> dict:
        """The latest λ (next and used), ‖g_b‖, ‖g_a‖, the weight-gradient cosine, the Frobenius
        norms of W_b and W_a, and the number of measured passes."""
        out = dict(self.stats)
        out["cos_w"] = self.weight_grad_cosine()
        out["norm_main"] = _norm(self.layer.weight.data)
        out["norm_aux"] = _norm(self.aux_weight.data)
        return out

    def remove_hooks(self) -> None:
        """Detach the hook this wrapper put on the binary layer's weight."""
        for remove in self._removers:
            remove()
        self._removers = []

    def extra_repr(self):
        lam = f"fixed_lambda={self.fixed_lambda}" if self.fixed_lambda is not None else (
            f"eta={self.eta}")
        aux = "" if self.kind == "linear" else f", aux_kernel={self.aux_kernel}"
        extra = "" if self.compensation == "aux" else f", compensation={self.compensation}"
        return f"{lam}, scope={self.scope}, init={self.init}{aux}{extra}"


# ---------------------------------------------------------------------------------------------
# Whole models
# ---------------------------------------------------------------------------------------------


def _replace_child(parent: Module, name: str, new: Module) -> None:
    """Put ``new`` in place of the child ``name`` *keeping its position* in ``parent._modules``
    (plain ``setattr`` would move it to the end, and Sequential runs children in that order)."""
    parent._modules[name] = new
    object.__setattr__(parent, name, new)


def wrap(model: Module, eta: float = 0.01, scope: str = "all", fixed_lambda: float | None = None,
         aux_kernel: int | None = None, init: str = "copy", compensation: str = "aux",
         include: Callable[[str, Module], bool] | None = None, exact: bool = True,
         rng=None) -> Module:
    """Give every binary layer of ``model`` a SURGE auxiliary branch, in place; returns the model.

    Each ``BinaryLinear``/``BinaryConv2d`` (any module :func:`is_binary_layer` accepts, for which
    ``include(name, module)`` is true when given) is replaced by a :class:`SurgeLayer` around it
    with the given options (see :class:`SurgeLayer`). Layers already wrapped are left alone. If
    ``model`` itself is a binary layer, the wrapped layer is returned.

    Note: parameter names change (``fc.weight`` becomes ``fc.layer.weight``, plus
    ``fc.aux_weight``); :func:`unwrap` restores the original names.
    """
    options = dict(eta=eta, scope=scope, fixed_lambda=fixed_lambda, aux_kernel=aux_kernel,
                   init=init, compensation=compensation, exact=exact, rng=rng)
    if is_binary_layer(model):
        return SurgeLayer(model, **options) if include is None or include("", model) else model
    for parent_name, parent in list(model.named_modules()):
        if isinstance(parent, SurgeLayer):
            continue
        for name, child in list(parent._modules.items()):
            full = f"{parent_name}.{name}" if parent_name else name
            if is_binary_layer(child) and (include is None or include(full, child)):
                _replace_child(parent, name, SurgeLayer(child, **options))
    return model


def unwrap(model: Module) -> Module:
    """Drop every SURGE auxiliary branch, in place: each :class:`SurgeLayer` is replaced by the
    binary layer it wraps (same Parameters, so the same outputs). Returns the plain binary model
    (the wrapped layer itself if ``model`` is a SurgeLayer). The export calls this."""
    if isinstance(model, SurgeLayer):
        model.remove_hooks()
        return model.layer
    for _, parent in list(model.named_modules()):
        for name, child in list(parent._modules.items()):
            if isinstance(child, SurgeLayer):
                child.remove_hooks()
                _replace_child(parent, name, child.layer)
    return model


def surge_layers(model: Module) -> list[tuple[str, SurgeLayer]]:
    """The SURGE layers of ``model`` with their dotted names."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, SurgeLayer)]


def lambdas(model: Module) -> dict[str, float]:
    """The λ each SURGE layer will use in its next forward pass, by name."""
    return {name: m.lam for name, m in surge_layers(model)}


def layer_stats(model: Module) -> dict[str, dict]:
    """:meth:`SurgeLayer.statistics` of every SURGE layer, by name."""
    return {name: m.statistics() for name, m in surge_layers(model)}


__all__ = ["SurgeLayer", "DualPathMerge", "GradScale", "Tap", "compensate", "wrap", "unwrap",
           "surge_layers", "lambdas", "layer_stats", "is_binary_layer", "cosine"]
