"""GreedyHypergradient against a NumPy re-derivation of the delayed greedy hypergradient."""

import numpy as np
import pytest

from tinybnn import nn
from tinybnn.data import DataLoader
from tinybnn.errors import ConfigError
from tinybnn.optim import SGD
from tinybnn.train import Callback, GreedyHypergradient, fit
from tinybnn.train.losses import cross_entropy


def np_sign(x):
    return np.where(x >= 0, 1.0, -1.0)


def surrogate(name, v, a):
    """The written shapes of the GSTE thesis, Ch. 3 (a is (a_n, a_p) for dlste)."""
    if name == "slste":
        return np.where((v > -1 / a) & (v <= 1 / a), a, 0.0)
    a_n, a_p = (a, a) if name == "plste" else a
    out = np.zeros_like(v)
    neg, pos = (-1 / a_n <= v) & (v <= 0), (0 < v) & (v <= 1 / a_p)
    out[neg] = 2 * a_n * (1 + a_n * v[neg])
    out[pos] = 2 * a_p * (1 - a_p * v[pos])
    return out


def d_surrogate(name, v, a):
    """∂S/∂a with the window held fixed, one array per shape parameter."""
    if name == "slste":
        return [np.where((v > -1 / a) & (v <= 1 / a), 1.0, 0.0)]
    a_n, a_p = (a, a) if name == "plste" else a
    neg, pos = (-1 / a_n <= v) & (v <= 0), (0 < v) & (v <= 1 / a_p)
    d_n, d_p = np.where(neg, 2 + 4 * a_n * v, 0.0), np.where(pos, 2 - 4 * a_p * v, 0.0)
    return [d_n + d_p] if name == "plste" else [d_n, d_p]


def softmax_ce_grad(logits, y):
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    return p / len(y)


def reference_run(name, a0, w0, batches, mu_v, mu_a, bounds=(0.05, 20.0)):
    """SGD on y = x @ sign(w).T with cross-entropy, the GSTE weight surrogate, and the delayed
    greedy hypergradient, all written out: returns the shape parameters after every step."""
    a = np.array(a0, dtype=np.float64).reshape(-1)
    w = w0.astype(np.float64).copy()
    previous, trace = None, []
    for x, y in batches:
        a_now = a[0] if len(a) == 1 else tuple(a)
        g = softmax_ce_grad(x @ np_sign(w).T, y).T @ x       # ∂L/∂ŵ, shape of w
        grad_w = g * surrogate(name, w, a_now)               # the latent weight's gradient
        terms = [g * d for d in d_surrogate(name, w, a_now)]
        if previous is not None:                             # hypergradient of the last a
            hyper = np.array([-mu_v * np.sum(grad_w * t) for t in previous])
            a = np.clip(a - mu_a * hyper, *bounds)
        previous = terms
        w -= mu_v * grad_w
        trace.append(a.copy())
    return trace


class Snapshot(Callback):
    def __init__(self, quantizer, names):
        self.quantizer, self.names, self.values = quantizer, names, []

    def on_step_end(self, state, logs):
        self.values.append([getattr(self.quantizer, n) for n in self.names])


@pytest.mark.parametrize("name, options, a0", [("slste", {"a": 1.3}, [1.3]),
                                               ("plste", {"a": 0.8}, [0.8]),
                                               ("dlste", {"a_n": 0.7, "a_p": 1.6}, [0.7, 1.6])])
def test_shape_parameters_follow_the_written_delayed_hypergradient(name, options, a0):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (48, 6))
    y = rng.integers(0, 4, 48)
    layer = nn.BinaryLinear(6, 4, input_quantizer=None, weight_quantizer=name, rng=rng)
    for key, value in options.items():
        setattr(layer.weight_quantizer, key, value)
    layer.weight.data = rng.uniform(-0.9, 0.9, layer.weight.shape)   # float64, mostly in-window
    w0 = layer.weight.data.copy()
    loader = DataLoader(x.astype(np.float64), y, 8, shuffle=False)
    hyper = GreedyHypergradient(lr=5.0)
    # the hypergradient runs before Snapshot in the list, so Snapshot sees the updated values
    snapshot = Snapshot(layer.weight_quantizer, layer.weight_quantizer.shape_parameters)
    model = nn.Sequential(layer)
    fit(model, loader, loader, SGD(model.parameters(), lr=0.5), epochs=2, progress=False,
        loss_fn=cross_entropy, callbacks=[hyper, snapshot])

    batches = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 48, 8)] * 2
    expected = reference_run(name, a0, w0, batches, mu_v=0.5, mu_a=5.0)
    # the loader yields float32 batches: agreement to float32 rounding
    np.testing.assert_allclose(np.array(snapshot.values), np.array(expected), rtol=1e-6)
    assert not np.allclose(np.array(expected[-1]), a0)          # the shapes did move
    assert layer.weight_quantizer.record_terms is False          # switched off after fit
    assert [sorted(r) for r in hyper.history][-1] == sorted(
        f"0.{p}" for p in layer.weight_quantizer.shape_parameters)


def test_the_shape_parameter_stays_in_its_range():
    rng = np.random.default_rng(1)
    layer = nn.BinaryLinear(6, 4, input_quantizer=None, weight_quantizer="slste", rng=rng)
    layer.weight.data = rng.uniform(-0.9, 0.9, layer.weight.shape)
    x, y = rng.uniform(-1, 1, (32, 6)), rng.integers(0, 4, 32)
    loader = DataLoader(x, y, 8, shuffle=False)
    hyper = GreedyHypergradient(lr=1e6, a_min=0.5, a_max=2.0)
    model = nn.Sequential(layer)
    fit(model, loader, loader, SGD(model.parameters(), lr=0.5), epochs=1, progress=False,
        callbacks=[hyper])
    values = [r["0.a"] for r in hyper.history]
    assert all(0.5 <= v <= 2.0 for v in values) and {0.5, 2.0} & set(values)


def test_errors():
    with pytest.raises(ConfigError, match="lr must be positive"):
        GreedyHypergradient(lr=0)
    with pytest.raises(ConfigError, match="0 < a_min < a_max"):
        GreedyHypergradient(a_min=2.0, a_max=1.0)
    rng = np.random.default_rng(2)
    model = nn.Sequential(nn.BinaryLinear(6, 4, rng=rng))            # ste_sign weights
    loader = DataLoader(rng.uniform(-1, 1, (8, 6)), rng.integers(0, 4, 8), 8)
    with pytest.raises(ConfigError, match="no weight quantizer 'slste', 'plste' or 'dlste'"):
        fit(model, loader, loader, SGD(model.parameters(), lr=0.1), epochs=1, progress=False,
            callbacks=[GreedyHypergradient()])
