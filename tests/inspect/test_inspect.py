"""Gradient probes, metrics and plots (tinybnn.inspect)."""

import math

import matplotlib
import numpy as np
import pytest

import tinybnn as tb
from tinybnn import inspect as ti
from tinybnn import nn, surge
from tinybnn.errors import ConfigError

matplotlib.use("Agg")


# --- metrics ----------------------------------------------------------------------------------

def test_cosine_similarity():
    a = np.array([1.0, 0.0, 0.0])
    assert ti.cosine_similarity(a, a) == pytest.approx(1.0)
    assert ti.cosine_similarity(a, -2 * a) == pytest.approx(-1.0)
    assert ti.cosine_similarity(a, np.array([0.0, 3.0, 0.0])) == pytest.approx(0.0)
    assert ti.cosine_similarity(np.array([[1.0, 2.0]]), np.array([[2.0, 4.0]])) == \
        pytest.approx(1.0)
    assert math.isnan(ti.cosine_similarity(a, np.zeros(3)))
    assert ti.cosine_similarity(tb.tensor([1.0, 1.0]), tb.tensor([1.0, 0.0])) == \
        pytest.approx(1 / math.sqrt(2))
    with pytest.raises(ValueError):
        ti.cosine_similarity(np.ones(2), np.ones(3))


def test_fraction_zeroed_by_the_ste():
    x = tb.tensor(np.array([-2.0, -0.5, 0.0, 0.7, 1.5, 3.0]), requires_grad=True)
    y = tb.quant.ste_sign(x)
    upstream = np.array([1.0, 2.0, 0.0, 1.0, 1.0, 1.0])
    y.backward(upstream)
    assert ti.fraction_zero(x.grad) == pytest.approx(4 / 6)       # 3 clipped + 1 zero upstream
    assert ti.fraction_zeroed(x.grad) == pytest.approx(4 / 6)
    assert ti.fraction_zeroed(x.grad, upstream) == pytest.approx(3 / 6)  # only the clipping
    assert ti.fraction_clipped(x) == pytest.approx(3 / 6)
    assert ti.norm(np.array([3.0, 4.0])) == pytest.approx(5.0)


def test_summarize():
    s = ti.summarize(np.array([0.0, 3.0, -4.0, 0.0]))
    assert s["count"] == 4 and s["norm"] == pytest.approx(5.0)
    assert s["frac_zero"] == pytest.approx(0.5) and s["abs_max"] == 4.0
    assert s["mean"] == pytest.approx(-0.25)


# --- a probe on a tensor ------------------------------------------------------------------------

def test_probe_records_the_gradient_into_a_tensor():
    w = tb.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    probe = ti.GradientProbe("h", keep_every=2)
    for step in range(5):
        h = w * float(step + 1)
        probe.attach(h)
        (h * h).sum().backward()
        assert np.allclose(probe.last, 2 * h.data)
    assert len(probe) == 5 and probe.steps == [0, 1, 2, 3, 4]
    assert [s for s, _ in probe.arrays] == [0, 2, 4]               # every 2nd step kept
    assert np.allclose(probe.get(2), 2 * 3 * w.data)
    with pytest.raises(KeyError, match="kept no gradient for step 1"):
        probe.get(1)
    norms = probe.series("norm")
    assert np.allclose(norms, [2 * (k + 1) * np.linalg.norm(w.data) for k in range(5)])
    assert probe.totals["mean_norm"] == pytest.approx(norms.mean())
    assert probe.totals["max_norm"] == pytest.approx(norms.max())


def test_probe_memory_is_bounded():
    probe = ti.GradientProbe("g", keep_every=1, max_arrays=3, max_summaries=8)
    for step in range(100):
        probe.record(np.full(4, float(step)))
    assert len(probe.arrays) == 3 and [s for s, _ in probe.arrays] == [97, 98, 99]
    assert len(probe.summaries) <= 8
    assert probe.steps[0] == 0 and np.all(np.diff(probe.steps) > 0)   # thinned evenly
    assert probe.totals["records"] == 100
    assert probe.totals["mean_norm"] == pytest.approx(np.mean([2.0 * s for s in range(100)]))
    none_kept = ti.GradientProbe("n", keep_every=0)
    none_kept.record(np.ones(2))
    assert len(none_kept.arrays) == 0 and none_kept.last is not None
    with pytest.raises(ConfigError):
        ti.GradientProbe("bad", max_summaries=1)


