"""The Beale toy problem of SURGE's Appendix C: a tiny net learns to output the minimum of the Beale
function, with full-precision, binarized, and SURGE-compensated layers.

The Beale function (Beale 1958) is a classic non-convex test function of two variables::

    f(x, y) = (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²

with its global minimum f(3, 0.5) = 0, a flat curved valley around it and walls that grow like y⁶.

The toy model (App. C: "an input layer, a hidden layer with ReLU activation, and an output layer
that produces 2D coordinates"; both linear layers binarized) maps a fixed input vector z to a point
p = (x, y); the loss is f(p). Training moves p across the landscape, so the path of p shows what
each gradient estimator does.

Choices the paper leaves open (made here, exposed as arguments, explained in the tutorial):

- **Input.** z is a fixed standard-normal vector of ``d_in = 8`` entries, drawn from the seed. The
  first layer binarizes it (W1A1), so only sign(z) matters there.
- **Width.** ``hidden = 16`` units, no biases (so FP and binary nets share every weight).
- **Initialisation.** W1 and W2 from PyTorch's Kaiming-uniform default, drawn once per seed and
  copied into every method (identical initialisation across methods, as in App. C); SURGE's W_a
  starts as a copy of W_b (:mod:`tinybnn.surge`).
- **The hidden nonlinearity of the binary nets.** The FP net is z → Linear → ReLU → Linear. In the
  binary nets the second layer binarizes its input, and sign(ReLU(h)) = +1 for every h (tinybnn's
  sign(0) = +1), which would erase all information. So, as in every BNN since Hubara et al. (2016),
  the sign *is* the hidden nonlinearity: z → BinaryLinear → BinaryLinear, the second layer's
  quantizer acting on the pre-activation h.
- **Scales.** Q_W(W) = α_w·sign(W) with one learnable α_w per layer (init mean|W|, XNOR-Net), and
  Q_x(h) = α_a·B(h) on the hidden activations with a learnable α_a (init 1), as in Eq. 2; these
  are the α_w and α_a of the paper's Fig. C. One α per *layer*, not per output channel: with one α
  per output coordinate, p_k = α_k·(integer) could reach (3, 0.5) by the scales alone and the
  binary weights would not matter (``alpha="channel"`` selects that variant).
- **Estimators.** "ste": clipped STE (Eq. 4) for activations and weights; "bireal": ApproxSign
  (Bi-Real Net) for activations and the same STE weights, so only the activation surrogate
  differs. "+surge" wraps both binary layers with :func:`tinybnn.surge.wrap` (η = 0.01, scope
  "all"); "+noise" is the paper's Fig. G control (noise of the norm of λ·g_a instead of λ·g_a).
  The first layer's input z needs no gradient, so its SURGE branch is inert (its λ stays
  1/√|W_a|); the compensation acts through the hidden layer, whose λ the figures show.
- **Optimizer.** Adam, lr 0.01, 1500 steps (one "step" = one forward/backward of the single input).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .. import functional as F
from .. import nn
from .. import surge as surge_mod
from ..autograd import Tensor, no_grad
from ..errors import ConfigError
from ..inspect.probes import GradientRecorder
from ..nn import init as nn_init
from ..nn.module import Module, Parameter
from ..quant.base import Quantizer, make_quantizer

BEALE_MINIMUM = (3.0, 0.5)

#: Short method names of the paper's figures -> activation quantizer names of tinybnn.quant.
ESTIMATOR_ALIASES = {"ste": "ste_sign", "bireal": "approx_sign", "bi-real": "approx_sign"}

DEFAULT_METHODS = ("fp", "ste", "ste+surge", "bireal", "bireal+surge", "ste+noise")


# ---------------------------------------------------------------------------------------------
# The function
# ---------------------------------------------------------------------------------------------


def beale(p: Tensor, reduction: str = "mean") -> Tensor:
    """The Beale function as a differentiable loss.

    Args:
        p: Tensor of points, shape (2,) or (N, 2): p[..., 0] = x, p[..., 1] = y.
        reduction: "mean" (default) or "sum" over the N points, or "none" (shape () or (N,)).
    Returns:
        f(x, y) = (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)².

    Built from the engine's operators, so ``beale(p).backward()`` gives
    ∂f/∂x = 2Σ_i t_i (y^i − 1),  ∂f/∂y = 2Σ_i t_i · i·x·y^(i−1)  with t_i the three terms.
    """
    if p.shape[-1] != 2 or p.ndim not in (1, 2):
        raise ConfigError(f"beale expects points of shape (2,) or (N, 2), got {p.shape}")
    x, y = p[..., 0], p[..., 1]
    t1 = 1.5 - x + x * y
    t2 = 2.25 - x + x * y * y
    t3 = 2.625 - x + x * y * y * y
    f = t1 * t1 + t2 * t2 + t3 * t3
    if reduction == "none" or p.ndim == 1:
        return f
    if reduction == "mean":
        return f.mean()
    if reduction == "sum":
        return f.sum()
    raise ConfigError(f"unknown reduction {reduction!r}; use 'mean', 'sum' or 'none'")


def beale_numpy(x, y):
    """The Beale function on plain arrays (for contour plots): f(x, y), broadcasting."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def distance_to_minimum(p) -> np.ndarray:
    """Euclidean distance of point(s) (..., 2) to the minimum (3, 0.5)."""
    p = np.asarray(p.data if isinstance(p, Tensor) else p, dtype=np.float64)
    return np.sqrt(((p - np.asarray(BEALE_MINIMUM)) ** 2).sum(axis=-1))


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


