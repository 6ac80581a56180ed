"""Learning the shape of a generalized STE by hypergradients (GSTE thesis draft, Ch. 4).

The shape parameter a of a GSTE weight quantizer (:mod:`tinybnn.quant.gste`) does not change the
forward pass, so the loss has no gradient with respect to it. What it changes is the next weight
step. With plain SGD on the latent weights v (learning rate μ_v), step j moves them by

    v_{j+1} = v_j − μ_v · g_j ⊙ S(a_j; v_j),        g_j = ∂L_j/∂v̂ (the gradient at sign(v)),

so the loss after that step depends on a_j through v_{j+1}. The greedy one-step hypergradient is
(thesis Ch. 4, "consistent form", summed over the tensor: one a per quantizer)

    ∂L_{j+1}/∂a_j = −μ_v · Σ [g_{j+1} ⊙ S(a_{j+1}; v_{j+1})] ⊙ [g_j ⊙ ∂S(a_j; v_j)/∂a_j].

The first bracket is the weight gradient of step j+1 (``p.grad``); the second is recorded by the
quantizer's backward at step j. Because a_{j+1} appears on both sides, the thesis either solves for
it (analytically, for SLSTE) or *delays* the update (its App. A.2): the hypergradient of a_j is
applied after step j+1, so the new value is used from step j+2 on. :class:`GreedyHypergradient`
implements the delayed form:

    a ← clip(a − μ_a · ∂L_{j+1}/∂a_j, a_min, a_max)      after every step j+1 ≥ 1.

Choices where the thesis is silent or ambiguous (each an argument): one a per quantizer (the
thesis also mentions per element), μ_v read from the optimizer's first group with an ``lr`` at
step j (exact for SGD without momentum, the thesis's setting; an approximation for others), and
a kept within [a_min, a_max] = [0.05, 20] so that the window 1/a stays meaningful.
Only *weight* quantizers: an activation quantizer's a changes the steps of every weight before it,
which this one-step formula does not follow.
"""

from __future__ import annotations

from ..errors import ConfigError
from .callbacks import Callback


def _shaped_weight_quantizers(model):
    """(name, module, quantizer) of every module whose ``weight_quantizer`` is a GSTE shape."""
    from ..quant import ShapedQuantizer

    found = []
    for name, module in model.named_modules():
        quantizer = getattr(module, "weight_quantizer", None)
        if isinstance(quantizer, ShapedQuantizer) and getattr(module, "weight", None) is not None:
            found.append((name, module, quantizer))
    return found


class GreedyHypergradient(Callback):
    """Learns the shape parameters (a, or a_n and a_p) of a model's GSTE weight quantizers by the
    delayed greedy hypergradient (see the module docstring for the formula and the choices).

    Usage: ``fit(model, ..., optimizer=SGD(model.parameters(), lr=μ_v),
    callbacks=[GreedyHypergradient(lr=μ_a)])``, with weight quantizers "slste", "plste" or
    "dlste". ``history`` holds, after each step, the shape parameters of every quantizer, keyed
    "<layer>.<parameter>" (e.g. "2.a").

    Args:
        lr: μ_a > 0, the step size on a.
        a_min, a_max: the range a is kept in (0 < a_min < a_max).
    """

    def __init__(self, lr: float = 1.0, a_min: float = 0.05, a_max: float = 20.0):
        if not lr > 0:
            raise ConfigError(f"GreedyHypergradient lr must be positive, got {lr!r}")
        if not 0 < a_min < a_max:
            raise ConfigError(f"GreedyHypergradient needs 0 < a_min < a_max, got {a_min}, {a_max}")
        self.lr, self.a_min, self.a_max = float(lr), float(a_min), float(a_max)
        self.history: list[dict] = []
        self._previous: dict = {}               # quantizer -> (terms of step j, μ_v of step j)

    def on_fit_begin(self, state):
        self.layers = _shaped_weight_quantizers(state.model)
        if not self.layers:
            raise ConfigError("GreedyHypergradient found no weight quantizer 'slste', 'plste' or "
                              "'dlste' in the model")
        for _, _, quantizer in self.layers:
            quantizer.record_terms = True

    def on_fit_end(self, state):
        for _, _, quantizer in self.layers:
            quantizer.record_terms = False

    def on_step_end(self, state, logs):
        step_lr = logs.get("lr")
        if step_lr is None:
            raise ConfigError("GreedyHypergradient needs an optimizer with a learning rate (the "
                              "μ_v of the weight step)")
        record = {}
        for name, module, quantizer in self.layers:
            grad = module.weight.grad
            terms = getattr(quantizer, "last_terms", None)
            previous = self._previous.get(quantizer)
            if previous is not None and grad is not None:
                old_terms, mu_v = previous
                for parameter, term in zip(quantizer.shape_parameters, old_terms):
                    hypergradient = -mu_v * float((grad * term).sum())
                    value = getattr(quantizer, parameter) - self.lr * hypergradient
                    setattr(quantizer, parameter, min(max(value, self.a_min), self.a_max))
            if terms is not None:
                self._previous[quantizer] = (terms, float(step_lr))
            for parameter in quantizer.shape_parameters:
                record[f"{name}.{parameter}"] = getattr(quantizer, parameter)
        self.history.append(record)