def test_probe_tensor_and_remove():
    x = tb.tensor(np.ones(3), requires_grad=True)
    y = x * 2.0
    probe = ti.probe_tensor(y, "y")
    probe.remove()
    (y * y).sum().backward()
    assert len(probe) == 0


# --- a recorder on a model ------------------------------------------------------------------

def small_model(rng):
    return nn.Sequential(nn.Linear(4, 6, rng=rng), nn.BinaryLinear(6, 5, rng=rng),
                         nn.BinaryLinear(5, 3, rng=rng))


def test_recorder_on_the_binary_layers():
    rng = np.random.default_rng(0)
    model = small_model(rng)
    x = tb.tensor(rng.standard_normal((8, 4)).astype(np.float32))
    with ti.GradientRecorder(model, what=("input", "weight", "output"), max_arrays=None) as rec:
        assert set(rec.probes) == {"1", "2"}
        for _ in range(3):
            model.zero_grad()
            h = model[0](x)
            h.retain_grad()
            out = model[2](model[1](h))
            out.sum().backward()
            rec.step()
    # input of layer 1 = the gradient into h; weight gradients as in .grad
    assert np.allclose(rec.get("1", "input", 2), h.grad)
    assert np.allclose(rec.get("2", "weight", 2), model[2].weight.grad)
    assert np.allclose(rec.get("2", "output", 0), np.ones((8, 3)))
    steps, norms = rec.series("1", "input")
    assert list(steps) == [0, 1, 2] and norms.shape == (3,)
    assert set(rec.norms("weight")) == {"1", "2"}
    assert set(ti.layer_norms({"a": rec.probe("1", "input")})) == {"a"}
    # removed on exit: no more records
    model(x).sum().backward()
    assert len(rec.probe("1", "input")) == 3


def test_recorder_sees_surge_gradients():
    rng = np.random.default_rng(1)
    model = surge.wrap(small_model(rng))
    rec = ti.GradientRecorder(model, layers=["1", "1.layer"], what=("input", "weight"))
    aux = ti.GradientRecorder(model, layers=["1"], what=("aux_weight",))
    x = tb.tensor(rng.standard_normal((8, 4)).astype(np.float32))
    model(x).sum().backward()
    total = rec.get("1", "input", 0)        # g_b + λ·g_a
    main = rec.get("1.layer", "input", 0)   # g_b alone
    assert ti.fraction_zero(main) > 0 and ti.fraction_zero(total) == 0
    assert np.allclose(rec.get("1", "weight", 0), rec.get("1.layer", "weight", 0))
    assert aux.get("1", "aux_weight", 0).shape == (5, 6)
    with pytest.raises(ConfigError, match="no parameter"):
        ti.GradientRecorder(model, layers=["1"], what=("gamma",))
    with pytest.raises(ConfigError, match="no module"):
        ti.GradientRecorder(model, layers=["nope"])
    with pytest.raises(KeyError):
        rec.probe("1", "output")
    # the default choice counts a SURGE wrapper, not the layer inside it
    assert set(ti.GradientRecorder(model).probes) == {"1", "2"}


# --- plots ----------------------------------------------------------------------------------

def test_plots_return_figures():
    from matplotlib.figure import Figure

    rng = np.random.default_rng(2)
    g_ste = rng.standard_normal(200) * (rng.random(200) < 0.5)
    g_surge = g_ste + 0.01 * rng.standard_normal(200)
    figs = [
        ti.gradient_histograms({"STE": g_ste, "STE+SURGE": g_surge}),
        ti.gradient_cdfs({"STE": g_ste, "STE+SURGE": g_surge}),
        ti.gradient_heatmaps({"STE": g_ste.reshape(20, 10), "SURGE": g_surge.reshape(20, 10)},
                             steps=np.arange(20)),
        ti.lambda_curves({"fc2": np.linspace(0.2, 0.01, 30)}),
        ti.norm_curves({"fc1": np.linspace(1, 2, 30), "fc2": (np.arange(30), np.ones(30))}),
        ti.curves({"a": np.arange(5.0)}, band={"a": (np.arange(5.0) - 1, np.arange(5.0) + 1)}),
    ]
    for fig in figs:
        assert isinstance(fig, Figure)
        fig.canvas.draw()          # renders with the Agg canvas
    fig = Figure()
    ax = fig.add_subplot()
    assert ti.lambda_curves({"x": [1.0, 0.5]}, ax=ax) is fig