class LearnedScale(Quantizer):
    """Q(x) = α·B(x): a binarizer B (any tinybnn quantizer, by name) times a learnable α (Eq. 2's
    Q_x = α_x B_x and Q_W = α_W B_W).

    Shapes: α has shape ``alpha_shape``: () for one α per layer, (out, 1) for one per output
    channel of a weight (out, in). Gradients: dα = Σ dy·B(x); dx = α·(B's surrogate backward).
    """

    def __init__(self, quantizer, alpha, alpha_shape=()):
        super().__init__()
        self.quantizer = make_quantizer(quantizer)
        self.alpha = Parameter(np.full(alpha_shape, alpha, dtype=np.float32)
                               if np.isscalar(alpha) else
                               np.asarray(alpha, dtype=np.float32).reshape(alpha_shape))

    def build(self, channels: int, axis: int = 1) -> None:
        if self.quantizer is not None:
            self.quantizer.build(channels, axis)

    @property
    def clip(self):
        """The wrapped quantizer's STE window (SURGE's scopes read it)."""
        return getattr(self.quantizer, "clip", 1.0)

    def forward(self, x):
        return self.quantizer(x) * self.alpha

    def extra_repr(self):
        return f"alpha shape={self.alpha.shape}"


def initial_state(seed: int, d_in: int = 8, hidden: int = 16) -> dict[str, np.ndarray]:
    """The shared starting point of every method for one seed: the input z (d_in,), W1
    (hidden, d_in) and W2 (2, hidden), float32, drawn from ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(d_in).astype(np.float32)
    w1 = nn_init.kaiming_uniform((hidden, d_in), rng=rng)
    w2 = nn_init.kaiming_uniform((2, hidden), rng=rng)
    return {"z": z, "w1": w1, "w2": w2}


class BealeNet(Module):
    """z → fc1 → (ReLU, full precision only) → fc2 → p = (x, y).

    Args:
        state: the arrays of :func:`initial_state` (copied, never shared).
        estimator: None for the full-precision net, else the activation quantizer's name
            ("ste_sign", "approx_sign", ...); weights always use the clipped STE.
        alpha: "layer" (one α_w per layer, default) or "channel" (one per output unit).

    Shapes: forward() -> (1, 2). Attributes ``fc1``, ``fc2`` (Linear or BinaryLinear), buffer ``z``.
    """

    def __init__(self, state: dict, estimator: str | None = "ste_sign", alpha: str = "layer"):
        super().__init__()
        if alpha not in ("layer", "channel"):
            raise ConfigError(f"alpha must be 'layer' or 'channel', got {alpha!r}")
        w1, w2 = state["w1"], state["w2"]
        hidden, d_in = w1.shape
        self.binary = estimator is not None
        self.register_buffer("z", np.asarray(state["z"], dtype=np.float32).reshape(1, d_in))
        if not self.binary:
            self.fc1 = nn.Linear(d_in, hidden, bias=False)
            self.fc2 = nn.Linear(hidden, 2, bias=False)
        else:
            def weight_q(w):
                if alpha == "layer":
                    return LearnedScale("ste_sign", float(np.abs(w).mean()))
                return LearnedScale("ste_sign", np.abs(w).mean(axis=1), (w.shape[0], 1))

            self.fc1 = nn.BinaryLinear(d_in, hidden, input_quantizer=estimator,
                                       weight_quantizer=weight_q(w1))
            self.fc2 = nn.BinaryLinear(hidden, 2, input_quantizer=LearnedScale(estimator, 1.0),
                                       weight_quantizer=weight_q(w2))
        self.fc1.weight.data[...] = w1
        self.fc2.weight.data[...] = w2

    def forward(self, z=None):
        z = Tensor(self.z) if z is None else z
        h = self.fc1(z)
        if not self.binary:
            h = F.relu(h)
        return self.fc2(h)


def _binary(layer: Module) -> Module:
    """The binary layer itself, looking through a SURGE wrapper."""
    return layer.layer if isinstance(layer, surge_mod.SurgeLayer) else layer


def parse_method(method: str) -> tuple[str | None, str | None]:
    """"ste+surge" -> ("ste_sign", "surge"); "fp" -> (None, None); "bireal" -> ("approx_sign",
    None). The base is "fp", an alias (ste, bireal) or any activation quantizer name; the suffix
    is "surge" or "noise"."""
    base, _, suffix = method.lower().partition("+")
    if suffix not in ("", "surge", "noise"):
        raise ConfigError(f"unknown method suffix {suffix!r} in {method!r}; use '+surge' or "
                          f"'+noise'")
    if base == "fp":
        if suffix:
            raise ConfigError(f"{method!r}: SURGE and its noise control need a binary net")
        return None, None
    estimator = ESTIMATOR_ALIASES.get(base, base)
    make_quantizer(estimator)  # raises ConfigError with the list of names if unknown
    return estimator, suffix or None


def build_model(method: str, state: dict, alpha: str = "layer", eta: float = 0.01,
                scope: str = "all", fixed_lambda: float | None = None, surge_init: str = "copy",
                noise_seed: int = 0) -> BealeNet:
    """The model of one method from one initial state (see :func:`parse_method`)."""
    estimator, suffix = parse_method(method)
    model = BealeNet(state, estimator=estimator, alpha=alpha)
    if suffix is not None:
        surge_mod.wrap(model, eta=eta, scope=scope, fixed_lambda=fixed_lambda, init=surge_init,
                       compensation="aux" if suffix == "surge" else "noise",
                       rng=np.random.default_rng(noise_seed))
    return model


# ---------------------------------------------------------------------------------------------
# Training and recording
# ---------------------------------------------------------------------------------------------


@dataclass
class BealeRun:
    """Everything recorded while training one method from one seed (T steps).

    Arrays (NumPy, float64 unless noted):
        trajectory (T+1, 2): the output p before each step and after the last;
        loss, distance (T+1,): Beale value and distance to (3, 0.5) at those points;
        lam (T,) per SURGE layer (dict): the λ used at each step;
        g_b_norm, g_a_norm, cos_w (T,) per SURGE layer (dict): ‖g_b‖, ‖g_a‖ and
            cos∠(∂L/∂W_b, ∂L/∂W_a) of each step;
        norm_main, norm_aux (T+1,): Frobenius norm of all main (latent W_b) / auxiliary (W_a)
            weights together;
        alpha_w (dict layer -> (T+1,)), alpha_a (T+1,): the learnable scales (means if per
            channel);
        grads (dict name -> (T, ...), float32): the gradient flowing into the hidden
            activation ("hidden": the total, "hidden_main": SURGE's g_b alone) and into
            each latent weight ("fc1.weight", "fc2.weight") at every step.
    """

    method: str
    seed: int
    trajectory: np.ndarray
    loss: np.ndarray
    distance: np.ndarray
    lam: dict = field(default_factory=dict)
    g_b_norm: dict = field(default_factory=dict)
    g_a_norm: dict = field(default_factory=dict)
    cos_w: dict = field(default_factory=dict)
    norm_main: np.ndarray | None = None
    norm_aux: np.ndarray | None = None
    alpha_w: dict = field(default_factory=dict)
    alpha_a: np.ndarray | None = None
    grads: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def final_loss(self) -> float:
        return float(self.loss[-1])

    def tail_loss(self, fraction: float = 0.1) -> float:
        """Mean loss over the last ``fraction`` of the steps (less noisy than the final value)."""
        n = max(1, int(round(len(self.loss) * fraction)))
        return float(self.loss[-n:].mean())

    def grad(self, name: str, step: int) -> np.ndarray:
        """The gradient ``name`` ("hidden", "hidden_main", "fc1.weight", "fc2.weight") at
        ``step`` (0-based)."""
        if name not in self.grads:
            raise KeyError(f"no gradient {name!r} recorded; recorded: {sorted(self.grads)}")
        return self.grads[name][step]


class BealeTrainer:
    """Trains one method from one seed, one step at a time (``step()``), recording as it goes.

    Args: see :func:`run_beale`. Attributes: ``model``, ``optimizer``, ``recorder`` (the
    :class:`~tinybnn.inspect.GradientRecorder`), ``t`` (steps done).
    """

    def __init__(self, method: str, seed: int = 0, d_in: int = 8, hidden: int = 16,
                 lr: float = 0.01, optimizer: str = "adam", alpha: str = "layer",
                 eta: float = 0.01, scope: str = "all", fixed_lambda: float | None = None,
                 surge_init: str = "copy", state: dict | None = None):
        from ..optim import make_optimizer

        self.method, self.seed = method, seed
        state = initial_state(seed, d_in, hidden) if state is None else state
        self.model = build_model(method, state, alpha=alpha, eta=eta, scope=scope,
                                 fixed_lambda=fixed_lambda, surge_init=surge_init,
                                 noise_seed=seed + 10_007)
        self.optimizer = make_optimizer(optimizer, self.model.parameters(), lr=lr)
        self.surge_layers = dict(surge_mod.surge_layers(self.model))
        layers = ["fc1", "fc2"] + (["fc2.layer"] if "fc2" in self.surge_layers else [])
        self.recorder = GradientRecorder(self.model, layers=layers, what=("input", "weight"),
                                         keep_every=1, max_arrays=None)
        self.t = 0
        self.log: dict[str, list] = {k: [] for k in ("p", "loss", "norm_main", "norm_aux",
                                                     "alpha_a")}
        self.log_alpha_w: dict[str, list] = {"fc1": [], "fc2": []}
        self.log_surge: dict[str, dict[str, list]] = {
            name: {"lam": [], "g_b_norm": [], "g_a_norm": [], "cos_w": []}
            for name in self.surge_layers}

    def _snapshot(self, p: np.ndarray, loss: float) -> None:
        """Record the point, the loss and the parameters *before* an update."""
        self.log["p"].append(p)
        self.log["loss"].append(loss)
        mains = [_binary(getattr(self.model, n)).weight.data for n in ("fc1", "fc2")]
        self.log["norm_main"].append(math.sqrt(sum(float((w.astype(np.float64) ** 2).sum())
                                                   for w in mains)))
        auxes = [m.aux_weight.data for m in self.surge_layers.values()]
        self.log["norm_aux"].append(math.sqrt(sum(float((w.astype(np.float64) ** 2).sum())
                                                  for w in auxes)) if auxes else np.nan)
        for n in ("fc1", "fc2"):
            wq = getattr(_binary(getattr(self.model, n)), "weight_quantizer", None)
            self.log_alpha_w[n].append(float(wq.alpha.data.mean()) if wq is not None else np.nan)
        aq = getattr(_binary(self.model.fc2), "input_quantizer", None)
        self.log["alpha_a"].append(float(aq.alpha.data.mean()) if aq is not None else np.nan)

    def step(self) -> float:
        """One forward, backward and optimizer step; returns the loss before the update."""
        self.optimizer.zero_grad()
        p = self.model()
        loss = beale(p)
        self._snapshot(p.numpy()[0].astype(np.float64), float(loss.item()))
        loss.backward()
        for name, layer in self.surge_layers.items():
            stats = layer.statistics()
            log = self.log_surge[name]
            log["lam"].append(stats["lam_used"] if stats["lam_used"] is not None else layer.lam)
            for key in ("g_b_norm", "g_a_norm", "cos_w"):
                log[key].append(np.nan if stats[key] is None else stats[key])
        self.optimizer.step()
        self.recorder.step()
        self.t += 1
        return float(loss.item())

    def result(self, seconds: float = 0.0) -> BealeRun:
        """Close the record with the final point and return it as a :class:`BealeRun`."""
        with no_grad():
            p = self.model()
            loss = float(beale(p).item())
        self._snapshot(p.numpy()[0].astype(np.float64), loss)
        traj = np.array(self.log["p"])
        grads = {}
        rec = self.recorder.probes
        if rec["fc2"]["input"].arrays:
            grads["hidden"] = rec["fc2"]["input"].stacked()[1]
        if "fc2.layer" in rec and rec["fc2.layer"]["input"].arrays:
            grads["hidden_main"] = rec["fc2.layer"]["input"].stacked()[1]
        for n in ("fc1", "fc2"):
            if rec[n]["weight"].arrays:
                grads[f"{n}.weight"] = rec[n]["weight"].stacked()[1]
        self.recorder.remove()
        return BealeRun(
            method=self.method, seed=self.seed, trajectory=traj,
            loss=np.array(self.log["loss"]), distance=distance_to_minimum(traj),
            lam={n: np.array(v["lam"], dtype=np.float64) for n, v in self.log_surge.items()},
            g_b_norm={n: np.array(v["g_b_norm"], dtype=np.float64)
                      for n, v in self.log_surge.items()},
            g_a_norm={n: np.array(v["g_a_norm"], dtype=np.float64)
                      for n, v in self.log_surge.items()},
            cos_w={n: np.array(v["cos_w"], dtype=np.float64) for n, v in self.log_surge.items()},
            norm_main=np.array(self.log["norm_main"]), norm_aux=np.array(self.log["norm_aux"]),
            alpha_w={n: np.array(v) for n, v in self.log_alpha_w.items()},
            alpha_a=np.array(self.log["alpha_a"]), grads=grads, seconds=seconds)


class BealeResults:
    """The runs of :func:`run_beale`: ``results[method]`` is the list of runs over the seeds.

    :meth:`summary` gives the per-method statistics of the final loss; :meth:`table` prints them.
    """

    def __init__(self, runs: dict[str, list[BealeRun]], config: dict):
        self.runs, self.config = runs, config

    def __getitem__(self, method: str) -> list[BealeRun]:
        return self.runs[method]

    @property
    def methods(self) -> list[str]:
        return list(self.runs)

    def run(self, method: str, seed: int) -> BealeRun:
        for r in self.runs[method]:
            if r.seed == seed:
                return r
        raise KeyError(f"no run of {method!r} with seed {seed}; seeds: "
                       f"{[r.seed for r in self.runs[method]]}")

    def stack(self, method: str, key: str, layer: str | None = None) -> np.ndarray:
        """One recorded series of every seed of ``method`` as a (seeds, T) array."""
        rows = []
        for r in self.runs[method]:
            value = getattr(r, key)
            rows.append(value[layer] if isinstance(value, dict) else value)
        return np.array(rows)

    def summary(self, metric: str = "final") -> dict[str, dict[str, float]]:
        """Per method: median, 25th and 75th percentiles, min and max over seeds of the final
        loss (``metric="final"``), the mean loss over the last 10% of steps ("tail"), or the
        final distance to the minimum ("distance")."""
        out = {}
        for method, runs in self.runs.items():
            if metric == "final":
                values = np.array([r.final_loss for r in runs])
            elif metric == "tail":
                values = np.array([r.tail_loss() for r in runs])
            elif metric == "distance":
                values = np.array([r.distance[-1] for r in runs])
            else:
                raise ConfigError(f"unknown metric {metric!r}; use 'final', 'tail' or 'distance'")
            q25, med, q75 = np.percentile(values, [25, 50, 75])
            out[method] = {"median": float(med), "q25": float(q25), "q75": float(q75),
                           "min": float(values.min()), "max": float(values.max()),
                           "seeds": len(values), "values": values}
        return out

    def wins(self, method: str, base: str, metric: str = "final") -> tuple[int, int]:
        """In how many seeds ``method`` ends with a lower loss than ``base`` (paired by seed)."""
        key = {"final": lambda r: r.final_loss, "tail": lambda r: r.tail_loss(),
               "distance": lambda r: r.distance[-1]}[metric]
        a = {r.seed: key(r) for r in self.runs[method]}
        b = {r.seed: key(r) for r in self.runs[base]}
        seeds = sorted(set(a) & set(b))
        return sum(a[s] < b[s] for s in seeds), len(seeds)

    def table(self, metric: str = "final") -> str:
        """A Markdown table of :meth:`summary`."""
        label = {"final": "final loss", "tail": "loss, mean of last 10% steps",
                 "distance": "final distance to (3, 0.5)"}[metric]
        lines = [f"| method | median {label} | IQR (25%–75%) | min – max | seeds |",
                 "|---|---|---|---|---|"]
        for method, s in self.summary(metric).items():
            lines.append(f"| {method} | {s['median']:.4g} | {s['q25']:.4g} – {s['q75']:.4g} | "
                         f"{s['min']:.4g} – {s['max']:.4g} | {s['seeds']} |")
        return "\n".join(lines)


def run_beale(methods=DEFAULT_METHODS, seeds=range(5), steps: int = 1500, hidden: int = 16,
              d_in: int = 8, lr: float = 0.01, optimizer: str = "adam", alpha: str = "layer",
              eta: float = 0.01, scope: str = "all", fixed_lambda: float | None = None,
              surge_init: str = "copy", progress: bool = False) -> BealeResults:
    """Train every method from every seed on the Beale toy problem.

    For each seed, :func:`initial_state` draws z, W1 and W2 once and every method starts from
    them (identical initialisation). Deterministic: the same arguments give the same results.

    Args:
        methods: names such as "fp", "ste", "ste+surge", "bireal", "bireal+surge", "ste+noise"
            (any activation quantizer name works as a base, see :func:`parse_method`).
        seeds: the seeds (each gives its own z and initial weights).
        steps: optimizer steps per run (default 1500).
        hidden, d_in: hidden width (16) and input size (8).
        lr, optimizer: learning rate (0.01) and optimizer name ("adam"; any name of
            :func:`tinybnn.optim.make_optimizer`).
        alpha: "layer" (one α_w per layer) or "channel".
        eta, scope, fixed_lambda, surge_init: SURGE's options (see
            :class:`tinybnn.surge.SurgeLayer`).
        progress: print one line per finished run.
    Returns:
        :class:`BealeResults`.
    """
    runs: dict[str, list[BealeRun]] = {m: [] for m in methods}
    for seed in seeds:
        state = initial_state(seed, d_in, hidden)
        for method in methods:
            start = time.perf_counter()
            trainer = BealeTrainer(method, seed, d_in=d_in, hidden=hidden, lr=lr,
                                   optimizer=optimizer, alpha=alpha, eta=eta, scope=scope,
                                   fixed_lambda=fixed_lambda, surge_init=surge_init,
                                   state={k: v.copy() for k, v in state.items()})
            for _ in range(steps):
                trainer.step()
            run = trainer.result(seconds=time.perf_counter() - start)
            runs[method].append(run)
            if progress:
                print(f"seed {seed} {method:>14}: final loss {run.final_loss:.4g} "
                      f"({run.seconds:.1f} s)")
    config = dict(methods=list(methods), seeds=list(seeds), steps=steps, hidden=hidden, d_in=d_in,
                  lr=lr, optimizer=optimizer, alpha=alpha, eta=eta, scope=scope,
                  fixed_lambda=fixed_lambda, surge_init=surge_init)
    return BealeResults(runs, config)


# ---------------------------------------------------------------------------------------------
# Figures (the paper's Figures A-D and G); each returns a matplotlib Figure
# ---------------------------------------------------------------------------------------------


def plot_landscape(ax=None, xlim=(-1.0, 4.5), ylim=(-1.5, 2.0), resolution: int = 300):
    """Contours of log10(1 + f) over the box, the minimum (3, 0.5) as a star."""
    from ..inspect.plots import figure

    if ax is None:
        fig = figure(figsize=(5.5, 4.2))
        ax = fig.add_subplot()
    xs = np.linspace(*xlim, resolution)
    ys = np.linspace(*ylim, resolution)
    gx, gy = np.meshgrid(xs, ys)
    levels = np.linspace(0, np.log10(1 + beale_numpy(gx, gy)).max(), 30)
    cs = ax.contourf(gx, gy, np.log10(1 + beale_numpy(gx, gy)), levels=levels, cmap="viridis",
                     alpha=0.85)
    ax.figure.colorbar(cs, ax=ax, label="log10(1 + f(x, y))")
    ax.plot(*BEALE_MINIMUM, marker="*", color="white", markersize=14, markeredgecolor="black",
            linestyle="none", label="minimum (3, 0.5)")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    return ax.figure


def _band(results: BealeResults, method: str, key: str, layer: str | None = None):
    """Median and 25%/75% percentiles over the seeds of one recorded series."""
    data = results.stack(method, key, layer)
    return (np.nanmedian(data, axis=0), np.nanpercentile(data, 25, axis=0),
            np.nanpercentile(data, 75, axis=0))


def method_colors(results: BealeResults) -> dict[str, str]:
    """One fixed colour per method (matplotlib's tab10 cycle in the order of the results)."""
    palette = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9"]
    return {m: palette[i % 10] for i, m in enumerate(results.methods)}


def _median_curves(ax, results, methods, key, layer=None, ylabel="", logy=True, title=""):
    from ..inspect.plots import curves

    series, band = {}, {}
    for m in methods:
        if key in ("lam",) and not results[m][0].lam:
            continue
        if key == "norm_aux" and np.all(np.isnan(results[m][0].norm_aux)):
            continue
        med, low, high = _band(results, m, key, layer)
        series[m], band[m] = med, (low, high)
    curves(series, ylabel=ylabel, logy=logy, ax=ax, band=band, title=title,
           colors=method_colors(results))


def plot_trajectories(results: BealeResults, methods=None, seed: int | None = None, ax=None):
    """The path of the output point p over the landscape, one line per method, for one seed
    (the first by default)."""
    methods = list(methods or results.methods)
    seed = results[methods[0]][0].seed if seed is None else seed
    fig = plot_landscape(ax=ax)
    ax = fig.axes[0] if ax is None else ax
    colors = method_colors(results)
    for m in methods:
        traj = results.run(m, seed).trajectory
        (line,) = ax.plot(traj[:, 0], traj[:, 1], linewidth=1.0, label=m, color=colors[m],
                          alpha=0.85)
        ax.plot(traj[0, 0], traj[0, 1], "o", color=line.get_color(), markersize=4)
        ax.plot(traj[-1, 0], traj[-1, 1], "x", color=line.get_color(), markersize=7)
    ax.set_title(f"trajectories (seed {seed}; o start, x end)")
    ax.legend(fontsize=7, loc="lower left")
    return fig


def figure_convergence(results: BealeResults, methods=None, seed: int | None = None):
    """Figures A, B and G of the paper: (a) trajectories of one seed, (b) loss, (c) distance to
    the minimum, (d) λ of the hidden layer (``fc2``, whose input is the hidden activation);
    (b)-(d) show the median over the seeds with the 25-75% band."""
    from ..inspect.plots import figure

    methods = list(methods or results.methods)
    fig = figure(figsize=(12, 9))
    axes = fig.subplots(2, 2)
    plot_trajectories(results, methods, seed, ax=axes[0, 0])
    _median_curves(axes[0, 1], results, methods, "loss", ylabel="Beale loss", title="(b) loss")
    _median_curves(axes[1, 0], results, methods, "distance", ylabel="‖p − (3, 0.5)‖",
                   title="(c) distance to the minimum")
    _median_curves(axes[1, 1], results, methods, "lam", layer="fc2", ylabel="λ",
                   title="(d) SURGE's λ of the hidden layer")
    axes[0, 0].set_title("(a) " + axes[0, 0].get_title())
    n = len(results[methods[0]])
    fig.suptitle(f"Beale toy problem: {', '.join(methods)} (median over {n} seeds)")
    return fig


def figure_parameters(results: BealeResults, methods=None):
    """Figures C and D of the paper: Frobenius norm of (a) the main (latent binary) and (b) the
    auxiliary weights, (c) the weight scale α_w of the output layer, (d) the activation scale
    α_a of the hidden activations (median over seeds, 25-75% band)."""
    from ..inspect.plots import figure

    methods = list(methods or results.methods)
    fig = figure(figsize=(12, 8))
    axes = fig.subplots(2, 2)
    _median_curves(axes[0, 0], results, methods, "norm_main", ylabel="‖W_b‖_F", logy=False,
                   title="(a) weight norm of the main branch (W1, W2)")
    _median_curves(axes[0, 1], results, methods, "norm_aux", ylabel="‖W_a‖_F", logy=False,
                   title="(b) weight norm of the auxiliary branch")
    _median_curves(axes[1, 0], results, [m for m in methods if parse_method(m)[0]], "alpha_w",
                   layer="fc2", ylabel="α_w", logy=False, title="(c) weight scale α_w (fc2)")
    _median_curves(axes[1, 1], results, [m for m in methods if parse_method(m)[0]], "alpha_a",
                   ylabel="α_a", logy=False, title="(d) activation scale α_a (hidden)")
    fig.suptitle("parameter evolution (median over seeds)")
    return fig
